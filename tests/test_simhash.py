import numpy as np
import pytest

from offrl.simhash import SimHashIndex

# Hand-made: A = I, g = identity, so a state's code is the signs of its two coordinates.
STATES = np.array([[1, 1], [2, 3], [0.5, 0.2], [-1, 1], [-1, -1], [-2, -2]], dtype=float)


@pytest.fixture
def quadrants() -> SimHashIndex:
    return SimHashIndex.build(STATES, obs_mean=np.zeros(2), obs_std=np.ones(2), projection=np.eye(2))


def test_exact_counts_on_hand_made_states(quadrants):
    # ++ holds three states, -+ one, -- two, +- none.
    assert quadrants.count(STATES).tolist() == [3, 3, 3, 1, 2, 2]
    assert quadrants.count(np.array([[5.0, -1.0]])).tolist() == [0]
    assert sorted(quadrants.counts.tolist()) == [1, 2, 3]


def test_conf_is_min_max_normalised_count(quadrants):
    # (count − 1) / (3 − 1); an unseen code gets 0.
    np.testing.assert_allclose(quadrants.conf(STATES), [1, 1, 1, 0, 0.5, 0.5])
    assert quadrants.conf(np.array([[5.0, -1.0]])).tolist() == [0.0]


def test_all_alone_means_no_confidence_anywhere():
    index = SimHashIndex.build(np.random.default_rng(0).normal(size=(500, 11)), k=50, seed=0)
    assert (index.counts == 1).all() and (index.conf(np.zeros((3, 11))) == 0).all()


def test_codes_are_deterministic_for_a_seed_and_differ_across_seeds():
    states = np.random.default_rng(1).normal(size=(200, 11))
    a, b = SimHashIndex.build(states, k=50, seed=7), SimHashIndex.build(states, k=50, seed=7)
    assert np.array_equal(a.projection, b.projection) and np.array_equal(a.code(states), b.code(states))
    assert not np.array_equal(a.projection, SimHashIndex.build(states, k=50, seed=8).projection)
    assert a.bits(states).shape == (200, 50)


def test_save_and_load(tmp_path):
    states = np.random.default_rng(2).normal(size=(1000, 11))
    index = SimHashIndex.build(states, k=6, seed=3)
    index.save(tmp_path / "index.npz")
    loaded = SimHashIndex.load(tmp_path / "index.npz")
    assert np.array_equal(loaded.count(states), index.count(states))
    assert np.array_equal(loaded.conf(states), index.conf(states)) and loaded.seed == 3


def test_summary_of_the_hand_made_index(quadrants):
    summary = quadrants.summary()
    assert summary["buckets"] == 3 and summary["states"] == 6 and summary["states_alone"] == 1
    assert summary["bucket_size_histogram"] == {1: 1, 2: 1, 3: 1}
    assert sorted(quadrants.state_conf().tolist()) == sorted(quadrants.conf(STATES).tolist())
