"""SAFER (Slack et al.): Table 1 and Figures 1, 4-8 from the downstream logs and the prior's probes.

Downstream runs log one row per seed per window of ``log_every`` environment steps:
``seed, step, episodes, successes, violations, return_mean`` (``step`` is the window's last
step). From these:

- a run's success rate is 100·successes/episodes pooled over the windows of the last
  ``final_fraction`` of its steps (the policy at the end of training); undefined (NaN) when no
  episode ended there;
- a run's total violations sum ``violations`` over all its windows;
- a window's success rate is 100·successes/episodes of that window, NaN without episodes.

A run is one SAC seed acting through one prior: the prior-based methods train several priors
(``prior_seed``), each with the same SAC seeds; the raw-action methods have none (``NO_PRIOR``).
Spreads over runs (priors × SAC seeds) follow the score tables: mean and sample std (0 for one
run), via :func:`offrl.report.scores._mean_std`; undefined (NaN) run values are left out and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.files import write_csv
from offrl.report.figures import save_figure
from offrl.report.names import paper_name, spread_label
from offrl.report.scores import _mean_std
from offrl.report.tables import write_table

LOG_COLUMNS = ["seed", "step", "episodes", "successes", "violations", "return_mean"]
CALIBRATION_COLUMNS = ["target", "bound", "rollout", "steps", "unsafe_steps", "unsafe_fraction"]
LIKELIHOOD_COLUMNS = ["top_percent", "unsafe_percent", "pairs"]
SUCCESS = "Success Rate (%)"
ABLATION = ("safer", "safer_no_context")
NO_PRIOR = -1  # the prior_seed of a run on raw actions (sac, csc)
RUN_KEYS = ["method", "task", "prior_seed", "seed"]


def method_name(method: str) -> str:
    return paper_name(method)


def task_name(task: int) -> str:
    return f"Task {task}"


def _read_csv(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    data = pd.read_csv(path)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    return data


def _require_runs(frame: pd.DataFrame, methods: Sequence[str], tasks: Sequence[int]) -> pd.DataFrame:
    """The rows of ``methods`` on ``tasks``; every missing (method, task) named at once, so one rerun fixes them all."""
    frame = frame[frame["method"].isin(methods) & frame["task"].isin(tasks)]
    present = set(zip(frame["method"], frame["task"]))
    missing = [f"{m} on task {t}" for m in methods for t in tasks if (m, t) not in present]
    if missing:
        raise ValueError(f"no downstream runs for {missing}")
    return frame


def parse_runs(specs: Sequence[str], flag: str = "runs") -> dict[tuple[str, int, int], list[str]]:
    """``METHOD:TASK[:PRIOR_SEED]=PATH/log.csv`` arguments as :func:`load_downstream`'s keys and paths."""
    paths: dict[tuple[str, int, int], list[str]] = {}
    for spec in specs:
        run, _, path = spec.partition("=")
        method, task, *prior = run.split(":")
        if not path or not task.isdigit() or len(prior) > 1 or (prior and not prior[0].isdigit()):
            raise ValueError(f"{flag} {spec!r}: expected METHOD:TASK=PATH or METHOD:TASK:PRIOR_SEED=PATH")
        paths.setdefault((method, int(task), int(prior[0]) if prior else NO_PRIOR), []).append(path)
    return paths


def load_downstream(paths_by_run: Mapping[tuple[str, int, int], Sequence[str | Path]]) -> pd.DataFrame:
    """Concatenate the downstream ``log.csv`` files; keys are (method, task, prior seed), values that prior's
    seed groups' logs (prior seed ``NO_PRIOR`` for raw actions).

    Adds ``method``, ``task`` and ``prior_seed`` columns. A seed logged twice for one (method, task,
    prior) (overlapping seed groups) is an error, as sums over windows would count it twice.
    """
    frames = []
    for (method, task, prior_seed), paths in paths_by_run.items():
        for path in paths:
            log = _read_csv(path, LOG_COLUMNS)
            if (log["successes"] > log["episodes"]).any() or (
                log[["episodes", "successes", "violations"]] < 0
            ).any().any():
                raise ValueError(f"{path}: counts must be non-negative with successes ≤ episodes")
            frames.append(log.assign(method=method, task=int(task), prior_seed=int(prior_seed)))
    if not frames:
        raise ValueError("no downstream logs given")
    logs = pd.concat(frames, ignore_index=True)
    repeated = logs[logs.duplicated([*RUN_KEYS, "step"])]
    if not repeated.empty:
        raise ValueError(
            f"windows logged twice: {repeated[[*RUN_KEYS, 'step']].drop_duplicates().to_dict('records')[:5]}"
        )
    return logs.sort_values([*RUN_KEYS, "step"], ignore_index=True)


def success_percent(successes: pd.Series | np.ndarray, episodes: pd.Series | np.ndarray) -> np.ndarray:
    """100·successes/episodes, NaN where no episode ended (a rate of nothing is undefined, not 0)."""
    successes, episodes = np.asarray(successes, dtype=float), np.asarray(episodes, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(episodes > 0, 100.0 * successes / episodes, np.nan)


def run_summary(logs: pd.DataFrame, final_fraction: float = 0.2) -> pd.DataFrame:
    """Per run (method, task, prior seed, SAC seed): success rate over the last ``final_fraction`` of the run,
    total violations.

    The final windows are those ending after (1 − final_fraction)·the run's last step, so the
    last window always counts. Columns: method, task, prior_seed, seed, steps (the last step),
    final_episodes, final_successes, success_rate, total_violations.
    """
    if not 0.0 < final_fraction <= 1.0:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction}")
    keys = RUN_KEYS
    steps = logs.groupby(keys)["step"].transform("max")
    final = logs[logs["step"] > (1.0 - final_fraction) * steps]
    summary = logs.groupby(keys).agg(steps=("step", "max"), total_violations=("violations", "sum"))
    summary = summary.join(
        final.groupby(keys).agg(final_episodes=("episodes", "sum"), final_successes=("successes", "sum"))
    )
    summary["success_rate"] = success_percent(summary["final_successes"], summary["final_episodes"])
    columns = ["steps", "final_episodes", "final_successes", "success_rate", "total_violations"]
    return summary[columns].reset_index()


def _seed_stats(frame: pd.DataFrame, keys: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, std and the number of seeds with a defined ``value``, per ``keys``; NaN where no seed has one."""

    def stats(values: pd.Series) -> pd.Series:
        defined = values.dropna().to_numpy(dtype=float)
        spread = _mean_std(defined) if len(defined) else {"mean": np.nan, "std": np.nan}
        return pd.Series({**spread, "seeds": len(defined)})

    return frame.groupby(list(keys))[value].apply(stats).unstack().reset_index().astype({"seeds": int})


def _steps_label(steps: pd.Series) -> str:
    low, high = int(steps.min()), int(steps.max())
    return f"{high:,}" if low == high else f"{low:,}–{high:,}"


def safer_table1(
    summary: pd.DataFrame, methods: Sequence[str], tasks: Sequence[int]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """SAFER's Table 1: success rate and total violations, methods × tasks, mean ± SD over seeds.

    Returns (numbers: rows (metric, method key), columns (mean/std/seeds, task); display: the two
    blocks stacked, each under a header row naming it; bold: the best of each task column,
    highest success rate and fewest violations).
    """
    summary = _require_runs(summary, methods, tasks)
    violations_title = f"Total Number of Safety Violations (Out of {_steps_label(summary['steps'])} Steps)"
    columns = [task_name(t) for t in tasks]
    numbers, blocks, masks = {}, [], []
    for metric, title, digits, best in (
        ("success_rate", SUCCESS, 1, "max"),
        ("total_violations", violations_title, 0, "min"),
    ):
        stats = _seed_stats(summary, ["method", "task"], metric)
        wide = {
            stat: stats.pivot(index="method", columns="task", values=stat).reindex(index=methods, columns=tasks)
            for stat in ("mean", "std", "seeds")
        }
        for part in wide.values():
            part.columns = columns
        numbers[metric] = pd.concat(wide, axis=1)
        cells = wide["mean"].map(lambda v: f"{v:.{digits}f}") + " ± " + wide["std"].map(lambda v: f"{v:.{digits}f}")
        cells = cells.where(wide["seeds"] > 0, "n/a")  # no seed had an episode in its final windows
        cells.index = [method_name(m) for m in methods]
        header = pd.DataFrame([[""] * len(columns)], index=[title], columns=columns)
        blocks += [header, cells]
        best_mask = wide["mean"].eq(getattr(wide["mean"], best)(axis=0), axis=1)  # NaN columns: nothing bold
        masks += [header.ne(header), best_mask.set_axis(cells.index)]
    display, bold = pd.concat(blocks), pd.concat(masks)
    display.index.name = ""
    table = pd.concat(numbers, names=["metric", "method"])
    return table, display, bold


def write_safer_table1(
    summary: pd.DataFrame, methods: Sequence[str], tasks: Sequence[int], stem: str | Path
) -> pd.DataFrame:
    """Write Table 1 to STEM.csv (numbers), STEM.md and STEM.tex; returns the displayed cells."""
    numbers, display, bold = safer_table1(summary, methods, tasks)
    write_table(numbers, display, stem, bold)
    return display


def _write_data(data: pd.DataFrame, stem: str | Path) -> pd.DataFrame:
    """The plotted numbers next to the figure, as the other figures do."""
    write_csv(data, Path(stem).with_suffix(".csv"), index=False)
    return data


def _colours(names: Sequence[str]) -> dict[str, str]:
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _band(ax, line: pd.DataFrame, colour: str, label: str) -> None:
    """Mean line (markers so that an isolated window between NaN gaps still shows) and a ±1 SD band."""
    ax.plot(line["step"], line["mean"], color=colour, marker=".", markersize=3, label=label)
    ax.fill_between(
        line["step"], line["mean"] - line["std"], line["mean"] + line["std"], color=colour, alpha=0.2, linewidth=0
    )


def plot_unsafe_likelihood(csv_by_prior: Mapping[str, str | Path], stem: str | Path) -> pd.DataFrame:
    """SAFER's Figure 1: % unsafe among the top-% most likely holdout pairs under each prior (PARROT vs SAFER)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = pd.concat(
        [_read_csv(p, LIKELIHOOD_COLUMNS).assign(prior=prior) for prior, p in csv_by_prior.items()], ignore_index=True
    )
    data = data[["prior", *LIKELIHOOD_COLUMNS]].sort_values(["prior", "top_percent"], ignore_index=True)
    colours = _colours(list(csv_by_prior))
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for prior in csv_by_prior:
        line = data[data["prior"] == prior]
        ax.plot(line["top_percent"], line["unsafe_percent"], marker="o", color=colours[prior], label=method_name(prior))
    ax.set_xlabel("top % most likely holdout (s, a) pairs")
    ax.set_ylabel("unsafe pairs (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, title="one prior each, holdout data", title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem)
    return _write_data(data, stem)


def plot_calibration(
    csv_by_task: Mapping[int, str | Path], stem: str | Path, jitter: float = 2.0, seed: int = 0
) -> pd.DataFrame:
    """SAFER's Figure 4: each rollout's unsafe % against the bound's target %, one panel per task.

    Dots are jittered by up to ±``jitter`` percentage points along x (seeded); on or below the
    y = x line the bound is calibrated. Tick labels give η per target.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    frames = [_read_csv(p, CALIBRATION_COLUMNS).assign(task=int(task)) for task, p in csv_by_task.items()]
    data = pd.concat(frames, ignore_index=True)[["task", *CALIBRATION_COLUMNS]]
    data["target_percent"] = 100.0 * data["target"]
    data["unsafe_percent"] = 100.0 * data["unsafe_fraction"]
    data["x"] = data["target_percent"] + rng.uniform(-jitter, jitter, len(data))
    tasks = list(csv_by_task)
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.4), squeeze=False, sharey=True)
    top = max(data["target_percent"].max(), data["unsafe_percent"].max()) + 2 * jitter
    for ax, task in zip(axes[0], tasks):
        panel = data[data["task"] == task]
        ax.plot([0, top], [0, top], color="black", linewidth=0.8, linestyle="--", label="y = x")
        ax.scatter(panel["x"], panel["unsafe_percent"], s=12, alpha=0.6, label="one rollout (x jittered)")
        etas = panel.groupby("target_percent")["bound"].first()
        ax.set_xticks(etas.index, [f"{t:g}\nη={b:.2g}" for t, b in etas.items()], fontsize=7)
        ax.set_xlim(-2 * jitter, top)
        ax.set_title(task_name(task), fontsize=9)
        ax.set_xlabel("target: at most X % unsafe")
    axes[0][0].set_ylabel("unsafe actions in rollout (%)")
    axes[0][0].set_ylim(bottom=-1)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, stem)
    return _write_data(data, stem)


def plot_bound_tradeoff(
    summary: pd.DataFrame,
    task: int,
    bound_methods: Mapping[str, float],
    stem: str | Path,
    calibration_csv: str | Path | None = None,
) -> pd.DataFrame:
    """SAFER's Figure 5: end-of-training success rate and total violations against the bound, one task.

    ``bound_methods`` maps each sweep method (``safer_u0`` …) to its target % of unsafe
    actions. With ``calibration_csv`` (that task's Figure 4 input) the x ticks and the CSV
    give η as well. Two panels, mean ± SD over seeds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[(summary["task"] == task) & summary["method"].isin(bound_methods)]
    missing = [m for m in bound_methods if m not in set(rows["method"])]
    if missing:
        raise ValueError(f"no downstream runs on task {task} for {missing}")
    success = _seed_stats(rows, ["method"], "success_rate").set_index("method")
    violations = _seed_stats(rows, ["method"], "total_violations").set_index("method")
    data = pd.DataFrame({"method": list(bound_methods), "target_percent": list(bound_methods.values())})
    for prefix, stats in (("success_rate", success), ("total_violations", violations)):
        for stat in ("mean", "std", "seeds"):
            data[f"{prefix}_{stat}"] = data["method"].map(stats[stat])
    labels = data["target_percent"].map(lambda t: f"{t:g}")
    if calibration_csv is not None:
        calibration = _read_csv(calibration_csv, CALIBRATION_COLUMNS)
        bounds = calibration.groupby((100.0 * calibration["target"]).round(6))["bound"].first()  # η is one per target
        data["bound"] = data["target_percent"].round(6).map(bounds)
        labels += data["bound"].map(lambda b: f"\nη={b:.2g}")
    order = data["target_percent"].argsort().to_numpy()
    data, labels = data.iloc[order].reset_index(drop=True), labels.iloc[order].tolist()
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.3))
    for ax, prefix, ylabel, colour in (
        (axes[0], "success_rate", "success rate (%), end of training", "tab:blue"),
        (axes[1], "total_violations", "total safety violations", "tab:red"),
    ):
        ax.errorbar(
            data["target_percent"],
            data[f"{prefix}_mean"],
            yerr=data[f"{prefix}_std"],
            marker="o",
            capsize=3,
            color=colour,
            label=spread_label(data[f"{prefix}_seeds"]),
        )
        ax.legend(fontsize=7)
        ax.set_xticks(data["target_percent"], labels, fontsize=7)
        ax.set_xlabel("bound's target: at most X % unsafe")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"SAFER on {task_name(task)}: success vs safety as the bound η widens", fontsize=10)
    fig.tight_layout()
    save_figure(fig, stem)
    return _write_data(data, stem)


def violation_curves(
    logs: pd.DataFrame, methods: Sequence[str], tasks: Sequence[int], cumulative: bool
) -> pd.DataFrame:
    """Per (method, task, step): mean, std and seeds of the violations per window, or of their running sum."""
    logs = _require_runs(logs, methods, tasks).sort_values([*RUN_KEYS, "step"])
    values = logs.groupby(RUN_KEYS)["violations"].cumsum() if cumulative else logs["violations"]
    return _seed_stats(logs.assign(value=values), ["method", "task", "step"], "value")


def _curve_panels(columns: int, rows: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False, sharex="col")


def plot_violation_curves(
    logs: pd.DataFrame, methods: Sequence[str], tasks: Sequence[int], stem: str | Path, cumulative: bool
) -> pd.DataFrame:
    """SAFER's Figure 6 (``cumulative``) or 7 (per window): violations over training, one panel per task.

    Mean over seeds and a ±1 SD band per method.
    """
    data = violation_curves(logs, methods, tasks, cumulative)
    fig, axes = _curve_panels(len(tasks))
    colours = _colours(methods)
    for ax, task in zip(axes[0], tasks):
        for method in methods:
            _band(ax, data[(data["method"] == method) & (data["task"] == task)], colours[method], method_name(method))
        ax.set_title(task_name(task), fontsize=9)
        ax.set_xlabel("environment step")
    axes[0][0].set_ylabel("cumulative safety violations" if cumulative else "safety violations per window")
    axes[0][0].legend(fontsize=7, title=f"line, band: {spread_label(data['seeds'])}", title_fontsize=6)
    fig.tight_layout()
    save_figure(fig, stem)
    return _write_data(data, stem)


def plot_ablation(
    logs: pd.DataFrame, tasks: Sequence[int], stem: str | Path, methods: Sequence[str] = ABLATION
) -> pd.DataFrame:
    """SAFER's Figure 8: SAFER with and without the safety context; top, success rate per window; bottom, violations per
    window.

    One column per task; mean over seeds and a ±1 SD band. A window where no episode ended has
    no success rate: a gap in the line.
    """
    logs = _require_runs(logs, methods, tasks)
    logs = logs.assign(success_rate=success_percent(logs["successes"], logs["episodes"]))
    keys = ["method", "task", "step"]
    data = pd.concat(
        [_seed_stats(logs, keys, metric).assign(metric=metric) for metric in ("success_rate", "violations")],
        ignore_index=True,
    )[["metric", *keys, "mean", "std", "seeds"]]
    fig, axes = _curve_panels(len(tasks), rows=2)
    colours = _colours(methods)
    for col, task in enumerate(tasks):
        for row, metric in enumerate(("success_rate", "violations")):
            for method in methods:
                line = data[(data["metric"] == metric) & (data["method"] == method) & (data["task"] == task)]
                _band(axes[row][col], line, colours[method], method_name(method))
        axes[0][col].set_title(task_name(task), fontsize=9)
        axes[1][col].set_xlabel("environment step")
    axes[0][0].set_ylabel("success rate per window (%)")
    axes[1][0].set_ylabel("safety violations per window")
    axes[0][0].legend(fontsize=7, title=f"line, band: {spread_label(data['seeds'])}", title_fontsize=6)
    fig.tight_layout()
    save_figure(fig, stem)
    return _write_data(data, stem)
