"""Files people pass around, and bad data: refused in one line, before any work, never running code."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

import offrl.train as train_module
from offrl.data.generate import rollout
from offrl.files import UnreadableFileError, load_tensors
from offrl.safer.priors import SkillPrior, load_prior, save_prior
from offrl.train import CHECKPOINT_FORMAT, train
from tests.conftest import hopper_random_minari


class RunsCode:
    """Unpickling this writes a file: the proof that a load ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_carrying_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state": {"w": torch.ones(2)}, "payload": RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(
        UnreadableFileError,
        match=r"refusing the checkpoint .*evil.pt: it carries a pickled Python object.*GLOBAL io.open\)",
    ):
        load_tensors(tmp_path / "evil.pt", "checkpoint")
    assert not marker.exists()


def test_plain_data_loads_and_damaged_files_name_themselves(tmp_path):
    plain = {"w": torch.arange(3.0), "step": 7, "name": "td3bc", "rows": [{"loss": 0.5}], "shape": (2, 3)}
    torch.save(plain, tmp_path / "ok.pt")
    assert load_tensors(tmp_path / "ok.pt", "checkpoint")["rows"] == [{"loss": 0.5}]
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:100])
    (tmp_path / "text.pt").write_text("not a torch file")
    for name in ("cut.pt", "text.pt"):
        with pytest.raises(
            UnreadableFileError,
            match=rf"^cannot read the actor checkpoint .*{name}: it is damaged or not a torch file \([^\n]+\)$",
        ):
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
def checkpointed_run(tmp_path, monkeypatch, one_thread, cpu_config):
    """A run stopped right after its first checkpoint (step 20 of 40): its data, config and checkpoint."""
    data = rollout("hopper", None, 300, seed=0)
    config = cpu_config(steps=40, eval_every=20, log_every=20, batch_size=16)
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
    assert state["format"] == CHECKPOINT_FORMAT and state["step"] == 20 and state["config"] == [asdict(config)]
    assert train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)["resumed_from_step"] == 20


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda state: state.pop("format"),
            "was written by another version of offrl (checkpoint format None, this code writes",
        ),
        (lambda state: state.update(format=CHECKPOINT_FORMAT - 1), "was written by another version of offrl"),
        (lambda state: state["config"][0].update(seeds=[5]), "belongs to another configuration"),
        (
            lambda state: state["algorithm"]["actor"].update(
                {name: torch.zeros(1) for name in list(state["algorithm"]["actor"])[:1]}
            ),
            "holds other networks than td3bc builds now",
        ),
    ],
)
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
    with pytest.raises(
        UnreadableFileError, match="cannot read the checkpoint .*damaged.*; delete it to start the run afresh$"
    ):
        train(data, config, tmp_path / "out", checkpoint=checkpoint, progress=False)


# Bad data: a Minari dataset written by offrl, then damaged in its HDF5 file as a download or a bug might.


@pytest.fixture(scope="module")
def good_dataset(tmp_path_factory):
    return hopper_random_minari(tmp_path_factory.mktemp("minari"), 60)


def damaged(good_dataset, tmp_path, damage):
    """A copy of the dataset with ``damage(hdf5_file)`` applied."""
    import shutil

    import h5py

    path = tmp_path / "random-v0"
    shutil.copytree(good_dataset, path)
    with h5py.File(path / "data" / "main_data.hdf5", "r+") as f:
        damage(f)
    return path


def set_value(field, index, value):
    def damage(f):
        f[f"episode_1/{field}"][index] = value

    return damage


def replace(field, make):
    def damage(f):
        values = f[f"episode_1/{field}"][()]
        del f[f"episode_1/{field}"]
        f[f"episode_1/{field}"] = make(values)

    return damage


PREFIX = r"^dataset offrl/hopper/random-v0 at \S+random-v0: "


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            set_value("observations", (4, 2), np.nan),
            r"field observations, episode 1, step 4: \[.*nan.*\] is not finite \(NaN or infinite\)$",
        ),
        (set_value("actions", (3, 0), np.inf), r"field actions, episode 1, step 3: \[.*inf.*\] is not finite"),
        (set_value("rewards", 5, -np.inf), r"field rewards, episode 1, step 5: -inf is not finite"),
        (
            set_value("actions", (2, 1), 1.5),
            r"field actions, episode 1, step 2: \[.*1\.5.*\] is outside the action box "
            r"\[\[-1\.0, -1\.0, -1\.0\], \[1\.0, 1\.0, 1\.0\]\]$",
        ),
        (
            replace("actions", lambda a: a[:, :2]),
            r"field actions, episode 1: shape \(\d+, 2\), expected \(\d+, 3\) \(\d+ steps\)$",
        ),
        (
            replace("observations", lambda o: o[:-2]),
            r"field observations, episode 1: shape \(\d+, 11\), expected \(\d+, 11\)",
        ),
        (
            replace("rewards", lambda r: np.stack([r, r], axis=1)),
            r"field rewards, episode 1: shape \(\d+, 2\), expected \(\d+,\)",
        ),
        (
            replace("terminations", lambda t: np.where(np.arange(len(t)) == 3, 2, t.astype(np.int8))),
            r"field terminations, episode 1, step 3: 2 is not a boolean flag",
        ),
        (
            replace("truncations", lambda t: np.where(np.arange(len(t)) == 1, 0.5, t.astype(np.float32))),
            r"field truncations, episode 1, step 1: 0\.5 is not a boolean flag",
        ),
    ],
)
def test_bad_data_is_refused_naming_dataset_field_episode_and_step(good_dataset, tmp_path, damage, message):
    from offrl.data import DatasetError, load_dataset

    with pytest.raises(DatasetError, match=PREFIX + message) as raised:
        load_dataset(damaged(good_dataset, tmp_path, damage))
    assert "\n" not in str(raised.value)


def test_flags_stored_as_zeros_and_ones_load(good_dataset, tmp_path):
    from offrl.data import load_dataset

    path = damaged(good_dataset, tmp_path, replace("terminations", lambda t: t.astype(np.float64)))
    assert np.array_equal(load_dataset(path).terminals, load_dataset(good_dataset).terminals)


def test_an_empty_dataset_is_refused():
    from offrl.data import DatasetError
    from offrl.data.dataset import check_episodes

    with pytest.raises(DatasetError, match=r"^dataset x: the dataset is empty \(0 episodes, no transitions\)$"):
        check_episodes([], "dataset x")
    no_steps = {
        "observations": np.zeros((1, 11)),
        "actions": np.zeros((0, 3)),
        "rewards": np.zeros(0),
        "terminations": np.zeros(0, bool),
        "truncations": np.zeros(0, bool),
    }
    with pytest.raises(DatasetError, match=r"the dataset is empty \(1 episodes, no transitions\)"):
        check_episodes([no_steps], "dataset x")


def test_the_train_command_refuses_bad_data_in_one_line_before_training(good_dataset, tmp_path, capsys):
    from offrl.cli import main

    path = damaged(good_dataset, tmp_path, set_value("observations", (4, 2), np.nan))
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "--threads",
                "1",
                "train",
                "--algo",
                "td3bc",
                "--dataset",
                "hopper-random",
                "--dataset-dir",
                str(path),
                "--steps",
                "10",
                "--eval-every",
                "10",
                "--log-every",
                "10",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
    err = capsys.readouterr().err
    assert exited.value.code == 1 and not (tmp_path / "run").exists()
    assert err.count("\n") == 1 and err.startswith("offrl train: error: dataset offrl/hopper/random-v0 at ")
    assert "field observations, episode 1, step 4" in err


def test_a_damaged_shipped_policy_is_one_line(tmp_path, capsys):
    from offrl.cli import main

    behaviour = tmp_path / "behaviour"
    behaviour.mkdir()
    (behaviour / "expert.pt").write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(SystemExit):
        main(
            [
                "--threads",
                "1",
                "collect",
                "--env",
                "hopper",
                "--kind",
                "expert",
                "--behaviour",
                str(behaviour),
                "--size",
                "10",
                "--root",
                str(tmp_path / "minari"),
                "--summary",
                str(tmp_path / "s.json"),
                "--quiet",
            ]
        )
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        f"offrl collect: error: cannot read the actor checkpoint {behaviour / 'expert.pt'}: "
        "it is damaged or not a torch file ("
    )


def test_a_dataset_the_disk_cannot_hold_is_refused_in_one_line(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from offrl.data import DatasetError
    from offrl.data.dataset import write_minari

    data = rollout("hopper", None, 100, seed=0)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 50_000, 50_000))
    with pytest.raises(
        DatasetError,
        match=r"^No space left on device for the dataset under \S+: it needs about 1\.\d MB, 0\.1 MB are free$",
    ):
        write_minari(data, tmp_path / "minari", "offrl/hopper/random-v0", "hopper")
    assert not (tmp_path / "minari").exists()


def test_staging_left_by_a_dead_writer_on_this_host_is_removed(tmp_path):
    import os
    import socket
    import subprocess

    from offrl.data.dataset import write_minari

    host = socket.gethostname()
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now
    left = {
        name: tmp_path / name
        for name in (
            f".partial-{host}-{dead.pid}-abc123",
            f".partial-{host}-{os.getpid()}-def456",
            f".partial-{host}x-{dead.pid}-abc123",
            f".partial-{host}-{dead.pid}-x-y",
        )
    }
    for path in left.values():
        path.mkdir()
    write_minari(rollout("hopper", None, 100, seed=0), tmp_path, "offrl/hopper/random-v0", "hopper")
    kept = sorted(p.name for p in tmp_path.glob(".partial-*"))
    assert kept == sorted(
        list(left)[1:]
    )  # only the dead writer's own staging went; the live one, another host's and a stranger stay
