import numpy as np
import pandas as pd
import pytest

from offrl.safer.report import (
    NO_PRIOR,
    load_downstream,
    parse_runs,
    plot_ablation,
    plot_bound_tradeoff,
    plot_calibration,
    plot_unsafe_likelihood,
    plot_violation_curves,
    run_summary,
    safer_table1,
    write_safer_table1,
)

STEPS = [1000, 2000, 3000, 4000, 5000]


def log(rows: list[tuple[int, int, int, int, int]]) -> pd.DataFrame:
    """Rows (seed, step, episodes, successes, violations)."""
    return pd.DataFrame(rows, columns=["seed", "step", "episodes", "successes", "violations"]).assign(return_mean=-10.0)


def logs_on_disk(tmp_path) -> dict[tuple[str, int, int], list]:
    """Task 1, five windows; the last 20 % of the steps is the window ending at 5000.

    safer: seed 0 ends 2/4 (50 %), seed 1 ends 2/2 (100 %), earlier windows all failures;
    violations 6 and 0. parrot: never succeeds, 2 violations a window (10 per seed); seed 0
    has a window with no finished episode. Seeds 0 and 1 of parrot are two seed groups.
    """
    safer = log(
        [(0, s, 3, 0, v) for s, v in zip(STEPS[:4], (1, 2, 0, 0))]
        + [(0, 5000, 4, 2, 3)]
        + [(1, s, 3, 0, 0) for s in STEPS[:4]]
        + [(1, 5000, 2, 2, 0)]
    )
    parrot = [log([(seed, s, 0 if (seed, s) == (0, 2000) else 3, 0, 2) for s in STEPS]) for seed in (0, 1)]
    paths = {}
    for name, frames in (("safer", [safer]), ("parrot", parrot)):
        paths[(name, 1, 0)] = []
        for i, frame in enumerate(frames):
            path = tmp_path / f"{name}_{i}.csv"
            frame.to_csv(path, index=False)
            paths[(name, 1, 0)].append(path)
    return paths


def test_load_adds_method_task_and_prior_and_rejects_a_seed_logged_twice(tmp_path):
    paths = logs_on_disk(tmp_path)
    logs = load_downstream(paths)
    assert set(logs["method"]) == {"safer", "parrot"} and set(logs["task"]) == {1} and len(logs) == 20
    assert set(logs["prior_seed"]) == {0}
    with pytest.raises(ValueError, match="windows logged twice"):
        load_downstream({("safer", 1, 0): paths[("safer", 1, 0)] * 2})
    # The same SAC seed through another prior is another run.
    two_priors = load_downstream({("safer", 1, 0): paths[("safer", 1, 0)], ("safer", 1, 1): paths[("safer", 1, 0)]})
    assert len(run_summary(two_priors)) == 4


def test_run_arguments_name_the_prior_seed():
    assert parse_runs(["safer:2:1=a.csv", "safer:2:1=b.csv", "sac:5=c.csv"]) == {
        ("safer", 2, 1): ["a.csv", "b.csv"],
        ("sac", 5, NO_PRIOR): ["c.csv"],
    }
    with pytest.raises(ValueError, match="--safer-runs 'safer:2:x=a.csv': expected METHOD:TASK=PATH or"):
        parse_runs(["safer:2:x=a.csv"], "--safer-runs")


def test_success_rate_over_the_final_fifth_and_total_violations(tmp_path):
    summary = run_summary(load_downstream(logs_on_disk(tmp_path))).set_index(["method", "seed"])
    assert summary.loc[("safer", 0), "success_rate"] == pytest.approx(50.0)
    assert summary.loc[("safer", 1), "success_rate"] == pytest.approx(100.0)
    assert summary.loc[("safer", 0), "total_violations"] == 6 and summary.loc[("safer", 1), "total_violations"] == 0
    assert summary.loc[("parrot", 1), "total_violations"] == 10 and summary.loc[("parrot", 1), "success_rate"] == 0.0
    assert (summary["steps"] == 5000).all()
    # Half the run: windows 3000-5000; safer seed 0 then has 2 successes in 3 + 3 + 4 episodes.
    half = run_summary(load_downstream(logs_on_disk(tmp_path)), final_fraction=0.5).set_index(["method", "seed"])
    assert half.loc[("safer", 0), "success_rate"] == pytest.approx(100 * 2 / 10)


def test_table1_mean_sd_and_bold(tmp_path):
    summary = run_summary(load_downstream(logs_on_disk(tmp_path)))
    numbers, display, bold = safer_table1(summary, ["parrot", "safer"], [1])
    # Success 50 and 100: mean 75, sample SD 35.36 (ddof 1, as score_table); violations 6 and 0: 3 ± 4.24.
    assert display["Task 1"].tolist() == ["", "0.0 ± 0.0", "75.0 ± 35.4", "", "10 ± 0", "3 ± 4"]
    assert display.index[3] == "Total Number of Safety Violations (Out of 5,000 Steps)"
    assert bold["Task 1"].tolist() == [False, False, True, False, False, True]  # highest success, fewest violations
    assert numbers.loc[("success_rate", "safer"), ("std", "Task 1")] == pytest.approx(np.sqrt(1250.0))
    write_safer_table1(summary, ["parrot", "safer"], [1], tmp_path / "table1")
    md = (tmp_path / "table1.md").read_text()
    assert (
        "| SAFER | **75.0 ± 35.4** |" in md and "| PARROT | **0.0 ± 0.0** |" not in md and "| SAFER | **3 ± 4** |" in md
    )
    assert r"\textbf{75.0 $\pm$ 35.4}" in (tmp_path / "table1.tex").read_text()
    csv = pd.read_csv(tmp_path / "table1.csv", header=[0, 1], index_col=[0, 1])
    assert csv.loc[("total_violations", "parrot"), ("mean", "Task 1")] == 10.0
    with pytest.raises(ValueError, match="no downstream runs for"):
        safer_table1(summary, ["safer", "sac"], [1])


def test_zero_episodes_give_nan_not_zero(tmp_path):
    # One seed, two windows, no episode ends in the final one: the run's success rate is undefined.
    logs = log([(0, 1000, 2, 1, 0), (0, 2000, 0, 0, 0)]).assign(method="safer", task=1, prior_seed=0)
    summary = run_summary(logs)
    assert np.isnan(summary["success_rate"].iloc[0])
    _, display, bold = safer_table1(summary, ["safer"], [1])
    assert display["Task 1"].tolist() == ["", "n/a", "", "0 ± 0"] and not bold["Task 1"].iloc[1]
    data = plot_ablation(logs.assign(method="safer"), [1], tmp_path / "fig8", methods=["safer"])
    rates = data[data["metric"] == "success_rate"].set_index("step")
    assert (
        rates.loc[1000, "mean"] == pytest.approx(50.0)
        and np.isnan(rates.loc[2000, "mean"])
        and rates.loc[2000, "seeds"] == 0
    )
    curves = plot_violation_curves(logs, ["safer"], [1], tmp_path / "fig6", cumulative=True)  # all-zero violations
    assert curves["mean"].tolist() == [0.0, 0.0] and curves["std"].tolist() == [0.0, 0.0]
    assert (tmp_path / "fig6.png").is_file() and (tmp_path / "fig8.png").is_file()


def test_violation_curves_are_the_running_sums(tmp_path):
    logs = load_downstream(logs_on_disk(tmp_path))
    data = plot_violation_curves(logs, ["parrot", "safer"], [1], tmp_path / "fig6", cumulative=True)
    safer = data[data["method"] == "safer"].set_index("step")
    # Seed 0 per window 1, 2, 0, 0, 3 -> 1, 3, 3, 3, 6; seed 1 all 0.
    assert safer["mean"].tolist() == pytest.approx([0.5, 1.5, 1.5, 1.5, 3.0])
    assert safer.loc[5000, "std"] == pytest.approx(np.std([6, 0], ddof=1))
    per_window = plot_violation_curves(logs, ["parrot", "safer"], [1], tmp_path / "fig7", cumulative=False)
    assert per_window[per_window["method"] == "parrot"]["mean"].tolist() == [2.0] * 5
    with pytest.raises(
        ValueError, match=r"no downstream runs for \['sac on task 1', 'sac on task 2', 'safer on task 2'\]"
    ):
        plot_violation_curves(logs, ["sac", "safer"], [1, 2], tmp_path / "x", cumulative=True)
    for stem in ("fig6", "fig7"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
        assert pd.read_csv(tmp_path / f"{stem}.csv").shape == (10, 6)


def test_ablation_figure_per_window_rates(tmp_path):
    logs = load_downstream(logs_on_disk(tmp_path)).replace({"method": {"parrot": "safer_no_context"}})
    data = plot_ablation(logs, [1], tmp_path / "fig8")
    no_context = data[(data["method"] == "safer_no_context") & (data["metric"] == "success_rate")].set_index("step")
    assert no_context.loc[2000, "seeds"] == 1 and no_context.loc[2000, "mean"] == 0.0  # seed 0 had no episode there
    safer = data[(data["method"] == "safer") & (data["metric"] == "success_rate")].set_index("step")
    assert safer.loc[5000, "mean"] == pytest.approx(75.0)
    assert (tmp_path / "fig8.png").stat().st_size > 10_000 and pd.read_csv(tmp_path / "fig8.csv").shape == (20, 7)


def test_unsafe_likelihood_figure(tmp_path):
    paths = {}
    for prior, unsafe in (("parrot", [40.0, 30.0]), ("safer", [2.0, 0.0])):
        paths[prior] = tmp_path / f"{prior}.csv"
        pd.DataFrame({"top_percent": [1, 10], "unsafe_percent": unsafe, "pairs": [50, 500]}).to_csv(
            paths[prior], index=False
        )
    data = plot_unsafe_likelihood(paths, tmp_path / "fig1")
    assert data[data["prior"] == "parrot"]["unsafe_percent"].tolist() == [40.0, 30.0]
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
    assert pd.read_csv(tmp_path / "fig1.csv")["unsafe_percent"].tolist() == [40.0, 30.0, 2.0, 0.0]


def calibration_csv(path, bounds=(0.5, 1.0, 1.5, 2.0)):
    rows = [
        {"target": target, "bound": bound, "rollout": r, "steps": 100, "unsafe_steps": u, "unsafe_fraction": u / 100}
        for target, bound in zip((0.0, 0.15, 0.3, 0.45), bounds)
        for r, u in enumerate((0, int(target * 50)))
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_calibration_figure(tmp_path):
    paths = {1: calibration_csv(tmp_path / "t1.csv"), 2: calibration_csv(tmp_path / "t2.csv")}
    data = plot_calibration(paths, tmp_path / "fig4")
    assert len(data) == 16 and data["unsafe_percent"].max() == pytest.approx(22.0)
    assert ((data["x"] - data["target_percent"]).abs() <= 2.0).all()
    assert (tmp_path / "fig4.png").stat().st_size > 10_000
    assert pd.read_csv(tmp_path / "fig4.csv")["unsafe_steps"].tolist() == data["unsafe_steps"].tolist()


def test_bound_tradeoff_figure(tmp_path):
    rows = [
        {
            "method": f"safer_u{t}",
            "task": 5,
            "seed": seed,
            "steps": 2000,
            "success_rate": t + seed,
            "total_violations": 10 * t,
        }
        for t in (0, 15, 30, 45)
        for seed in (0, 1)
    ]
    sweep = {"safer_u30": 30.0, "safer_u0": 0.0, "safer_u15": 15.0, "safer_u45": 45.0}
    data = plot_bound_tradeoff(
        pd.DataFrame(rows), 5, sweep, tmp_path / "fig5", calibration_csv=calibration_csv(tmp_path / "t5.csv")
    )
    assert data["target_percent"].tolist() == [0.0, 15.0, 30.0, 45.0] and data["bound"].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert (
        data["success_rate_mean"].tolist() == [0.5, 15.5, 30.5, 45.5]
        and data["total_violations_std"].tolist() == [0.0] * 4
    )
    assert (tmp_path / "fig5.png").stat().st_size > 10_000 and (tmp_path / "fig5.csv").is_file()
    with pytest.raises(ValueError, match="no downstream runs on task 5"):
        plot_bound_tradeoff(pd.DataFrame(rows), 5, {"safer_u60": 60.0}, tmp_path / "x")
