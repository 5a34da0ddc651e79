"""The training loop: resume equality, NaN detection, outputs, GPU claiming, seeds."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import offrl.train
from offrl.data.generate import rollout
from offrl.train import NonFiniteError, TrainConfig, train
from tests.conftest import assert_same_run, hopper_random_minari, resume_after_kill
from tests.graph_replay import replayed_graphs


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return hopper_random_minari(tmp_path_factory.mktemp("minari"), 3000)


def train_command(dataset_dir, out, checkpoint, steps=400):
    return [
        sys.executable,
        "-m",
        "offrl",
        "--threads",
        "1",
        "train",
        "--algo",
        "td3bc",
        "--dataset",
        "hopper-random",
        "--dataset-dir",
        str(dataset_dir),
        "--seeds",
        "0",
        "1",
        "--steps",
        str(steps),
        "--batch-size",
        "64",
        "--eval-every",
        "100",
        "--log-every",
        "50",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--quiet",
    ]


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_killed_run_resumes_to_identical_numbers(dataset_dir, tmp_path):
    straight = tmp_path / "straight"
    subprocess.run(train_command(dataset_dir, straight, tmp_path / "straight.ckpt"), check=True, timeout=900)

    resumed, checkpoint = tmp_path / "resumed", tmp_path / "resumed.ckpt"
    resume_after_kill(train_command(dataset_dir, resumed, checkpoint), checkpoint, 400)

    a, b = assert_same_run(straight, resumed, list(range(100, 401, 100)))
    assert sorted(a["critics"]) == sorted(b["critics"]) == list(range(100, 401, 100))  # the Q diagnostic's critics too
    for step, modules in a["critics"].items():
        for name, tensor in modules["critic"].items():
            assert torch.equal(tensor, b["critics"][step]["critic"][name]), (step, name)


def test_a_captured_run_stopped_and_resumed_gives_the_eager_runs_numbers(tmp_path, cpu_config, monkeypatch):
    """Capture on (CUDA-graph semantics on the CPU: tests.graph_replay), the run stopped after a checkpoint and
    resumed, whose graphs are captured again: the eager run's snapshots and log, to the bit."""
    data = rollout("hopper", None, 500, seed=0)
    config = cpu_config(steps=120, eval_every=40, log_every=20, batch_size=32, seeds=(0, 1))
    assert not train(data, config, tmp_path / "eager", progress=False, capture="off")["captured"]

    graphs = replayed_graphs(monkeypatch)

    class Stopped(Exception):
        pass

    class StopAt70(offrl.train.TrainingSteps):
        def __call__(self, step):
            if step == 70:
                raise Stopped
            super().__call__(step)

    checkpoint = tmp_path / "run.ckpt"
    with monkeypatch.context() as stop:
        stop.setattr(offrl.train, "TrainingSteps", StopAt70)
        with pytest.raises(Stopped):
            train(data, config, tmp_path / "captured", checkpoint=checkpoint, progress=False)
    assert torch.load(checkpoint, weights_only=True)["step"] == 40 and len(graphs) == 2
    record = train(data, config, tmp_path / "captured", checkpoint=checkpoint, progress=False)
    assert record["captured"] and record["resumed_from_step"] == 40
    assert len(graphs) == 4 and all(graph.replays for graph in graphs)

    assert_same_run(tmp_path / "eager", tmp_path / "captured", [40, 80, 120])


def test_non_finite_loss_stops_with_its_step(tmp_path, cpu_config):
    data = rollout("hopper", None, 500, seed=0)
    data.rewards[:] = 1e30  # (Q − y)² overflows float32 at the first critic step
    config = cpu_config(steps=100, eval_every=50, log_every=10, batch_size=32)
    with pytest.raises(NonFiniteError, match="NaN or infinite at step 1;"):
        train(data, config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_outputs_and_log_columns(tmp_path, cpu_config):
    data = rollout("hopper", None, 800, seed=1)
    config = cpu_config(steps=60, eval_every=20, log_every=20, batch_size=32, algorithm="bc", seeds=(3, 4))
    record = train(data, config, tmp_path, progress=False)
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert list(log.columns) == ["step", "seed", "actor_loss", "bc_mse"] and set(log["seed"]) == {3, 4}
    run = torch.load(tmp_path / "snapshots.pt", weights_only=True)
    assert sorted(run["actors"]) == [20, 40, 60] and run["seeds"] == [3, 4]
    np.testing.assert_allclose(run["obs_mean"].numpy(), data.observations.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(run["obs_std"].numpy(), data.observations.std(axis=0) + 1e-3, rtol=1e-5)
    assert record["config"]["seeds"] == [3, 4] and (tmp_path / "config.json").is_file()


def test_same_seed_same_numbers(tmp_path, cpu_config):
    data = rollout("hopper", None, 500, seed=2)
    config = cpu_config(steps=20, eval_every=10, log_every=10, batch_size=32)
    train(data, config, tmp_path / "a", progress=False)
    train(data, config, tmp_path / "b", progress=False)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "train_log.csv"), pd.read_csv(tmp_path / "b" / "train_log.csv")
    )


def test_steps_must_be_a_multiple_of_eval_every():
    with pytest.raises(ValueError, match="multiple of eval_every"):
        TrainConfig(algorithm="bc", env="hopper", dataset="hopper-random", seeds=[0], steps=25, eval_every=10)


def test_guided_run_reads_expert_and_index(tmp_path, cpu_config):
    from offrl.nets import DeterministicActor
    from offrl.policies import save_actor
    from offrl.simhash import SimHashIndex

    data = rollout("hopper", None, 400, seed=4)
    save_actor(DeterministicActor(1, 11, 3), tmp_path / "expert.pt")
    SimHashIndex.build(data.observations, k=4, seed=0).save(tmp_path / "index.npz")
    options = {"guide_expert": str(tmp_path / "expert.pt"), "guide_index": str(tmp_path / "index.npz")}
    config = cpu_config(steps=20, eval_every=10, log_every=10, batch_size=32, options=options)
    train(data, config, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "snapshots.pt").is_file()


def test_log_interval_must_divide_the_checkpoint_interval():
    with pytest.raises(ValueError, match=r"log_every \(300\) must divide the checkpoint interval \(1000\)"):
        TrainConfig(
            algorithm="bc", env="hopper", dataset="hopper-random", seeds=[0], steps=2000, eval_every=1000, log_every=300
        )


def test_divergence_probe_by_hand():
    from offrl.data import Dataset
    from offrl.train import DivergenceProbe

    # 4 expert pairs with actions 0, 1, 2, 3 and 2 contaminant pairs with actions 10, 20 (1-D); π(s) = 0.
    actions = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [20.0]], np.float32)
    n = len(actions)
    dataset = Dataset(
        np.zeros((n, 2), np.float32),
        actions,
        np.zeros(n, np.float32),
        np.zeros((n, 2), np.float32),
        np.zeros(n, bool),
        np.eye(n, dtype=bool)[-1],
        np.zeros(n, np.int64),
    )
    probe = DivergenceProbe(dataset, 4, np.zeros(2), np.ones(2), torch.device("cpu"))
    logs = probe(lambda obs: torch.zeros(*obs.shape[:2], 1), members=2)
    # Squared errors 0, 1, 4, 9: 75th percentile (linear) = 4 + 0.25·(9 − 4); contaminant 100, 400 -> 325.
    assert logs["divergence_expert_p75"].tolist() == pytest.approx([5.25, 5.25])
    assert logs["divergence_contaminant_p75"].tolist() == pytest.approx([325.0, 325.0])
    with pytest.raises(ValueError, match="no contaminant transitions"):
        DivergenceProbe(dataset, 6, np.zeros(2), np.ones(2), torch.device("cpu"))
