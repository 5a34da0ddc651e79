"""Gymnasium v5 MuJoCo locomotion tasks and their D4RL reference scores.

The reference returns are D4RL's (``d4rl/infos.py``; identical for v0, v1 and v2 data).
Gymnasium v5 dynamics differ slightly from D4RL's v2 environments, so normalised
scores here are comparable with the papers in trend, not to the digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """What the pipeline needs to know about one environment.

    ``healthy_z`` is the torso-height range outside which the env terminates as unhealthy
    (from ``gymnasium/envs/mujoco/*_v5.py``); ``None`` where the task never terminates.
    With the default ``exclude_current_positions_from_observation=True`` the torso height
    is observation[0] for Hopper and Walker2d.
    """

    gym_id: str
    short: str
    ref_min_score: float
    ref_max_score: float
    healthy_z: tuple[float, float] | None
    max_episode_steps: int = 1000


ENV_SPECS: dict[str, EnvSpec] = {
    spec.short: spec
    for spec in (
        EnvSpec("Hopper-v5", "hopper", -20.272305, 3234.3, (0.7, math.inf)),
        EnvSpec("Walker2d-v5", "walker2d", 1.629008, 4592.3, (0.8, 2.0)),
        EnvSpec("HalfCheetah-v5", "halfcheetah", -280.178953, 12135.0, None),
    )
}


def env_spec(env: str) -> EnvSpec:
    """Look an environment up by its short name (``hopper``) or Gymnasium id (``Hopper-v5``)."""
    for spec in ENV_SPECS.values():
        if env in (spec.short, spec.gym_id):
            return spec
    allowed = ", ".join(sorted(ENV_SPECS))
    raise ValueError(f"unknown env {env!r}; allowed: {allowed}")


def make_env(env: str, **kwargs: Any) -> gym.Env:
    """Create the Gymnasium environment; ``kwargs`` go to ``gym.make`` (e.g. ``ctrl_cost_weight``)."""
    return gym.make(env_spec(env).gym_id, **kwargs)


def normalized_score(env: str, episode_return: float | np.ndarray) -> float | np.ndarray:
    """D4RL's normalised score: 100 · (return − random) / (expert − random)."""
    spec = env_spec(env)
    return 100.0 * (episode_return - spec.ref_min_score) / (spec.ref_max_score - spec.ref_min_score)
