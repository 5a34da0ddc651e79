"""Policy evaluation in vectorised environments, with the papers' safety metrics.

Every episode records its return, D4RL-normalised score, length, whether it fell
(terminated as unhealthy before the time limit), the number of steps with the torso
height outside the env's healthy range, and Σ‖a‖₁, Σ‖a‖² over its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from offrl.envs import env_spec, make_env, normalized_score

BatchPolicy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n, obs_dim)`` to actions ``(n, act_dim)``."""


def evaluate_policy(
    policy: BatchPolicy,
    env: str,
    episodes: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``episodes`` episodes in parallel, one per sub-env, and return one row per episode.

    Sub-env ``i`` is seeded with ``seed + i``, so the same seed gives the same episodes.
    """
    spec = env_spec(env)
    envs = gym.vector.SyncVectorEnv([lambda: make_env(env, **(env_kwargs or {})) for _ in range(episodes)])
    try:
        obs, _ = envs.reset(seed=seed)
        running = np.ones(episodes, dtype=bool)
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        fell = np.zeros(episodes, dtype=bool)
        unsafe_height = np.zeros(episodes, dtype=np.int64)
        abs_action = np.zeros(episodes)
        sq_action = np.zeros(episodes)
        while running.any():
            action = np.clip(policy(obs), envs.single_action_space.low, envs.single_action_space.high)
            obs, reward, terminated, truncated, _ = envs.step(action)
            live = running  # sub-envs still in their first episode; finished ones auto-reset and are ignored
            returns += np.where(live, reward, 0.0)
            lengths += live
            abs_action += np.where(live, np.abs(action).sum(axis=1), 0.0)
            sq_action += np.where(live, np.square(action).sum(axis=1), 0.0)
            if spec.healthy_z is not None:
                low, high = spec.healthy_z
                height = obs[:, 0]
                unsafe_height += live & ((height <= low) | (height >= high))
            fell |= live & terminated & ~truncated
            running = live & ~(terminated | truncated)
    finally:
        envs.close()
    return pd.DataFrame(
        {
            "episode": np.arange(episodes),
            "return": returns,
            "normalized_score": normalized_score(env, returns),
            "length": lengths,
            "fell": fell,
            "unsafe_height_steps": unsafe_height,
            "sum_abs_action": abs_action,
            "sum_sq_action": sq_action,
        }
    )
