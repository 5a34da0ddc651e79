"""Policy evaluation of many episodes at once, with the papers' safety metrics.

Every episode records its return, D4RL-normalised score, length, whether it fell
(terminated as unhealthy before the time limit), the number of steps with the torso
height outside the env's healthy range, and Σ‖a‖₁, Σ‖a‖² over its steps.

Only live episodes are stepped, and the policy acts only for them: a finished episode costs
nothing more. The episodes run on MuJoCo directly (:class:`offrl.envs.batch.MujocoEpisodes`,
Gymnasium v5's tasks reproduced exactly) or, with ``stepper="gymnasium"``, through each env's
own ``env.step`` (the reference; ``tests/test_fast_eval.py`` holds the two equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from offrl.envs import env_spec, normalized_score
from offrl.envs.batch import GymEpisodes, MujocoEpisodes
from offrl.qdiagnostic import (
    CRITIC_KEPT,
    CRITIC_NOT_KEPT,
    DEFAULT_TAIL,
    Rollouts,
    SnapshotQ,
    critic_status,
    dataset_initial_q,
    rollout_rows,
)

BatchPolicy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n, obs_dim)`` to actions ``(n, act_dim)``."""

Stepper = Literal["mujoco", "gymnasium"]
STEPPERS: dict[str, type[MujocoEpisodes] | type[GymEpisodes]] = {"mujoco": MujocoEpisodes, "gymnasium": GymEpisodes}

# The discount of the returns of a run without a critic (BC), the papers' γ.
NO_CRITIC_DISCOUNT = 0.99


@dataclass(frozen=True)
class EvalConfig:
    """How ``offrl evaluate`` runs its episodes."""

    stepper: Stepper = "mujoco"
    """mujoco: every live episode stepped on MuJoCo in one call, Gymnasium v5's locomotion tasks reproduced exactly
    (offrl.envs.batch; the other tasks, Adroit's, step through gymnasium); gymnasium: each env's own env.step, the
    reference"""


def live_actions(policy: BatchPolicy, obs: np.ndarray, running: np.ndarray, members: int) -> np.ndarray:
    """The policy's actions for the running episodes, in row order.

    With ``members`` > 1 the policy is an ensemble whose member ``s`` acts in rows ``s·E … s·E + E − 1``:
    it sees an ``(members · k, obs_dim)`` batch, each member's running episodes first and padded with its
    finished ones to the largest count ``k``, so each member still gets a batch of its own.
    """
    if running.all():
        return policy(obs)
    if members == 1:
        return policy(obs[running])
    live = running.reshape(members, -1)
    k = int(live.sum(axis=1).max())
    order = np.argsort(~live, axis=1, kind="stable")[:, :k]  # each member's running rows first, in order
    batch = obs.reshape(members, live.shape[1], -1)[np.arange(members)[:, None], order]
    actions = policy(batch.reshape(members * k, -1)).reshape(members, k, -1)
    return actions[np.take_along_axis(live, order, axis=1)]


def evaluate_policy(
    policy: BatchPolicy,
    env: str,
    episodes: int,
    seed: int | list[int],
    env_kwargs: dict[str, Any] | None = None,
    observer: Callable[..., None] | None = None,
    members: int = 1,
    stepper: Stepper = "mujoco",
) -> pd.DataFrame:
    """Run ``episodes`` episodes at once and return one row per episode.

    Episode ``i`` is seeded with ``seed + i`` (or ``seed[i]``), so the same seed gives the same
    episodes. ``members``: see :func:`live_actions`. ``observer(obs, action, reward, terminated,
    truncated, live)`` sees every step of every episode: the states the actions were taken in, and
    which episodes are still running (the others' entries are stale and must be ignored); its arrays
    are reused, so it copies what it keeps.
    """
    if stepper not in STEPPERS:
        raise ValueError(f"stepper {stepper!r}: allowed {', '.join(STEPPERS)}")
    if episodes % members:
        raise ValueError(f"episodes {episodes} must be a multiple of members {members}")
    spec = env_spec(env)
    if stepper == "mujoco" and spec.short not in MujocoEpisodes.TASKS:
        stepper = "gymnasium"  # the fast path reproduces the locomotion tasks; the others (Adroit) step through theirs
    seeds = list(seed) if isinstance(seed, list) else [seed + i for i in range(episodes)]
    envs = STEPPERS[stepper](env, episodes, env_kwargs)
    try:
        obs = envs.reset(seeds)
        low, high = envs.action_space.low, envs.action_space.high
        running = np.ones(episodes, dtype=bool)
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        fell = np.zeros(episodes, dtype=bool)
        unsafe_height = np.zeros(episodes, dtype=np.int64)
        abs_action = np.zeros(episodes)
        sq_action = np.zeros(episodes)
        while running.any():
            # A slice while every episode runs: views, not copies, in the common case (HalfCheetah's every step).
            rows = slice(None) if running.all() else np.flatnonzero(running)
            action = np.clip(live_actions(policy, obs, running, members), low, high)
            next_obs, reward, terminated, truncated = envs.step(rows, action)
            if observer is not None:
                observer(obs, *_spread(rows, episodes, action, reward, terminated, truncated), running)
            obs[rows] = next_obs
            returns[rows] += reward
            lengths[rows] += 1
            abs_action[rows] += np.abs(action).sum(axis=1)
            sq_action[rows] += np.square(action).sum(axis=1)
            if spec.healthy_z is not None:
                low_z, high_z = spec.healthy_z
                height = next_obs[:, 0]
                unsafe_height[rows] += (height <= low_z) | (height >= high_z)
            fell[rows] |= terminated & ~truncated
            running = running.copy()  # the observer may keep the last one
            running[rows] = ~(terminated | truncated)
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


def _spread(rows: np.ndarray, n: int, *values: np.ndarray) -> list[np.ndarray]:
    """Each of ``values`` (one entry per row of ``rows``) as an array over all ``n`` episodes, zero elsewhere."""
    spread = []
    for value in values:
        full = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
        full[rows] = value
        spread.append(full)
    return spread


def eval_env_seeds(train_seed: int, episodes: int) -> list[int]:
    """Environment seeds of one training seed's evaluation episodes: ``100 + 1000·seed + e``.

    Offset from the training seeds as in the TD3+BC reference (seed + 100), and the same at
    every snapshot and for every algorithm, so learning curves compare like with like.
    """
    return [100 + 1000 * train_seed + e for e in range(episodes)]


class SnapshotEvaluator:
    """A training run loaded once, evaluating one snapshot at a time (in this process or in a worker's)."""

    def __init__(
        self,
        path: str | Path,
        episodes: int,
        tail: float = DEFAULT_TAIL,
        quiet: bool = False,
        config: EvalConfig = EvalConfig(),
    ) -> None:
        from offrl.files import load_tensors
        from offrl.policies import snapshot_policy

        self.run = run = load_tensors(path, "training snapshots")
        self.episodes, self.tail, self.config = episodes, tail, config
        self.seeds = list(run["seeds"])
        self.actor = snapshot_policy(run).eval()
        self.mean, self.std = run["obs_mean"], run["obs_std"]
        self.env_seeds = [s for seed in self.seeds for s in eval_env_seeds(seed, episodes)]
        self.critic = critic_status(run)
        self.q = SnapshotQ(run) if self.critic == CRITIC_KEPT else None
        if self.critic == CRITIC_NOT_KEPT and not quiet:
            print(f"{path} predates the Q diagnostic (no critics kept): its Q columns are empty; retrain to fill them")
        self.discount = self.q.discount if self.q is not None else NO_CRITIC_DISCOUNT
        self.initial_states = run.get("initial_states")

    def policy(self, obs: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = (torch.as_tensor(obs, dtype=torch.float32) - self.mean) / self.std
            return self.actor(x.view(len(self.seeds), -1, x.shape[-1])).reshape(len(obs), -1).numpy()

    def __call__(self, step: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The scores of snapshot ``step``, one row per episode, and its Q diagnostic (None where the critic was not
        kept)."""
        seeds, episodes, q = self.seeds, self.episodes, self.q
        self.actor.load_state_dict(self.run["actors"][step])
        if hasattr(self.actor, "reseed"):
            self.actor.reseed(
                step
            )  # a sampling policy (BCQ's) restarts its noise: the same snapshot, the same episodes
        rollouts = Rollouts()
        scores = evaluate_policy(
            self.policy,
            self.run["env"],
            len(self.env_seeds),
            seed=self.env_seeds,
            observer=rollouts,
            members=len(seeds),
            stepper=self.config.stepper,
        )
        scores.insert(0, "step", step)
        scores.insert(1, "seed", np.repeat(seeds, episodes))
        scores["episode"] = np.tile(np.arange(episodes), len(seeds))
        if q is not None:
            if step not in q.critics:
                return scores, None  # the run kept the critic at fewer snapshots (offrl.train.critic_steps)
            q.load(step)
        diagnostic = rollout_rows(rollouts, q, self.mean, self.std, len(seeds), self.discount, self.tail)
        diagnostic.insert(0, "step", step)
        diagnostic.insert(1, "seed", np.repeat(seeds, episodes))
        # After the rollouts, so a sampling policy's episodes are those of the scores.
        per_member = (
            dataset_initial_q(q, self.actor, self.initial_states, self.mean, self.std, len(seeds))
            if q is not None
            else np.full(len(seeds), np.nan)
        )
        diagnostic.insert(3, "critic", self.critic)
        diagnostic.insert(4, "q_dataset_initial", np.repeat(per_member, episodes))
        return scores, diagnostic


_worker_evaluator: SnapshotEvaluator | None = None  # a worker process's run, loaded once by _start_worker


def _start_worker(path: str, episodes: int, tail: float, config: EvalConfig) -> None:
    import torch

    global _worker_evaluator
    torch.set_num_threads(1)  # the workers are the parallelism
    _worker_evaluator = SnapshotEvaluator(path, episodes, tail, quiet=True, config=config)


def _evaluate_in_worker(step: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    return _worker_evaluator(step)


def evaluate_snapshots(
    path: str | Path,
    episodes: int,
    progress: bool = False,
    tail: float = DEFAULT_TAIL,
    workers: int = 1,
    config: EvalConfig = EvalConfig(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate every snapshot of a training run (all its seeds at once).

    Returns the scores, one row per episode, and the slides' Q diagnostic of the same episodes
    (:mod:`offrl.qdiagnostic`), one row per episode of every snapshot that kept the critic
    (every snapshot of a run without one, its Q columns NaN and its returns discounted with γ = 0.99).
    With ``workers`` > 1 the snapshots are shared among as many processes (one torch thread
    each); every snapshot's episodes are seeded alone, so the result is the serial one. The
    workers are spawned: a script calling this needs the ``if __name__ == "__main__":`` guard.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    evaluator = SnapshotEvaluator(path, episodes, tail, config=config)
    steps = sorted(evaluator.run["actors"])
    bar = {"total": len(steps), "desc": f"evaluate {path}", "disable": not progress}
    if workers <= 1 or len(steps) <= 1:
        results = [evaluator(step) for step in tqdm(steps, **bar)]
    else:
        del evaluator  # each worker loads the run itself
        # spawn, not fork: a forked copy of a process whose torch has started its threads can hang.
        with ProcessPoolExecutor(
            min(workers, len(steps)),
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(path), episodes, tail, config),
        ) as pool:
            results = list(tqdm(pool.map(_evaluate_in_worker, steps), **bar))
    frames = [scores for scores, _ in results]
    diagnostics = [diagnostic for _, diagnostic in results if diagnostic is not None]
    return pd.concat(frames, ignore_index=True), pd.concat(diagnostics, ignore_index=True)
