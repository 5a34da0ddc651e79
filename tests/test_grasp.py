import dataclasses
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from offrl.safer.grasp import (
    GEOMETRY,
    MOTION_DIM,
    OBS_DIM,
    OBSERVATION_LAYOUT,
    OPENING_RANGE,
    GraspTask,
    SafeGraspEnv,
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


def test_hidden_geometry_is_not_in_the_observation():
    """By default the agent sees motion only: tasks that differ in geometry alone look the same."""
    assert not ROOMY.observe_geometry and not make_tasks(0, 1)[0].observe_geometry  # the study's default
    narrower = dataclasses.replace(ROOMY, container_width=0.18, object_size=(0.015, 0.016, 0.02))
    observations = {}
    for task in (ROOMY, narrower, ROOMY_OBSERVED):
        env = SafeGraspEnv(task)
        first = env.reset(seed=3)[0]
        steps = [env.step(np.array([0.5, -0.5, -1.0, 0.0], np.float32))[0] for _ in range(3)]
        observations[task] = np.stack([first, *steps])
        assert observations[task].shape == (4, task.observation_dim) and env.observation_space.shape == (
            task.observation_dim,
        )
        np.testing.assert_array_equal(env.full_observation()[:MOTION_DIM], observations[task][-1][:MOTION_DIM])
    assert ROOMY.observation_dim == MOTION_DIM == 11 and ROOMY_OBSERVED.observation_dim == OBS_DIM == 18
    # A 2 cm narrower container and a wider object are unseen (contact solver noise apart).
    np.testing.assert_allclose(observations[ROOMY], observations[narrower], atol=1e-6)
    np.testing.assert_array_equal(observations[ROOMY], observations[ROOMY_OBSERVED][:, :MOTION_DIM])
    assert all(
        (np.arange(OBS_DIM)[OBSERVATION_LAYOUT[name]] >= MOTION_DIM).all() for name in GEOMETRY
    )  # what is cut off is the geometry


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
    success, unsafe = episode_outcomes("none", make_tasks(0, 1), 10, noise=0.05)
    assert success.sum() >= 7 and not unsafe.any()


def test_failure_modes_give_unsafe_and_unsuccessful_trajectories():
    tasks = make_tasks(0, 2)
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
    assert data.observations.shape[1] == MOTION_DIM and first.windows.shape == (len(data), 5, MOTION_DIM)
    # The scripted policy reads the hidden geometry all the same: the same episodes as with it observed.
    observed = collect(make_tasks(1, 2, observe_geometry=True), 3, seed=7, window=5)
    np.testing.assert_array_equal(observed.transitions.actions, data.actions)
    np.testing.assert_array_equal(observed.transitions.observations[:, :MOTION_DIM], data.observations)
    np.testing.assert_array_equal(
        observed.windows[..., :MOTION_DIM], first.windows
    )  # Λ: the same states, minus the geometry
    assert observed.transitions.observations.shape[1] == OBS_DIM
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


def test_task_families_are_seeded_and_evaluation_tasks_are_tighter():
    assert make_tasks(4, 3) == make_tasks(4, 3) != make_tasks(5, 3)
    easy, hard = make_tasks(0, 40), make_tasks(0, 6, hard=True)
    assert min(t.clearance for t in easy) > max(t.clearance for t in hard)
    assert np.mean([t.wall_height for t in hard]) > np.mean([t.wall_height for t in easy])


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
    with pytest.raises(ValueError, match="max_episode_steps = 0"):
        SafeGraspEnv(ROOMY, max_episode_steps=0)
    assert FAILURE_MODES == ("none", "drift", "miss")
