"""Safe extraction: a floating two-finger gripper lifts an object out of an open container.

Our MuJoCo analogue of SAFER's PyBullet "Operation" grasping tasks (seed 002, section 5.1).
Where it departs from the paper, and why:

- A floating gripper (x, y, z slides with position actuators, two coupled fingers) instead of
  a 5-DoF arm: no arm model or mesh files are needed, and the safety question (do the fingers
  touch the walls?) is the same.
- Box objects of random size instead of PyBullet's object meshes; boxes and capsules only.
- State observations (below) instead of 48×48 pixel images, so no CNN encoder is needed.
- The container floor is not a violation: fingers may rest on it while they close. Only the
  four walls are.
- The paper evaluates on "6 of the more complex" of its 40 data tasks; we take the 6 with the least
  clearance (:func:`evaluation_task_ids`), so the evaluation tasks are data tasks.

The action is 4-D in [−1, 1]: Δx, Δy, Δz of up to ``STEP_DISTANCE`` metres per step added to
the slide actuators' targets, and an absolute finger opening (−1 closed, +1 fully open).

The observation (``OBS_DIM`` floats): gripper position (3, the height is the fingertips'), finger
opening (1, each finger's distance from the gripper centre), object position (3) and quaternion
(4) (the first ``MOTION_DIM``), then the task's geometry (``GEOMETRY``): container centre (2),
container inner half-width and wall height (2), object half-extents (3). The geometry is seen in
a first look only: in the first ``GraspTask.look_steps`` observations of an episode (s_0 …
s_{look_steps−1}, the gripper still above the walls), zeros afterwards. So what makes an action
unsafe later on is in the window Λ of previous states but not in the current state, SAFER's
premise (§3.2: previous states "may contain useful information concerning the locations of
objects to avoid, which may be unobserved in the current state"): the safety variable c has to
carry it. ``GraspTask.observe_geometry`` shows it at every step (an ablation: the state spells out
the very gap a finger must fit, and c can only add motion history). The scripted data policy is
privileged: it reads :meth:`SafeGraspEnv.full_observation` whatever the agent observes.

ω = 1 when any gripper geom touches a wall during any physics substep of the step, read from
``data.contact[:data.ncon]``. Success: the object's bottom is above the wall top and both
fingers touch it. Reward −1 per step, +1 on success, which ends the episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

STEP_DISTANCE = 0.01  # metres of gripper travel per step at |action| = 1
SUBSTEPS = 10  # physics steps of TIMESTEP per environment step (40 ms of simulated time)
TIMESTEP = 0.004
MAX_EPISODE_STEPS = 50

# Where each quantity sits in the observation vector: a slice for vectors, an index for scalars.
OBSERVATION_LAYOUT: dict[str, slice | int] = {
    "gripper_position": slice(0, 3),
    "finger_opening": 3,
    "object_position": slice(4, 7),
    "object_quaternion": slice(7, 11),
    "container_centre": slice(11, 13),
    "container_half_width": 13,
    "wall_height": 14,
    "object_size": slice(15, 18),
}
GEOMETRY = ("container_centre", "container_half_width", "wall_height", "object_size")  # the task's, last in the vector
MOTION_DIM = 11  # gripper, fingers and object: observed at every step
OBS_DIM = 18  # with the geometry, zeros outside the first look
LOOK_STEPS = 3  # observations that show the geometry; the fingers reach the wall tops after about 5 steps

FINGER_HALF_THICKNESS = 0.005  # along x, the closing axis
FINGER_HALF_WIDTH = 0.01  # along y
FINGER_HALF_LENGTH = 0.06  # fingers hang 12 cm below the palm: longer than any wall is high
OPENING_RANGE = (0.004, 0.05)  # each finger's centre from the gripper axis, closed to open
WALL_HALF_THICKNESS = 0.005
LIFT_MARGIN = 0.01  # the object's bottom must clear the wall top by this much
TARGET_LEAD = 0.02  # slide targets stay within this of the gripper: no wind-up against a wall


@dataclass(frozen=True)
class GraspTask:
    """One container and object.

    The container is square with inner side ``container_width``; the object is a box with
    half-extents ``object_size`` resting on the floor at ``object_offset`` from the container
    centre, which sits at ``position`` in the world. ``clearance`` is the narrowest gap between
    the object and a wall along the fingers' closing axis (x): a finger has to fit there.
    The container and object dimensions are in the first ``look_steps`` observations of an
    episode; ``observe_geometry`` puts them in every one (an ablation, see the module docstring).
    """

    container_width: float
    wall_height: float
    object_size: tuple[float, float, float]
    object_offset: tuple[float, float]
    position: tuple[float, float]
    observe_geometry: bool = False
    look_steps: int = LOOK_STEPS

    def __post_init__(self) -> None:
        if self.look_steps < 0:
            raise ValueError(f"look_steps = {self.look_steps}: must be ≥ 0 (0: the geometry is never seen)")
        half = self.container_width / 2
        for axis, (size, offset) in enumerate(zip(self.object_size[:2], self.object_offset)):
            if abs(offset) + size > half:
                raise ValueError(
                    f"object_offset[{axis}] = {offset}: the object must lie inside the container "
                    f"(|offset| + size ≤ {half})"
                )
        if not 0 < self.wall_height < 2 * FINGER_HALF_LENGTH:
            raise ValueError(f"wall_height = {self.wall_height}: must be in (0, {2 * FINGER_HALF_LENGTH})")

    @property
    def clearance(self) -> float:
        return self.container_width / 2 - self.object_size[0] - abs(self.object_offset[0])

    @property
    def observation_dim(self) -> int:
        """``OBS_DIM`` whatever is seen: unseen geometry is zeros, so every variant's states have one shape."""
        return OBS_DIM

    def geometry_visible(self, step: int) -> bool:
        """Whether observation s_step of an episode (s_0 at reset) shows the geometry."""
        return self.observe_geometry or step < self.look_steps


@dataclass(frozen=True)
class TaskRanges:
    clearance: tuple[float, float]
    wall_height: tuple[float, float]
    extra_width: tuple[float, float]  # container width beyond the object and both clearances


# 1.6-5 cm beside the object for a 1 cm finger, walls 3-10 cm high: the tightest tasks leave a few
# millimetres of drift before a finger touches a wall.
RANGES = TaskRanges(clearance=(0.016, 0.05), wall_height=(0.03, 0.10), extra_width=(0.0, 0.04))


def make_tasks(seed: int, n: int, observe_geometry: bool = False, look_steps: int = LOOK_STEPS) -> list[GraspTask]:
    """``n`` tasks drawn from ``seed``: the paper's 40 data tasks.

    ``observe_geometry`` and ``look_steps`` change what the agent observes, not the tasks drawn.
    """
    if n < 1:
        raise ValueError(f"n = {n}: the number of tasks must be at least 1")
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(n):
        size = (rng.uniform(0.012, 0.025), rng.uniform(0.012, 0.025), rng.uniform(0.015, 0.03))
        clearance = rng.uniform(*RANGES.clearance)
        extra = rng.uniform(*RANGES.extra_width)
        width = 2 * (size[0] + clearance) + extra
        # The object sits off centre towards a random side wall, which sets the clearance there.
        offset_x = rng.choice([-1.0, 1.0]) * extra / 2
        offset_y = rng.uniform(-1, 1) * max(0.0, width / 2 - size[1] - 0.02)  # 2 cm from the y walls at least
        tasks.append(
            GraspTask(
                container_width=float(width),
                wall_height=float(rng.uniform(*RANGES.wall_height)),
                object_size=tuple(float(s) for s in size),
                object_offset=(float(offset_x), float(offset_y)),
                position=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
                observe_geometry=observe_geometry,
                look_steps=look_steps,
            )
        )
    return tasks


def evaluation_task_ids(tasks: Sequence[GraspTask], n: int) -> list[int]:
    """The paper's "6 of the more complex tasks" among the data tasks: the ``n`` with the least clearance.

    Clearance (the gap a finger must fit beside the object) is what makes a grasp unsafe here.
    Indices into ``tasks``, tightest first (ties by index); evaluation task k is ``tasks[ids[k − 1]]``.
    """
    if not 1 <= n <= len(tasks):
        raise ValueError(f"eval tasks = {n}: must be in 1..{len(tasks)}, the number of data tasks")
    return sorted(range(len(tasks)), key=lambda i: (tasks[i].clearance, i))[:n]


def _mjcf(task: GraspTask) -> str:
    """The scene: container walls and floor, a free box object and the gripper, boxes and capsules only."""
    cx, cy = task.position
    half, h, t = task.container_width / 2, task.wall_height, WALL_HALF_THICKNESS
    ox, oy = cx + task.object_offset[0], cy + task.object_offset[1]
    sx, sy, sz = task.object_size
    walls = "\n".join(
        f'<geom name="wall_{name}" type="box" pos="{cx + px} {cy + py} {h / 2}" '
        f'size="{hx} {hy} {h / 2}" material="wall"/>'
        for name, px, py, hx, hy in (
            ("west", -half - t, 0, t, half + 2 * t),
            ("east", half + t, 0, t, half + 2 * t),
            ("south", 0, -half - t, half, t),
            ("north", 0, half + t, half, t),
        )
    )
    ft, fw, fl = FINGER_HALF_THICKNESS, FINGER_HALF_WIDTH, FINGER_HALF_LENGTH
    lo, hi = OPENING_RANGE
    fingers = "\n".join(
        f"""<body name="finger_{side}" gravcomp="1">
              <joint name="finger_{side}" type="slide" axis="{sign} 0 0" range="{lo} {hi}" damping="1"/>
              <geom name="finger_{side}" type="box" pos="0 0 {fl}" size="{ft} {fw} {fl}" mass="0.02"
                    material="gripper"/>
            </body>"""
        for side, sign in (("left", -1), ("right", 1))
    )
    return f"""
<mujoco model="safe_grasp">
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <default><geom friction="1 0.01 0.001" condim="4"/></default>
  <asset>
    <material name="wall" rgba="0.7 0.5 0.3 1"/>
    <material name="gripper" rgba="0.3 0.3 0.8 1"/>
  </asset>
  <worldbody>
    <light pos="0 0 1"/>
    <geom name="ground" type="plane" pos="0 0 -0.01" size="1 1 0.01"/>
    <geom name="floor" type="box" pos="{cx} {cy} -0.005" size="{half + 2 * t} {half + 2 * t} 0.005" material="wall"/>
    {walls}
    <body name="object" pos="{ox} {oy} {sz}">
      <freejoint name="object"/>
      <geom name="object" type="box" size="{sx} {sy} {sz}" mass="0.05" rgba="0.8 0.2 0.2 1"/>
    </body>
    <body name="gripper" gravcomp="1">
      <joint name="x" type="slide" axis="1 0 0" range="-0.3 0.3"/>
      <joint name="y" type="slide" axis="0 1 0" range="-0.3 0.3"/>
      <joint name="z" type="slide" axis="0 0 1" range="0 0.4"/>
      <geom name="palm" type="capsule" fromto="{-hi} 0 {2 * fl + 0.01} {hi} 0 {2 * fl + 0.01}" size="0.01"
            mass="0.1" material="gripper"/>
      {fingers}
    </body>
  </worldbody>
  <equality><joint joint1="finger_right" joint2="finger_left" polycoef="0 1 0 0 0"/></equality>
  <actuator>
    <position name="x" joint="x" kp="2000" kv="40" ctrlrange="-0.3 0.3"/>
    <position name="y" joint="y" kp="2000" kv="40" ctrlrange="-0.3 0.3"/>
    <position name="z" joint="z" kp="2000" kv="40" ctrlrange="0 0.4"/>
    <position name="grip" joint="finger_left" kp="400" kv="4" ctrlrange="{lo} {hi}"/>
  </actuator>
</mujoco>
"""


class SafeGraspEnv(gym.Env):
    """One task of the family; ``reset`` places the gripper open above the container."""

    metadata = {"render_modes": []}

    def __init__(self, task: GraspTask, max_episode_steps: int = MAX_EPISODE_STEPS) -> None:
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps = {max_episode_steps}: must be at least 1")
        self.task = task
        self.max_episode_steps = max_episode_steps
        self.model = mujoco.MjModel.from_xml_string(_mjcf(task))
        self.data = mujoco.MjData(self.model)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (task.observation_dim,), np.float32)

        gripper = [self.model.geom(name).id for name in ("palm", "finger_left", "finger_right")]
        walls = [self.model.geom(f"wall_{side}").id for side in ("west", "east", "south", "north")]
        # Symmetric lookup table over geom pairs: one fancy-index per substep finds violations.
        self._violating_pair = np.zeros((self.model.ngeom, self.model.ngeom), bool)
        self._violating_pair[np.ix_(gripper, walls)] = self._violating_pair[np.ix_(walls, gripper)] = True
        self._object_geom = self.model.geom("object").id
        self._finger_geoms = (gripper[1], gripper[2])
        self._slide_qpos = [int(self.model.joint(axis).qposadr[0]) for axis in "xyz"]
        self._finger_qpos = [int(self.model.joint(f"finger_{side}").qposadr[0]) for side in ("left", "right")]
        self._object_qpos = int(self.model.joint("object").qposadr[0])
        half = task.container_width / 2
        self._task_features = np.array([*task.position, half, task.wall_height, *task.object_size], np.float32)
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        # Start open, fingertips 2-4 cm above the wall top, within 3 cm of the container centre.
        xy = np.array(self.task.position) + self.np_random.uniform(-0.03, 0.03, 2)
        start = np.array([*xy, self.task.wall_height + self.np_random.uniform(0.02, 0.04)])
        self.data.qpos[self._slide_qpos] = start
        self.data.qpos[self._finger_qpos] = OPENING_RANGE[1]
        self.data.ctrl[:] = [*start, OPENING_RANGE[1]]
        mujoco.mj_forward(self.model, self.data)
        self._steps = 0
        return self._observation(), {"violation": False, "success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        position = self.data.qpos[self._slide_qpos]
        target = np.clip(
            self.data.ctrl[:3] + STEP_DISTANCE * action[:3], position - TARGET_LEAD, position + TARGET_LEAD
        )
        self.data.ctrl[:3] = target
        lo, hi = OPENING_RANGE
        self.data.ctrl[3] = lo + (action[3] + 1) / 2 * (hi - lo)
        violation = False
        for _ in range(SUBSTEPS):
            mujoco.mj_step(self.model, self.data)
            violation |= self._touches_wall()
        self._steps += 1
        success = self._holds_object_above_walls()
        truncated = not success and self._steps >= self.max_episode_steps
        reward = 1.0 if success else -1.0
        return self._observation(), reward, success, truncated, {"violation": violation, "success": success}

    def _contact_pairs(self) -> np.ndarray:
        return self.data.contact.geom[: self.data.ncon]

    def _touches_wall(self) -> bool:
        pairs = self._contact_pairs()
        return bool(self._violating_pair[pairs[:, 0], pairs[:, 1]].any())

    def _holds_object_above_walls(self) -> bool:
        object_bottom = self.data.qpos[self._object_qpos + 2] - self.task.object_size[2]  # as if upright
        if object_bottom < self.task.wall_height + LIFT_MARGIN:
            return False
        touching = {int(g) for pair in self._contact_pairs() if self._object_geom in pair for g in pair}
        return all(finger in touching for finger in self._finger_geoms)

    def full_observation(self) -> np.ndarray:
        """The ``OBS_DIM`` floats with the geometry, whatever the task lets the agent observe (the scripted policy's
        view)."""
        q = self.data.qpos
        return np.concatenate(
            [
                q[self._slide_qpos],
                q[self._finger_qpos[:1]],
                q[self._object_qpos : self._object_qpos + 7],
                self._task_features,
            ]
        ).astype(np.float32)

    def _observation(self) -> np.ndarray:
        observation = self.full_observation()
        if not self.task.geometry_visible(self._steps):
            observation[MOTION_DIM:] = 0.0
        return observation
