import numpy as np
import pandas as pd
import pytest

from offrl.report.scores import final_scores, plot_learning_curves, score_table
from offrl.report.tables import to_latex, to_markdown


def evaluations() -> pd.DataFrame:
    """Two algorithms, two datasets, two seeds, 4 evaluation steps of 2 episodes each.

    Score = 10·step_index + seed for algorithm a, 2× that for algorithm b; episodes ±1 around it.
    """
    rows = []
    for algorithm, factor in (("a", 1), ("b", 2)):
        for dataset in ("hopper-medium", "hopper-expert"):
            for seed in (0, 1):
                for k, step in enumerate((100, 200, 300, 400)):
                    for episode, jitter in ((0, -1.0), (1, 1.0)):
                        rows.append(
                            {
                                "algorithm": algorithm,
                                "dataset": dataset,
                                "seed": seed,
                                "step": step,
                                "episode": episode,
                                "normalized_score": factor * (10 * k + seed) + jitter,
                            }
                        )
    return pd.DataFrame(rows)


def test_final_score_is_the_mean_of_the_last_evaluations():
    final = final_scores(evaluations(), last=2).set_index(["algorithm", "dataset", "seed"])
    # Last two evaluations of algorithm a, seed 1: (20 + 1 + 30 + 1) / 2 = 26.
    assert final.loc[("a", "hopper-medium", 1), "normalized_score"] == pytest.approx(26.0)
    assert final.loc[("b", "hopper-expert", 0), "normalized_score"] == pytest.approx(50.0)
    assert (final["evaluations"] == 2).all()


def test_score_table_mean_std_total_and_bold():
    final = final_scores(evaluations(), last=2)
    numbers, display, bold = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"])
    # a: seeds score 25 and 26 -> mean 25.5, sample std 0.707; b: 50 and 52 -> 51 ± 1.414.
    assert display.loc["hopper-medium", "a"] == "25.5 ± 0.7"
    assert display.loc["hopper-medium", "b"] == "51.0 ± 1.4"
    assert numbers.loc["Total", ("mean", "b")] == pytest.approx(102.0)
    assert numbers.loc["Total", ("std", "a")] == pytest.approx(np.sqrt(2 * 0.5))
    assert bold.loc["hopper-medium"].tolist() == [False, True] and bold.loc["Total"].tolist() == [False, True]
    md = to_markdown(display, bold)
    assert "| hopper-medium | 25.5 ± 0.7 | **51.0 ± 1.4** |" in md
    assert r"\textbf{51.0 $\pm$ 1.4}" in to_latex(display, bold)


def test_missing_cell_is_an_error():
    final = final_scores(evaluations(), last=2)
    with pytest.raises(ValueError, match="no scores for"):
        score_table(final, ["a", "c"], ["hopper-medium"])


def test_learning_curve_files(tmp_path):
    plot_learning_curves(evaluations(), tmp_path / "curves", ["a", "b"], ["hopper-medium", "hopper-expert"])
    assert (tmp_path / "curves.png").stat().st_size > 10_000 and (tmp_path / "curves.pdf").is_file()


def safety_evaluations() -> pd.DataFrame:
    """td3bc and guided_td3bc on two datasets: per-episode falls, unsafe-height steps and Σ|a|."""
    rows = []
    for algorithm, fell, unsafe, abs_action in (("td3bc", True, 3, 10.0), ("guided_td3bc", False, 1, 6.0)):
        for dataset in ("hopper-medium", "walker2d-medium-replay"):
            for seed in (0, 1):
                for step in (100, 200):
                    rows.append(
                        {
                            "algorithm": algorithm,
                            "dataset": dataset,
                            "seed": seed,
                            "step": step,
                            "episode": 0,
                            "length": 50,
                            "fell": fell,
                            "unsafe_height_steps": unsafe,
                            "sum_abs_action": abs_action,
                        }
                    )
    return pd.DataFrame(rows)


def test_safety_totals_and_percent_difference():
    from offrl.report.safety import safety_comparison, safety_totals

    totals = safety_totals(safety_evaluations()).set_index(["algorithm", "dataset"])
    # td3bc: 4 episodes, each a fall with 3 unsafe steps -> 4 events (once per episode); guided: 4 × 1 -> 4.
    assert totals.loc[("td3bc", "hopper-medium"), "events"] == 4
    assert (
        totals.loc[("td3bc", "hopper-medium"), "falls"] == 4
        and totals.loc[("td3bc", "hopper-medium"), "unsafe_height_steps"] == 12
    )
    assert totals.loc[("guided_td3bc", "hopper-medium"), "sum_abs_action"] == pytest.approx(24.0)
    comparison = safety_comparison(
        safety_evaluations(), "td3bc", "guided_td3bc", ["hopper-medium", "walker2d-medium-replay"]
    )
    assert comparison["label"].tolist() == ["h-m", "w-mr"]
    assert comparison.loc["hopper-medium", "events_change_pct"] == pytest.approx(0.0)  # 4 unsafe episodes each
    assert comparison.loc["walker2d-medium-replay", "sum_abs_action_change_pct"] == pytest.approx(
        100 * (24 - 40) / 40
    )  # -40 %


def test_a_height_fall_is_one_event_not_two():
    """Walker2d-v5 with constant action 1: the step whose height leaves (0.8, 2.0) is the terminating step,
    so every episode has fell = True and one unsafe-height step; Figure 1 counts it once."""
    from offrl.evaluate import evaluate_policy
    from offrl.report.safety import safety_totals

    episodes = evaluate_policy(lambda obs: np.ones((len(obs), 6)), "walker2d", episodes=3, seed=0)
    assert episodes["fell"].all() and (episodes["unsafe_height_steps"] == 1).all()
    totals = safety_totals(episodes.assign(algorithm="constant", dataset="walker2d-medium")).iloc[0]
    assert totals["events"] == 3  # one per episode; fell + unsafe_height_steps would be 6
    # A safe episode counts 0, one with unsafe height but no fall (termination off) counts 1.
    rows = pd.DataFrame(
        {
            "algorithm": "a",
            "dataset": "hopper-medium",
            "episode": [0, 1, 2],
            "length": 10,
            "fell": [False, False, True],
            "unsafe_height_steps": [0, 5, 0],
            "sum_abs_action": 1.0,
        }
    )
    assert safety_totals(rows).iloc[0]["events"] == 2


def test_safety_extension_datasets_follow_marked():
    from offrl.report.safety import safety_comparison

    comparison = safety_comparison(
        safety_evaluations(), "td3bc", "guided_td3bc", ["walker2d-medium-replay"], extension=["hopper-medium"]
    )
    assert comparison["label"].tolist() == ["w-mr", "h-m*"]


def test_percent_change_with_a_zero_baseline():
    from offrl.report.safety import percent_change

    assert (
        percent_change(0, 0) == 0.0 and np.isnan(percent_change(3, 0)) and percent_change(5, 4) == pytest.approx(25.0)
    )


def test_safety_comparison_needs_both_algorithms_and_equal_episodes():
    from offrl.report.safety import safety_comparison

    data = safety_evaluations()
    with pytest.raises(ValueError, match="no evaluations for"):
        safety_comparison(data, "td3bc", "bc", ["hopper-medium"])
    with pytest.raises(ValueError, match="evaluation episodes"):
        safety_comparison(data.iloc[1:], "td3bc", "guided_td3bc", ["hopper-medium"])


def test_safety_figure_files(tmp_path):
    from offrl.report.safety import plot_safety_comparison, safety_comparison, write_safety_comparison

    comparison = safety_comparison(
        safety_evaluations(), "td3bc", "guided_td3bc", ["hopper-medium", "walker2d-medium-replay"]
    )
    write_safety_comparison(comparison, tmp_path / "fig1")
    plot_safety_comparison(comparison, tmp_path / "fig1", "guided_td3bc", "td3bc")
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
    assert "| hopper-medium | h-m | 4 | 4 | 4 | 0.0 |" in (tmp_path / "fig1.md").read_text()


def test_total_gain_over_a_baseline():
    final = final_scores(evaluations(), last=2)
    _, display, _ = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"], gains={"b": "a"})
    # Totals: a 25.5 + 25.5 = 51, b 102: +100 %.
    assert display.loc["Total", "b"] == "102.0 ± 2.0 (+100.0% vs a)" and display.loc["Total", "a"] == "51.0 ± 1.0"


def test_contamination_curve_numbers_and_files(tmp_path):
    from offrl.report.scores import plot_contamination_curves

    rows = [
        {"algorithm": algo, "dataset": dataset, "seed": seed, "normalized_score": score + seed}
        for algo, drop in (("td3bc", 30.0), ("td3bc_pp", 5.0))
        for dataset, score in (("walker2d-expert", 100.0), ("walker2d-expert-random-30", 100.0 - drop))
        for seed in (0, 2)
    ]
    data = plot_contamination_curves(pd.DataFrame(rows), tmp_path / "fig3", ["td3bc", "td3bc_pp"], ["walker2d"], [30])
    curve = data.set_index(["algorithm", "percent"])
    assert curve.loc[("td3bc", 30), "mean"] == pytest.approx(71.0) and curve.loc[
        ("td3bc_pp", 0), "mean"
    ] == pytest.approx(101.0)
    assert curve.loc[("td3bc", 0), "std"] == pytest.approx(np.sqrt(2.0))
    assert (tmp_path / "fig3.png").stat().st_size > 10_000 and (tmp_path / "fig3.csv").is_file()
    with pytest.raises(ValueError, match="no final scores for td3bc on walker2d-expert-random-50"):
        plot_contamination_curves(pd.DataFrame(rows), tmp_path / "x", ["td3bc"], ["walker2d"], [50])


def test_box_figure_files_and_missing_cells(tmp_path):
    from offrl.report.scores import plot_final_boxes

    final = final_scores(evaluations(), last=2)
    plot_final_boxes(final, tmp_path / "boxes", ["a", "b"], ["hopper-medium", "hopper-expert"], title="ablation")
    assert (tmp_path / "boxes.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match=r"no final scores for \['c on hopper-medium'\]"):
        plot_final_boxes(final, tmp_path / "x", ["a", "c"], ["hopper-medium"])


def test_alpha_grid_numbers(tmp_path):
    from offrl.report.scores import plot_alpha_grid

    final = final_scores(evaluations(), last=2)  # a: 25.5 ± 0.7, b: 51 ± 1.4 on each dataset
    data = plot_alpha_grid(final, tmp_path / "fig7", [("a", 1.0, 0.0), ("b", 2.5, 0.0)], ["hopper-medium"])
    assert data["mean"].tolist() == pytest.approx([25.5, 51.0]) and data["alpha"].tolist() == [1.0, 2.5]
    assert (tmp_path / "fig7.png").stat().st_size > 10_000


def test_pooled_spread_and_summed_total_by_hand():
    """TD3BC++'s ±: the std over every final episode, evaluation and seed; both papers' Total ± is Σ of the row stds."""
    from offrl.report.scores import final_episodes

    data = evaluations()
    final, episodes = final_scores(data, last=2), final_episodes(data, last=2)
    # a on hopper-medium, last two evaluations (steps 300, 400), two episodes each:
    # seed 0: 19, 21, 29, 31; seed 1: 20, 22, 30, 32 -> mean 25.5, squared deviations sum to 210, sample std
    # √(210/7) = √30.
    cell = episodes[(episodes["algorithm"] == "a") & (episodes["dataset"] == "hopper-medium")]
    assert sorted(cell["normalized_score"]) == [19, 20, 21, 22, 29, 30, 31, 32]
    numbers, display, _ = score_table(
        final, ["a", "b"], ["hopper-medium", "hopper-expert"], spread="pooled", total_spread="sum", episodes=episodes
    )
    assert numbers.loc["hopper-medium", ("std", "a")] == pytest.approx(np.sqrt(30))
    assert numbers.loc["Total", ("std", "a")] == pytest.approx(2 * np.sqrt(30))  # Σ, not √Σvar
    assert display.loc["hopper-medium", "a"] == "25.5 ± 5.5" and display.loc["Total", "a"] == "51.0 ± 11.0"
    # The means do not depend on the spread; ours (per-seed std, √Σvar) stays the default.
    ours, _, _ = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"])
    assert ours.loc["Total", ("mean", "a")] == numbers.loc["Total", ("mean", "a")] == pytest.approx(51.0)
    summed, _, _ = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"], total_spread="sum")
    assert summed.loc["Total", ("std", "a")] == pytest.approx(2 * np.sqrt(0.5))  # the Guided paper's Table 1
    with pytest.raises(ValueError, match="final episodes"):
        score_table(final, ["a"], ["hopper-medium"], spread="pooled")
    with pytest.raises(ValueError, match="spread must be one of"):
        score_table(final, ["a"], ["hopper-medium"], spread="episodes")


def test_extension_rows_are_below_the_total_and_not_in_it():
    final = final_scores(evaluations(), last=2)
    numbers, display, bold = score_table(final, ["a", "b"], ["hopper-medium"], extension=["hopper-expert"])
    assert list(display.index) == ["hopper-medium", "Total", "hopper-expert (extension)"]
    assert numbers.loc["Total", ("mean", "a")] == pytest.approx(25.5)  # hopper-medium alone
    assert display.loc["hopper-expert (extension)", "b"] == "51.0 ± 1.4" and bold.loc[
        "hopper-expert (extension)"
    ].tolist() == [False, True]


def test_score_table_command_keeps_a_studys_seeds(tmp_path):
    from offrl.cli import main

    data = evaluations()
    data.to_csv(tmp_path / "evaluation.csv", index=False)
    main(
        [
            "score-table",
            "--algorithms",
            "a",
            "--datasets",
            "hopper-medium",
            "--last",
            "2",
            "--seeds",
            "1",
            "--total-spread",
            "sum",
            "--table",
            str(tmp_path / "t"),
            str(tmp_path / "evaluation.csv"),
        ]
    )
    assert "| hopper-medium | **26.0 ± 0.0** |" in (tmp_path / "t.md").read_text()  # seed 1 alone: (21 + 31) / 2
    with pytest.raises(SystemExit):
        main(
            [
                "score-table",
                "--algorithms",
                "a",
                "--datasets",
                "hopper-medium",
                "--seeds",
                "7",
                "--table",
                str(tmp_path / "u"),
                str(tmp_path / "evaluation.csv"),
            ]
        )


def test_score_table_iqm_row_by_hand():
    # a: hopper-medium seeds 0..3 score 0, 10, 20, 30; hopper-expert 40, 50, 60, 70. The 8 runs sorted,
    # the middle half is 20, 30, 40, 50: IQM 35. b: every run 5: IQM 5 with a point interval.
    rows = [("a", "hopper-medium", s, 10.0 * s) for s in range(4)] + [
        ("a", "hopper-expert", s, 40.0 + 10 * s) for s in range(4)
    ]
    rows += [("b", d, s, 5.0) for d in ("hopper-medium", "hopper-expert") for s in range(4)]
    final = pd.DataFrame(rows, columns=["algorithm", "dataset", "seed", "normalized_score"])
    numbers, display, bold = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"], iqm=True)
    assert list(display.index) == ["hopper-medium", "hopper-expert", "Total", "IQM"]
    assert numbers.loc["IQM", ("mean", "a")] == pytest.approx(35.0)
    assert list(numbers.index) == list(display.index)  # the interval is columns, not rows
    low, high = numbers.loc["IQM", ("ci_low", "a")], numbers.loc["IQM", ("ci_high", "a")]
    # Resampling within datasets keeps medium's 4 runs below expert's 4: the middle half is medium's top two
    # and expert's bottom two, so every replicate's IQM lies in [(0+0+40+40)/4, (30+30+70+70)/4] = [20, 50].
    assert 20.0 <= low < 35.0 < high <= 50.0
    assert display.loc["IQM", "b"] == "5.0 [5.0, 5.0]"
    assert bold.loc["IQM"].tolist() == [True, False]
    # NaN: the std on the IQM row (2 algorithms), the interval on the 3 other rows (2 columns × 2 algorithms)
    assert numbers[["std", "ci_low", "ci_high"]].isna().sum().sum() == 2 + 3 * 2 * 2
    assert numbers.loc["IQM", [("ci_low", "b"), ("ci_high", "b")]].tolist() == [5.0, 5.0]
    plain, display, _ = score_table(final, ["a", "b"], ["hopper-medium", "hopper-expert"])
    assert "IQM" not in display.index and list(plain.columns.get_level_values(0).unique()) == ["mean", "std"]


def test_score_table_command_adds_the_iqm_row(tmp_path):
    from offrl.cli import main

    evaluations().to_csv(tmp_path / "evaluation.csv", index=False)
    main(
        [
            "score-table",
            "--algorithms",
            "a",
            "b",
            "--datasets",
            "hopper-medium",
            "hopper-expert",
            "--last",
            "2",
            "--iqm",
            "--table",
            str(tmp_path / "t"),
            str(tmp_path / "evaluation.csv"),
        ]
    )
    assert "| IQM |" in (tmp_path / "t.md").read_text()
    numbers = pd.read_csv(tmp_path / "t.csv", header=[0, 1], index_col=0)
    assert list(numbers.index) == ["hopper-medium", "hopper-expert", "Total", "IQM"]
    assert list(numbers.columns.get_level_values(0).unique()) == ["mean", "std", "ci_low", "ci_high"]
    assert (
        numbers.loc["IQM", ("ci_low", "a")] <= numbers.loc["IQM", ("mean", "a")] <= numbers.loc["IQM", ("ci_high", "a")]
    )
