import numpy as np
import pandas as pd
import pytest

from offrl.envs import make_env
from offrl.evaluate import evaluate_policy, evaluate_snapshots
from offrl.train import train


def test_metrics_of_a_scripted_constant_policy():
    # A constant action of 0.5 on every joint: Σ‖a‖₁ = 1.5 and Σ‖a‖² = 0.75 per step.
    scores = evaluate_policy(lambda obs: np.full((len(obs), 3), 0.5), "hopper", episodes=3, seed=0)
    assert list(scores["episode"]) == [0, 1, 2]
    np.testing.assert_allclose(scores["sum_abs_action"], 1.5 * scores["length"])
    np.testing.assert_allclose(scores["sum_sq_action"], 0.75 * scores["length"])
    # This policy topples the hopper: every episode falls before the time limit, and the
    # falling step itself sits outside the healthy height range or angle.
    assert scores["fell"].all() and (scores["length"] < 1000).all()
    np.testing.assert_allclose(scores["normalized_score"], 100 * (scores["return"] + 20.272305) / (3234.3 + 20.272305))


def test_time_limit_is_not_a_fall():
    scores = evaluate_policy(lambda obs: np.zeros((len(obs), 6)), "halfcheetah", episodes=2, seed=0)
    assert (scores["length"] == 1000).all() and not scores["fell"].any()
    assert (scores["unsafe_height_steps"] == 0).all() and (scores["sum_abs_action"] == 0).all()


def test_unsafe_height_counts_steps_outside_healthy_z():
    # Walker2d with no torque collapses; recount its torso heights outside (0.8, 2.0) by hand.
    scores = evaluate_policy(lambda obs: np.zeros((len(obs), 6)), "walker2d", episodes=2, seed=1)
    assert scores["fell"].all()
    for i in range(2):
        env = make_env("walker2d")
        env.reset(seed=1 + i)
        unsafe, done = 0, False
        while not done:
            obs, _, terminated, truncated, _ = env.step(np.zeros(6))
            unsafe += not 0.8 < obs[0] < 2.0
            done = terminated or truncated
        assert scores["unsafe_height_steps"][i] == unsafe
    assert scores["unsafe_height_steps"].sum() >= 1


def test_same_seed_same_episodes():
    policy = lambda obs: np.tanh(obs[:, :3])  # noqa: E731
    a = evaluate_policy(policy, "hopper", episodes=2, seed=7)
    b = evaluate_policy(policy, "hopper", episodes=2, seed=7)
    assert a.equals(b)
    assert not a.equals(evaluate_policy(policy, "hopper", episodes=2, seed=8))


@pytest.mark.parametrize("env", ["hopper", "walker2d", "halfcheetah"])
def test_columns(env):
    scores = evaluate_policy(lambda obs: np.zeros((len(obs), 3 if env == "hopper" else 6)), env, episodes=1, seed=0)
    assert list(scores.columns) == [
        "episode",
        "return",
        "normalized_score",
        "length",
        "fell",
        "unsafe_height_steps",
        "sum_abs_action",
        "sum_sq_action",
    ]


@pytest.mark.parametrize("algorithm", ["sac", "bcq"])  # critics kept at some snapshots only; a sampling policy
@pytest.mark.slow  # starts worker processes: tens of seconds on a loaded 2-core machine (--durations)
def test_worker_processes_give_the_serial_result(algorithm, tiny_dataset, tmp_path, one_thread, cpu_config):
    options = {"hidden": [8, 8], **({"vae_hidden": [8, 8]} if algorithm == "bcq" else {})}
    config = cpu_config(
        steps=3,
        eval_every=1,
        log_every=1,
        batch_size=4,
        algorithm=algorithm,
        seeds=(0, 1),
        options=options,
        critic_snapshots=2,
    )
    train(tiny_dataset, config, tmp_path, progress=False)
    serial = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=2)
    parallel = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=2, workers=2)
    assert sorted(serial[1]["step"].unique()) == [1, 3]  # the diagnostic of the snapshots that kept the critic
    for a, b in zip(serial, parallel):
        pd.testing.assert_frame_equal(a, b)
