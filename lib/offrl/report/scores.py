"""Scores over training, the papers' final-score protocol, score tables and learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from offrl.files import load_tensors, write_csv
from offrl.report.figures import save_figure
from offrl.report.names import dataset_name, id_footnote, paper_name, spread_label
from offrl.report.tables import write_table
from offrl.stats import Interval, iqm, stratified_bootstrap

if TYPE_CHECKING:
    import torch


def load_evaluations(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate per-run evaluation CSVs (each has ``algorithm`` and ``dataset`` columns)."""
    if not paths:
        raise ValueError("no evaluation files given")
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def curves(evaluations: pd.DataFrame, metric: str = "normalized_score") -> pd.DataFrame:
    """Mean of ``metric`` over the episodes of each (algorithm, dataset, seed, step)."""
    return evaluations.groupby(["algorithm", "dataset", "seed", "step"], as_index=False)[metric].mean()


def final_scores(evaluations: pd.DataFrame, last: int = 10, metric: str = "normalized_score") -> pd.DataFrame:
    """Per (algorithm, dataset, seed): the mean of the last ``last`` evaluations (the papers' protocol)."""
    per_step = curves(evaluations, metric)
    final = (
        per_step.sort_values("step")
        .groupby(["algorithm", "dataset", "seed"], as_index=False)
        .apply(
            lambda g: pd.Series({metric: g[metric].tail(last).mean(), "evaluations": min(last, len(g))}),
            include_groups=False,
        )
    )
    if not np.isfinite(final[metric]).all():
        bad = final[~np.isfinite(final[metric])][["algorithm", "dataset", "seed"]].to_dict("records")
        raise ValueError(f"non-finite final scores for {bad}")
    return final


def final_episodes(evaluations: pd.DataFrame, last: int = 10, metric: str = "normalized_score") -> pd.DataFrame:
    """Every episode of each (algorithm, dataset, seed)'s last ``last`` evaluations: the TD3BC++ paper's
    "final 500 episodes"."""
    steps = evaluations[["algorithm", "dataset", "seed", "step"]].drop_duplicates().sort_values("step")
    kept = steps.groupby(["algorithm", "dataset", "seed"]).tail(last)
    return evaluations.merge(kept, on=["algorithm", "dataset", "seed", "step"])[
        ["algorithm", "dataset", "seed", "step", metric]
    ]


def seed_scores(final: pd.DataFrame, algorithm: str, dataset: str, metric: str = "normalized_score") -> np.ndarray:
    """The per-seed final scores of one algorithm on one dataset; an error naming both when there are none."""
    scores = final.loc[(final["algorithm"] == algorithm) & (final["dataset"] == dataset), metric].to_numpy()
    if len(scores) == 0:
        raise ValueError(f"no final scores for {algorithm} on {dataset}")
    return scores


def _mean_std(scores: np.ndarray) -> dict[str, float]:
    """Mean and sample std over seeds (std 0 for one seed, as in the score tables)."""
    return {"mean": float(scores.mean()), "std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0}


# The ± of a score table's cells, and of its Total row.
SPREADS = {
    "seeds": "sample std of the per-seed final scores (ours; the Guided TD3+BC paper's)",
    "pooled": (
        "sample std over every final episode of every final evaluation and seed (the TD3BC++ paper's 500 episodes)"
    ),
}
TOTAL_SPREADS = {
    "quadrature": "√Σ of the rows' variances, rows independent (ours)",
    "sum": "Σ of the rows' stds (both papers' Total rows)",
}


def score_table(
    final: pd.DataFrame,
    algorithms: Sequence[str],
    datasets: Sequence[str],
    metric: str = "normalized_score",
    gains: dict[str, str] | None = None,
    spread: str = "seeds",
    total_spread: str = "quadrature",
    episodes: pd.DataFrame | None = None,
    extension: Sequence[str] = (),
    iqm: bool = False,
    omitted: Sequence[tuple[str, str]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Datasets × algorithms, mean ± spread, a Total row; and which cells are a row's best.

    The mean of a cell is the mean of its per-seed final scores. Its ± is ``spread`` (see
    ``SPREADS``; ``pooled`` needs ``episodes``, as from :func:`final_episodes`), the Total's
    ``total_spread`` (``TOTAL_SPREADS``). ``gains`` maps an algorithm to its baseline: its
    Total shows the gain over the baseline's Total in % as well, as the TD3BC++ paper's Table 1
    does ("1918.5 (+21.6%)"). ``extension`` datasets are rows below the Total, marked
    "(extension)" and left out of it: results beyond a paper's grid. ``iqm`` adds a row under
    the Total: :func:`iqm_interval` over the main datasets' runs. ``omitted`` (algorithm, dataset)
    cells are ones the paper leaves out (TD3BC++ Table 2's CQL on Hammer and Relocate): shown as
    ``OMITTED``, NaN in the numbers, and so are that algorithm's Total and IQM.
    Returns (numbers, display strings, bold mask). The numbers have a column per (statistic, algorithm):
    ``mean`` (the Total's: the sum; the IQM row's: the IQM) and ``std`` (NaN on the IQM row); with
    ``iqm``, also ``ci_low`` and ``ci_high``, the IQM row's 95 % interval (NaN on the other rows).
    """
    if spread not in SPREADS or total_spread not in TOTAL_SPREADS:
        raise ValueError(
            f"spread must be one of {list(SPREADS)} and total_spread one of {list(TOTAL_SPREADS)}, "
            f"got {spread!r}, {total_spread!r}"
        )
    rows = [*datasets, *extension]
    mean = final.groupby(["dataset", "algorithm"])[metric].mean().unstack().reindex(index=rows, columns=algorithms)
    left_out = set(omitted)
    gaps = pd.DataFrame([[(a, d) in left_out for a in algorithms] for d in rows], index=rows, columns=algorithms)
    missing = [f"{a} on {d}" for d in rows for a in algorithms if pd.isna(mean.loc[d, a]) and not gaps.loc[d, a]]
    if missing:
        raise ValueError(f"no scores for {missing}")
    mean = mean.mask(gaps)
    if spread == "pooled":
        if episodes is None:
            raise ValueError("the pooled spread needs the final episodes (final_episodes)")
        spread_of = episodes.groupby(["dataset", "algorithm"])[metric].std()
    else:
        spread_of = final.groupby(["dataset", "algorithm"])[metric].std()
    std = spread_of.fillna(0.0).unstack().reindex(index=rows, columns=algorithms)  # one seed or episode: no spread
    std = std.mask(gaps)
    main, extra = list(datasets), list(extension)
    whole = len(main)  # a column with an omitted cell has no Total
    total_mean = mean.loc[main].sum(min_count=whole)
    if total_spread == "sum":
        total_std = std.loc[main].sum(min_count=whole)
    else:
        total_std = np.sqrt((std.loc[main] ** 2).sum(min_count=whole))
    mean = pd.concat([mean.loc[main], total_mean.to_frame("Total").T, mean.loc[extra]])
    std = pd.concat([std.loc[main], total_std.to_frame("Total").T, std.loc[extra]])
    display = (mean.map(lambda v: f"{v:.1f}") + " ± " + std.map(lambda v: f"{v:.1f}")).where(mean.notna(), OMITTED)
    bounds = {}  # the IQM row's interval: columns of their own, empty (NaN) on the other rows
    if iqm:
        whole_columns = [a for a in algorithms if not gaps.loc[main, a].any()]
        intervals = {a: iqm_interval(final, a, main, metric) for a in whole_columns}
        place = len(main) + 1  # under the Total, above the extension rows
        estimate = pd.DataFrame({a: [i.estimate] for a, i in intervals.items()}, index=[IQM_ROW])
        mean = pd.concat([mean.iloc[:place], estimate.reindex(columns=algorithms), mean.iloc[place:]])
        std = std.reindex(mean.index)  # the IQM's spread is its interval
        for column, field in IQM_BOUNDS.items():
            bounds[column] = pd.DataFrame(np.nan, index=mean.index, columns=algorithms)
            bounds[column].loc[IQM_ROW] = [
                getattr(intervals[a], field) if a in intervals else np.nan for a in algorithms
            ]
        shown = pd.DataFrame(
            {
                a: {IQM_ROW: f"{intervals[a].estimate:.1f} [{intervals[a].low:.1f}, {intervals[a].high:.1f}]"}
                if a in intervals
                else {IQM_ROW: OMITTED}
                for a in algorithms
            }
        )
        display = pd.concat([display.iloc[:place], shown, display.iloc[place:]])
    for algorithm, baseline in (gains or {}).items():
        totals = mean.loc["Total"].reindex([algorithm, baseline])
        if totals.notna().all():  # both shown, neither without a Total
            gain = (
                100.0 * (mean.loc["Total", algorithm] - mean.loc["Total", baseline]) / abs(mean.loc["Total", baseline])
            )
            display.loc["Total", algorithm] += f" ({gain:+.1f}% vs {baseline})"
    bold = mean.eq(mean.max(axis=1), axis=0).reindex(display.index)
    labels = {d: f"{d} (extension)" for d in extra}
    mean, std, display, bold = (frame.rename(index=labels) for frame in (mean, std, display, bold))
    numbers = pd.concat({"mean": mean, "std": std, **{c: b.rename(index=labels) for c, b in bounds.items()}}, axis=1)
    numbers.index.name = display.index.name = "dataset"
    return numbers, display, bold


IQM_ROW = "IQM"
OMITTED = "–"  # a cell the paper leaves out, as its tables show it
IQM_BOUNDS = {"ci_low": "low", "ci_high": "high"}  # the numbers' columns of the IQM's interval: Interval field


def iqm_interval(
    final: pd.DataFrame,
    algorithm: str,
    datasets: Sequence[str],
    metric: str = "normalized_score",
    repetitions: int = 2000,
) -> Interval:
    """The interquartile mean of ``algorithm``'s runs (one per dataset and seed) with a 95 % stratified-bootstrap
    interval.

    rliable's aggregate (Agarwal et al., 2021): the IQM over every run of every task, each replicate
    resampling the seeds within each dataset.
    """
    strata = [seed_scores(final, algorithm, dataset, metric) for dataset in datasets]
    return stratified_bootstrap(strata, lambda cells: iqm(np.concatenate(cells)), repetitions=repetitions)


def write_score_table(
    final: pd.DataFrame,
    algorithms: Sequence[str],
    datasets: Sequence[str],
    stem: str | Path,
    gains: dict[str, str] | None = None,
    spread: str = "seeds",
    total_spread: str = "quadrature",
    episodes: pd.DataFrame | None = None,
    extension: Sequence[str] = (),
    iqm: bool = False,
    omitted: Sequence[tuple[str, str]] = (),
    note: str = "",
) -> pd.DataFrame:
    """:func:`score_table` written to ``stem.csv`` (ids, numbers) and ``stem.md``/``.tex`` (the papers' names,
    a footnote saying what ± is and which id each name stands for, after ``note``); returns the displayed table."""
    numbers, display, bold = score_table(
        final,
        algorithms,
        datasets,
        gains=gains,
        spread=spread,
        total_spread=total_spread,
        episodes=episodes,
        extension=extension,
        iqm=iqm,
        omitted=omitted,
    )
    for baseline in set((gains or {}).values()):
        display = display.map(lambda cell, b=baseline: cell.replace(f"% vs {b})", f"% vs {paper_name(b)})"))
    display = display.rename(columns=paper_name)
    counts = (
        final[final["algorithm"].isin(algorithms) & final["dataset"].isin([*datasets, *extension])]
        .groupby(["algorithm", "dataset"])
        .size()
    )
    left_out = ", ".join(f"{paper_name(a)} on {dataset_name(d)}" for a, d in omitted)
    note = (
        (f"{note} " if note else "")
        + f"Final normalised score: mean over {spread_label(counts, '').strip().removeprefix('over ')} "
        + f"± {SPREADS[spread]}; "
        f"Total ± {TOTAL_SPREADS[total_spread]}. "
        + (
            f"{IQM_ROW}: interquartile mean over every run (dataset × seed) of the Total's datasets "
            "[95 % stratified-bootstrap interval, seeds resampled within each dataset]. "
            if iqm
            else ""
        )
        + (f"{OMITTED}: left out as the paper does ({left_out}), not run; no Total for its column. " if omitted else "")
        + id_footnote(algorithms)
    )
    write_table(numbers, display, stem, bold, footnote=note.strip())
    return display


def plot_learning_curves(
    evaluations: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str], columns: int = 5
) -> pd.DataFrame:
    """Normalised score vs training step, one panel per dataset: mean over seeds and a ±1 s.d. band; the numbers
    to STEM.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(evaluations)
    data = data[data["algorithm"].isin(algorithms) & data["dataset"].isin(datasets)]
    stats = (
        data.groupby(["algorithm", "dataset", "step"])["normalized_score"]
        .agg(mean="mean", std="std", seeds="count")
        .reset_index()
    )
    stats["std"] = stats["std"].fillna(0.0)  # one seed: no spread
    cols = min(columns, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
    colours = dict(zip(algorithms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, dataset in zip(axes.flat, datasets):
        for algorithm in algorithms:
            line = stats[(stats["algorithm"] == algorithm) & (stats["dataset"] == dataset)]
            ax.plot(line["step"], line["mean"], color=colours[algorithm], label=paper_name(algorithm))
            ax.fill_between(
                line["step"],
                line["mean"] - line["std"],
                line["mean"] + line["std"],
                color=colours[algorithm],
                alpha=0.2,
                linewidth=0,
            )
        ax.set_title(dataset_name(dataset), fontsize=9)
        ax.set_xlabel("training step")
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("normalised score")
    axes[0][0].legend(fontsize=7, title=f"line, band: {spread_label(stats['seeds'])}", title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(algorithms))
    write_csv(stats, Path(stem).with_suffix(".csv"), index=False)
    return stats


def plot_contamination_curves(
    final: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], envs: Sequence[str], percents: Sequence[int]
) -> pd.DataFrame:
    """Final score against the share of random data (0 = the expert dataset), one panel per env.

    The TD3BC++ paper's Figure 3 (catastrophic failure): mean ± std over seeds. Returns the
    plotted numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for env in envs:
        for percent in [0, *percents]:
            dataset = f"{env}-expert" if percent == 0 else f"{env}-expert-random-{percent}"
            for algorithm in algorithms:
                scores = seed_scores(final, algorithm, dataset)
                rows.append(
                    {"env": env, "percent": percent, "algorithm": algorithm, **_mean_std(scores), "seeds": len(scores)}
                )
    data = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for algorithm in algorithms:
            line = data[(data["env"] == env) & (data["algorithm"] == algorithm)]
            ax.errorbar(
                line["percent"], line["mean"], yerr=line["std"], marker="o", capsize=3, label=paper_name(algorithm)
            )
        ax.set_xlabel("random transitions (%)")
        ax.set_ylabel("final normalised score")
        ax.set_title(f"{dataset_name(env)}: expert-random-X", fontsize=9)
    axes[0][0].legend(fontsize=7, title=spread_label(data["seeds"]), title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(algorithms))
    stem = Path(stem)
    write_csv(data, stem.with_suffix(".csv"), index=False)
    return data


def load_run_logs(run_dirs: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training logs and evaluations of runs, each labelled with its algorithm and dataset (from its evaluation)."""
    logs, evals = [], []
    for run in map(Path, run_dirs):
        evaluation = pd.read_csv(run / "evaluation.csv")
        log = pd.read_csv(run / "train_log.csv")
        log.insert(0, "algorithm", evaluation["algorithm"].iloc[0])
        log.insert(1, "dataset", evaluation["dataset"].iloc[0])
        logs.append(log)
        evals.append(evaluation)
    return pd.concat(logs, ignore_index=True), pd.concat(evals, ignore_index=True)


class ProbeQ(NamedTuple):
    """The contamination probe's Q-values of one run, as its snapshots.pt holds them."""

    algorithm: str
    seeds: list[int]
    by_step: dict[int, dict[str, torch.Tensor]]  # step -> "expert"/"contaminant" -> Q, (seeds, pairs); {}: no probe


def load_probe_q(snapshots: str | Path) -> ProbeQ:
    """The probe's Q-values in a run's snapshots.pt, with the run's algorithm and seeds."""
    snapshot = load_tensors(snapshots, "training snapshots")
    return ProbeQ(snapshot["algorithm"], snapshot["seeds"], snapshot.get("probe_q") or {})


def load_final_probe_q(run_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Per run and seed: the mean Q(s, a) on the contamination probe's expert and contaminant pairs at the last
    snapshot.

    Runs without the probe (uncontaminated data, or no critic) are left out; an empty frame if none has it.
    """
    rows = []
    for run in map(Path, run_dirs):
        probe = load_probe_q(run / "snapshots.pt")
        if not probe.by_step:
            continue
        dataset = pd.read_csv(run / "evaluation.csv", nrows=1)["dataset"].iloc[0]
        step = max(probe.by_step)
        last = probe.by_step[step]
        for member, seed in enumerate(probe.seeds):
            rows.append(
                {
                    "algorithm": probe.algorithm,
                    "dataset": dataset,
                    "seed": seed,
                    "step": step,
                    **{f"q_{part}": float(last[part][member].mean()) for part in ("expert", "contaminant")},
                }
            )
    return pd.DataFrame(rows, columns=["algorithm", "dataset", "seed", "step", "q_expert", "q_contaminant"])


def plot_divergence(
    logs: pd.DataFrame, evaluations: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str]
) -> None:
    """TD3BC++ Figure 4: top, the 75th percentile of ‖π(s) − a‖² on expert and on contaminant pairs; bottom, the score.

    One column per dataset, one colour per algorithm; mean over seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    missing = [c for c in ("divergence_expert_p75", "divergence_contaminant_p75") if c not in logs.columns]
    if missing:
        raise ValueError(f"training logs lack {missing}: train on contaminated datasets (expert-random-X)")
    seeds = logs.groupby(["algorithm", "dataset"])["seed"].nunique() if "seed" in logs.columns else pd.Series([1])
    logs = logs.groupby(["algorithm", "dataset", "step"], as_index=False)[
        ["divergence_expert_p75", "divergence_contaminant_p75"]
    ].mean()
    scores = curves(evaluations).groupby(["algorithm", "dataset", "step"], as_index=False)["normalized_score"].mean()
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.6 * len(datasets), 5.4), squeeze=False, sharex="col")
    colours = dict(zip(algorithms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for col, dataset in enumerate(datasets):
        top, bottom = axes[0][col], axes[1][col]
        for algorithm in algorithms:
            log = logs[(logs["algorithm"] == algorithm) & (logs["dataset"] == dataset)]
            score = scores[(scores["algorithm"] == algorithm) & (scores["dataset"] == dataset)]
            if log.empty or score.empty:
                raise ValueError(f"no training log or evaluation for {algorithm} on {dataset}")
            name = paper_name(algorithm)
            top.plot(log["step"], log["divergence_expert_p75"], color=colours[algorithm], label=f"{name}: expert pairs")
            top.plot(
                log["step"],
                log["divergence_contaminant_p75"],
                color=colours[algorithm],
                linestyle="--",
                label=f"{name}: contaminant pairs",
            )
            bottom.plot(score["step"], score["normalized_score"], color=colours[algorithm], label=name)
        top.set_yscale("log")
        top.set_title(dataset_name(dataset), fontsize=9)
        bottom.set_xlabel("training step")
    axes[0][0].set_ylabel("p75 of ‖π(s) − a‖²")
    axes[1][0].set_ylabel("normalised score")
    axes[0][0].legend(fontsize=6, title=spread_label(seeds, "mean"), title_fontsize=6)
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(algorithms))
    plotted = logs[logs["algorithm"].isin(algorithms) & logs["dataset"].isin(datasets)].merge(
        scores, on=["algorithm", "dataset", "step"], how="outer"
    )
    write_csv(plotted, Path(stem).with_suffix(".csv"), index=False)


def plot_return_and_q(
    logs: pd.DataFrame, evaluations: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str]
) -> pd.DataFrame:
    """The BEAR blog's Figure 1: top, the return over training; bottom, the mean Q on the batch's pairs.

    One column per dataset, one colour per algorithm; means over seeds. Q is drawn on a
    symmetric log axis (log |Q| with its sign): a diverging Q grows by orders of magnitude,
    and a Q that turns negative still shows. Writes the plotted numbers to STEM.csv.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    if "q_mean" not in logs.columns:
        raise ValueError("training logs lack q_mean: Figure 1 needs actor-critic runs")
    seeds = logs.groupby(["algorithm", "dataset"])["seed"].nunique() if "seed" in logs.columns else pd.Series([1])
    q = logs.groupby(["algorithm", "dataset", "step"], as_index=False)["q_mean"].mean()
    returns = curves(evaluations, "return").groupby(["algorithm", "dataset", "step"], as_index=False)["return"].mean()
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.8 * len(datasets), 5.6), squeeze=False, sharex="col")
    colours = dict(zip(algorithms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for col, dataset in enumerate(datasets):
        top, bottom = axes[0][col], axes[1][col]
        for algorithm in algorithms:
            score = returns[(returns["algorithm"] == algorithm) & (returns["dataset"] == dataset)]
            value = q[(q["algorithm"] == algorithm) & (q["dataset"] == dataset)]
            if score.empty or value.empty:
                raise ValueError(f"no evaluation or Q log for {algorithm} on {dataset}")
            top.plot(score["step"], score["return"], color=colours[algorithm], label=paper_name(algorithm))
            bottom.plot(value["step"], value["q_mean"], color=colours[algorithm], label=paper_name(algorithm))
        bottom.set_yscale("symlog", linthresh=1.0)
        bottom.yaxis.set_major_locator(ticker.SymmetricalLogLocator(base=10, linthresh=1.0, subs=[1, 2, 5]))
        bottom.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        top.set_title(dataset_name(dataset), fontsize=9)
        bottom.set_xlabel("training step")
    axes[0][0].set_ylabel("average return")
    axes[1][0].set_ylabel("mean Q (symlog)")
    axes[0][0].legend(fontsize=7, title=spread_label(seeds, "mean"), title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(algorithms))
    data = returns.merge(q, on=["algorithm", "dataset", "step"], how="outer")
    data = data[data["algorithm"].isin(algorithms) & data["dataset"].isin(datasets)]
    write_csv(data, Path(stem).with_suffix(".csv"), index=False)
    return data


def plot_final_boxes(
    final: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str], title: str = ""
) -> pd.DataFrame:
    """Final scores as box plots over seeds: one group per dataset, one box per algorithm (TD3BC++ Figures 5, 8, 11).

    Writes the plotted per-seed scores to STEM.csv and returns them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    cells = {
        (a, d): final[(final["algorithm"] == a) & (final["dataset"] == d)]["normalized_score"].to_numpy()
        for a in algorithms
        for d in datasets
    }
    missing = [f"{a} on {d}" for (a, d), scores in cells.items() if len(scores) == 0]
    if missing:  # every missing cell at once, so one rerun fixes them all
        raise ValueError(f"no final scores for {missing}")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = len(algorithms) + 1  # a gap between datasets
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 + 0.45 * len(algorithms) * len(datasets)), 3.8))
    for j, algorithm in enumerate(algorithms):
        positions = [i * width + j for i in range(len(datasets))]
        boxes = ax.boxplot(
            [cells[(algorithm, d)] for d in datasets],
            positions=positions,
            widths=0.8,
            patch_artist=True,
            medianprops={"color": "black"},
        )
        for box in boxes["boxes"]:
            box.set_facecolor(colours[j % len(colours)])
    ax.set_xticks(
        [i * width + (len(algorithms) - 1) / 2 for i in range(len(datasets))],
        [dataset_name(d) for d in datasets],
        rotation=20,
        fontsize=8,
    )
    ax.set_ylabel("normalised score (final)")
    if title:
        ax.set_title(title, fontsize=10)
    seeds = spread_label([len(scores) for scores in cells.values()], "box: quartiles, whiskers 1.5 IQR,")
    ax.legend(
        [Patch(color=colours[j % len(colours)]) for j in range(len(algorithms))],
        [paper_name(a) for a in algorithms],
        fontsize=7,
        title=seeds,
        title_fontsize=6,
    )
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(algorithms))
    plotted = final[final["algorithm"].isin(algorithms) & final["dataset"].isin(datasets)]
    write_csv(plotted, Path(stem).with_suffix(".csv"), index=False)
    return plotted


def plot_q_histograms(
    snapshot_paths: Sequence[str | Path], algorithms: Sequence[str], stem: str | Path, points: int = 3
) -> None:
    """TD3BC++ Figure 6: Q(s, a) of expert vs contaminant dataset actions at a few snapshots, one row per algorithm.

    ``snapshot_paths[i]`` is a run of ``algorithms[i]`` (several runs of one algorithm, e.g.
    its seed groups, pool their seeds). The snapshots are the first, the last and evenly
    spaced ones between.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, list[dict]] = {}
    for path, algorithm in zip(snapshot_paths, algorithms, strict=True):
        probe_q = load_probe_q(path).by_step
        if not probe_q:
            raise ValueError(
                f"{path} has no Q-values of the contamination probe: train a critic on an expert-random-X dataset"
            )
        runs.setdefault(algorithm, []).append(probe_q)
    names = list(runs)
    steps = sorted(runs[names[0]][0])
    chosen = [steps[round(i)] for i in np.linspace(0, len(steps) - 1, min(points, len(steps)))]
    fig, axes = plt.subplots(len(names), len(chosen), figsize=(3.2 * len(chosen), 2.4 * len(names)), squeeze=False)
    rows = []
    for row, algorithm in enumerate(names):
        for col, step in enumerate(chosen):
            ax = axes[row][col]
            pooled = {
                part: np.concatenate([run[step][part].numpy().ravel() for run in runs[algorithm]])
                for part in ("expert", "contaminant")
            }
            for part, colour, alpha in (("contaminant", "tab:orange", 0.5), ("expert", "tab:blue", 0.8)):
                ax.hist(pooled[part], bins=50, color=colour, alpha=alpha, label=f"{part} actions", density=True)
            ax.set_title(f"{paper_name(algorithm)}, step {step}", fontsize=9)
            ax.set_xlabel("Q(s, a)")
            rows.append(
                {
                    "algorithm": algorithm,
                    "step": step,
                    **{
                        f"{part}_q_{stat}": getattr(np, stat)(pooled[part])
                        for part in ("expert", "contaminant")
                        for stat in ("mean", "median", "std")
                    },
                }
            )
    axes[0][0].legend(fontsize=7, title=f"density, pooled over {len(runs[names[0]])} run(s)", title_fontsize=6)
    fig.tight_layout()
    save_figure(fig, stem, id_footnote(names))
    write_csv(pd.DataFrame(rows), Path(stem).with_suffix(".csv"), index=False)


def plot_alpha_grid(
    final: pd.DataFrame,
    stem: str | Path,
    grid: Sequence[tuple[str, float, float]],
    datasets: Sequence[str],
    note: str = "",
) -> pd.DataFrame:
    """TD3BC++ Figure 7: final score against TD3+BC's α, one line per λ_GP, one panel per dataset.

    ``grid`` lists (algorithm name, α, λ_GP); ``note`` goes under the panels. Returns the plotted means and stds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for dataset in datasets:
        for algorithm, alpha, weight in grid:
            scores = seed_scores(final, algorithm, dataset)
            rows.append(
                {
                    "dataset": dataset,
                    "algorithm": algorithm,
                    "alpha": alpha,
                    "gradient_penalty": weight,
                    **_mean_std(scores),
                    "seeds": len(scores),
                }
            )
    data = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.8 * len(datasets), 3.3), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for weight, line in data[data["dataset"] == dataset].groupby("gradient_penalty"):
            line = line.sort_values("alpha")
            ax.errorbar(
                line["alpha"], line["mean"], yerr=line["std"], marker="o", capsize=3, label=f"λ_GP = {weight:g}"
            )
        ax.set_xlabel("α (0: behaviour cloning)")
        ax.set_title(dataset_name(dataset), fontsize=9)
    axes[0][0].set_ylabel("normalised score (final)")
    axes[0][0].legend(fontsize=7, title=f"TD3+BC(+GP), {spread_label(data['seeds'])}", title_fontsize=6)
    fig.tight_layout()
    save_figure(fig, stem, note)
    write_csv(data, Path(stem).with_suffix(".csv"), index=False)
    return data
