"""The scripted grasp policy that makes SAFER's offline data, and the collector that labels it.

The paper runs PARROT's scripted grasping policy with actuation noise (section 5.1). Ours
reads the full state, the task's geometry included (``SafeGraspEnv.full_observation``: a
scripted policy is privileged, whatever the agent observes), and goes through five phases: align
over the object with the fingers wide open, narrow (the fingers to fit the narrowest gap, still
above the walls), descend, close, and lift, which ends holding the object still. The fingers
narrow once the gripper is over the object, after the agent's first look at the geometry
(``GraspTask.look_steps``), so the safety-critical opening is an action the current state cannot
explain and the window of previous states can.
Two deliberate failure modes give the data its unsafe and unsuccessful parts: ``drift`` slides
towards the tight wall while descending (violations, mostly still a success), ``miss`` closes
above the object (safe, unsuccessful).

Every transition is labelled with ω (``violations``), its trajectory's success and its window
Λ of the ``window`` previous states, oldest first, zero rows before the episode start. The
current state is not in its own window: Algorithm 1 appends s_k to Λ after acting on it (the
paper's text writes Λ = [s_t, …, s_{t−w}] instead; ``include_current`` picks that reading).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offrl.data import Dataset, DatasetError, load_dataset
from offrl.data.dataset import load_step_labels, write_minari
from offrl.safer.grasp import LIFT_MARGIN, OBSERVATION_LAYOUT, OPENING_RANGE, STEP_DISTANCE, GraspTask, SafeGraspEnv

FAILURE_MODES = ("none", "drift", "miss")
MAX_SPEED = 0.8  # of the action range: nominal commands stay off the clip at ±1
CLOSE_COMMAND = -0.8
CLOSE_STEPS = 3  # steps with the gripper still while the fingers squeeze
ALIGNED = 0.002  # metres of horizontal error at which the descent starts
DRIFT_PER_STEP = 0.002  # metres the aim slides towards the tight wall per descending step


class ScriptedGrasp:
    """One episode's controller: ``act(full_observation)`` (geometry included) until the episode ends, then a new
    one."""

    def __init__(self, mode: str = "none", noise: float = 0.1, rng: np.random.Generator | None = None) -> None:
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode = {mode!r}; allowed: {', '.join(FAILURE_MODES)}")
        if noise < 0:
            raise ValueError(f"noise = {noise}: the actuation noise's standard deviation must be ≥ 0")
        self.mode, self.noise = mode, noise
        self.rng = rng if rng is not None else np.random.default_rng()
        self.phase, self.phase_steps = "align", 0
        self.grasp_xy: np.ndarray | None = None

    def act(self, observation: np.ndarray) -> np.ndarray:
        gripper, opening_now, obj, centre, half_width, wall_height, size = (
            observation[OBSERVATION_LAYOUT[name]]
            for name in (
                "gripper_position",
                "finger_opening",
                "object_position",
                "container_centre",
                "container_half_width",
                "wall_height",
                "object_size",
            )
        )
        tight_side = np.sign(obj[0] - centre[0]) or 1.0  # the near wall is on the side away from the centre
        clearance = half_width - size[0] - abs(obj[0] - centre[0])
        opening = size[0] + clearance / 2  # each finger in the middle of the narrowest gap
        open_command = 2 * (opening - OPENING_RANGE[0]) / (OPENING_RANGE[1] - OPENING_RANGE[0]) - 1
        hover = wall_height + 0.02  # fingertips 2 cm over the walls while aligning
        grasp_height = obj[2] - size[2] + 0.003  # fingertips 3 mm above the floor
        if self.mode == "miss":
            grasp_height = obj[2] + size[2] + 0.01  # closes on air, 1 cm above the object

        self.phase_steps += 1
        aim, grip = np.array([obj[0], obj[1], hover]), open_command
        if self.phase == "align":
            grip = 1.0
            if np.abs(gripper[:2] - obj[:2]).max() < ALIGNED:
                self._enter("narrow")
        if self.phase == "narrow" and abs(opening_now - opening) < 0.003:
            self._enter("descend")
        if self.phase == "descend":
            aim[2] = grasp_height
            if self.mode == "drift":
                aim[0] += tight_side * DRIFT_PER_STEP * self.phase_steps
            if abs(gripper[2] - grasp_height) < 0.003:
                self.grasp_xy = gripper[:2].copy()
                self._enter("close")
        if self.phase == "close":
            aim, grip = np.array([*self.grasp_xy, grasp_height]), CLOSE_COMMAND
            if self.phase_steps > CLOSE_STEPS:
                self._enter("lift")
        if self.phase == "lift":
            # Straight up from where it closed: aiming at the object again would drag it sideways.
            aim, grip = np.array([*self.grasp_xy, wall_height + 2 * size[2] + 2 * LIFT_MARGIN]), CLOSE_COMMAND
        motion = np.clip((aim - gripper) / STEP_DISTANCE, -MAX_SPEED, MAX_SPEED)
        action = np.append(motion, grip) + self.noise * self.rng.standard_normal(4)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _enter(self, phase: str) -> None:
        self.phase, self.phase_steps = phase, 1


@dataclass
class GraspRollouts:
    """Scripted episodes, with SAFER's labels beside the transitions (row i labels transition i)."""

    transitions: Dataset
    violations: np.ndarray  # (N,) bool: ω(s, a)
    success: np.ndarray  # (N,) bool: the transition's episode ended in success
    windows: np.ndarray  # (N, window, obs_dim) float32: Λ; 1.2 GB at the paper's 1M steps and w = 16
    task_ids: np.ndarray  # (N,) int64: index into the collected task list
    modes: np.ndarray  # (N,) int64: index into FAILURE_MODES


def state_windows(
    observations: np.ndarray, episode_ids: np.ndarray, window: int, include_current: bool = False
) -> np.ndarray:
    """Λ for every row: the ``window`` states before it in its episode, oldest first, zero-padded.

    Where all windows at once do not fit in memory, a trainer can call this on whole episodes
    (a window never reaches outside its own episode).
    """
    if window < 1:
        raise ValueError(f"window = {window}: must be at least 1")
    row = np.arange(len(observations))
    first_of_episode = np.r_[True, episode_ids[1:] != episode_ids[:-1]]
    episode_start = np.maximum.accumulate(np.where(first_of_episode, row, 0))
    last = row if include_current else row - 1
    rows = last[:, None] - np.arange(window - 1, -1, -1)[None, :]  # (N, window), oldest first
    valid = rows >= episode_start[:, None]
    out = np.where(valid[..., None], observations[np.clip(rows, 0, None)], 0)
    return out.astype(np.float32)


def collect(
    tasks: Sequence[GraspTask],
    episodes_per_task: int,
    seed: int,
    noise: float = 0.1,
    mode_probabilities: dict[str, float] | None = None,
    window: int = 16,
) -> GraspRollouts:
    """Run the scripted policy ``episodes_per_task`` times on every task, failure modes drawn per episode."""
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task = {episodes_per_task}: must be at least 1")
    probabilities = mode_probabilities if mode_probabilities is not None else {"none": 0.6, "drift": 0.2, "miss": 0.2}
    unknown = set(probabilities) - set(FAILURE_MODES)
    if unknown:
        raise ValueError(f"mode_probabilities has {sorted(unknown)}; allowed: {', '.join(FAILURE_MODES)}")
    weights = np.array([probabilities.get(mode, 0.0) for mode in FAILURE_MODES])
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError(f"mode_probabilities = {probabilities}: must be ≥ 0 and sum to 1")
    rng = np.random.default_rng(seed)
    observations, actions, rewards, next_observations, terminals, timeouts, violations = [], [], [], [], [], [], []
    episode_ids, success, task_ids, modes = [], [], [], []
    for task_id, task in enumerate(tasks):
        env = SafeGraspEnv(task)
        for _ in range(episodes_per_task):
            mode = int(rng.choice(len(FAILURE_MODES), p=weights))
            policy = ScriptedGrasp(FAILURE_MODES[mode], noise, rng)
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            length, done = 0, False
            while not done:
                action = policy.act(env.full_observation())
                next_observation, reward, terminated, truncated, info = env.step(action)
                observations.append(observation)
                actions.append(action)
                rewards.append(reward)
                next_observations.append(next_observation)
                terminals.append(terminated)
                timeouts.append(truncated)
                violations.append(info["violation"])
                observation, done, length = next_observation, terminated or truncated, length + 1
            episode = episode_ids[-1] + 1 if episode_ids else 0
            for labels, value in ((episode_ids, episode), (success, terminated), (task_ids, task_id), (modes, mode)):
                labels.extend([value] * length)
    transitions = Dataset(
        observations=np.array(observations, np.float32),
        actions=np.array(actions, np.float32),
        rewards=np.array(rewards, np.float32),
        next_observations=np.array(next_observations, np.float32),
        terminals=np.array(terminals, bool),
        timeouts=np.array(timeouts, bool),
        episode_ids=np.array(episode_ids, np.int64),
    )
    return GraspRollouts(
        transitions=transitions,
        violations=np.array(violations, bool),
        success=np.array(success, bool),
        windows=state_windows(transitions.observations, transitions.episode_ids, window),
        task_ids=np.array(task_ids, np.int64),
        modes=np.array(modes, np.int64),
    )


LABELS = ("violations", "success", "task_ids", "modes")


def write_rollouts(rollouts: GraspRollouts, root: str | Path, dataset_id: str, metadata: dict[str, Any]) -> Path:
    """Store the transitions as a Minari dataset, SAFER's labels as its step infos; Λ is rebuilt on load."""
    return write_minari(
        rollouts.transitions,
        root,
        dataset_id,
        None,
        metadata,
        step_labels={name: getattr(rollouts, name) for name in LABELS},
    )


def load_rollouts(path: str | Path, window: int) -> GraspRollouts:
    """A dataset written by :func:`write_rollouts`, with the windows Λ of ``window`` previous states."""
    transitions = load_dataset(path)
    labels = load_step_labels(path)
    missing = [name for name in LABELS if name not in labels]
    if missing:
        raise DatasetError(
            f"the dataset at {path} lacks the grasp labels {missing}: write it with `python -m offrl grasp-data`"
        )
    return GraspRollouts(
        transitions=transitions,
        violations=labels["violations"].astype(bool),
        success=labels["success"].astype(bool),
        windows=state_windows(transitions.observations, transitions.episode_ids, window),
        task_ids=labels["task_ids"].astype(np.int64),
        modes=labels["modes"].astype(np.int64),
    )
