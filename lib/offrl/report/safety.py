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
  A cumulative sum grows with the episodes' length: a method whose episodes last twice as long
  (it falls less) sums twice the steps. Beside it, the per-step action size Σ‖a‖₁ / Σ steps
  and the mean episode length of both algorithms say which of the two moved the total.

The figure shows 100·(method − baseline)/baseline per (env, dataset) for events and the
cumulative Σ‖a‖₁ (negative is safer), then both algorithms' per-step ‖a‖₁ and episode lengths.
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
    """Per (algorithm, dataset): falls, unsafe-height steps, unsafe events (episodes with either), Σ‖a‖₁, episodes
    and steps."""
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
                f"{dataset}: {baseline} has {b['episodes']} evaluation episodes, {method} {m['episodes']}; "
                "totals would not compare"
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
                f"steps_{baseline}": int(b["steps"]),
                f"steps_{method}": int(m["steps"]),
                f"mean_length_{baseline}": b["steps"] / b["episodes"],
                f"mean_length_{method}": m["steps"] / m["episodes"],
                f"abs_action_per_step_{baseline}": b["sum_abs_action"] / b["steps"],
                f"abs_action_per_step_{method}": m["sum_abs_action"] / m["steps"],
                "abs_action_per_step_change_pct": percent_change(
                    m["sum_abs_action"] / m["steps"], b["sum_abs_action"] / b["steps"]
                ),
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def write_safety_comparison(comparison: pd.DataFrame, stem: str | Path) -> None:
    display = comparison.map(lambda v: f"{v:.1f}" if isinstance(v, float) else str(v))
    per_step = [c for c in comparison.columns if c.startswith("abs_action_per_step_") and not c.endswith("_pct")]
    display[per_step] = comparison[per_step].map(lambda v: f"{v:.3f}")  # ‖a‖₁ per step is about 1
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


def _why_empty(comparison: pd.DataFrame, column: str, baseline: str, method: str) -> list[str]:
    """Per dataset, why a % change bar has no height: no events in either algorithm (0/0), or none in the baseline."""
    counted = column.removesuffix("_change_pct")
    notes = []
    for b, m, change in zip(comparison[f"{counted}_{baseline}"], comparison[f"{counted}_{method}"], comparison[column]):
        if b == 0 and m == 0:
            notes.append("none in\neither")
        elif np.isnan(change):
            notes.append(f"n/a: none\nfor {paper_name(baseline)}")
        else:
            notes.append("")
    return notes


def plot_safety_comparison(comparison: pd.DataFrame, stem: str | Path, method_name: str, baseline_name: str) -> None:
    """Four panels: as the paper's Figure 1, % change of unsafe events (falls or unsafe height, once per episode) and of
    the cumulative Σ‖a‖₁; then what the cumulative measure is made of, both algorithms' ‖a‖₁ per step and mean
    episode length. A bar with no height says why (no events in either algorithm, or none in the baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(max(15.0, 2.2 * len(comparison)), 4.0))
    x = np.arange(len(comparison))
    labels = [
        dataset_name(d).replace(" ", "\n", 1) + ("*" if label.endswith("*") else "")
        for d, label in zip(comparison.index, comparison["label"])
    ]
    method, baseline = paper_name(method_name), paper_name(baseline_name)
    changes = (
        ("events_change_pct", "% change: falls or unsafe height\n(episodes)"),
        ("sum_abs_action_change_pct", "% change: cumulative Σ‖a‖₁"),
    )
    for ax, (column, title) in zip(axes[:2], changes):
        values = comparison[column].to_numpy(dtype=float)
        ax.bar(x, np.nan_to_num(values), color=np.where(values <= 0, "tab:green", "tab:red"))
        if column == "events_change_pct":
            for i, note in enumerate(_why_empty(comparison, column, baseline_name, method_name)):
                if note:
                    ax.annotate(note, (x[i], 0), ha="center", va="bottom", fontsize=7)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("% difference (totals over all seeds)", fontsize=8)
        ax.set_title(title, fontsize=9)
    width = 0.38
    absolute = (
        ("abs_action_per_step", "‖a‖₁ per step\n(Σ‖a‖₁ / Σ steps)", "‖a‖₁ per step"),
        ("mean_length", "episode length\n(mean over all evaluations)", "steps"),
    )
    for ax, (column, title, unit) in zip(axes[2:], absolute):
        for offset, name, colour in ((-width / 2, baseline_name, "tab:gray"), (width / 2, method_name, "tab:blue")):
            ax.bar(
                x + offset,
                comparison[f"{column}_{name}"].to_numpy(dtype=float),
                width,
                color=colour,
                label=paper_name(name),
            )
        ax.set_ylabel(unit, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(x, labels, rotation=0, fontsize=7)
    extension = " (* an extension beyond the paper's envs)" if comparison["label"].str.endswith("*").any() else ""
    fig.suptitle(
        f"{method} vs {baseline} over all evaluation episodes of training: % change (green: fewer),"
        f" and what the cumulative Σ‖a‖₁ is made of{extension}",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, stem, id_footnote([method_name, baseline_name]))
