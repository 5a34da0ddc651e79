"""Files people pass around, and bad data: refused in one line, before any work, never running code."""

from dataclasses import asdict

import pytest
import torch

import offrl.train as train_module
from offrl.data.generate import rollout
from offrl.files import UnreadableFileError, load_tensors
from offrl.priors import SkillPrior, load_prior, save_prior
from offrl.train import CHECKPOINT_FORMAT, TrainConfig, train


class RunsCode:
    """Unpickling this writes a file: the proof that a load ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_carrying_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state": {"w": torch.ones(2)}, "payload": RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnreadableFileError, match=r"refusing the checkpoint .*evil.pt: it carries a pickled Python object.*GLOBAL io.open\)"):
        load_tensors(tmp_path / "evil.pt", "checkpoint")
    assert not marker.exists()


def test_plain_data_loads_and_damaged_files_name_themselves(tmp_path):
    plain = {"w": torch.arange(3.0), "step": 7, "name": "td3bc", "rows": [{"loss": 0.5}], "shape": (2, 3)}
    torch.save(plain, tmp_path / "ok.pt")
    assert load_tensors(tmp_path / "ok.pt", "checkpoint")["rows"] == [{"loss": 0.5}]
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:100])
    (tmp_path / "text.pt").write_text("not a torch file")
    for name in ("cut.pt", "text.pt"):
        with pytest.raises(UnreadableFileError, match=rf"^cannot read the actor checkpoint .*{name}: it is damaged or not a torch file \([^\n]+\)$"):
            load_tensors(tmp_path / name, "actor checkpoint")
    with pytest.raises(FileNotFoundError, match="actor checkpoint not found"):
        load_tensors(tmp_path / "missing.pt", "actor checkpoint")


def test_a_prior_carrying_a_pickled_object_is_refused(tmp_path):
    prior = SkillPrior(state_dim=3, action_dim=2, context_dim=0, hidden=(8,))
    save_prior(prior, tmp_path / "prior.pt", kind="parrot")
    assert load_prior(tmp_path / "prior.pt")[1] == {"kind": "parrot"}
    save_prior(prior, tmp_path / "evil.pt", kind=RunsCode(tmp_path / "pwned"))
    with pytest.raises(UnreadableFileError, match="refusing the SAFER prior"):
        load_prior(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


class Stop(Exception):
    pass


@pytest.fixture
def checkpointed_run(tmp_path, monkeypatch, one_thread):
    """A run stopped right after its first checkpoint (step 20 of 40): its data, config and checkpoint."""
    data = rollout("hopper", None, 300, seed=0)
    config = TrainConfig(algorithm="td3bc", env="hopper", dataset="hopper-random", seeds=[0], steps=40, eval_every=20,
                         log_every=20, batch_size=16, device="cpu")
    checkpoint = tmp_path / "run.ckpt"
    save = train_module._atomic_save

    def save_then_stop(obj, path):
        save(obj, path)
        if path == checkpoint:
            raise Stop

    monkeypatch.setattr(train_module, "_atomic_save", save_then_stop)
    with pytest.raises(Stop):
        train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)
    monkeypatch.setattr(train_module, "_atomic_save", save)
    return data, config, checkpoint


def test_a_checkpoint_holds_plain_data_and_resumes(checkpointed_run, tmp_path):
    data, config, checkpoint = checkpointed_run
    state = torch.load(checkpoint, weights_only=True)
    assert state["format"] == CHECKPOINT_FORMAT and state["step"] == 20 and state["config"] == asdict(config)
    assert train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)["resumed_from_step"] == 20


@pytest.mark.parametrize("change, reason", [
    (lambda state: state.pop("format"), "was written by another version of offrl (checkpoint format None, this code writes"),
    (lambda state: state.update(format=CHECKPOINT_FORMAT - 1), "was written by another version of offrl"),
    (lambda state: state["config"].update(seeds=[5]), "belongs to another configuration"),
    (lambda state: state["algorithm"]["actor"].update({name: torch.zeros(1) for name in list(state["algorithm"]["actor"])[:1]}),
     "holds other networks than td3bc builds now"),
])
def test_a_stale_checkpoint_is_ignored_with_a_message(checkpointed_run, tmp_path, capsys, change, reason):
    data, config, checkpoint = checkpointed_run
    state = torch.load(checkpoint, weights_only=True)
    change(state)
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)["resumed_from_step"] == 0
    err = capsys.readouterr().err
    assert f"checkpoint {checkpoint} {reason}" in err and ": ignoring it, starting afresh" in err


def test_a_damaged_or_unsafe_checkpoint_is_an_error_naming_the_fix(checkpointed_run, tmp_path):
    data, config, checkpoint = checkpointed_run
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "log": RunsCode(tmp_path / "pwned")}, checkpoint)
    with pytest.raises(UnreadableFileError, match="refusing the checkpoint .*; delete it to start the run afresh$"):
        train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)
    assert not (tmp_path / "pwned").exists()
    checkpoint.write_bytes(b"\0" * 64)
    with pytest.raises(UnreadableFileError, match="cannot read the checkpoint .*damaged.*; delete it to start the run afresh$"):
        train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)
