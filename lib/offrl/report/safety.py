"""Safety over training (Guided TD3+BC, Figure 1): unsafe events and action magnitude, method vs baseline.

Both are totals over every evaluation episode a run made during training, all seeds:

- events: "the number of times the agent falls or its height crosses the safe range", counted
  once per episode: an episode is one event if it fell (terminated as unhealthy) or had any
  step with the torso height outside the healthy range (:func:`offrl.evaluate.evaluate_policy`
  records both). With termination on (every evaluation here, and the paper's v2 envs) the step
  whose height leaves the range is the terminating one, so a height fall is both ``fell`` and one
  unsafe-height step: adding the two counted every height fall twice. An episode ends at its
  first unsafe event, so per episode is also per event;
- actions: the cumulative Σ‖a‖₁ over all evaluation steps ("the cumulative sum of the actions").

The figure shows 100·(method − baseline)/baseline per (env, dataset); negative is safer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.report.figures import save_figure
from offrl.report.names import dataset_name, id_footnote, paper_name
from offrl.report.tables import write_table

ENV_LABELS = {"hopper": "h", "walker2d": "w", "halfcheetah": "hc"}
KIND_LABELS = {"random": "r", "medium": "m", "medium-replay": "mr", "medium-expert": "me", "expert": "e"}


def short_label(dataset: str) -> str:
    """The paper's labels, kept in the table for comparison with it: ``hopper-medium-replay`` -> ``h-mr``."""
    env, kind = dataset.split("-", 1)
    return f"{ENV_LABELS.get(env, env)}-{KIND_LABELS.get(kind, kind)}"


def safety_totals(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Per (algorithm, dataset): falls, unsafe-height steps, unsafe events (episodes with either), Σ‖a‖₁, episodes and steps."""
    data = evaluations.assign(
        events=(evaluations["fell"].astype(bool) | (evaluations["unsafe_height_steps"] > 0)).astype(np.int64)
    )
    return data.groupby(["algorithm", "dataset"], as_index=False).agg(
        falls=("fell", "sum"),
        unsafe_height_steps=("unsafe_height_steps", "sum"),
        events=("events", "sum"),
        sum_abs_action=("sum_abs_action", "sum"),
        episodes=("episode", "size"),
        steps=("length", "sum"),
    )


def percent_change(method: float, baseline: float) -> float:
    """100·(method − baseline)/baseline; 0 when both are 0, NaN when only the baseline is 0."""
    if baseline == 0:
        return 0.0 if method == 0 else float("nan")
    return 100.0 * (method - baseline) / baseline


def safety_comparison(
    evaluations: pd.DataFrame, baseline: str, method: str, datasets: Sequence[str], extension: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per dataset: both algorithms' totals and the percent change of events and of Σ‖a‖₁.

    ``extension`` datasets (beyond the paper's grid) follow, their labels marked with a "*".
    """
    totals = safety_totals(evaluations).set_index(["algorithm", "dataset"])
    missing = [
        f"{algo} on {d}"
        for algo in (baseline, method)
        for d in [*datasets, *extension]
        if (algo, d) not in totals.index
    ]
    if missing:
        raise ValueError(f"no evaluations for {missing}")
    rows = []
    for dataset in [*datasets, *extension]:
        b, m = totals.loc[(baseline, dataset)], totals.loc[(method, dataset)]
        if b["episodes"] != m["episodes"]:
            raise ValueError(
                f"{dataset}: {baseline} has {b['episodes']} evaluation episodes, {method} {m['episodes']}; totals would not compare"
            )
        rows.append(
            {
                "dataset": dataset,
                "label": short_label(dataset) + ("*" if dataset in extension else ""),
                "episodes": int(b["episodes"]),
                f"events_{baseline}": int(b["events"]),
                f"events_{method}": int(m["events"]),
                "events_change_pct": percent_change(m["events"], b["events"]),
                f"sum_abs_action_{baseline}": float(b["sum_abs_action"]),
                f"sum_abs_action_{method}": float(m["sum_abs_action"]),
                "sum_abs_action_change_pct": percent_change(m["sum_abs_action"], b["sum_abs_action"]),
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def write_safety_comparison(comparison: pd.DataFrame, stem: str | Path) -> None:
    display = comparison.map(lambda v: f"{v:.1f}" if isinstance(v, float) else str(v))
    codes = (
        ", ".join(f"{code} = {env}" for env, code in ENV_LABELS.items())
        + "; "
        + ", ".join(f"{code} = {kind}" for kind, code in KIND_LABELS.items())
    )
    write_table(
        comparison,
        display,
        stem,
        footnote=f"label: the paper's codes ({codes}). Totals over every evaluation episode of training, all seeds.",
    )


def plot_safety_comparison(comparison: pd.DataFrame, stem: str | Path, method_name: str, baseline_name: str) -> None:
    """Two bar panels, as the paper's Figure 1: % change of unsafe events (falls or unsafe height, once per episode), and of Σ‖a‖₁."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(max(11.0, 1.1 * len(comparison)), 3.8))
    x = np.arange(len(comparison))
    panels = (
        ("events_change_pct", "falls or unsafe height (episodes)"),
        ("sum_abs_action_change_pct", "cumulative Σ‖a‖₁"),
    )
    for ax, (column, title) in zip(axes, panels):
        values = comparison[column].to_numpy(dtype=float)
        ax.bar(x, np.nan_to_num(values), color=np.where(values <= 0, "tab:green", "tab:red"))
        for i in np.flatnonzero(np.isnan(values)):
            ax.annotate("n/a", (x[i], 0), ha="center", va="bottom", fontsize=7)  # baseline total was 0
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(
            x,
            [
                dataset_name(d).replace(" ", "\n", 1) + ("*" if label.endswith("*") else "")
                for d, label in zip(comparison.index, comparison["label"])
            ],
            rotation=0,
            fontsize=7,
        )
        ax.set_ylabel("% difference (bars: totals over all seeds)")
        ax.set_title(title, fontsize=10)
    method, baseline = paper_name(method_name), paper_name(baseline_name)
    extension = " (* an extension beyond the paper's envs)" if comparison["label"].str.endswith("*").any() else ""
    fig.suptitle(
        f"{method} vs {baseline}: % change over all evaluation episodes of training (green: fewer){extension}",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, stem, id_footnote([method_name, baseline_name]))
