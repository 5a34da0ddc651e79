"""Many episodes of one env stepped together: on MuJoCo directly (fast), or through Gymnasium (the reference).

Both step only the episodes they are told to (the live ones) and return what Gymnasium's
``env.step`` returns for each. :class:`MujocoEpisodes` holds every episode in one
``mujoco.batch.Batch`` (one C call steps all live episodes, bit-identical to a loop of
``mj_step`` on one ``MjData`` each) and reproduces Gymnasium v5's locomotion tasks
(``gymnasium/envs/mujoco/{hopper,walker2d,half_cheetah}_v5.py``) in array form:

- reset: ``mj_resetData``; ``qpos = init_qpos + U(−ε, ε)``, ``qvel = init_qvel + U(−ε, ε)``
  (HalfCheetah: ``+ ε·N(0, 1)``), drawn from ``seeding.np_random(seed)`` as ``env.reset(seed=...)``
  draws them; ``mj_forward``.
- step: ``ctrl = a``; ``mj_step`` × frame_skip; ``v = (x′ − x) / dt`` with ``dt = timestep · frame_skip``;
  ``r = w_f·v + healthy·r_h − w_c·Σa²`` (HalfCheetah: no healthy term);
  observation ``(qpos[1:], clip(qvel, −10, 10))`` (HalfCheetah: qvel unclipped);
  terminated = not healthy (Hopper: z, angle and ``state_vector()[2:]`` in range; Walker2d: z and
  angle; HalfCheetah: never); truncated at the TimeLimit's step count (1000).

Gymnasium's ``mj_rnePostConstraint`` after each step is skipped: it only fills force fields these
tasks neither observe nor carry into the next step. Every parameter (weights, ranges, noise,
frame skip, model, time limit) is read from the Gymnasium env the kwargs make, so ``gym.make``
keyword arguments apply to both paths alike.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import seeding
from mujoco import batch as mjbatch

from offrl.envs.specs import env_spec, make_env

Step = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Observations, rewards, terminated, truncated of the stepped episodes."""

Rows = np.ndarray | slice
"""The episodes to step: sorted indices, or ``slice(None)`` for all."""


def time_limit(env: gym.Env) -> int:
    """The step count at which ``env`` (made by ``gym.make``) truncates an episode."""
    return int(env.get_wrapper_attr("_max_episode_steps"))


class GymEpisodes:
    """``n`` Gymnasium envs, each stepped by its own ``env.step``: the reference path."""

    def __init__(self, env: str, n: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.envs = [make_env(env, **(env_kwargs or {})) for _ in range(n)]
        self.action_space = self.envs[0].action_space

    def reset(self, seeds: list[int]) -> np.ndarray:
        return np.stack([env.reset(seed=seed)[0] for env, seed in zip(self.envs, seeds, strict=True)])

    def step(self, rows: Rows, action: np.ndarray) -> Step:
        envs = self.envs[rows] if isinstance(rows, slice) else [self.envs[i] for i in rows]
        results = [env.step(a) for env, a in zip(envs, action, strict=True)]
        obs, reward, terminated, truncated, _ = zip(*results, strict=True)
        return np.stack(obs), np.array(reward), np.array(terminated), np.array(truncated)

    def close(self) -> None:
        for env in self.envs:
            env.close()


class MujocoEpisodes:
    """``n`` episodes of a Gymnasium v5 locomotion task on one ``mujoco.batch.Batch``: the fast path."""

    # The tasks whose observation, reward, termination and reset it reproduces (tests/test_fast_eval.py).
    TASKS = ("hopper", "walker2d", "halfcheetah")

    def __init__(self, env: str, n: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.kind = env_spec(env).short
        made = make_env(env, **(env_kwargs or {}))
        self.action_space = made.action_space
        self.max_steps = time_limit(made)
        self.task = task = made.unwrapped
        made.close()
        self.frame_skip, self.dt = task.frame_skip, task.dt
        self.batch = mjbatch.Batch(task.model, n, nthread=1)  # the calling thread: worker processes are the parallelism
        self.qpos, self.qvel, self.ctrl = (self.batch.bind(name) for name in ("qpos", "qvel", "ctrl"))
        self.steps = np.zeros(n, dtype=np.int64)

    def reset(self, seeds: list[int]) -> np.ndarray:
        task, nq, nv = self.task, len(self.task.init_qpos), len(self.task.init_qvel)
        noise = task._reset_noise_scale
        self.batch.reset(stage=mujoco.mjtStage.mjSTAGE_NONE)
        for i, seed in enumerate(seeds):
            rng = seeding.np_random(seed)[0]
            self.qpos[i] = task.init_qpos + rng.uniform(low=-noise, high=noise, size=nq)
            if self.kind == "halfcheetah":
                self.qvel[i] = task.init_qvel + noise * rng.standard_normal(nv)
            else:
                self.qvel[i] = task.init_qvel + rng.uniform(low=-noise, high=noise, size=nv)
        self.batch.forward()
        self.steps[:] = 0
        return self._obs(slice(None))

    def step(self, rows: Rows, action: np.ndarray) -> Step:
        task = self.task
        x_before = self.qpos[rows, 0].copy()  # rows may be a slice: a view the step would overwrite
        self.ctrl[rows] = action
        self.batch.step(None if isinstance(rows, slice) else rows, nstep=self.frame_skip)
        qpos = self.qpos[rows]
        x_velocity = (qpos[:, 0] - x_before) / self.dt
        forward_reward = task._forward_reward_weight * x_velocity
        # In the action's dtype, as Gymnasium's control_cost computes it.
        ctrl_cost = task._ctrl_cost_weight * np.sum(np.square(action), axis=1)
        if self.kind == "halfcheetah":
            reward = forward_reward - ctrl_cost
            terminated = np.zeros(len(action), dtype=bool)
        else:
            healthy = self._healthy(qpos, self.qvel[rows])
            reward = (forward_reward + healthy * task._healthy_reward) - ctrl_cost
            terminated = ~healthy & task._terminate_when_unhealthy
        self.steps[rows] += 1
        return self._obs(rows), reward, terminated, self.steps[rows] >= self.max_steps

    def _healthy(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        task = self.task
        (min_z, max_z), (min_angle, max_angle) = task._healthy_z_range, task._healthy_angle_range
        z, angle = qpos[:, 1], qpos[:, 2]
        healthy = (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)
        if self.kind == "hopper":
            min_state, max_state = task._healthy_state_range
            state = np.concatenate((qpos, qvel), axis=1)[:, 2:]
            healthy &= ((min_state < state) & (state < max_state)).all(axis=1)
        return healthy

    def _obs(self, rows: Rows) -> np.ndarray:
        position = self.qpos[rows]
        if self.task._exclude_current_positions_from_observation:
            position = position[:, 1:]
        velocity = self.qvel[rows]
        if self.kind != "halfcheetah":
            velocity = np.clip(velocity, -10, 10)
        return np.concatenate((position, velocity), axis=1)

    def close(self) -> None:
        del self.batch
