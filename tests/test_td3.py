import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from offrl.data.generate import replay_dataset
from offrl.online import DeviceSampler, ReplayBuffer, TD3Config, select_checkpoints, train_online
from offrl.policies import load_actor
from tests.conftest import resume_after_kill
from tests.graph_replay import replayed_graphs


def evaluations(run: Path) -> pd.DataFrame:
    """An online run's evaluations.csv without its wall-clock column."""
    return pd.read_csv(run / "evaluations.csv").drop(columns="wall_s")


def assert_same_policies(a: Path, b: Path) -> None:
    """Two online runs' expert and medium actors equal to the bit."""
    for name in ("expert.pt", "medium.pt"):
        first, second = (torch.load(run / name, weights_only=True)["state_dict"] for run in (a, b))
        for key in first:
            assert torch.equal(first[key], second[key]), (name, key)


def test_select_checkpoints():
    scores = [1.0, 12.0, 35.0, 90.0, 60.0]
    assert select_checkpoints(scores, "best", 1 / 3) == (3, 2, 30.0)
    assert select_checkpoints(scores, "last", 1 / 3) == (4, 2, 20.0)


def test_replay_cut_ends_as_timeout_at_the_checkpoint(tmp_path):
    buffer = ReplayBuffer(10, 2, 1)
    for t in range(10):
        buffer.add(np.full(2, t), np.zeros(1), 1.0, np.full(2, t + 1), terminal=(t == 3), timeout=False)
    buffer.save(tmp_path / "replay.npz", end=7)
    data = replay_dataset(tmp_path / "replay.npz")
    data.validate()
    assert len(data) == 7 and data.terminals.tolist() == [0, 0, 0, 1, 0, 0, 0] and data.timeouts[-1]
    assert data.next_observations[-1, 0] == 7  # ends exactly at the checkpoint's step
    recent = replay_dataset(tmp_path / "replay.npz", size=5)
    assert len(recent) == 5 and recent.observations[0, 0] == 2 and recent.next_observations[-1, 0] == 7
    assert recent.episode_ids.tolist() == [0, 0, 1, 1, 1]


def test_device_sampler_draws_what_the_buffer_draws():
    """The GPU path's minibatch (gathered into one host array, copied whole) holds the CPU path's transitions."""
    buffer = ReplayBuffer(50, 3, 2)
    data = np.random.default_rng(1)
    for t in range(40):
        buffer.add(data.normal(size=3), data.normal(size=2), float(t), data.normal(size=3), t % 7 == 0, t % 11 == 0)
    sampler = DeviceSampler(buffer, 16, torch.device("cpu"))
    ours, theirs = np.random.default_rng(9), np.random.default_rng(9)
    for _ in range(2):  # the second call reuses the first's arrays
        got, want = sampler(ours), buffer.sample(theirs, 16)
        for name in ("obs", "actions", "rewards", "next_obs", "not_done"):
            assert getattr(got, name).shape == getattr(want, name).shape
            assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert ours.integers(1 << 30) == theirs.integers(1 << 30)  # the same draws, in the same order


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_device_cpu_explicit_gives_the_default_numbers(tmp_path):
    """On a machine without a GPU the default (``auto``) is the CPU; naming it, with capture off, changes nothing."""
    torch.set_num_threads(1)
    config = TD3Config(total_steps=900, start_steps=600, eval_every=300, eval_episodes=1, seed=7, checkpoint_every=0)
    default = train_online("hopper", config, tmp_path / "default", progress=False)
    explicit = train_online("hopper", config, tmp_path / "cpu", progress=False, device="cpu", capture="off")
    assert default["device"] == explicit["device"] == "cpu" and not default["captured"]
    pd.testing.assert_frame_equal(evaluations(tmp_path / "default"), evaluations(tmp_path / "cpu"))
    assert explicit["expert"] == default["expert"] and explicit["medium"] == default["medium"]


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_captured_updates_give_the_eager_numbers(tmp_path, monkeypatch):
    """Online TD3 with its updates captured (CUDA-graph semantics on the CPU: tests.graph_replay): the eager run's
    numbers."""
    torch.set_num_threads(1)
    config = TD3Config(total_steps=900, start_steps=600, eval_every=300, eval_episodes=1, seed=7, checkpoint_every=0)
    eager = train_online("hopper", config, tmp_path / "eager", progress=False, capture="off")
    graphs = replayed_graphs(monkeypatch)
    captured = train_online("hopper", config, tmp_path / "captured", progress=False)
    assert captured["captured"] and not eager["captured"]
    assert len(graphs) == 2 and all(graph.replays > 100 for graph in graphs)
    pd.testing.assert_frame_equal(evaluations(tmp_path / "eager"), evaluations(tmp_path / "captured"))
    assert_same_policies(tmp_path / "eager", tmp_path / "captured")


def test_behaviour_rejects_a_bad_device_in_one_line_before_it_starts(tmp_path, capsys):
    from offrl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "gpu", "behaviour", "--env", "hopper", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        "offrl behaviour: error: unknown device 'gpu'; allowed: auto, cpu, cuda, cuda:<index>\n"
    )
    assert not (tmp_path / "out").exists()


def test_train_online_writes_behaviour_artefacts(tmp_path):
    torch.set_num_threads(1)
    config = TD3Config(total_steps=1200, start_steps=800, eval_every=400, eval_episodes=2, seed=3)
    manifest = train_online("hopper", config, tmp_path, progress=False, command="test")
    for name in ("expert.pt", "medium.pt", "replay_medium.npz", "evaluations.csv", "manifest.json"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert manifest["medium"]["step"] <= manifest["expert"]["step"]
    assert manifest["replay_medium_transitions"] == manifest["medium"]["step"]
    assert len(replay_dataset(tmp_path / "replay_medium.npz")) == manifest["medium"]["step"]
    actor = load_actor(tmp_path / "expert.pt")
    assert actor(torch.zeros(1, 4, 11)).shape == (1, 4, 3)
    assert manifest["expert"]["normalized_score"] == pytest.approx(
        100 * (manifest["expert"]["eval_return_mean"] + 20.272305) / 3254.572305
    )


def test_safety_expert_is_scored_on_the_unmodified_task(tmp_path):
    from offrl.evaluate import evaluate_policy
    from offrl.policies import NumpyActor

    torch.set_num_threads(1)
    config = TD3Config(
        total_steps=1200,
        start_steps=800,
        eval_every=400,
        eval_episodes=2,
        seed=3,
        ctrl_cost_weight=0.1,
        expert_only=True,
    )
    manifest = train_online("hopper", config, tmp_path, progress=False, command="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluations.csv", "expert.pt", "manifest.json"]
    assert "medium" not in manifest and manifest["config"]["ctrl_cost_weight"] == 0.1
    expert = NumpyActor(load_actor(tmp_path / "expert.pt"))
    plain = evaluate_policy(expert, "hopper", 2, seed=1_000_003)
    penalised = evaluate_policy(expert, "hopper", 2, seed=1_000_003, env_kwargs={"ctrl_cost_weight": 0.1})
    assert manifest["expert"]["eval_return_mean"] == pytest.approx(plain["return"].mean())
    # The penalty is (0.1 − 0.001)·Σa² on top of Gymnasium's own 0.001·Σa².
    assert penalised["return"].sum() == pytest.approx(
        plain["return"].sum() - 0.099 * plain["sum_sq_action"].sum(), rel=1e-6
    )


def _crash_at_evaluation(monkeypatch, step: int) -> None:
    """Make the evaluation at ``step`` raise, as a kill would stop the run there."""
    import offrl.online as td3

    evaluate = td3.evaluate_policy

    def crash(*args, seed, **kwargs):
        if seed == 10_000 + step:
            raise KeyboardInterrupt
        return evaluate(*args, seed=seed, **kwargs)

    monkeypatch.setattr(td3, "evaluate_policy", crash)


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_interrupted_run_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    """A crash after a checkpoint, then a rerun: the same evaluations and the same expert as an uninterrupted run."""
    torch.set_num_threads(1)
    config = TD3Config(total_steps=1200, start_steps=500, eval_every=400, eval_episodes=1, seed=5, checkpoint_every=600)
    whole = train_online("hopper", config, tmp_path / "whole", progress=False)
    assert not (tmp_path / "whole" / "checkpoint.pt").exists()  # a finished run removes its checkpoint

    with monkeypatch.context() as patch:
        _crash_at_evaluation(patch, 800)
        with pytest.raises(KeyboardInterrupt):
            train_online("hopper", config, tmp_path / "resumed", progress=False)
    assert (tmp_path / "resumed" / "checkpoint.pt").is_file() and not (tmp_path / "resumed" / "manifest.json").exists()
    resumed = train_online("hopper", config, tmp_path / "resumed", progress=False)

    read = lambda run: np.loadtxt(tmp_path / run / "evaluations.csv", delimiter=",", skiprows=1, usecols=(0, 1, 3, 4))
    np.testing.assert_array_equal(read("whole"), read("resumed"))
    assert resumed["expert"] == whole["expert"] and resumed["medium"] == whole["medium"]
    assert_same_policies(tmp_path / "whole", tmp_path / "resumed")
    replay = lambda run: np.load(tmp_path / run / "replay_medium.npz")["observations"]
    np.testing.assert_array_equal(replay("whole"), replay("resumed"))


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_rerun_with_fewer_steps_finalises_a_stopped_run(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    config = TD3Config(total_steps=2000, start_steps=500, eval_every=400, eval_episodes=1, seed=5, checkpoint_every=800)
    with monkeypatch.context() as patch:
        _crash_at_evaluation(patch, 1200)
        with pytest.raises(KeyboardInterrupt):
            train_online("hopper", config, tmp_path, progress=False)
    with pytest.raises(ValueError, match="past the run's 400 steps"):
        train_online("hopper", TD3Config(**{**config.__dict__, "total_steps": 400}), tmp_path, progress=False)
    manifest = train_online("hopper", TD3Config(**{**config.__dict__, "total_steps": 800}), tmp_path, progress=False)
    assert [row["step"] for row in pd.read_csv(tmp_path / "evaluations.csv").to_dict("records")] == [400, 800]
    assert manifest["expert"]["step"] in (400, 800) and not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_a_kept_checkpoint_extends_a_finished_run(tmp_path):
    """Finished at 800 steps with its checkpoint kept, then rerun to 1200: the numbers of a 1200-step run."""
    torch.set_num_threads(1)
    config = TD3Config(total_steps=1200, start_steps=500, eval_every=400, eval_episodes=1, seed=5, checkpoint_every=600)
    whole = train_online("hopper", config, tmp_path / "whole", progress=False)
    short = TD3Config(**{**config.__dict__, "total_steps": 800})
    first = train_online("hopper", short, tmp_path / "extended", progress=False, keep_checkpoint=True)
    assert first["expert"]["step"] in (400, 800)
    assert torch.load(tmp_path / "extended" / "checkpoint.pt", weights_only=True)["step"] == 800
    extended = train_online("hopper", config, tmp_path / "extended", progress=False, keep_checkpoint=True)
    pd.testing.assert_frame_equal(evaluations(tmp_path / "whole"), evaluations(tmp_path / "extended"))
    assert extended["expert"] == whole["expert"] and extended["medium"] == whole["medium"]
    assert (tmp_path / "extended" / "checkpoint.pt").is_file()


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_a_checkpoint_from_another_device_resumes(tmp_path, monkeypatch, capsys):
    """Read into host memory whatever device wrote it; only the target noise's generator cannot carry over."""
    torch.set_num_threads(1)
    config = TD3Config(total_steps=800, start_steps=300, eval_every=400, eval_episodes=1, seed=5, checkpoint_every=400)
    with monkeypatch.context() as patch:
        _crash_at_evaluation(patch, 800)
        with pytest.raises(KeyboardInterrupt):
            train_online("hopper", config, tmp_path, progress=False, device="cpu")
    checkpoint = tmp_path / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    assert state["state"]["device"] == "cpu" and state["step"] == 400
    # As a GPU writes it: a CUDA generator's state (seed and offset) does not fit a CPU generator.
    state["state"]["device"], state["state"]["generator"] = "cuda", torch.zeros(16, dtype=torch.uint8)
    torch.save(state, checkpoint)
    manifest = train_online("hopper", config, tmp_path, progress=False, device="cpu")
    assert (
        "checkpoint written on cuda, resumed on cpu: the target noise restarts from seed + step"
        in capsys.readouterr().out
    )
    evaluations = pd.read_csv(tmp_path / "evaluations.csv")
    assert evaluations["step"].tolist() == [400, 800] and manifest["device"] == "cpu"
    assert evaluations["return_mean"].iloc[0] == state["state"]["evaluations"][0]["return_mean"]


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    """kill -9 after a checkpoint, then the same command again: an uninterrupted run's evaluations, actors and
    replay buffer."""
    config = TD3Config(total_steps=1200, start_steps=500, eval_every=400, eval_episodes=1, seed=5, checkpoint_every=400)
    whole = train_online("hopper", config, tmp_path / "whole", progress=False, device="cpu")
    command = [sys.executable, "-m", "offrl", "--threads", "1", "--device", "cpu", "--quiet", "behaviour"]
    command += ["--env", "hopper", "--out", str(tmp_path / "resumed"), "--total-steps", "1200", "--start-steps", "500"]
    command += ["--eval-every", "400", "--eval-episodes", "1", "--seed", "5", "--checkpoint-every", "400"]
    resume_after_kill(command, tmp_path / "resumed" / "checkpoint.pt", 1200)

    pd.testing.assert_frame_equal(evaluations(tmp_path / "whole"), evaluations(tmp_path / "resumed"))
    resumed = json.loads((tmp_path / "resumed" / "manifest.json").read_text())
    assert resumed["expert"] == whole["expert"] and resumed["medium"] == whole["medium"]
    assert_same_policies(tmp_path / "whole", tmp_path / "resumed")
    replay = lambda run: np.load(tmp_path / run / "replay_medium.npz")["observations"]  # noqa: E731
    np.testing.assert_array_equal(replay("whole"), replay("resumed"))
