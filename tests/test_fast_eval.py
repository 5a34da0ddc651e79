"""The fast evaluation (episodes on one MuJoCo batch, only live ones stepped) against Gymnasium's own env.step loop."""

import numpy as np
import pandas as pd
import pytest

from offrl.envs import env_spec, make_env
from offrl.envs.batch import MujocoEpisodes
from offrl.evaluate import EvalConfig, evaluate_policy, evaluate_snapshots, live_actions
from offrl.policies import NumpyActor, load_actor
from offrl.train import train

METRICS = ["return", "length", "fell", "unsafe_height_steps", "sum_abs_action", "sum_sq_action"]


def shipped_policy(env: str, kind: str):
    """A shipped behaviour policy applied one row at a time, so no row's action depends on the batch it came in."""
    actor = NumpyActor(load_actor(f"resources/shipped/behaviour/{env}/{kind}.pt"))
    return lambda obs: np.stack([actor(row[None])[0] for row in obs])


def gymnasium_loop(policy, env: str, seeds: list[int], max_steps: int) -> pd.DataFrame:
    """Each episode alone through Gymnasium's env.step, its metrics counted here by their definitions."""
    low, high = env_spec(env).healthy_z or (-np.inf, np.inf)
    rows = []
    for seed in seeds:
        sim = make_env(env, max_episode_steps=max_steps)
        obs, _ = sim.reset(seed=seed)
        row = dict.fromkeys(METRICS, 0)
        done = False
        while not done:
            action = np.clip(policy(obs[None])[0], sim.action_space.low, sim.action_space.high)
            obs, reward, terminated, truncated, _ = sim.step(action)
            row["return"] += reward
            row["length"] += 1
            row["unsafe_height_steps"] += not low < obs[0] < high
            row["sum_abs_action"] += np.abs(action).sum()
            row["sum_sq_action"] += np.square(action).sum()
            row["fell"] = terminated and not truncated
            done = terminated or truncated
        rows.append(row)
    return pd.DataFrame(rows)


def assert_same_metrics(fast: pd.DataFrame, reference: pd.DataFrame) -> None:
    for name in METRICS:
        np.testing.assert_allclose(fast[name].astype(float), reference[name].astype(float), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("env", "kind", "max_steps"),
    [
        ("hopper", "medium", 300),
        ("walker2d", "medium", 300),
        ("halfcheetah", "medium", 300),
        ("hopper", "expert", 1000),
    ],
)
def test_fast_path_equals_gymnasium_step_loop(env, kind, max_steps):
    policy, seeds = shipped_policy(env, kind), [11, 12, 13]
    fast = evaluate_policy(policy, env, len(seeds), seed=seeds, env_kwargs={"max_episode_steps": max_steps})
    reference = gymnasium_loop(policy, env, seeds, max_steps)
    assert_same_metrics(fast, reference)
    if max_steps == 1000:
        assert (fast["length"] == 1000).any()  # a full-length episode, truncated by the time limit


def test_reset_matches_gymnasium_reset():
    for env in ("hopper", "walker2d", "halfcheetah"):
        episodes = MujocoEpisodes(env, 3)
        obs = episodes.reset([0, 5, 2**40])
        for row, seed in zip(obs, [0, 5, 2**40], strict=True):
            np.testing.assert_array_equal(row, make_env(env).reset(seed=seed)[0])


def test_episodes_of_different_lengths_equal_one_by_one():
    policy = shipped_policy("walker2d", "medium")
    together = evaluate_policy(policy, "walker2d", 4, seed=[3, 4, 5, 6])
    assert together["length"].nunique() > 1  # episodes end at different steps, the case being tested
    alone = pd.concat([evaluate_policy(policy, "walker2d", 1, seed=[s]) for s in (3, 4, 5, 6)], ignore_index=True)
    for name in ["normalized_score", *METRICS]:
        np.testing.assert_array_equal(together[name], alone[name])


def test_each_member_acts_in_its_own_episodes():
    # A two-member "ensemble": member 0 pushes, member 1 pulls; each must act in its own rows only.
    def ensemble(obs):
        members = obs.reshape(2, -1, obs.shape[-1])
        return np.concatenate([np.full((len(members[0]), 3), 0.5), np.full((len(members[1]), 3), -0.3)])

    together = evaluate_policy(ensemble, "hopper", 4, seed=[1, 2, 3, 4], members=2)
    alone = [
        evaluate_policy(lambda obs, a=a: np.full((len(obs), 3), a), "hopper", 1, seed=[s])
        for a, s in ((0.5, 1), (0.5, 2), (-0.3, 3), (-0.3, 4))
    ]
    assert_same_metrics(together, pd.concat(alone, ignore_index=True))


def test_live_actions_pads_members_to_the_same_count():
    obs = np.arange(6.0)[:, None]  # row i observes i; two members of 3 episodes
    running = np.array([False, True, False, True, True, True])
    seen = []

    def policy(batch):
        seen.append(batch[:, 0].copy())
        return batch * 10

    actions = live_actions(policy, obs, running, members=2)
    # Member 0's one running row (1) is padded with its first finished one (0) to member 1's three.
    np.testing.assert_array_equal(seen[0], [1, 0, 2, 3, 4, 5])
    np.testing.assert_array_equal(actions[:, 0], [10, 30, 40, 50])
    np.testing.assert_array_equal(live_actions(policy, obs, running, members=1)[:, 0], [10, 30, 40, 50])


def test_unknown_stepper_is_refused():
    with pytest.raises(ValueError, match="stepper 'brax': allowed mujoco, gymnasium"):
        evaluate_policy(lambda obs: obs[:, :3], "hopper", 1, seed=0, stepper="brax")


@pytest.mark.parametrize("algorithm", ["td3bc", "bcq"])  # a deterministic actor; a sampling policy
def test_snapshot_evaluation_equals_the_gymnasium_path(algorithm, tiny_dataset, tmp_path, one_thread, cpu_config):
    options = {"hidden": [8, 8], **({"vae_hidden": [8, 8]} if algorithm == "bcq" else {})}
    config = cpu_config(
        steps=2, eval_every=1, log_every=1, batch_size=4, algorithm=algorithm, seeds=(0, 1), options=options
    )
    train(tiny_dataset, config, tmp_path, progress=False)
    fast = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=2)
    reference = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=2, config=EvalConfig(stepper="gymnasium"))
    for a, b in zip(fast, reference, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_a_task_the_fast_path_does_not_reproduce_steps_through_gymnasium():
    """Adroit's Pen (not a locomotion task): the default stepper runs it through its own env.step, the same numbers."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(env_spec("pen").obs_dim, env_spec("pen").act_dim)) * 0.1

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.tanh(obs @ weights)

    kwargs = {"max_episode_steps": 5}
    fast = evaluate_policy(policy, "pen", 2, seed=3, env_kwargs=kwargs)
    reference = evaluate_policy(policy, "pen", 2, seed=3, env_kwargs=kwargs, stepper="gymnasium")
    pd.testing.assert_frame_equal(fast, reference)
