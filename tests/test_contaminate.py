import numpy as np
import pytest

from offrl.data import Dataset
from offrl.data.contaminate import contaminate


def episodes_dataset(lengths: list[int], ends: list[str], value: float) -> Dataset:
    """Episodes of the given lengths, each ending in a terminal ("T") or a timeout ("t"); obs = value."""
    n = sum(lengths)
    terminals, timeouts = np.zeros(n, bool), np.zeros(n, bool)
    last = np.cumsum(lengths) - 1
    for i, end in zip(last, ends):
        (terminals if end == "T" else timeouts)[i] = True
    return Dataset(
        observations=np.full((n, 2), value, np.float32),
        actions=np.zeros((n, 1), np.float32),
        rewards=np.full(n, value, np.float32),
        next_observations=np.full((n, 2), value, np.float32),
        terminals=terminals,
        timeouts=timeouts,
        episode_ids=np.repeat(np.arange(len(lengths)), lengths),
    )


@pytest.mark.parametrize("percent", [1, 10, 30, 50, 70, 99])
def test_contaminant_share_is_exact(percent):
    expert = episodes_dataset([333, 333, 334, 37], ["t", "T", "t", "T"], 1.0)  # N = 1037
    random = episodes_dataset([20] * 60, ["T"] * 60, 0.0)
    data, mask = contaminate(expert, random, percent)
    data.validate()
    assert len(data) == 1037
    assert mask.sum() == round(percent / 100 * 1037) == (data.rewards == 0).sum()
    assert (data.rewards[~mask] == 1).all() and not mask[: len(data) - mask.sum()].any()


def test_cut_episodes_end_as_timeouts_not_terminals():
    expert = episodes_dataset([6, 4], ["T", "t"], 1.0)  # ER30 of 10: keep 7, cutting episode 2 after 1 step
    random = episodes_dataset([2, 4], ["T", "T"], 0.0)  # take 3: episode 2 cut after 1 step
    data, mask = contaminate(expert, random, 30)
    data.validate()
    assert data.terminals.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 1, 0]
    assert data.timeouts.tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1]
    assert data.episode_ids.tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 2, 3]


def test_percent_out_of_range_and_short_contaminant():
    expert = episodes_dataset([10], ["T"], 1.0)
    with pytest.raises(ValueError, match="1..99"):
        contaminate(expert, expert, 0)
    with pytest.raises(ValueError, match="the contaminant has only 2"):
        contaminate(expert, episodes_dataset([2], ["T"], 0.0), 50)
