"""The findings' statistics and checks on hand-made data, with hand-computed answers."""

import json

import numpy as np
import pandas as pd
import pytest

from offrl.report import findings
from offrl.report.findings import (
    Finding,
    guided_findings,
    prior_units,
    safer_findings,
    taming_findings,
    write_findings,
)
from offrl.stats import Interval, iqm, stratified_bootstrap, verdict


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, -50])) == pytest.approx((2 + 3 + 4 + 5) / 4)
    assert iqm(np.array([7.0])) == 7.0
    with pytest.raises(ValueError):
        iqm(np.array([]))


def test_stratified_bootstrap_resamples_within_strata():
    # One-run strata cannot vary: the interval is the point.
    point = stratified_bootstrap([np.array([1.0]), np.array([3.0])], lambda s: s[0].mean() + s[1].mean())
    assert point == Interval(4.0, 4.0, 4.0)
    # A stratum's resampled mean stays within its own values: [0, 1] and [10, 11] never mix.
    interval = stratified_bootstrap(
        [np.array([0.0, 1.0]), np.array([10.0, 11.0])], lambda s: s[1].mean() - s[0].mean(), repetitions=500
    )
    assert interval.estimate == 10.0 and 9.0 <= interval.low <= interval.high <= 11.0
    # Percentile interval of a mean of 0..9 (n = 10): close to the normal approximation ±1.96·σ/√n.
    values = np.arange(10.0)
    ci = stratified_bootstrap([values], lambda s: s[0].mean(), repetitions=4000, seed=1)
    half = 1.96 * values.std() / np.sqrt(10)
    assert ci.low == pytest.approx(4.5 - half, abs=0.25) and ci.high == pytest.approx(4.5 + half, abs=0.25)
    assert stratified_bootstrap([values], lambda s: s[0].mean(), seed=3) == stratified_bootstrap(
        [values], lambda s: s[0].mean(), seed=3
    )


def test_verdicts():
    assert verdict(Interval(2, 1, 3)) == "holds"
    assert verdict(Interval(-2, -3, -1)) == "reversed"
    assert verdict(Interval(0.5, -1, 2)) == "inconclusive"
    assert verdict(Interval(-2, -3, -1), direction=-1) == "holds"
    assert verdict(Interval(2, 1, 3), direction=-1) == "reversed"


def _evaluations(scores, steps=(1000, 2000), extra=None):
    """One row per (algorithm, dataset, seed, step) episode; ``scores[(algo, dataset)]`` is per seed, per step."""
    rows = []
    for (algo, dataset), per_seed in scores.items():
        for seed, per_step in enumerate(per_seed):
            for step, score in zip(steps, per_step):
                rows.append(
                    {
                        "algorithm": algo,
                        "dataset": dataset,
                        "seed": seed,
                        "step": step,
                        "episode": 0,
                        "normalized_score": score,
                        "fell": False,
                        "unsafe_height_steps": 0,
                        "sum_abs_action": 10.0,
                        "length": 100,
                        **(extra(algo, dataset, seed) if extra else {}),
                    }
                )
    return pd.DataFrame(rows)


def test_guided_total_and_safety_with_hand_computed_effects():
    datasets = ["hopper-medium", "hopper-medium-replay"]
    scores = {("td3bc", d): [[0, 40], [0, 50]] for d in datasets} | {
        ("guided_td3bc", d): [[0, 60], [0, 70]] for d in datasets
    }
    # The guided runs fall in no episode, the baseline's in every one.
    extra = lambda algo, dataset, seed: {
        "fell": algo == "td3bc",
        "sum_abs_action": 5.0 if algo == "guided_td3bc" else 10.0,
    }
    findings = guided_findings(_evaluations(scores, extra=extra), datasets, mixed=["hopper-medium-replay"], last=1)
    total, events, actions, _ = findings
    assert total.estimate == pytest.approx(2 * 20) and total.verdict == "holds"
    assert events.estimate == pytest.approx(-100.0) and events.verdict == "holds"
    assert actions.estimate == pytest.approx(-50.0) and actions.verdict == "holds"
    # Only seed 0 falls: a resample of seed 1 alone shows no change, so the interval reaches 0.
    extra = lambda algo, dataset, seed: {"fell": algo == "td3bc" and seed == 0}
    events = guided_findings(_evaluations(scores, extra=extra), datasets, mixed=["hopper-medium-replay"], last=1)[1]
    assert events.estimate == pytest.approx(-100.0) and events.high == 0.0 and events.verdict == "inconclusive"


def test_guided_per_step_actions_separate_size_from_length():
    """Guided's episodes last twice as long with 1.5x the Σ‖a‖₁: the cumulative measure grows, per step it falls."""
    datasets = ["hopper-medium-replay"]
    scores = {("td3bc", datasets[0]): [[0, 40], [0, 50]], ("guided_td3bc", datasets[0]): [[0, 60], [0, 70]]}
    guided = lambda algo, dataset, seed: (
        {"sum_abs_action": 15.0, "length": 200} if algo == "guided_td3bc" else {"sum_abs_action": 10.0, "length": 100}
    )
    _, _, actions, per_step = guided_findings(_evaluations(scores, extra=guided), datasets, mixed=datasets, last=1)
    assert actions.estimate == pytest.approx(50.0) and actions.verdict == "reversed"
    # 15/200 = 0.075 against 10/100 = 0.1 per step: -25 %, every seed alike, so the interval is the point.
    assert per_step.estimate == pytest.approx(-25.0) and per_step.verdict == "holds"
    assert (per_step.low, per_step.high) == pytest.approx((-25.0, -25.0))
    assert per_step.source == "Figure 1" and "per step" in per_step.claim
    # Seed 1's guided run acts as large as the baseline: rates 0.075 and 0.1 over equal steps, the ratio of sums
    # (15 + 20) / 400 = 0.0875 against 0.1 is -12.5 %; resampling seed 1 twice reaches 0.
    uneven = lambda algo, dataset, seed: (
        {"sum_abs_action": 15.0 if seed == 0 else 20.0, "length": 200}
        if algo == "guided_td3bc"
        else guided(algo, dataset, seed)
    )
    per_step = guided_findings(_evaluations(scores, extra=uneven), datasets, mixed=datasets, last=1)[3]
    assert per_step.estimate == pytest.approx(-12.5) and per_step.high == pytest.approx(0.0)
    assert per_step.low == pytest.approx(-25.0) and per_step.verdict == "inconclusive"


def test_guided_reversed_when_the_baseline_is_better():
    datasets = ["walker2d-expert"]
    scores = {
        ("td3bc", datasets[0]): [[0, 80], [0, 82], [0, 81]],
        ("guided_td3bc", datasets[0]): [[0, 10], [0, 12], [0, 11]],
    }
    total = guided_findings(_evaluations(scores), datasets, mixed=datasets, last=1)[0]
    assert total.estimate == pytest.approx(-70.0) and total.verdict == "reversed"


def test_taming_slope_collapse_and_repair():
    datasets = ["walker2d-expert", "walker2d-expert-random-30", "walker2d-expert-random-70"]
    steps = (1000, 2000, 3000)
    scores = {
        ("td3bc", datasets[0]): [[90, 100, 100], [90, 100, 100]],
        ("td3bc", datasets[1]): [[90, 80, 80], [90, 80, 80]],
        ("td3bc", datasets[2]): [[90, 40, 30], [90, 40, 30]],
        ("td3bc_pp", datasets[0]): [[90, 100, 100], [90, 100, 100]],
        ("td3bc_pp", datasets[1]): [[90, 95, 95], [90, 95, 95]],
        ("td3bc_pp", datasets[2]): [[90, 90, 90], [90, 92, 92]],
    }
    findings = taming_findings(_evaluations(scores, steps), None, datasets, last=1)
    slope, collapse, repair, divergence = findings
    # Least squares of (0, 100), (30, 80), (70, 30) per 10 %: hand-computed −1.0 per 1 % → −10.0.
    x, y = np.array([0, 30, 70.0]), np.array([100, 80, 30.0])
    assert slope.estimate == pytest.approx(10 * np.polyfit(x, y, 1)[0]) and slope.verdict == "holds"
    # Peak − final on ER70 (90 − 30) against the expert control's (100 − 100).
    assert collapse.estimate == pytest.approx((90 - 30) - (100 - 100)) and collapse.verdict == "holds"
    assert repair.estimate == pytest.approx(91 - 30) and repair.verdict == "holds"
    assert divergence.verdict == "not measured"


def test_taming_without_heavy_contamination_is_not_measured():
    datasets = ["hopper-expert", "hopper-expert-random-30"]
    scores = {("td3bc", d): [[50, 50]] for d in datasets}
    logs = pd.DataFrame(
        [
            {
                "algorithm": a,
                "dataset": datasets[1],
                "seed": 0,
                "step": 2000,
                "divergence_expert_p75": 1.0,
                "divergence_contaminant_p75": ratio,
            }
            for a, ratio in (("td3bc", 2.0), ("td3bc_pp", 8.0))
        ]
    )
    findings = taming_findings(
        _evaluations(scores | {("td3bc_pp", d): [[50, 50]] for d in datasets}), logs, datasets, last=1
    )
    assert [f.verdict for f in findings[1:3]] == ["not measured", "not measured"]
    assert "X ≥ 50" in findings[1].detail
    # Figure 4's check needs no ER5+: log(8/1) − log(2/1) = log 4.
    assert findings[3].estimate == pytest.approx(np.log(4.0)) and findings[3].verdict == "holds"


def test_safer_violations_likelihood_and_calibration():
    summary = pd.DataFrame(
        [
            {"method": m, "task": t, "prior_seed": p, "seed": s, "success_rate": 100.0, "total_violations": v}
            for m, v in (("safer", 100), ("parrot", 400))
            for t in (2, 5)
            for p in range(3)
            for s in range(3)
        ]
    )
    likelihood = {
        "parrot": pd.DataFrame({"top_percent": [10.0], "unsafe_percent": [20.0], "pairs": [100]}),
        "safer": pd.DataFrame({"top_percent": [10.0], "unsafe_percent": [5.0], "pairs": [100]}),
    }
    calibration = pd.DataFrame(
        {
            "task": [1, 1, 2, 2],
            "prior_seed": [0, 0, 0, 1],
            "target": [0.15] * 4,
            "unsafe_fraction": [0.1, 0.2, 0.3, 0.4],
        }
    )
    violations, fig1, calibrated = safer_findings(summary, [2, 5], likelihood, calibration, table_target=0.15)
    assert violations.estimate == pytest.approx(-75.0) and violations.verdict == "holds"
    assert "+0.0 points" in violations.detail and "3 priors per kind" in violations.detail
    assert fig1.estimate == pytest.approx(-15.0) and fig1.verdict == "holds"
    # Per task the mean of its priors' means: task 1 (one prior) 15 %, task 2 (30 %, 40 %) 35 %; their mean 25 %.
    assert calibrated.estimate == pytest.approx(25.0 - 15.0)


def test_the_safer_interval_resamples_priors_with_their_sac_seeds():
    """SAFER's two priors average 0 and 10 violations over their SAC seeds (0, 0 and 5, 15), PARROT's 20 and 20; SAC
    has no prior: each seed is a unit."""
    rows = [("safer", 0, 0, 0), ("safer", 0, 1, 0), ("safer", 1, 0, 5), ("safer", 1, 1, 15)]
    rows += [("parrot", p, s, 20) for p in (0, 1) for s in (0, 1)] + [
        ("sac", -1, s, v) for s, v in enumerate((7, 9, 11))
    ]
    summary = pd.DataFrame(
        [
            {"method": m, "task": 2, "prior_seed": p, "seed": s, "success_rate": 50.0, "total_violations": v}
            for m, p, s, v in rows
        ]
    )
    units = prior_units(summary, ["method", "task"], "total_violations")
    np.testing.assert_array_equal(units[("safer", 2)], [0.0, 10.0])
    np.testing.assert_array_equal(units[("parrot", 2)], [20.0, 20.0])
    np.testing.assert_array_equal(units[("sac", 2)], [7.0, 9.0, 11.0])
    # Resampling the two priors gives SAFER's mean 0, 5 or 10 (probability 1/4, 1/2, 1/4) against PARROT's 20: the
    # change is −100, −75 or −50 %, so the 95 % interval is [−100, −50] around −75. Resampling the four runs
    # instead would reach 15 violations, −25 %.
    (finding,) = [f for f in safer_findings(summary, [2], None, None, None, others=("parrot",)) if "parrot" in f.claim]
    assert (finding.estimate, finding.low, finding.high) == pytest.approx((-75.0, -100.0, -50.0))


def test_missing_runs_are_named():
    scores = {("td3bc", "hopper-medium"): [[1, 2]]}
    with pytest.raises(ValueError, match="guided_td3bc on hopper-medium"):
        guided_findings(_evaluations(scores), ["hopper-medium"], ["hopper-medium"], last=1)


def test_write_findings_markdown_and_json(tmp_path):
    datasets = ["walker2d-expert"]
    scores = {("td3bc", datasets[0]): [[0, 80], [0, 82]], ("guided_td3bc", datasets[0]): [[0, 10], [0, 12]]}
    findings = guided_findings(_evaluations(scores), datasets, mixed=datasets, last=1)
    write_findings(findings, tmp_path / "findings", scale="test")
    text = (tmp_path / "findings.md").read_text()
    assert "# Findings at the test scale" in text and "| **reversed** |" in text and "## Guided TD3+BC" in text
    payload = json.loads((tmp_path / "findings.json").read_text())
    assert payload["findings"][0]["verdict"] == "reversed" and payload["findings"][0]["estimate"] == pytest.approx(
        -70.0
    )


def test_bear_blog_ratio_of_q_to_the_achieved_return():
    """Per seed, Q(s₀, π(s₀)) / G over the last snapshots: SAC 10× (diverged), BEAR 1.2× (bounded)."""
    from offrl.report.findings import bear_blog_findings

    rows = []
    for algorithm, q in (("sac", 1000.0), ("bear", 120.0)):
        for seed in (0, 1):
            for step, scale in ((1000, 0.5), (2000, 1.0)):  # the first snapshot is not among the last 1
                rows.append(
                    {
                        "algorithm": algorithm,
                        "dataset": "hopper-expert-first10000",
                        "step": step,
                        "seed": seed,
                        "critic": "kept",
                        "q_dataset_initial": q * scale,
                        "return_initial": 100.0,
                        "initial_comparable": True,
                        "q_along": 0.0,
                        "return_along": 0.0,
                        "comparable_steps": 1,
                    }
                )
    naive, bounded = bear_blog_findings(pd.DataFrame(rows), ["hopper-expert-first10000"], last=1)
    assert naive.estimate == pytest.approx(10.0 - 2.0) and naive.verdict == "holds"
    assert bounded.estimate == pytest.approx(2.0 - 1.2) and bounded.verdict == "holds" and "bear" in bounded.claim


def test_bear_blog_multiple_keeps_its_sign_when_the_return_is_negative():
    """A diverged HalfCheetah policy runs backwards: G = −200. Q = 600 lies 4|G| above it, the
    multiple 1 + (600 + 200)/200 = 5 (Q/G would read −3, "within 2×"); Q = −250 lies below it: 0.75.
    Each dataset is its own check."""
    from offrl.report.findings import bear_blog_findings

    rows = [
        {
            "algorithm": algorithm,
            "dataset": "halfcheetah-expert-first10000",
            "step": 1000,
            "seed": seed,
            "critic": "kept",
            "q_dataset_initial": q,
            "return_initial": -200.0,
            "initial_comparable": True,
            "q_along": 0.0,
            "return_along": 0.0,
            "comparable_steps": 1,
        }
        for algorithm, q in (("sac", 600.0), ("td3bc", -250.0))
        for seed in (0, 1)
    ]
    # A second env where TD3+BC's Q is 3× its return (G = 100): its own row, not averaged away.
    rows += [
        {**row, "dataset": "hopper-expert-first10000", "q_dataset_initial": q, "return_initial": 100.0}
        for row, q in zip(rows, (1000.0, 1000.0, 300.0, 300.0))
    ]
    datasets = ["halfcheetah-expert-first10000", "hopper-expert-first10000"]
    naive, bounded, hopper_naive, hopper_bounded = bear_blog_findings(pd.DataFrame(rows), datasets, last=1)
    assert naive.estimate == pytest.approx(5.0 - 2.0) and naive.verdict == "holds"
    assert bounded.estimate == pytest.approx(2.0 - 0.75) and bounded.verdict == "holds"
    assert hopper_naive.estimate == pytest.approx(10.0 - 2.0) and "hopper" in hopper_naive.claim
    assert hopper_bounded.estimate == pytest.approx(2.0 - 3.0) and hopper_bounded.verdict == "reversed"


def test_gp_q_gap_by_hand_and_not_measured_without_probe():
    # Seeds' gaps: (10 − 5)/10 = 50 % and (20 − 15)/20 = 25 % on one dataset; 100 % twice on the other.
    probe = pd.DataFrame(
        [
            ("td3bc_pp", "hopper-expert-random-30", 0, 10.0, 5.0),
            ("td3bc_pp", "hopper-expert-random-30", 1, 20.0, 15.0),
            ("td3bc_pp", "hopper-expert-random-70", 0, -4.0, -8.0),
            ("td3bc_pp", "hopper-expert-random-70", 1, 2.0, 0.0),
            ("td3bc", "hopper-expert-random-30", 0, 1.0, 9.0),
        ],
        columns=["algorithm", "dataset", "seed", "q_expert", "q_contaminant"],
    )
    found = findings.gp_q_finding(probe, ["hopper-expert-random-30", "hopper-expert-random-70"])
    assert found.estimate == pytest.approx((37.5 + 100.0) / 2)
    assert found.verdict == "holds" and 50.0 <= found.low <= found.high <= 100.0
    missing = findings.gp_q_finding(probe, ["walker2d-expert-random-30"])
    assert missing.verdict == findings.NOT_MEASURED and "td3bc_pp" in missing.detail


def test_final_probe_q_is_read_per_seed_at_the_last_snapshot(tmp_path):
    import torch

    from offrl.report.scores import load_final_probe_q

    run = tmp_path / "run"
    run.mkdir()
    # (seeds, pairs), as offrl.train's DivergenceProbe.q_values writes them: seed 4's contaminant Q 0, 1, 2,
    # seed 7's 3, 4, 5.
    probe_q = {
        step: {"expert": torch.full((2, 3), float(step)), "contaminant": torch.arange(6.0).reshape(2, 3)}
        for step in (5, 10)
    }
    torch.save({"algorithm": "td3bc_pp", "seeds": [4, 7], "probe_q": probe_q}, run / "snapshots.pt")
    pd.DataFrame({"dataset": ["hopper-expert-random-30"]}).to_csv(run / "evaluation.csv", index=False)
    plain = tmp_path / "plain"
    plain.mkdir()
    torch.save({"algorithm": "bc", "seeds": [0], "probe_q": {}}, plain / "snapshots.pt")
    table = load_final_probe_q([run, plain])
    assert table[["seed", "step", "q_expert", "q_contaminant"]].values.tolist() == [
        [4, 10, 10.0, 1.0],
        [7, 10, 10.0, 4.0],
    ]


def test_what_would_settle_a_claim_that_does_not_hold(tmp_path):
    # Half-width (6 − (−2))/2 = 4 around an effect of 2: (4/2)² = 4× the seeds.
    unsure = findings.Finding("TD3BC++", "c", "Table 1", "e", 2.0, -2.0, 6.0, "inconclusive")
    assert findings.what_would_settle(unsure).startswith("≈ 4.0× the seeds at this effect size; the paper's protocol: ")
    reversed_ = findings.Finding("Guided TD3+BC", "c", "Table 1", "e", -3.0, -5.0, -1.0, "reversed")
    assert (
        findings.what_would_settle(reversed_)
        == f"the paper's protocol: {findings.PAPER_PROTOCOL['Guided TD3+BC']} (config/paper.yaml)"
    )
    holds = findings.Finding("SAFER", "c", "Table 1", "e", 3.0, 1.0, 5.0, "holds")
    assert findings.what_would_settle(holds) == ""
    write_findings([unsure, holds], tmp_path / "f")
    assert "≈ 4.0× the seeds" in (tmp_path / "f.md").read_text()
    assert json.loads((tmp_path / "f.json").read_text())["findings"][1]["what_would_settle"] == ""


def test_taming_collapse_is_measured_against_the_expert_control():
    """Noisy but flat curves: the best evaluation beats the final one on every dataset, so no collapse."""
    datasets = ["walker2d-expert", "walker2d-expert-random-70"]
    steps = (1000, 2000, 3000)
    noisy = [[40, 55, 40], [50, 60, 45], [45, 50, 35]]  # drops 15, 15, 15 (last=1)
    scores = {(a, d): noisy for a in ("td3bc", "td3bc_pp") for d in datasets}
    collapse = taming_findings(_evaluations(scores, steps), None, datasets, last=1)[1]
    assert collapse.estimate == pytest.approx(0.0) and collapse.verdict == "inconclusive"
    assert "control: walker2d-expert" in collapse.detail


def test_a_pipe_in_a_claim_does_not_split_its_markdown_cell(tmp_path):
    finding = Finding("TD3BC++", "claim", "Figure 6", "(Q − Q′)/|Q|", 1.0, 0.5, 1.5, "holds")
    write_findings([finding], tmp_path / "f")
    row = next(line for line in (tmp_path / "f.md").read_text().splitlines() if line.startswith("| **holds**"))
    assert "(Q − Q′)/\\|Q\\|" in row and row.count(" | ") == 7
