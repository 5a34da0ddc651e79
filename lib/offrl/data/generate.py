"""Local generation of the D4RL dataset kinds, following D4RL's protocol.

- ``random``: uniformly random actions.
- ``medium`` / ``expert``: rollouts of the medium and expert TD3 actors, with Gaussian
  action noise (``noise``; D4RL rolled out stochastic SAC policies, ours are deterministic).
- ``medium-replay``: the online TD3 replay buffer up to the medium checkpoint.
- ``medium-expert``: the union of the medium and expert datasets, medium first.
- ``cloned``: rollouts of a BC policy trained on a small slice of the expert dataset (our
  MuJoCo analogue of D4RL's Adroit "cloned" data, whose BC policy imitated human demos).

Rollouts stop at exactly ``size`` transitions; the episode cut there ends as a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from offrl.data.dataset import Dataset, DatasetError
from offrl.envs import make_env

KINDS = ("random", "medium", "medium-replay", "medium-expert", "expert", "cloned")

Policy = Callable[[np.ndarray], np.ndarray]


def rollout(
    env: str, policy: Policy | None, size: int, seed: int, noise: float = 0.0, progress: bool = False
) -> Dataset:
    """Collect exactly ``size`` transitions; ``policy=None`` samples uniform random actions."""
    from tqdm import tqdm

    gym_env = make_env(env)
    gym_env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    obs_dim, act_dim = gym_env.observation_space.shape[0], gym_env.action_space.shape[0]
    low, high = gym_env.action_space.low, gym_env.action_space.high
    observations = np.empty((size, obs_dim), np.float32)
    next_observations = np.empty((size, obs_dim), np.float32)
    actions = np.empty((size, act_dim), np.float32)
    rewards = np.empty(size, np.float32)
    terminals = np.zeros(size, bool)
    timeouts = np.zeros(size, bool)
    episode_ids = np.empty(size, np.int64)
    episode = 0
    obs, _ = gym_env.reset(seed=seed)
    for i in tqdm(range(size), desc=f"rollout {env}", disable=not progress, mininterval=5.0):
        if policy is None:
            action = gym_env.action_space.sample()
        else:
            action = np.clip(policy(obs) + rng.normal(0.0, noise, act_dim), low, high)
        next_obs, reward, terminated, truncated, _ = gym_env.step(action)
        observations[i], actions[i], rewards[i], next_observations[i] = obs, action, reward, next_obs
        terminals[i], timeouts[i], episode_ids[i] = terminated, truncated and not terminated, episode
        obs = next_obs
        if terminated or truncated:
            episode += 1
            obs, _ = gym_env.reset()
    gym_env.close()
    if not (terminals[-1] or timeouts[-1]):
        timeouts[-1] = True  # the dataset's end cuts the last episode
    return Dataset(observations, actions, rewards, next_observations, terminals, timeouts, episode_ids)


def replay_dataset(path: str | Path, size: int | None = None) -> Dataset:
    """The replay buffer written by TD3 (``replay_medium.npz``) as a dataset.

    With ``size``, keep the ``size`` most recent transitions, so the dataset still ends
    exactly at the medium checkpoint (its first episode may then begin mid-way).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"replay buffer not found: {path}")
    with np.load(path) as npz:
        arrays = {
            k: npz[k] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
        }
    ends = arrays["terminals"] | arrays["timeouts"]
    episode_ids = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
    dataset = Dataset(**arrays, episode_ids=episode_ids)
    if size is not None and size < len(dataset):
        dataset = dataset.select(slice(len(dataset) - size, None))
        dataset.episode_ids = dataset.episode_ids - dataset.episode_ids[0]
    return dataset
