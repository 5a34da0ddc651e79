"""The slides' Q diagnostic: discounted Monte-Carlo returns, truncated tails, the modules a critic reads,
the per-episode rows, the Q − return table and its figure."""

import numpy as np
import pandas as pd
import pytest
import torch

from offrl.algos.presets import build
from offrl.evaluate import evaluate_snapshots
from offrl.qdiagnostic import Rollouts, comparable_steps, critic_modules, discounted_returns, rollout_rows, tail_horizon
from offrl.report.overestimation import NO_Q, NOT_KEPT, overestimation_table, per_snapshot, plot_overestimation
from offrl.train import TrainConfig, critic_steps, train


def test_discounted_returns_by_hand():
    # γ = 0.5: G₃ = 4, G₂ = 3 + 2 = 5, G₁ = 2 + 2.5 = 4.5, G₀ = 1 + 2.25 = 3.25
    assert discounted_returns(np.array([1.0, 2.0, 3.0, 4.0]), 0.5) == pytest.approx([3.25, 4.5, 5.0, 4.0])
    assert discounted_returns(np.array([1.0, 1.0]), 0.9) == pytest.approx([1.9, 1.0])  # nothing after the last step


def test_tail_horizon():
    assert tail_horizon(0.5, 0.25) == 2  # γ² = 0.25 ≤ tail, γ¹ = 0.5 is not
    assert tail_horizon(0.99, 0.01) == 459  # 0.99^459 ≈ 0.00995, 0.99^458 ≈ 0.01005
    with pytest.raises(ValueError, match="tail must be in"):
        tail_horizon(0.99, 0.0)


def test_terminated_episodes_count_every_step_truncated_ones_drop_their_tail():
    assert comparable_steps(5, truncated=False, discount=0.5, tail=0.25).all()
    # Cut by the time limit after 5 steps: step t misses γ^(5−t)·V(s₅); with tail 0.25 (H = 2) steps 0..3 count.
    assert comparable_steps(5, truncated=True, discount=0.5, tail=0.25).tolist() == [True, True, True, True, False]
    assert not comparable_steps(1, truncated=True, discount=0.5, tail=0.25).any()


def test_rollout_rows_by_hand():
    """Two members, one episode each: member 0 falls after 2 steps, member 1 is cut by the time limit after 3."""
    rollouts = Rollouts()
    true, false = np.ones(2, bool), np.zeros(2, bool)
    obs = [np.array([[0.0], [10.0]]), np.array([[1.0], [11.0]]), np.array([[9.0], [12.0]])]
    rollouts(obs[0], np.zeros((2, 1)), np.array([1.0, 1.0]), false, false, true)
    rollouts(obs[1], np.zeros((2, 1)), np.array([2.0, 1.0]), np.array([True, False]), false, true)
    # Member 0's env has reset: its step is not live and must not count.
    rollouts(obs[2], np.zeros((2, 1)), np.array([100.0, 1.0]), false, np.array([False, True]), np.array([False, True]))

    def q(obs, actions):  # Q(s, a) = state of member s, plus 100·member
        return obs[..., 0] + 100.0 * torch.arange(obs.shape[0])[:, None]

    rows = rollout_rows(rollouts, q, torch.zeros(1), torch.ones(1), members=2, discount=0.5, tail=0.25)
    fell, cut = rows.iloc[0], rows.iloc[1]
    assert (fell["length"], fell["terminated"], cut["length"], cut["terminated"]) == (2, True, 3, False)
    # Member 0: rewards 1, 2 → G = [2, 2]; Q = [0, 1]. Every step counts.
    assert (fell["return_initial"], fell["q_initial"], fell["comparable_steps"]) == (2.0, 0.0, 2)
    assert (fell["return_along"], fell["q_along"]) == pytest.approx((2.0, 0.5))
    # Member 1: rewards 1, 1, 1 → G = [1.75, 1.5, 1]; H = 2 keeps step 0 and 1; Q = 100 + [10, 11].
    assert (cut["return_initial"], cut["initial_comparable"], cut["comparable_steps"]) == (1.75, True, 2)
    assert (cut["return_along"], cut["q_along"]) == pytest.approx((1.625, 110.5))
    no_q = rollout_rows(rollouts, None, torch.zeros(1), torch.ones(1), members=2, discount=0.5, tail=0.25)
    assert no_q[["q_initial", "q_along"]].isna().all().all() and no_q["return_initial"].tolist() == [2.0, 1.75]


@pytest.mark.parametrize(
    "algorithm, expected",
    [("bc", ()), ("td3bc", ("critic",)), ("sac", ("critic",)), ("bear", ("critic",)), ("bcq", ("actor",))],
)
def test_critic_modules_are_found_and_left_untouched(algorithm, expected, one_thread):
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    options = {"hidden": [8, 8], **({"vae_hidden": [8, 8]} if algorithm in ("bear", "bcq") else {})}
    algo = build(algorithm, 11, 3, generators, torch.device("cpu"), options)
    modules = [name for name in algo.checkpointed if isinstance(getattr(algo, name), torch.nn.Module)]
    before = {name: [p.clone() for p in getattr(algo, name).parameters()] for name in modules}
    stream = generators[0].get_state()
    assert critic_modules(algo, 11, 3, "cpu") == expected  # BCQ's critic lives in its policy
    for name in modules:
        assert all(torch.equal(a, b) for a, b in zip(before[name], getattr(algo, name).parameters()))
    assert torch.equal(stream, generators[0].get_state())


def diagnostics_by_hand() -> pd.DataFrame:
    """Two algorithms on one dataset, snapshots 1 and 2, seeds 0 and 1, two episodes each; BC has no Q."""
    rows = []
    for step in (1, 2):
        for seed in (0, 1):
            for episode in (0, 1):
                ret = 10.0 + episode  # mean return from s₀: 10.5
                rows.append(
                    {
                        "algorithm": "sac",
                        "dataset": "d",
                        "step": step,
                        "seed": seed,
                        "episode": episode,
                        "critic": "kept",
                        "q_dataset_initial": 100.0 * step + seed,
                        "return_initial": ret,
                        "initial_comparable": True,
                        "q_along": 50.0 + episode,
                        "return_along": 5.0,
                        "comparable_steps": 1 + episode,
                    }
                )
                rows.append(
                    {
                        "algorithm": "bc",
                        "dataset": "d",
                        "step": step,
                        "seed": seed,
                        "episode": episode,
                        "critic": "none",
                        "q_dataset_initial": np.nan,
                        "return_initial": ret + 1,
                        "initial_comparable": episode == 0,
                        "q_along": np.nan,
                        "return_along": 5.0,
                        "comparable_steps": 3,
                    }
                )
    return pd.DataFrame(rows)


def test_per_snapshot_by_hand():
    snapshots = per_snapshot(diagnostics_by_hand()).set_index(["algorithm", "step", "seed"])
    sac = snapshots.loc[("sac", 2, 1)]
    assert (sac["q"], sac["return"], sac["gap"]) == (201.0, 10.5, 190.5)
    # Along rollouts, weighted by comparable steps: (1·45 + 2·46) / 3
    assert sac["gap_along"] == pytest.approx(137.0 / 3)
    bc = snapshots.loc[("bc", 1, 0)]
    assert (
        bc["return"] == 11.0 and np.isnan(bc["q"]) and np.isnan(bc["gap"]) and np.isnan(bc["gap_along"])
    )  # episode 1 not comparable


def test_overestimation_table_by_hand():
    data, display = overestimation_table(diagnostics_by_hand(), ["sac", "bc"], ["d"], last=1)
    sac = data.loc["sac"]
    # Last snapshot: gaps 200 − 10.5 and 201 − 10.5 → mean 190, population std 0.5.
    assert (sac["q_mean"], sac["gap_mean"], sac["gap_std"], sac["critic"]) == (200.5, 190.0, 0.5, "kept")
    assert display.loc["sac", "Q − return"] == "190.0 ± 0.5"
    assert display.loc["bc", "Q − return"] == NO_Q and display.loc["bc", "discounted return"] == "11.0 ± 0.0"
    assert data.loc["bc", "critic"] == "none"
    legacy = diagnostics_by_hand().assign(critic=lambda d: d["critic"].where(d["algorithm"] == "bc", "not kept"))
    legacy.loc[legacy["algorithm"] == "sac", ["q_dataset_initial", "q_along"]] = np.nan
    assert overestimation_table(legacy, ["sac"], ["d"], last=1)[1].loc["sac", "Q − return"] == NOT_KEPT
    averaged, _ = overestimation_table(diagnostics_by_hand(), ["sac"], ["d"], last=2)
    assert averaged.loc["sac", "gap_mean"] == 140.0  # snapshots 1 and 2: q 150.5 on average
    with pytest.raises(ValueError, match="no Q diagnostic for"):
        overestimation_table(diagnostics_by_hand(), ["td3bc"], ["d"], last=1)


def test_overestimation_figure_from_tiny_input(tmp_path):
    curves = plot_overestimation(diagnostics_by_hand(), tmp_path / "fig", ["sac", "bc"], ["d"])
    assert (tmp_path / "fig.png").stat().st_size > 0 and (tmp_path / "fig.pdf").is_file()
    written = pd.read_csv(tmp_path / "fig.csv")
    assert set(written["algorithm"]) == {"sac", "bc"} and len(written) == len(curves) == 4
    assert written.query("algorithm == 'sac' and step == 2")["gap_mean"].item() == 190.0


def test_critic_steps_keep_the_last_snapshot_and_every_kth_before_it():
    config = TrainConfig(
        algorithm="sac",
        env="hopper",
        dataset="d",
        seeds=[0],
        steps=1000,
        eval_every=100,
        log_every=100,
        critic_snapshots=20,
    )
    assert critic_steps(config) == set(range(100, 1001, 100))  # ten snapshots, all kept
    config.critic_snapshots = 3  # k = ⌈10 / 3⌉ = 4
    assert critic_steps(config) == {1000, 600, 200}
    config.critic_snapshots = 1
    assert critic_steps(config) == {1000}


def test_a_run_keeps_its_critic_where_asked_and_the_evaluation_follows(tiny_dataset, tmp_path, one_thread, cpu_config):
    config = cpu_config(
        steps=4,
        eval_every=1,
        log_every=1,
        batch_size=4,
        algorithm="sac",
        seeds=(0, 1),
        options={"hidden": [8, 8]},
        critic_snapshots=2,
    )
    train(tiny_dataset, config, tmp_path, progress=False)
    run = torch.load(tmp_path / "snapshots.pt", weights_only=True)
    assert (
        sorted(run["actors"]) == [1, 2, 3, 4]
        and sorted(run["critics"]) == [2, 4]
        and set(run["critics"][4]) == {"critic"}
    )
    assert run["initial_states"].shape == (2, 11)  # the tiny dataset's two episode starts
    assert torch.equal(run["initial_states"][1], torch.as_tensor(tiny_dataset.observations[3]))
    scores, diagnostic = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=1)
    assert sorted(scores["step"].unique()) == [1, 2, 3, 4] and sorted(diagnostic["step"].unique()) == [2, 4]
    assert (diagnostic["discount"] == 0.99).all() and np.isfinite(diagnostic["q_dataset_initial"]).all()


@pytest.mark.parametrize(
    "preset", ["td3bc", "sac", "bear", "bcq", "cql", "cql_rho", "iql", "fisher_brc", "uwac", "brac_p", "brac_v"]
)
def test_every_preset_with_a_critic_names_the_modules_its_q_reads(preset):
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    algo = build(preset, 3, 2, generators, torch.device("cpu"), {})
    names = critic_modules(algo, 3, 2, "cpu")
    assert names and all(name in algo.checkpointed for name in names)
