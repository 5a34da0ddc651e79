import dataclasses
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from offrl.safer.grasp import (
    GEOMETRY,
    LOOK_STEPS,
    MOTION_DIM,
    OBS_DIM,
    OBSERVATION_LAYOUT,
    OPENING_RANGE,
    GraspTask,
    SafeGraspEnv,
    evaluation_task_ids,
    make_tasks,
)
from offrl.safer.grasp_script import FAILURE_MODES, ScriptedGrasp, collect, state_windows

# A wide container with the object in a corner: the middle is free space down to the floor.
ROOMY = GraspTask(
    container_width=0.2,
    wall_height=0.05,
    object_size=(0.015, 0.015, 0.02),
    object_offset=(0.07, 0.07),
    position=(0.0, 0.0),
)
ROOMY_OBSERVED = dataclasses.replace(ROOMY, observe_geometry=True)


def drive(env: SafeGraspEnv, action: list[float], steps: int) -> list[bool]:
    return [env.step(np.array(action, np.float32))[4]["violation"] for _ in range(steps)]


@pytest.mark.parametrize("task", [ROOMY, ROOMY_OBSERVED])
def test_env_follows_the_gymnasium_api(task):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker warns that the observation box is unbounded, as positions are
        check_env(SafeGraspEnv(task), skip_render_check=True)


def test_observation_layout_reads_the_task_back():
    observation, _ = SafeGraspEnv(ROOMY_OBSERVED).reset(seed=0)

    def field(name: str) -> np.ndarray:
        return observation[OBSERVATION_LAYOUT[name]]

    np.testing.assert_allclose(field("object_position"), [0.07, 0.07, 0.02], atol=1e-6)
    np.testing.assert_allclose(field("object_size"), ROOMY.object_size, rtol=1e-6)
    assert field("container_half_width") == pytest.approx(0.1) and field("wall_height") == pytest.approx(0.05)
    assert field("finger_opening") == pytest.approx(OPENING_RANGE[1])  # episodes start open
    assert field("gripper_position")[2] > ROOMY.wall_height  # and above the walls


def test_geometry_is_seen_in_a_first_look_only():
    """s_0 … s_{look_steps−1} show the geometry, later states zeros: tasks that differ in geometry alone then look
    the same."""
    assert not ROOMY.observe_geometry and ROOMY.look_steps == LOOK_STEPS == 3  # the study's default
    assert [ROOMY.geometry_visible(t) for t in range(5)] == [True, True, True, False, False]
    assert all(ROOMY_OBSERVED.geometry_visible(t) for t in range(60))
    never = dataclasses.replace(ROOMY, look_steps=0)
    assert not any(never.geometry_visible(t) for t in range(5))
    narrower = dataclasses.replace(ROOMY, container_width=0.18, object_size=(0.015, 0.016, 0.02))
    observations = {}
    for task in (ROOMY, narrower, ROOMY_OBSERVED):
        env = SafeGraspEnv(task)
        first = env.reset(seed=3)[0]
        steps = [env.step(np.array([0.5, -0.5, -1.0, 0.0], np.float32))[0] for _ in range(4)]
        observations[task] = np.stack([first, *steps])
        assert observations[task].shape == (5, OBS_DIM) and env.observation_space.shape == (OBS_DIM,)
        np.testing.assert_array_equal(env.full_observation()[:MOTION_DIM], observations[task][-1][:MOTION_DIM])
    geometry = observations[ROOMY_OBSERVED][:, MOTION_DIM:]
    np.testing.assert_array_equal(observations[ROOMY][:3, MOTION_DIM:], geometry[:3])  # the first look
    assert not observations[ROOMY][3:, MOTION_DIM:].any() and geometry[3:].any(1).all()  # then zeros, unless observed
    np.testing.assert_array_equal(observations[ROOMY][:, :MOTION_DIM], observations[ROOMY_OBSERVED][:, :MOTION_DIM])
    # After the look a 2 cm narrower container and a wider object are unseen (contact solver noise apart).
    np.testing.assert_allclose(observations[ROOMY][3:], observations[narrower][3:], atol=1e-6)
    assert not np.allclose(observations[ROOMY][0], observations[narrower][0])
    assert all(
        (np.arange(OBS_DIM)[OBSERVATION_LAYOUT[name]] >= MOTION_DIM).all() for name in GEOMETRY
    )  # what is zeroed is the geometry


def test_violation_fires_against_a_wall_and_not_in_free_space():
    env = SafeGraspEnv(ROOMY)
    env.reset(seed=0)
    # Down into the free middle of the container with the fingers half open: no wall contact.
    assert not any(drive(env, [0, 0, -1, 0], 9))
    assert env.data.qpos[env._slide_qpos[2]] < ROOMY.wall_height  # the fingertips are below the wall top
    # West into the wall: contact within the 10 cm that separate the fingers from it.
    assert any(drive(env, [-1, 0, 0, 0], 12))


def episode_outcomes(mode: str, tasks: list[GraspTask], episodes: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rollouts = collect(tasks, episodes, seed=3, noise=noise, mode_probabilities={mode: 1.0}, window=4)
    slices = rollouts.transitions.episode_slices()
    return np.array([rollouts.success[s][0] for s in slices]), np.array([rollouts.violations[s].any() for s in slices])


def test_scripted_policy_succeeds_safely_on_an_easy_task():
    roomiest = max(make_tasks(0, 40), key=lambda task: task.clearance)
    success, unsafe = episode_outcomes("none", [roomiest], 10, noise=0.05)
    assert success.sum() >= 7 and not unsafe.any()


def test_failure_modes_give_unsafe_and_unsuccessful_trajectories():
    tasks = sorted(make_tasks(0, 40), key=lambda task: task.clearance)[20:22]  # 2.9 cm of clearance: mid-range
    success, unsafe = episode_outcomes("drift", tasks, 5, noise=0.05)
    assert unsafe.mean() >= 0.5 and (success & unsafe).any()  # touching a wall need not spoil the grasp
    success, _ = episode_outcomes("miss", tasks, 5, noise=0.05)
    assert not success.any()


def test_collected_labels_are_consistent_and_reproducible():
    tasks = make_tasks(1, 2)
    first, second = collect(tasks, 3, seed=7, window=5), collect(tasks, 3, seed=7, window=5)
    np.testing.assert_array_equal(first.transitions.actions, second.transitions.actions)
    np.testing.assert_array_equal(first.violations, second.violations)
    data = first.transitions
    data.validate()
    assert data.observations.shape[1] == OBS_DIM and first.windows.shape == (len(data), 5, OBS_DIM)
    # The scripted policy reads the geometry all the same: the same episodes as with it observed.
    observed = collect(make_tasks(1, 2, observe_geometry=True), 3, seed=7, window=5)
    np.testing.assert_array_equal(observed.transitions.actions, data.actions)
    np.testing.assert_array_equal(observed.transitions.observations[:, :MOTION_DIM], data.observations[:, :MOTION_DIM])
    for s in data.episode_slices():
        assert len(set(first.success[s])) == 1  # the trajectory's outcome on every row
        assert first.success[s][0] == data.terminals[s.stop - 1]  # success is the only termination
        expected_rewards = np.r_[-np.ones(s.stop - s.start - 1), 1.0 if first.success[s][0] else -1.0]
        np.testing.assert_array_equal(data.rewards[s], expected_rewards)


def test_state_windows_zero_pad_before_the_episode_start():
    observations = np.arange(1, 6, dtype=np.float32)[:, None]  # states 1, 2, 3 | 4, 5
    episode_ids = np.array([0, 0, 0, 1, 1])
    previous = state_windows(observations, episode_ids, window=2)[..., 0]
    np.testing.assert_array_equal(previous, [[0, 0], [0, 1], [1, 2], [0, 0], [0, 4]])
    with_current = state_windows(observations, episode_ids, window=2, include_current=True)[..., 0]
    np.testing.assert_array_equal(with_current, [[0, 1], [1, 2], [2, 3], [0, 4], [4, 5]])


def test_evaluation_tasks_are_the_data_tasks_with_the_least_clearance():
    assert make_tasks(4, 3) == make_tasks(4, 3) != make_tasks(5, 3)
    # Clearances 3, 1.5, 2, 1.5 and 4 cm (half-width − object half-size − |offset|): tightest first, ties by index.
    tasks = [GraspTask(2 * (0.02 + c), 0.05, (0.02, 0.02, 0.02), (0.0, 0.0), (0.0, 0.0)) for c in (0.03, 0.015, 0.02)]
    tasks += [dataclasses.replace(tasks[1]), GraspTask(0.16, 0.05, (0.02, 0.02, 0.02), (0.02, 0.0), (0.0, 0.0))]
    assert [round(t.clearance, 6) for t in tasks] == [0.03, 0.015, 0.02, 0.015, 0.04]
    assert evaluation_task_ids(tasks, 3) == [1, 3, 2] and evaluation_task_ids(tasks, 5) == [1, 3, 2, 0, 4]
    family = make_tasks(0, 40)
    ids = evaluation_task_ids(family, 6)
    assert max(family[i].clearance for i in ids) <= min(t.clearance for i, t in enumerate(family) if i not in ids)
    with pytest.raises(ValueError, match="eval tasks = 7: must be in 1..5"):
        evaluation_task_ids(tasks, 7)


def test_bad_inputs_name_the_field_and_allowed_values():
    with pytest.raises(ValueError, match="mode = 'wobble'; allowed: none, drift, miss"):
        ScriptedGrasp("wobble")
    with pytest.raises(ValueError, match="object_offset\\[0\\]"):
        GraspTask(0.06, 0.05, (0.02, 0.02, 0.02), (0.02, 0.0), (0.0, 0.0))
    with pytest.raises(ValueError, match="mode_probabilities has \\['slip'\\]"):
        collect(make_tasks(0, 1), 1, seed=0, mode_probabilities={"slip": 1.0})
    with pytest.raises(ValueError, match="n = 0"):
        make_tasks(0, 0)
    with pytest.raises(ValueError, match="episodes_per_task = 0"):
        collect(make_tasks(0, 1), 0, seed=0)
    with pytest.raises(ValueError, match="look_steps = -1: must be ≥ 0"):
        dataclasses.replace(ROOMY, look_steps=-1)
    with pytest.raises(ValueError, match="max_episode_steps = 0"):
        SafeGraspEnv(ROOMY, max_episode_steps=0)
    assert FAILURE_MODES == ("none", "drift", "miss")
