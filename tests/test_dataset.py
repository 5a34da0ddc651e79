import json
import os

import minari
import numpy as np
import pytest

from offrl.data import Dataset, DatasetError, load_dataset
from offrl.data.build import generate, minari_id, write_with_summary
from offrl.data.dataset import write_minari
from offrl.data.generate import rollout

FIELDS = ["observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "episode_ids"]


def assert_same(a: Dataset, b: Dataset) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_episodes_round_trip(tiny_dataset):
    episodes = list(tiny_dataset.episodes())
    assert [len(e["actions"]) for e in episodes] == [3, 4]
    assert [len(e["observations"]) for e in episodes] == [4, 5]  # Minari's layout: T + 1 observations
    assert_same(Dataset.from_episodes(episodes), tiny_dataset)


def test_minari_round_trip_and_metadata(tiny_dataset, tmp_path, monkeypatch):
    path = write_minari(tiny_dataset, tmp_path, "offrl/hopper/test-v0", "hopper", {"kind": "test"})
    assert_same(load_dataset(path), tiny_dataset)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    md = minari.load_dataset("offrl/hopper/test-v0")
    assert md.total_steps == 7 and md.total_episodes == 2
    assert md.storage.metadata["ref_min_score"] == pytest.approx(-20.272305)
    assert md.storage.metadata["ref_max_score"] == pytest.approx(3234.3)
    first = next(iter(md.iterate_episodes()))
    assert first.terminations.tolist() == [False, False, True] and not first.truncations.any()
    assert not any(name.startswith(".partial") for name in os.listdir(tmp_path))


def test_validate_rejects_inconsistent_episode_flags(tiny_dataset):
    tiny_dataset.terminals[2] = False
    with pytest.raises(DatasetError, match="transition 2"):
        tiny_dataset.validate()


def test_missing_and_corrupted_datasets_raise_clear_errors(tiny_dataset, tmp_path):
    with pytest.raises(DatasetError, match="no Minari dataset at"):
        load_dataset(tmp_path / "nowhere")
    path = write_minari(tiny_dataset, tmp_path, "offrl/hopper/test-v0", "hopper")
    (path / "data" / "main_data.hdf5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match="cannot read the Minari dataset"):
        load_dataset(path)


def test_rollout_terminal_and_timeout_handling():
    data = rollout("hopper", None, 600, seed=3)
    data.validate()
    assert len(data) == 600 and data.timeouts[-1]  # the dataset's end cuts the last episode
    # A random hopper falls within a few dozen steps: every earlier episode ends in a true terminal,
    # and its final state is unhealthy (torso below 0.7 or tilted past 0.2 rad).
    ends = np.flatnonzero(data.terminals)
    assert len(ends) == data.num_episodes - 1
    z, angle = data.next_observations[ends, 0], data.next_observations[ends, 1]
    assert np.all((z <= 0.7) | (np.abs(angle) >= 0.2) | (np.abs(data.next_observations[ends, 1:]) >= 100).any(axis=1))


def test_rollout_time_limit_is_a_timeout_not_a_terminal():
    # A zero action keeps HalfCheetah going for the full 1000 steps: a truncation by the time limit.
    data = rollout("halfcheetah", lambda obs: np.zeros(6), 1500, seed=0)
    assert data.timeouts[999] and not data.terminals.any()
    assert data.episode_ids[999] == 0 and data.episode_ids[1000] == 1


def test_same_seed_same_data():
    assert_same(rollout("hopper", None, 200, seed=5), rollout("hopper", None, 200, seed=5))


def test_medium_expert_is_exactly_the_union(tmp_path):
    medium = rollout("hopper", None, 150, seed=1)
    expert = rollout("hopper", None, 120, seed=2)
    for kind, data in (("medium", medium), ("expert", expert)):
        write_with_summary(data, "hopper", kind, tmp_path, tmp_path / f"{kind}.json", {"source": "test"})
    union = generate("hopper", "medium-expert", None, size=0, seed=0, noise=0.0, root=tmp_path)
    assert len(union) == len(medium) + len(expert)
    assert_same(union.select(slice(0, len(medium))), medium)
    tail = union.select(slice(len(medium), None))
    for name in FIELDS[:-1]:
        np.testing.assert_array_equal(getattr(tail, name), getattr(expert, name))
    np.testing.assert_array_equal(tail.episode_ids, expert.episode_ids + medium.num_episodes)


def test_summary_fields(tmp_path):
    data = rollout("hopper", None, 300, seed=0)
    summary = write_with_summary(data, "hopper", "random", tmp_path, tmp_path / "s.json", {"source": "local"})
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["transitions"] == 300 and summary["episodes"] == data.num_episodes
    assert summary["minari_id"] == minari_id("hopper", "random")
    returns = data.episode_returns()
    assert summary["return_mean"] == pytest.approx(returns.mean())
    assert summary["normalized_score"] == pytest.approx(100 * (returns.mean() + 20.272305) / (3234.3 + 20.272305))
