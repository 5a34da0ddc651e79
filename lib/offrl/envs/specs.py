"""The pipeline's Gymnasium tasks and their D4RL reference scores.

The locomotion tasks are Gymnasium's v5 MuJoCo envs; their reference returns are D4RL's
(``d4rl/infos.py``; identical for v0, v1 and v2 data). Gymnasium v5 dynamics differ slightly
from D4RL's v2 environments, so normalised scores here are comparable with the papers in
trend, not to the digit.

The Adroit hand tasks (TD3BC++ paper, Table 2) are ``gymnasium-robotics``' v1 envs, the ones
Minari's ``D4RL/<task>/*-v2`` datasets were recorded in; their reference returns are D4RL's
random and expert scores. Their data always comes from Minari (:attr:`EnvSpec.minari_dataset`).
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
    is observation[0] for Hopper and Walker2d. ``minari_dataset`` is the Minari namespace of
    a task whose datasets are downloaded, never generated here (``D4RL/door``).
    """

    gym_id: str
    short: str
    ref_min_score: float
    ref_max_score: float
    healthy_z: tuple[float, float] | None
    obs_dim: int
    act_dim: int
    max_episode_steps: int = 1000
    minari_dataset: str | None = None


# Minari's D4RL Adroit datasets: D4RL's v1 data re-recorded in gymnasium-robotics' v1 envs.
ADROIT_KINDS = ("expert", "cloned")
ADROIT_MINARI_VERSION = 2

ENV_SPECS: dict[str, EnvSpec] = {
    spec.short: spec
    for spec in (
        EnvSpec("Hopper-v5", "hopper", -20.272305, 3234.3, (0.7, math.inf), 11, 3),
        EnvSpec("Walker2d-v5", "walker2d", 1.629008, 4592.3, (0.8, 2.0), 17, 6),
        EnvSpec("HalfCheetah-v5", "halfcheetah", -280.178953, 12135.0, None, 17, 6),
        # D4RL's Adroit episodes: 200 steps, Pen's 100 (gymnasium-robotics registers Pen at 200).
        EnvSpec("AdroitHandDoor-v1", "door", -56.512833, 2880.5693, None, 39, 28, 200, "D4RL/door"),
        EnvSpec("AdroitHandHammer-v1", "hammer", -274.856578, 12794.134825, None, 46, 26, 200, "D4RL/hammer"),
        EnvSpec("AdroitHandPen-v1", "pen", 96.262799, 3076.8331, None, 45, 24, 100, "D4RL/pen"),
        EnvSpec("AdroitHandRelocate-v1", "relocate", -6.425911, 4233.877797, None, 39, 30, 200, "D4RL/relocate"),
    )
}
ADROIT_ENVS = tuple(short for short, spec in ENV_SPECS.items() if spec.minari_dataset)


def env_spec(env: str) -> EnvSpec:
    """Look an environment up by its short name (``hopper``) or Gymnasium id (``Hopper-v5``)."""
    for spec in ENV_SPECS.values():
        if env in (spec.short, spec.gym_id):
            return spec
    allowed = ", ".join(sorted(ENV_SPECS))
    raise ValueError(f"unknown env {env!r}; allowed: {allowed}")


def minari_remote_id(env: str, kind: str) -> str:
    """The Minari id of a downloaded task's dataset: ``("door", "expert") -> "D4RL/door/expert-v2"``."""
    spec = env_spec(env)
    if spec.minari_dataset is None:
        raise ValueError(f"env {env!r} has no Minari datasets of its own; downloaded envs: {', '.join(ADROIT_ENVS)}")
    if kind not in ADROIT_KINDS:
        raise ValueError(f"dataset kind {kind!r} of {env}: allowed: {', '.join(ADROIT_KINDS)}")
    return f"{spec.minari_dataset}/{kind}-v{ADROIT_MINARI_VERSION}"


def _register_robotics() -> None:
    """Register gymnasium-robotics' envs (Adroit) with Gymnasium, once.

    Its import prints Farama's notice that the dense Adroit v1 rewards (Door, Hammer, Relocate) changed in its
    1.2.1: evaluations here score with 1.4.2's rewards (docs/taming.md).
    """
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def make_env(env: str, **kwargs: Any) -> gym.Env:
    """Create the Gymnasium environment; ``kwargs`` go to ``gym.make`` (e.g. ``ctrl_cost_weight``, or a
    ``max_episode_steps`` other than the registry's)."""
    spec = env_spec(env)
    if spec.minari_dataset is not None and spec.gym_id not in gym.registry:
        _register_robotics()
    return gym.make(spec.gym_id, **{"max_episode_steps": spec.max_episode_steps, **kwargs})


def normalized_score(env: str, episode_return: float | np.ndarray) -> float | np.ndarray:
    """D4RL's normalised score: 100 · (return − random) / (expert − random)."""
    spec = env_spec(env)
    return 100.0 * (episode_return - spec.ref_min_score) / (spec.ref_max_score - spec.ref_min_score)
