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
from offrl.qdiagnostic import CRITIC_KEPT, CRITIC_NOT_KEPT, DEFAULT_TAIL, Rollouts, SnapshotQ, critic_status, dataset_initial_q, rollout_rows

BatchPolicy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n, obs_dim)`` to actions ``(n, act_dim)``."""

# The discount of the returns of a run without a critic (BC), the papers' γ.
NO_CRITIC_DISCOUNT = 0.99


def evaluate_policy(
    policy: BatchPolicy,
    env: str,
    episodes: int,
    seed: int | list[int],
    env_kwargs: dict[str, Any] | None = None,
    observer: Callable[..., None] | None = None,
) -> pd.DataFrame:
    """Run ``episodes`` episodes in parallel, one per sub-env, and return one row per episode.

    Sub-env ``i`` is seeded with ``seed + i`` (or ``seed[i]``), so the same seed gives the
    same episodes. ``observer(obs, action, reward, terminated, truncated, live)`` sees every
    step: the states the actions were taken in, and which sub-envs are still in their first episode.
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
            acted_in = obs
            obs, reward, terminated, truncated, _ = envs.step(action)
            live = running  # sub-envs still in their first episode; finished ones auto-reset and are ignored
            if observer is not None:
                observer(acted_in, action, reward, terminated, truncated, live)
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


def evaluate_snapshots(path: str | Path, episodes: int, progress: bool = False,
                       tail: float = DEFAULT_TAIL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every snapshot of a training run (all its seeds at once).

    Returns the scores, one row per episode, and the slides' Q diagnostic of the same episodes
    (:mod:`offrl.qdiagnostic`), one row per episode of every snapshot that kept the critic
    (every snapshot of a run without one, its Q columns NaN and its returns discounted with γ = 0.99).
    """
    import torch
    from tqdm import tqdm

    from offrl.files import load_tensors
    from offrl.policies import snapshot_policy

    run = load_tensors(path, "training snapshots")
    seeds = list(run["seeds"])
    actor = snapshot_policy(run).eval()
    mean, std = run["obs_mean"], run["obs_std"]
    env_seeds = [s for seed in seeds for s in eval_env_seeds(seed, episodes)]
    critic = critic_status(run)
    q = SnapshotQ(run) if critic == CRITIC_KEPT else None
    if critic == CRITIC_NOT_KEPT:
        print(f"{path} predates the Q diagnostic (no critics kept): its Q columns are empty; retrain to fill them")
    discount = q.discount if q is not None else NO_CRITIC_DISCOUNT
    initial_states = run.get("initial_states")

    @torch.inference_mode()
    def policy(obs: np.ndarray) -> np.ndarray:
        x = (torch.as_tensor(obs, dtype=torch.float32) - mean) / std
        return actor(x.view(len(seeds), episodes, -1)).reshape(len(obs), -1).numpy()

    frames, diagnostics = [], []
    for step in tqdm(sorted(run["actors"]), desc=f"evaluate {path}", disable=not progress):
        actor.load_state_dict(run["actors"][step])
        if hasattr(actor, "reseed"):
            actor.reseed(step)  # a sampling policy (BCQ's) restarts its noise: the same snapshot, the same episodes
        rollouts = Rollouts()
        scores = evaluate_policy(policy, run["env"], len(env_seeds), seed=env_seeds, observer=rollouts)
        scores.insert(0, "step", step)
        scores.insert(1, "seed", np.repeat(seeds, episodes))
        scores["episode"] = np.tile(np.arange(episodes), len(seeds))
        frames.append(scores)
        if q is not None:
            if step not in q.critics:
                continue  # the run kept the critic at fewer snapshots (offrl.train.critic_steps)
            q.load(step)
        diagnostic = rollout_rows(rollouts, q, mean, std, len(seeds), discount, tail)
        diagnostic.insert(0, "step", step)
        diagnostic.insert(1, "seed", np.repeat(seeds, episodes))
        # After the rollouts, so a sampling policy's episodes are those of the scores.
        per_member = dataset_initial_q(q, actor, initial_states, mean, std, len(seeds)) if q is not None else np.full(len(seeds), np.nan)
        diagnostic.insert(3, "critic", critic)
        diagnostic.insert(4, "q_dataset_initial", np.repeat(per_member, episodes))
        diagnostics.append(diagnostic)
    return pd.concat(frames, ignore_index=True), pd.concat(diagnostics, ignore_index=True)
