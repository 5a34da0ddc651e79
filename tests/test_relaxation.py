"""TD3BC++'s relaxation weight by time within the episode: the time steps, the binning, a run read back."""

import numpy as np
import pytest

from offrl.data.dataset import write_minari
from offrl.report.relaxation import episode_time, relaxation_by_time, weight_by_time
from offrl.train import train


def test_episode_time_by_hand(tiny_dataset):
    assert episode_time(tiny_dataset).tolist() == [0, 1, 2, 0, 1, 2, 3]  # episodes of 3 and 4 transitions


def test_weight_by_time_by_hand():
    # One seed, one batch: W = 0, 0.25, 0.5, 1 at times 0..3; bins [0, 2) and [2, 4) average 0.125 and 0.75.
    weights = np.array([[[0.0, 0.25, 0.5, 1.0]]])
    times = np.array([[0, 1, 2, 3]])
    np.testing.assert_allclose(weight_by_time(weights, times, [0, 2, 4]), [[0.125, 0.75]])
    assert np.isnan(weight_by_time(weights, times, [0, 4, 8])[0, 1])  # no transition at times 4..7


def _run(tmp_path, tiny_dataset, cpu_config, algorithm: str):
    config = cpu_config(
        steps=4, eval_every=2, log_every=1, batch_size=4, algorithm=algorithm, seeds=(0, 1), options={"hidden": [8, 8]}
    )
    train(tiny_dataset, config, tmp_path / algorithm, progress=False)
    return tmp_path / algorithm


def test_a_td3bc_pp_run_read_back(tmp_path, tiny_dataset, one_thread, cpu_config):
    dataset_dir = write_minari(tiny_dataset, tmp_path / "minari", "hopper/tiny-v0", env="hopper")
    table = relaxation_by_time(_run(tmp_path, tiny_dataset, cpu_config, "td3bc_pp"), dataset_dir, [0, 1, 4], batches=3)
    assert table[["step", "seed"]].values.tolist() == [[2, 0], [2, 1], [4, 0], [4, 1]]
    weights = table[["W[0,1)", "W[1,4)", "W"]].to_numpy()
    assert ((weights >= 0) & (weights <= 1)).all()  # min-max normalised per minibatch

    with pytest.raises(ValueError, match="td3bc has no constraint relaxation"):
        relaxation_by_time(_run(tmp_path, tiny_dataset, cpu_config, "td3bc"), dataset_dir)
