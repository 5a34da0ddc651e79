import numpy as np
import pytest

from offrl.envs import env_spec, make_env, normalized_score


def test_normalized_score_matches_d4rl_constants():
    # 100 · (R − random) / (expert − random), with D4RL's reference returns.
    assert normalized_score("hopper", -20.272305) == pytest.approx(0.0)
    assert normalized_score("hopper", 3234.3) == pytest.approx(100.0)
    assert normalized_score("hopper", 1607.0138475) == pytest.approx(50.0)
    assert normalized_score("walker2d", 1000.0) == pytest.approx(100 * (1000.0 - 1.629008) / (4592.3 - 1.629008))
    assert normalized_score("halfcheetah", 5000.0) == pytest.approx(42.53003, abs=1e-4)  # 5280.178953 / 12415.178953
    np.testing.assert_allclose(normalized_score("Hopper-v5", np.array([-20.272305, 3234.3])), [0.0, 100.0])


def test_unknown_env_names_the_allowed_ones():
    with pytest.raises(ValueError, match="allowed: door, halfcheetah, hammer, hopper, pen, relocate, walker2d"):
        env_spec("ant")


def test_torso_height_is_first_observation():
    env = make_env("walker2d")
    obs, _ = env.reset(seed=0)
    assert obs[0] == pytest.approx(env.unwrapped.data.qpos[1])
    assert env_spec("walker2d").healthy_z == (0.8, 2.0)
