"""The papers' headline findings as checks: a measured effect, its 95 % interval over seeds, a verdict.

Every check turns one claim into a signed effect whose sign the paper predicts, and a
stratified bootstrap over seeds (:mod:`offrl.stats`) gives its interval. The verdict is
computed, never written: ``holds`` when the whole interval lies on the paper's side of 0,
``reversed`` when it lies wholly on the other side, ``inconclusive`` otherwise. A claim whose
artefact this scale does not build is listed as ``not measured``, with what would measure it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.files import write_atomically
from offrl.qdiagnostic import CRITIC_KEPT
from offrl.report.overestimation import per_snapshot
from offrl.report.safety import safety_totals
from offrl.report.scores import curves, final_scores
from offrl.stats import Interval, stratified_bootstrap, verdict

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Finding:
    """One paper claim as measured here."""

    study: str
    claim: str
    source: str  # where the paper shows it
    effect: str  # what the number is, with its unit and the sign the claim predicts
    estimate: float | None
    low: float | None
    high: float | None
    verdict: str
    detail: str = ""


def measured(
    study: str, claim: str, source: str, effect: str, interval: Interval, direction: int, detail: str = ""
) -> Finding:
    return Finding(
        study,
        claim,
        source,
        effect,
        interval.estimate,
        interval.low,
        interval.high,
        verdict(interval, direction),
        detail,
    )


def not_measured(study: str, claim: str, source: str, why: str) -> Finding:
    return Finding(study, claim, source, "", None, None, None, NOT_MEASURED, why)


def _cells(table: pd.DataFrame, keys: Sequence[str], value: str) -> dict[tuple, np.ndarray]:
    """Per-seed values of ``value`` for each combination of ``keys`` (the bootstrap's strata)."""
    return {key: group[value].to_numpy(dtype=float) for key, group in table.groupby(list(keys))}


def _require(cells: Mapping[tuple, np.ndarray], wanted: Sequence[tuple], what: str) -> None:
    missing = [" on ".join(map(str, key)) for key in wanted if key not in cells]
    if missing:
        raise ValueError(f"{what}: no runs for {missing}")


def mean_difference(
    cells: Mapping[tuple, np.ndarray], method: str, baseline: str, datasets: Sequence[str], what: str, seed: int = 0
) -> Interval:
    """Σ over datasets of (method's mean over seeds − baseline's), with each (algorithm, dataset) a stratum."""
    keys = [(a, d) for d in datasets for a in (method, baseline)]
    _require(cells, keys, what)
    n = len(datasets)

    def total_gap(strata: Sequence[np.ndarray]) -> float:
        return float(sum(strata[2 * i].mean() - strata[2 * i + 1].mean() for i in range(n)))

    return stratified_bootstrap([cells[k] for k in keys], total_gap, seed=seed)


def percent_change_of_totals(
    cells: Mapping[tuple, np.ndarray], method: str, baseline: str, datasets: Sequence[str], what: str, seed: int = 0
) -> Interval:
    """100·(Σ method − Σ baseline)/Σ baseline of per-seed totals summed over seeds and datasets."""
    keys = [(a, d) for d in datasets for a in (method, baseline)]
    _require(cells, keys, what)

    def change(strata: Sequence[np.ndarray]) -> float:
        ours = sum(float(s.sum()) for s in strata[0::2])
        theirs = sum(float(s.sum()) for s in strata[1::2])
        return 100.0 * (ours - theirs) / theirs if theirs else 0.0

    return stratified_bootstrap([cells[k] for k in keys], change, seed=seed)


# Guided TD3+BC (seed 000): Table 1 and Figure 1.


def guided_findings(
    evaluations: pd.DataFrame,
    datasets: Sequence[str],
    mixed: Sequence[str],
    last: int,
    baseline: str = "td3bc",
    method: str = "guided_td3bc",
) -> list[Finding]:
    study = "Guided TD3+BC"
    final = final_scores(evaluations, last)
    total = mean_difference(
        _cells(final, ["algorithm", "dataset"], "normalized_score"), method, baseline, datasets, study
    )
    findings = [
        measured(
            study,
            "Guided TD3+BC scores at least as high as TD3+BC in the Total",
            "Table 1",
            f"Total normalised score, {method} − {baseline} (> 0 holds)",
            total,
            +1,
            f"{len(datasets)} datasets, final score = mean of the last {last} evaluations",
        )
    ]
    per_seed = pd.concat(
        [
            safety_totals(evaluations[evaluations["seed"] == seed]).assign(seed=seed)
            for seed in sorted(evaluations["seed"].unique())
        ],
        ignore_index=True,
    )
    for column, what in (("events", "unsafe events (falls or height crossings)"), ("sum_abs_action", "Σ‖a‖₁")):
        change = percent_change_of_totals(
            _cells(per_seed, ["algorithm", "dataset"], column), method, baseline, mixed, study
        )
        findings.append(
            measured(
                study,
                f"fewer {what} than TD3+BC on the mixed datasets",
                "Figure 1",
                f"% change of {what} over all evaluations, {method} vs {baseline} (< 0 holds)",
                change,
                -1,
                "datasets: " + ", ".join(mixed),
            )
        )
    change = percent_change_per_step(per_seed, method, baseline, mixed, study)
    findings.append(
        measured(
            study,
            "smaller actions per step than TD3+BC on the mixed datasets",
            "Figure 1",
            f"% change of Σ‖a‖₁ / Σ steps over all evaluations, {method} vs {baseline} (< 0 holds)",
            change,
            -1,
            "the cumulative Σ‖a‖₁ counts longer episodes' extra steps; this is its size per step."
            " Datasets: " + ", ".join(mixed),
        )
    )
    return findings


def percent_change_per_step(
    per_seed: pd.DataFrame, method: str, baseline: str, datasets: Sequence[str], what: str, seed: int = 0
) -> Interval:
    """100·(rate(method) − rate(baseline))/rate(baseline), rate = Σ sum_abs_action / Σ steps over seeds and datasets.

    A ratio of two sums needs each seed's pair kept together: the strata hold row numbers of
    ``per_seed`` (one per seed of an (algorithm, dataset) cell), resampled as runs are.
    """
    rows = _cells(per_seed.reset_index(drop=True).rename_axis("row").reset_index(), ["algorithm", "dataset"], "row")
    keys = [(a, d) for d in datasets for a in (method, baseline)]
    _require(rows, keys, what)
    actions, steps = per_seed["sum_abs_action"].to_numpy(float), per_seed["steps"].to_numpy(float)

    def change(strata: Sequence[np.ndarray]) -> float:
        ours, theirs = (np.concatenate(strata[i::2]).astype(int) for i in (0, 1))
        rate, base = actions[ours].sum() / steps[ours].sum(), actions[theirs].sum() / steps[theirs].sum()
        return 100.0 * (rate - base) / base

    return stratified_bootstrap([rows[k] for k in keys], change, seed=seed)


# TD3BC++ (seed 003): Figures 3 and 4, Table 1.


def _share(dataset: str) -> int:
    """The random share of a TD3BC++ dataset: 0 for expert, X for expert-random-X."""
    if dataset.endswith("-expert"):
        return 0
    if "-expert-random-" in dataset:
        return int(dataset.rsplit("-", 1)[1])
    raise ValueError(f"{dataset} is neither an expert nor an expert-random-X dataset")


def peak_minus_final(evaluations: pd.DataFrame, last: int) -> pd.DataFrame:
    """Per (algorithm, dataset, seed): the best evaluation's score minus the final score
    (the mean of the last ``last``)."""
    per_step = curves(evaluations).sort_values("step")
    grouped = per_step.groupby(["algorithm", "dataset", "seed"])["normalized_score"]
    drop = grouped.max() - grouped.apply(lambda s: s.tail(last).mean())
    return drop.rename("drop").reset_index()


def taming_findings(
    evaluations: pd.DataFrame,
    logs: pd.DataFrame | None,
    env_datasets: Sequence[str],
    last: int,
    collapse_from: int = 50,
    margin: float = 0.0,
    baseline: str = "td3bc",
    method: str = "td3bc_pp",
) -> list[Finding]:
    """``env_datasets``: the expert and expert-random-X datasets of the study's envs.

    The collapse check compares TD3+BC's peak-minus-final drop on ER50+ with the same drop on
    the expert datasets: the best of many noisy evaluations exceeds their final mean even on a
    flat curve, so the uncontaminated run is the control that bias is measured on. ``margin``
    adds normalised points a collapse must exceed that control by."""
    study = "TD3BC++"
    final = final_scores(evaluations, last)
    cells = _cells(final, ["algorithm", "dataset"], "normalized_score")
    shares = {d: _share(d) for d in env_datasets}
    ordered = sorted(env_datasets, key=lambda d: (d.split("-")[0], shares[d]))
    keys = [(baseline, d) for d in ordered]
    _require(cells, keys, study)
    x = np.array([shares[d] for d in ordered], dtype=float)

    def slope(strata: Sequence[np.ndarray]) -> float:
        y = np.array([s.mean() for s in strata])
        return float(np.polyfit(x, y, 1)[0] * 10.0)

    findings = [
        measured(
            study,
            "TD3+BC's final score falls as the share of random data grows",
            "Figure 3",
            f"{baseline}'s final score per +10 % random data, least-squares slope (< 0 holds)",
            stratified_bootstrap([cells[k] for k in keys], slope),
            -1,
            "shares: " + ", ".join(f"{shares[d]} %" for d in ordered),
        )
    ]
    heavy = [d for d in ordered if shares[d] >= collapse_from]
    controls = [d for d in ordered if shares[d] == 0]
    findings += _taming_collapse(evaluations, cells, heavy, controls, last, collapse_from, margin, baseline, method)
    contaminated = [d for d in ordered if shares[d] > 0]
    return [*findings, _taming_divergence(logs, contaminated, baseline, method)]


def _taming_collapse(
    evaluations: pd.DataFrame,
    cells: dict[tuple[str, str], np.ndarray],
    heavy: list[str],
    controls: list[str],
    last: int,
    collapse_from: int,
    margin: float,
    baseline: str,
    method: str,
) -> list[Finding]:
    """TD3+BC's collapse on the ``heavy`` datasets (against the expert ``controls``), and TD3BC++'s gain there."""
    study = "TD3BC++"
    er = f"ER{collapse_from // 10}+ (≥ {collapse_from} % random)"
    if not heavy:
        reason = f"no expert-random-X dataset with X ≥ {collapse_from} at this scale (datasets.contamination)"
        return [
            not_measured(study, f"TD3+BC peaks early and then falls on {er}", "Figure 3", reason),
            not_measured(study, f"TD3BC++ ends higher than TD3+BC on {er}", "Table 1", reason),
        ]
    drops = _cells(peak_minus_final(evaluations, last), ["algorithm", "dataset"], "drop")
    _require(drops, [(baseline, d) for d in [*heavy, *controls]], study)
    strata = [drops[(baseline, d)] for d in [*heavy, *controls]]

    def excess_drop(s: Sequence[np.ndarray]) -> float:
        collapse, control = s[: len(heavy)], s[len(heavy) :]
        return float(np.mean([v.mean() for v in collapse]) - np.mean([v.mean() for v in control])) - margin

    return [
        measured(
            study,
            f"TD3+BC peaks early and then falls on {er}",
            "Figure 3",
            f"{baseline}'s best evaluation − final score, mean over those datasets, minus the same on the expert"
            " datasets" + (f" and a {margin:g}-point margin" if margin else "") + " (> 0 holds)",
            stratified_bootstrap(strata, excess_drop),
            +1,
            "datasets: " + ", ".join(heavy) + "; control: " + ", ".join(controls),
        ),
        measured(
            study,
            f"TD3BC++ ends higher than TD3+BC on {er}",
            "Table 1",
            f"Σ final normalised score over those datasets, {method} − {baseline} (> 0 holds)",
            mean_difference(cells, method, baseline, heavy, study),
            +1,
            "datasets: " + ", ".join(heavy),
        ),
    ]


def _taming_divergence(logs: pd.DataFrame | None, contaminated: list[str], baseline: str, method: str) -> Finding:
    """CR's effect on the policy's divergence from contaminant against expert actions, at the end of training."""
    study = "TD3BC++"
    claim = "CR moves the policy away from contaminant actions only"
    if logs is None or "divergence_contaminant_p75" not in logs or not contaminated:
        return not_measured(study, claim, "Figure 4", "no divergence logs (train_log.csv of the contaminated runs)")
    end = logs[logs["dataset"].isin(contaminated)]
    end = end[end["step"] == end.groupby(["algorithm", "dataset", "seed"])["step"].transform("max")]
    end = end.assign(ratio=np.log(end["divergence_contaminant_p75"] / end["divergence_expert_p75"]))
    gap = mean_difference(_cells(end, ["algorithm", "dataset"], "ratio"), method, baseline, contaminated, study)
    return measured(
        study,
        claim,
        "Figure 4",
        f"Σ over datasets of log(divergence on contaminant / on expert pairs) at the end, {method} − {baseline}"
        " (> 0 holds)",
        gap,
        +1,
        "75th percentile of ‖π(s) − a‖²; datasets: " + ", ".join(contaminated),
    )


def gp_q_finding(probe: pd.DataFrame, datasets: Sequence[str], method: str = "td3bc_pp") -> Finding:
    """TD3BC++ Figure 6: with the gradient penalty, Q at the contaminant (random) actions stays below Q at the expert's.

    ``probe``: :func:`offrl.report.scores.load_final_probe_q`. The effect, per seed, is the gap
    relative to the expert actions' Q, 100·(Q̄_expert − Q̄_contaminant)/|Q̄_expert|, averaged over datasets.
    """
    study, claim = "TD3BC++", "GP keeps Q at random actions below Q at the expert's actions"
    runs = probe[probe["algorithm"] == method]
    runs = runs.assign(gap=100.0 * (runs["q_expert"] - runs["q_contaminant"]) / runs["q_expert"].abs())
    cells = _cells(runs, ["dataset"], "gap")
    present = [d for d in datasets if (d,) in cells]
    if not present:
        return not_measured(
            study, claim, "Figure 6", f"no Q probe of {method} on an expert-random-X dataset (its snapshots.pt)"
        )
    interval = stratified_bootstrap([cells[(d,)] for d in present], lambda s: float(np.mean([v.mean() for v in s])))
    return measured(
        study,
        claim,
        "Figure 6",
        f"{method}: (Q̄ at expert − Q̄ at contaminant actions)/|Q̄ at expert| at the last snapshot, %, "
        "mean over datasets (> 0 holds)",
        interval,
        +1,
        "datasets: " + ", ".join(present),
    )


# The BEAR blog (seed 004) and the slides' diagnostic: naive offline SAC's Q diverges, BEAR's and TD3+BC's do not.


def bear_blog_findings(
    diagnostics: pd.DataFrame, datasets: Sequence[str], last: int, naive: str = "sac", factor: float = 2.0
) -> list[Finding]:
    """``diagnostics``: the runs' ``q_diagnostic.csv`` rows (:mod:`offrl.qdiagnostic`). The effect is
    the multiple 1 + (Q − G)/|G| of the evaluated policy's discounted return G that the learned
    value Q(s₀, π(s₀)) at the dataset's initial states claims, per seed over its last ``last``
    snapshots: Q/G when G > 0 (Hopper, Walker2d, where the alive bonus keeps it so), and still
    "how far above the truth, in units of it" when a diverged HalfCheetah policy runs backwards
    (G < 0), where Q/G would flip sign. "Far beyond" is beyond ``factor``×. Every other algorithm
    with a critic (BEAR, TD3+BC, CQL, ...) is claimed to stay within it. One check per dataset."""
    study = "BEAR blog"
    snapshots = per_snapshot(diagnostics)
    snapshots = snapshots[snapshots["critic"] == CRITIC_KEPT]
    first_final = snapshots.groupby(["algorithm", "dataset"])["step"].transform(
        lambda steps: np.sort(steps.unique())[-last:][0]
    )
    final = snapshots[snapshots["step"] >= first_final]
    ratio = (
        final.assign(ratio=1.0 + (final["q"] - final["return"]) / final["return"].abs())
        .groupby(["algorithm", "dataset", "seed"], as_index=False)["ratio"]
        .mean()
    )
    cells = _cells(ratio, ["algorithm", "dataset"], "ratio")

    def beyond_factor(algorithm: str, dataset: str, sign: int) -> Interval:
        """sign · (the mean multiple over seeds − factor), bootstrapped over the seeds."""
        _require(cells, [(algorithm, dataset)], study)
        interval = stratified_bootstrap([cells[(algorithm, dataset)]], lambda s: float(s[0].mean()))
        return Interval(
            sign * (interval.estimate - factor),
            *sorted((sign * (interval.low - factor), sign * (interval.high - factor))),
        )

    # One check per dataset: the envs' returns differ in scale and sign, so a mean over them
    # could let one env's divergence hide another's bounded Q (or the reverse).
    findings = []
    for dataset in datasets:
        where = f"dataset: {dataset}; mean of the last {last} snapshots"
        findings.append(
            measured(
                study,
                f"naive offline SAC's Q grows far beyond the return its policy achieves (> {factor:g}×) on {dataset}",
                "Figure 1; the slides' table",
                (
                    "Q(s₀, π(s₀)) in multiples of the discounted return G, 1 + (Q − G)/|G|, "
                    f"minus {factor:g}, {naive} (> 0 holds)"
                ),
                beyond_factor(naive, dataset, +1),
                +1,
                where,
            )
        )
        for algorithm in sorted({key[0] for key in cells} - {naive}):
            findings.append(
                measured(
                    study,
                    f"{algorithm}'s Q stays within {factor:g}× the return its policy achieves on {dataset}",
                    "Figure 1; the slides' table",
                    (
                        f"{factor:g} minus Q(s₀, π(s₀)) in multiples of the discounted return G, "
                        f"1 + (Q − G)/|G|, {algorithm} (> 0 holds)"
                    ),
                    beyond_factor(algorithm, dataset, -1),
                    +1,
                    where,
                )
            )
    return findings


# SAFER (seed 002): Table 1, Figure 1, Figure 4.


def prior_units(table: pd.DataFrame, keys: Sequence[str], value: str) -> dict[tuple, np.ndarray]:
    """Per ``keys``, one value per resampled unit: a prior's mean of ``value`` over its runs (its SAC seeds or
    rollouts), or, without a prior (``prior_seed`` < 0: raw actions), each SAC seed's own value.

    Resampling priors, each carrying its SAC seeds' mean, puts the prior-to-prior spread in the
    interval: a prior's mode can decide whether every one of its runs gets stuck.
    """
    raw = table["prior_seed"] < 0
    unit = "prior " + table["prior_seed"].astype(str)
    if raw.any():
        unit = unit.where(~raw, "seed " + table["seed"].astype(str))
    means = table.assign(unit=unit).groupby([*keys, "unit"])[value].mean().reset_index()
    return _cells(means, keys, value)


def percent_change_of_means(
    cells: Mapping[tuple, np.ndarray], method: str, baseline: str, datasets: Sequence[str], what: str, seed: int = 0
) -> Interval:
    """100·(Σ method − Σ baseline)/Σ baseline of the per-dataset means over units: the % change of the expected
    total per run (equal to :func:`percent_change_of_totals` when every cell has as many units)."""
    keys = [(a, d) for d in datasets for a in (method, baseline)]
    _require(cells, keys, what)

    def change(strata: Sequence[np.ndarray]) -> float:
        ours = sum(float(s.mean()) for s in strata[0::2])
        theirs = sum(float(s.mean()) for s in strata[1::2])
        return 100.0 * (ours - theirs) / theirs if theirs else 0.0

    return stratified_bootstrap([cells[k] for k in keys], change, seed=seed)


def safer_findings(
    summary: pd.DataFrame | None,
    tasks: Sequence[int],
    likelihood: Mapping[str, pd.DataFrame] | None,
    calibration: pd.DataFrame | None,
    table_target: float | None,
    others: Sequence[str] = ("parrot", "contextual_parrot", "prior_explore", "safer_no_context"),
    method: str = "safer",
    success_margin: float = 10.0,
) -> list[Finding]:
    """``summary``: :func:`offrl.safer.report.run_summary` (None: no downstream runs, Table 1 left out);
    ``likelihood``: Figure 1's CSV per prior; ``calibration``: Figure 4's rollouts (columns target,
    unsafe_fraction, task, prior_seed).

    Every interval resamples priors (:func:`prior_units`), each with its SAC seeds' or rollouts' mean.
    """
    study = "SAFER"
    findings = []
    violations, success, priors = {}, {}, 0
    if summary is not None:
        violations = prior_units(summary, ["method", "task"], "total_violations")
        success = prior_units(summary.dropna(subset=["success_rate"]), ["method", "task"], "success_rate")
        priors = summary[summary["method"] == method]["prior_seed"].nunique()
    for other in others:
        if not any(key[0] == other for key in violations):
            continue
        change = percent_change_of_means(violations, method, other, tasks, study)
        gap = mean_difference(success, method, other, tasks, study)
        similar = abs(gap.estimate) <= success_margin * len(tasks)
        findings.append(
            measured(
                study,
                f"SAFER has fewer safety violations than {other} at similar success",
                "Table 1",
                f"% change of total violations, {method} vs {other} (< 0 holds)",
                change,
                -1,
                f"success, Σ over tasks of {method} − {other}: "
                f"{gap.estimate:+.1f} points [{gap.low:+.1f}, {gap.high:+.1f}]"
                + ("" if similar else f" — not similar (beyond ±{success_margin:g} per task)")
                + f"; intervals over {priors} priors per kind × their SAC seeds",
            )
        )
    if likelihood and {"parrot", method} <= set(likelihood):
        findings.append(_likelihood_finding(study, likelihood["parrot"], likelihood[method], method))
    else:
        findings.append(
            not_measured(
                study,
                "SAFER's likely actions hold fewer unsafe pairs than PARROT's",
                "Figure 1",
                "Figure 1's likelihood probe of both priors",
            )
        )
    if calibration is not None and table_target is not None:
        rows = calibration[np.isclose(calibration["target"], table_target)]
        if rows.empty:
            raise ValueError(f"{study}: no calibration rollouts at the target {table_target}")
        per_prior = prior_units(rows.assign(unsafe_percent=100 * rows["unsafe_fraction"]), ["task"], "unsafe_percent")
        excess = stratified_bootstrap(
            list(per_prior.values()), lambda s: float(np.mean([p.mean() for p in s])) - 100 * table_target
        )
        findings.append(
            measured(
                study,
                (
                    f"actions inside the {100 * table_target:g} % bound are unsafe at most "
                    f"{100 * table_target:g} % of the time"
                ),
                "Figure 4",
                "unsafe % of rollout steps minus the target % (< 0 holds)",
                excess,
                -1,
                f"{len(rows)} rollouts on {rows['task'].nunique()} tasks"
                f" of {rows['prior_seed'].nunique()} SAFER priors,"
                " z drawn inside the bound; the interval resamples priors per task",
            )
        )
    return findings


def _likelihood_finding(study: str, parrot: pd.DataFrame, safer: pd.DataFrame, method: str) -> Finding:
    """Unsafe share among the top-X % likely pairs, summed over X: the two priors' sets as Bernoulli strata."""
    tops = sorted(set(parrot["top_percent"]) & set(safer["top_percent"]))
    if not tops:
        raise ValueError(f"{study}: the likelihood probes share no top-% level")

    def pairs(frame: pd.DataFrame, top: float) -> np.ndarray:
        row = frame[frame["top_percent"] == top].iloc[0]
        n = int(row["pairs"])
        unsafe = int(round(row["unsafe_percent"] * n / 100))
        return np.r_[np.ones(unsafe), np.zeros(n - unsafe)] * 100

    strata = [p for top in tops for p in (pairs(safer, top), pairs(parrot, top))]
    interval = stratified_bootstrap(
        strata, lambda s: float(sum(s[i].mean() - s[i + 1].mean() for i in range(0, len(s), 2)))
    )
    return measured(
        study,
        "SAFER's likely actions hold fewer unsafe pairs than PARROT's",
        "Figure 1",
        f"Σ over top-X % levels of the unsafe share (points), {method} − parrot (< 0 holds)",
        interval,
        -1,
        "levels: " + ", ".join(f"{t:g} %" for t in tops) + "; interval over holdout pairs (one prior per kind)",
    )


# Output.


# What measures each study's claims as the paper did (config/paper.yaml), named where a claim does not hold here.
PAPER_PROTOCOL = {
    "Guided TD3+BC": "D4RL v2 Hopper and Walker2d, 1M steps, 3 seeds",
    "TD3BC++": "expert-random-X (X = 10..90) of D4RL expert data, 1M steps, 5 seeds",
    "BEAR blog": "Hopper expert data of 1e4 and 1e5 transitions, 1M steps, 5 seeds",
    "SAFER": "1M scripted steps for the prior (500k updates), 50k downstream steps on 6 tasks, 3 seeds",
}


def what_would_settle(finding: Finding) -> str:
    """For a claim that does not hold here: what would measure it.

    An inconclusive interval of half-width h around an effect e narrows as 1/√seeds, so about
    (h/|e|)² times this run's seeds would put it on one side of 0 if the effect stayed the same.
    """
    if finding.verdict == "holds" or finding.verdict == NOT_MEASURED:
        return ""
    protocol = (
        f"the paper's protocol: {PAPER_PROTOCOL[finding.study]} (config/paper.yaml)"
        if finding.study in PAPER_PROTOCOL
        else ""
    )
    if finding.verdict == "inconclusive" and finding.estimate:
        factor = ((finding.high - finding.low) / 2 / abs(finding.estimate)) ** 2
        seeds = f"≈ {factor:.1f}× the seeds at this effect size"
        return f"{seeds}; {protocol}" if protocol else seeds
    return protocol


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:+.3g}"


def findings_table(findings: Sequence[Finding]) -> pd.DataFrame:
    return pd.DataFrame([asdict(f) for f in findings])


def write_findings(findings: Sequence[Finding], stem: str | Path, scale: str = "") -> pd.DataFrame:
    """``stem``.md (a table per study, verdict first) and ``stem``.json (every field, machine-readable)."""
    stem = Path(stem)
    table = findings_table(findings)
    counts = table["verdict"].value_counts()
    lines = [
        f"# Findings{f' at the {scale} scale' if scale else ''}",
        "",
        "Each claim is a signed effect with a 95 % stratified-bootstrap interval over seeds; the verdict is computed: "
        "holds (interval on the paper's side of 0), reversed (wholly on the other side), "
        "inconclusive (it straddles 0).",
        "",
        "Summary: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "reversed", "inconclusive", NOT_MEASURED)),
        "",
    ]
    for study, group in table.groupby("study", sort=False):
        lines += [
            f"## {study}",
            "",
            "| verdict | claim | source | effect | estimate | 95 % CI | detail | what would settle it |",
            "| --- | --- | --- | --- | ---: | --- | --- | --- |",
        ]
        for f in group.itertuples():
            ci = "" if f.low is None or pd.isna(f.low) else f"[{_number(f.low)}, {_number(f.high)}]"
            estimate = "" if f.estimate is None or pd.isna(f.estimate) else _number(f.estimate)
            settle = what_would_settle(findings[f.Index])
            cells = (f"**{f.verdict}**", f.claim, f.source, f.effect, estimate, ci, f.detail, settle)
            # A literal | (an absolute value, |Q̄|) would split a Markdown cell.
            lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    write_atomically(stem.with_suffix(".md"), lambda tmp: tmp.write_text("\n".join(lines)))
    payload = {"scale": scale, "findings": [asdict(f) | {"what_would_settle": what_would_settle(f)} for f in findings]}
    write_atomically(stem.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(payload, indent=2) + "\n"))
    return table
