import numpy as np
import pytest

from offrl.data import Dataset
from offrl.data.contaminate import contaminant_count, contaminate


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
    assert mask.sum() == int(percent / 100 * 1037) == (data.rewards == 0).sum()
    assert (data.rewards[~mask] == 1).all() and not mask[: len(data) - mask.sum()].any()


# The TD3BC++ paper's Table 3: (total, expert, random) transitions of expert-random-X per env and X.
TABLE3 = {
    "hopper": {
        10: (999_034, 899_131, 99_903),
        30: (999_034, 699_324, 299_710),
        50: (999_034, 499_517, 499_517),
        70: (999_034, 299_711, 699_323),
    },
    "walker2d": {
        10: (999_304, 899_374, 99_930),
        30: (999_304, 699_513, 299_791),
        50: (999_304, 499_652, 499_652),
        70: (999_304, 299_792, 699_512),
    },
    "halfcheetah": {
        10: (998_999, 899_100, 99_899),
        30: (998_999, 699_300, 299_699),
        50: (998_999, 499_500, 499_499),
        70: (998_999, 299_700, 699_299),
    },
}


@pytest.mark.parametrize("env", sorted(TABLE3))
def test_contaminant_counts_are_table3s(env):
    # floor(X·N): round() was off by one in 5 of these 12 (Hopper and Walker2d ER7, HalfCheetah ER1/3/5).
    for percent, (total, expert, random) in TABLE3[env].items():
        assert contaminant_count(total, percent) == random
        assert total - contaminant_count(total, percent) == expert


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


def test_top_episodes_by_return():
    # Five episodes with returns 2·1, 3·5, 1·9, 4·2, 2·7 = 2, 15, 9, 8, 14.
    parts = [episodes_dataset([n], ["T"], v) for n, v in ((2, 1.0), (3, 5.0), (1, 9.0), (4, 2.0), (2, 7.0))]
    data = Dataset.concatenate(parts)
    best = data.top_episodes(0.4)  # round(0.4 · 5) = 2 episodes: returns 15 and 14, in dataset order
    best.validate()
    assert best.rewards.tolist() == [5, 5, 5, 7, 7] and best.episode_ids.tolist() == [0, 0, 0, 1, 1]
    assert len(data.top_episodes(0.01)) == 3  # at least one episode
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        data.top_episodes(0.0)


def test_ten_percent_presets_train_on_the_best_episodes():
    from offrl.algos.presets import training_data

    parts = [episodes_dataset([2], ["T"], float(v)) for v in range(20)]
    data = Dataset.concatenate(parts)
    assert training_data("td3bc", data) is data
    assert training_data("bc_10pct", data).rewards.tolist() == [18, 18, 19, 19]


def test_expert_first_n_names_parse_and_split():
    from offrl.commands.offline import split_dataset as _split_dataset
    from offrl.data.contaminate import parse_subset

    assert parse_subset("expert-first10000") == 10000
    assert parse_subset("expert-first0") is None and parse_subset("medium-first10") is None
    assert _split_dataset("halfcheetah-expert-first100000") == ("halfcheetah", "expert-first100000")
    with pytest.raises(ValueError, match="expert-firstN"):
        _split_dataset("hopper-expert-last10")
