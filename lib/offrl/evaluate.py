"""Policy evaluation in vectorised environments, with the papers' safety metrics.

Every episode records its return, D4RL-normalised score, length, whether it fell
(terminated as unhealthy before the time limit), the number of steps with the torso
height outside the env's healthy range, and Σ‖a‖₁, Σ‖a‖² over its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
    seed: int | list[int],
    env_kwargs: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``episodes`` episodes in parallel, one per sub-env, and return one row per episode.

    Sub-env ``i`` is seeded with ``seed + i`` (or ``seed[i]``), so the same seed gives the
    same episodes.
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


def eval_env_seeds(train_seed: int, episodes: int) -> list[int]:
    """Environment seeds of one training seed's evaluation episodes: ``100 + 1000·seed + e``.

    Offset from the training seeds as in the TD3+BC reference (seed + 100), and the same at
    every snapshot and for every algorithm, so learning curves compare like with like.
    """
    return [100 + 1000 * train_seed + e for e in range(episodes)]


def evaluate_snapshots(path: str | Path, episodes: int, progress: bool = False) -> pd.DataFrame:
    """Evaluate every snapshot of a training run (all its seeds at once); one row per episode."""
    import torch
    from tqdm import tqdm

    from offrl.files import load_tensors
    from offrl.policies import snapshot_policy

    run = load_tensors(path, "training snapshots")
    seeds = list(run["seeds"])
    actor = snapshot_policy(run).eval()
    mean, std = run["obs_mean"], run["obs_std"]
    env_seeds = [s for seed in seeds for s in eval_env_seeds(seed, episodes)]

    @torch.inference_mode()
    def policy(obs: np.ndarray) -> np.ndarray:
        x = (torch.as_tensor(obs, dtype=torch.float32) - mean) / std
        return actor(x.view(len(seeds), episodes, -1)).reshape(len(obs), -1).numpy()

    frames = []
    for step in tqdm(sorted(run["actors"]), desc=f"evaluate {path}", disable=not progress):
        actor.load_state_dict(run["actors"][step])
        if hasattr(actor, "reseed"):
            actor.reseed(step)  # a sampling policy (BCQ's) restarts its noise: the same snapshot, the same episodes
        scores = evaluate_policy(policy, run["env"], len(env_seeds), seed=env_seeds)
        scores.insert(0, "step", step)
        scores.insert(1, "seed", np.repeat(seeds, episodes))
        scores["episode"] = np.tile(np.arange(episodes), len(seeds))
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)
