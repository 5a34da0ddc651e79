"""offrl.loop: the pieces the training loops share."""

import math

import pytest
import torch

from offrl.files import UnreadableFileError
from offrl.loop import NonFiniteError, NonFiniteWatch, TrainingRun, progress_bar, save_checkpoint


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


def test_the_watch_names_the_members_that_went_bad():
    watch = NonFiniteWatch(members=["seed 3", "seed 4", "seed 5"])
    watch.update(1, {"critic_loss": torch.tensor([0.5, 0.25, 1.0]), "alpha": torch.tensor(0.1)})
    watch.update(
        2, {"critic_loss": torch.tensor([0.5, math.nan, 1.0]), "q_mean": torch.tensor([[1.0], [1.0], [math.inf]])}
    )
    watch.update(3, {"critic_loss": torch.tensor([math.nan, 0.0, 0.0])})  # later: the first step is what counts
    with pytest.raises(NonFiniteError, match=r"^run: .* at step 2 \(seed 4, seed 5\);"):
        watch.check("run")


def test_a_value_without_a_member_axis_counts_for_every_member():
    watch = NonFiniteWatch(members=["seed 0", "seed 1"])
    watch.update(7, {"alpha": torch.tensor(math.inf)})
    with pytest.raises(NonFiniteError, match=r"at step 7 \(seed 0, seed 1\)"):
        watch.check("run")


def run(tmp_path, total=10, identity=None) -> TrainingRun:
    identity = {"config": {"lr": 0.1, "hidden": (4, 4)}} if identity is None else identity
    return TrainingRun("TD3 on hopper", total, ["seed 0"], tmp_path / "checkpoint.pt", identity, progress=False)


def test_a_saved_run_resumes_where_it_stopped(tmp_path):
    first = run(tmp_path)
    assert first.resume() is None and first.start == 0
    for step in first.steps():
        if step == 4:
            first.save(step, {"weights": torch.arange(3.0), "rows": [{"step": 4}]})
            break
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 4 and saved["wall_s"] >= 0
    second = run(tmp_path)
    state = second.resume()
    assert torch.equal(state["weights"], torch.arange(3.0)) and state["rows"] == [{"step": 4}]
    assert list(second.steps()) == list(range(5, 11)) and second.elapsed() >= saved["wall_s"]
    second.finish()
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_checkpoint_of_another_run_is_ignored_and_one_past_the_end_refused(tmp_path, capsys):
    run(tmp_path).save(6, {})
    assert run(tmp_path, identity={"config": {"lr": 0.2}}).resume() is None
    assert "belongs to another run: ignoring it, starting afresh" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is at step 6, past the run's 5 steps"):
        run(tmp_path, total=5).resume()


def test_a_diverged_run_saves_no_checkpoint(tmp_path):
    diverged = run(tmp_path)
    diverged.watch.update(3, {"critic_loss": torch.tensor([math.nan])})
    with pytest.raises(NonFiniteError, match=r"^TD3 on hopper: .* at step 3 \(seed 0\)"):
        diverged.save(4, {})
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_damaged_checkpoint_is_an_error_naming_it(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnreadableFileError, match="delete it to start the run afresh"):
        run(tmp_path).resume()
