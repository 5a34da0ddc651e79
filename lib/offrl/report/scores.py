"""Scores over training, the papers' final-score protocol, score tables and learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.report.tables import write_table


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
        .apply(lambda g: pd.Series({metric: g[metric].tail(last).mean(), "evaluations": min(last, len(g))}), include_groups=False)
    )
    if not np.isfinite(final[metric]).all():
        bad = final[~np.isfinite(final[metric])][["algorithm", "dataset", "seed"]].to_dict("records")
        raise ValueError(f"non-finite final scores for {bad}")
    return final


def score_table(final: pd.DataFrame, algorithms: Sequence[str], datasets: Sequence[str], metric: str = "normalized_score") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Datasets × algorithms, mean ± std over seeds, a Total row; and which cells are a row's best.

    Returns (numbers: mean and std columns per algorithm, display strings, bold mask).
    """
    stats = final.groupby(["dataset", "algorithm"])[metric].agg(["mean", "std", "count"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)  # one seed: no spread
    mean = stats.pivot(index="dataset", columns="algorithm", values="mean").reindex(index=datasets, columns=algorithms)
    std = stats.pivot(index="dataset", columns="algorithm", values="std").reindex(index=datasets, columns=algorithms)
    if mean.isna().any().any():
        missing = [f"{a} on {d}" for d in datasets for a in algorithms if pd.isna(mean.loc[d, a])]
        raise ValueError(f"no scores for {missing}")
    mean.loc["Total"] = mean.sum()
    std.loc["Total"] = np.sqrt((std**2).sum())  # spread of the total, seeds treated as independent
    display = mean.map(lambda v: f"{v:.1f}") + " ± " + std.map(lambda v: f"{v:.1f}")
    bold = mean.eq(mean.max(axis=1), axis=0)
    numbers = pd.concat({"mean": mean, "std": std}, axis=1)
    numbers.index.name = display.index.name = "dataset"
    return numbers, display, bold


def write_score_table(final: pd.DataFrame, algorithms: Sequence[str], datasets: Sequence[str], stem: str | Path) -> pd.DataFrame:
    numbers, display, bold = score_table(final, algorithms, datasets)
    write_table(numbers, display, stem, bold)
    return display


def plot_learning_curves(evaluations: pd.DataFrame, stem: str | Path, algorithms: Sequence[str], datasets: Sequence[str]) -> None:
    """Normalised score vs training step, one panel per dataset: mean over seeds and a ±1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    data = curves(evaluations)
    data = data[data["algorithm"].isin(algorithms) & data["dataset"].isin(datasets)]
    grid = sns.relplot(
        data=data, x="step", y="normalized_score", hue="algorithm", hue_order=list(algorithms),
        col="dataset", col_order=list(datasets), col_wrap=min(5, len(datasets)), kind="line",
        errorbar="sd", height=2.6, aspect=1.2, facet_kws={"sharey": False},
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("training step", "normalised score")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        grid.savefig(stem.with_suffix(suffix), dpi=150)
