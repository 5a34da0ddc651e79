"""The slides' "learned Q minus actual return" table and its curves over training.

Read from the evaluation jobs' ``q_diagnostic.csv`` files (:mod:`offrl.qdiagnostic`), one row
per evaluation episode. Per run, snapshot and seed:

- ``q``: mean Q(s₀, π(s₀)) over the dataset's initial states;
- ``return``: mean discounted return of the evaluation episodes from their initial state
  (episodes whose initial return is not ``comparable`` left out);
- ``gap`` = q − return: above 0 the critic overestimates its policy, below it underestimates;
- ``gap_along``: mean over every comparable step of every episode of Q(s_t, π(s_t)) − G_t.

An algorithm without a critic (BC) has NaN Q and gaps, and the table says so; so does a run
trained before its snapshots kept the critic (``critic`` = ``not kept``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from offrl.files import write_csv
from offrl.report.figures import save_figure
from offrl.report.tables import write_table

NO_Q = "no Q-function"
NOT_KEPT = "critic not kept: retrain"


def load_diagnostics(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The per-episode rows of every ``q_diagnostic.csv``, with their algorithm and dataset."""
    if not paths:
        raise ValueError("no q_diagnostic.csv given")
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def per_snapshot(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, dataset, step, seed): q, return, gap and gap_along (see the module)."""
    d = diagnostics.assign(
        initial=diagnostics["return_initial"].where(diagnostics["initial_comparable"].astype(bool)),
        # Σ over an episode's comparable steps of Q − G, so the mean over a seed's episodes weighs every step alike.
        gap_sum=(diagnostics["q_along"] - diagnostics["return_along"]) * diagnostics["comparable_steps"],
    )
    grouped = d.groupby(["algorithm", "dataset", "step", "seed"], sort=True)
    out = grouped.agg(
        critic=("critic", "first"),
        q=("q_dataset_initial", "first"),
        ret=("initial", "mean"),
        gap_sum=("gap_sum", lambda x: x.sum(min_count=1)),
        steps=("comparable_steps", "sum"),
    ).reset_index()
    out = out.rename(columns={"ret": "return"})
    out["gap"] = out["q"] - out["return"]
    out["gap_along"] = out["gap_sum"] / out["steps"].where(out["steps"] > 0)
    return out.drop(columns=["gap_sum", "steps"])


def overestimation_table(
    diagnostics: pd.DataFrame, algorithms: Sequence[str], datasets: Sequence[str], last: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per dataset and algorithm, the mean of the last ``last`` snapshots per seed, then mean ± std over seeds.

    Returns the numbers and their display (``NO_Q`` where the algorithm has no critic, ``NOT_KEPT``
    where its run did not keep it).
    """
    snapshots = per_snapshot(diagnostics)
    missing = [
        f"{a} on {d}"
        for d in datasets
        for a in algorithms
        if snapshots[(snapshots["algorithm"] == a) & (snapshots["dataset"] == d)].empty
    ]
    if missing:
        raise ValueError(f"no Q diagnostic for {missing}")
    rows, shown = [], []
    for dataset in datasets:
        for algorithm in algorithms:
            run = snapshots[(snapshots["algorithm"] == algorithm) & (snapshots["dataset"] == dataset)]
            final = run[run["step"].isin(sorted(run["step"].unique())[-last:])]
            seeds = final.groupby("seed")[["q", "return", "gap", "gap_along"]].mean()
            critic = final["critic"].iloc[0]
            row = {"algorithm": algorithm, "dataset": dataset, "critic": critic, "seeds": len(seeds)}
            for column in ("q", "return", "gap", "gap_along"):
                row[f"{column}_mean"] = seeds[column].mean()
                row[f"{column}_std"] = seeds[column].std(ddof=0)
            rows.append(row)
            absent = {"none": NO_Q, "not kept": NOT_KEPT}.get(critic)
            cell = lambda c: absent if absent and c != "return" else f"{row[c + '_mean']:.1f} ± {row[c + '_std']:.1f}"  # noqa: E731
            shown.append(
                {
                    "algorithm": algorithm,
                    "dataset": dataset,
                    "Q(s₀, π(s₀))": cell("q"),
                    "discounted return": cell("return"),
                    "Q − return": cell("gap"),
                    "Q − G along rollouts": cell("gap_along"),
                }
            )
    data = pd.DataFrame(rows).set_index("algorithm")
    display = pd.DataFrame(shown).set_index("algorithm")
    return data, display


def write_overestimation_table(
    diagnostics: pd.DataFrame, algorithms: Sequence[str], datasets: Sequence[str], last: int, stem: str | Path
) -> pd.DataFrame:
    """STEM.csv (numbers), STEM.md and STEM.tex (mean ± std over seeds); returns the numbers."""
    data, display = overestimation_table(diagnostics, algorithms, datasets, last)
    write_table(data, display, stem)
    return data


def plot_overestimation(
    diagnostics: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str]
) -> pd.DataFrame:
    """Q − return over training: top at the initial states, bottom along the rollouts; one column per dataset.

    Mean over seeds with a ±1 sd band, on a symmetric log axis (log₁₀ of |Q − return| with its
    sign, linear within ±1): an overestimating critic climbs by orders of magnitude above 0,
    an underestimating one falls below it. Algorithms without a critic are named in the legend.
    Writes the plotted numbers to STEM.csv.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    snapshots = per_snapshot(diagnostics)
    snapshots = snapshots[snapshots["algorithm"].isin(algorithms) & snapshots["dataset"].isin(datasets)]
    curves = snapshots.groupby(["algorithm", "dataset", "step"])[["gap", "gap_along"]].agg(["mean", "std"])
    curves.columns = [f"{a}_{b}" for a, b in curves.columns]
    curves = curves.reset_index()
    fig, axes = plt.subplots(2, len(datasets), figsize=(3.8 * len(datasets), 5.6), squeeze=False, sharex="col")
    colours = dict(zip(algorithms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    without_q = []
    for col, dataset in enumerate(datasets):
        for row, (column, label) in enumerate(
            (("gap", "Q(s₀) − return"), ("gap_along", "Q(s_t) − G_t along rollouts"))
        ):
            ax = axes[row][col]
            ax.axhline(0.0, color="grey", linewidth=0.8)
            for algorithm in algorithms:
                curve = curves[(curves["algorithm"] == algorithm) & (curves["dataset"] == dataset)]
                if curve.empty:
                    raise ValueError(f"no Q diagnostic for {algorithm} on {dataset}")
                if curve[f"{column}_mean"].isna().all():
                    if algorithm not in without_q:
                        without_q.append(algorithm)
                    continue
                mean, std = curve[f"{column}_mean"], curve[f"{column}_std"].fillna(0.0)
                ax.plot(curve["step"], mean, color=colours[algorithm], label=algorithm, marker=".")
                ax.fill_between(curve["step"], mean - std, mean + std, color=colours[algorithm], alpha=0.2, linewidth=0)
            ax.set_yscale("symlog", linthresh=1.0)
            ax.yaxis.set_major_locator(ticker.SymmetricalLogLocator(base=10, linthresh=1.0))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            if col == 0:
                ax.set_ylabel(f"{label} (symlog)", fontsize=8)
        axes[0][col].set_title(dataset, fontsize=9)
        axes[1][col].set_xlabel("training step")
    for algorithm in without_q:
        axes[0][0].plot([], [], linestyle="none", label=f"{algorithm}: {NO_Q}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem)
    write_csv(curves, Path(stem).with_suffix(".csv"), index=False)
    return curves
