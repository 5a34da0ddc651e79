"""offrl.loop: the pieces the training loops share."""

import math

import pytest
import torch

from offrl.loop import NonFiniteError, NonFiniteWatch, progress_bar, save_checkpoint


def test_the_watch_names_the_first_bad_step():
    watch = NonFiniteWatch()
    watch.update(1, {"critic_loss": torch.tensor([0.5, 0.25])})
    watch.update(2, {})  # a step that logs nothing (no learning yet)
    watch.check("run")  # all finite so far: nothing raised
    watch.update(3, {"critic_loss": torch.tensor([0.5, math.nan]), "actor_loss": torch.tensor([1.0, 1.0])})
    watch.update(4, {"critic_loss": torch.tensor([math.inf, 0.0])})
    with pytest.raises(NonFiniteError, match=r"^TD3 on hopper: a loss or Q-value became NaN or infinite at step 3;"):
        watch.check("TD3 on hopper")


def test_a_resumed_bar_counts_from_where_the_run_stopped():
    bar = progress_bar(3, 5, "run", progress=False)
    assert list(bar) == [4, 5] and bar.total == 5


def test_a_checkpoint_is_written_whole(tmp_path):
    path = save_checkpoint({"step": 7, "weights": torch.arange(3.0)}, tmp_path / "ckpt" / "checkpoint.pt")
    state = torch.load(path, weights_only=True)
    assert state["step"] == 7 and torch.equal(state["weights"], torch.arange(3.0))
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]
