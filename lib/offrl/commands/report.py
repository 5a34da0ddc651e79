"""Tables and figures of the offline studies: ``dataset-table``, ``score-table``, ``q-overestimation``, the
``*-figure`` commands.

The options several commands share (``--algorithms``, ``--datasets``, ``--figure``, ``--table``, the final
scores' inputs) are declared once, below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FIGURE_HELP = "output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)"
TABLE_HELP = "output stem: STEM.csv, STEM.md, STEM.tex"


def _dataset_table(args: argparse.Namespace) -> None:
    from offrl.report.tables import contamination_table, dataset_table, write_table

    data, display = (contamination_table if args.layout == "contamination" else dataset_table)(args.summaries)
    write_table(data, display, args.out, footnote=args.note)


def _q_overestimation(args: argparse.Namespace) -> None:
    from offrl.report.overestimation import load_diagnostics, plot_overestimation, write_overestimation_table

    diagnostics = load_diagnostics(args.diagnostics)
    table = write_overestimation_table(diagnostics, args.algorithms, args.datasets, args.last, args.table)
    plot_overestimation(diagnostics, args.figure, args.algorithms, args.datasets)
    print(table.to_string())


def _final_scores(args: argparse.Namespace) -> pd.DataFrame:
    """The final scores (mean of the last ``--last`` evaluations) of the evaluation files given."""
    from offrl.report.scores import final_scores, load_evaluations

    return final_scores(load_evaluations(args.evaluations), args.last)


def _study_evaluations(args: argparse.Namespace) -> pd.DataFrame:
    """The evaluation files given, cut to ``--seeds`` when a study uses fewer seeds than the runs have."""
    from offrl.report.scores import load_evaluations

    evaluations = load_evaluations(args.evaluations)
    if args.seeds is None:
        return evaluations
    missing = sorted(set(args.seeds) - set(evaluations["seed"]))
    if missing:
        raise ValueError(
            f"--seeds {missing} have no evaluations; the files hold seeds {sorted(set(evaluations['seed']))}"
        )
    return evaluations[evaluations["seed"].isin(args.seeds)]


def _score_table(args: argparse.Namespace) -> None:
    from offrl.report.scores import final_episodes, final_scores, write_score_table

    evaluations = _study_evaluations(args)
    final = final_scores(evaluations, args.last)
    episodes = final_episodes(evaluations, args.last) if args.spread == "pooled" else None
    gains = dict(pair.split(":", 1) for pair in args.gain)
    display = write_score_table(
        final,
        args.algorithms,
        args.datasets,
        args.table,
        gains,
        spread=args.spread,
        total_spread=args.total_spread,
        episodes=episodes,
        extension=args.extension_datasets,
        iqm=args.iqm,
        omitted=[tuple(cell.split(":", 1)) for cell in args.omit],
        note=args.note,
    )
    print(display.to_string())


def _divergence_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import load_run_logs, plot_divergence

    logs, evaluations = load_run_logs(args.runs)
    plot_divergence(logs, evaluations, args.figure, args.algorithms, args.datasets)


def _box_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import plot_final_boxes

    final = _final_scores(args)
    plot_final_boxes(final, args.figure, args.algorithms, args.datasets, args.title)


def _q_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import plot_q_histograms

    plot_q_histograms(args.snapshots, args.algorithms, args.figure)


def _relaxation_weights(args: argparse.Namespace) -> None:
    from offrl.commands.checks import check_dataset_record, run_record
    from offrl.files import write_csv
    from offrl.report.relaxation import relaxation_by_time

    # The run's critics score the dataset's pairs: both must be one env's, or the sizes fail deep in the critic.
    env = run_record(Path(args.run) / "snapshots.pt")["env"]
    check_dataset_record(args.dataset_dir, env, f"--dataset-dir (the run {args.run} trained on {env})")
    table = relaxation_by_time(args.run, args.dataset_dir, args.bins, args.batches)
    if args.out:
        write_csv(table, args.out, index=False)
    print(table.round(3).to_string(index=False))


def _alpha_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import plot_alpha_grid

    grid = [(name, float(alpha), float(weight)) for name, alpha, weight in (point.split(":") for point in args.grid)]
    final = _final_scores(args)
    print(plot_alpha_grid(final, args.figure, grid, args.datasets, args.note).to_string())


def _contamination_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import plot_contamination_curves

    final = _final_scores(args)
    print(plot_contamination_curves(final, args.figure, args.algorithms, args.envs, args.percents).to_string())


def _learning_curves(args: argparse.Namespace) -> None:
    from offrl.report.scores import load_evaluations, plot_learning_curves

    plot_learning_curves(load_evaluations(args.evaluations), args.figure, args.algorithms, args.datasets, args.columns)


def _return_q_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import load_run_logs, plot_return_and_q

    logs, evaluations = load_run_logs(args.runs)
    plot_return_and_q(logs, evaluations, args.figure, args.algorithms, args.datasets)


def _safety_figure(args: argparse.Namespace) -> None:
    from offrl.report.safety import plot_safety_comparison, safety_comparison, write_safety_comparison

    comparison = safety_comparison(
        _study_evaluations(args), args.baseline, args.method, args.datasets, args.extension_datasets
    )
    write_safety_comparison(comparison, args.table)
    plot_safety_comparison(comparison, args.figure, args.method, args.baseline)
    print(comparison.to_string())


def _conf_figure(args: argparse.Namespace) -> None:
    from offrl.report.simhash import plot_conf, plot_conf_histograms

    plot_conf(args.indexes, args.names, args.figure)
    if args.histograms:
        plot_conf_histograms(args.indexes, args.names, args.histograms)


def _gallery(args: argparse.Namespace) -> None:
    from offrl.report.gallery import build_gallery

    if not args.run_config:
        raise ValueError(
            "gallery needs --run-config: the resolved config the figures were made at (results/config.yaml)"
        )
    manifest = build_gallery(args.run_config, args.findings, args.figures, args.img_dir, args.page)
    print(f"{args.page}: {len(manifest['images'])} figures at config {manifest['config_sha256'][:12]}")


def _note(p: argparse.ArgumentParser) -> None:
    p.add_argument("--note", default="", help="a sentence before the footnote, e.g. that the data are stand-ins")


def _algorithms_and_datasets(p: argparse.ArgumentParser, algorithms: bool = True) -> None:
    if algorithms:
        p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)


def _figure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--figure", required=True, help=FIGURE_HELP)


def _seeds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds' evaluations (default: all in the files)")


def _extension_datasets(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--extension-datasets", nargs="*", default=[], help=help)


def _runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="run directories (each with train_log.csv and evaluation.csv)")


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The report commands, each made by ``add(name, help=...)`` (the trunk's, which adds the global options)."""
    # The inputs of every command that reports final scores.
    final_inputs = argparse.ArgumentParser(add_help=False)
    final_inputs.add_argument(
        "--last", type=int, default=10, help="final score = the mean of this many last evaluations"
    )
    final_inputs.add_argument("evaluations", nargs="+", help="evaluation.csv files of runs")
    _add_tables(add, final_inputs)
    _add_taming_figures(add, final_inputs)
    _add_figures(add)


def _add_tables(add: Callable[..., argparse.ArgumentParser], final_inputs: argparse.ArgumentParser) -> None:
    """dataset-table, q-overestimation and score-table."""
    p = add("dataset-table", help="table of dataset sizes and returns from their JSON summaries")
    p.add_argument("--out", required=True, help="output stem: writes STEM.csv, STEM.md, STEM.tex")
    p.add_argument(
        "--layout",
        choices=("datasets", "contamination"),
        default="datasets",
        help="datasets: sizes and returns; contamination: expert and contaminant transitions (Table 3)",
    )
    _note(p)
    p.add_argument("summaries", nargs="+")
    p.set_defaults(func=_dataset_table)

    p = add(
        "q-overestimation",
        help="learned Q minus the actual discounted return: table and figure over training (the slides)",
    )
    _algorithms_and_datasets(p)
    p.add_argument("--last", type=int, default=10, help="the table averages each seed's last N snapshots")
    p.add_argument("--table", required=True, help=TABLE_HELP)
    _figure(p)
    p.add_argument("diagnostics", nargs="+", help="q_diagnostic.csv files of the evaluation jobs")
    p.set_defaults(func=_q_overestimation)

    p = add(
        "score-table",
        parents=[final_inputs],
        help="final scores (mean of the last N evaluations), mean ± std over seeds",
    )
    _algorithms_and_datasets(p)
    p.add_argument("--table", required=True, help=TABLE_HELP)
    p.add_argument(
        "--gain",
        action="append",
        default=[],
        metavar="ALGO:BASELINE",
        help="show ALGO's Total gain in %% over BASELINE's, e.g. td3bc_pp:td3bc (repeatable)",
    )
    p.add_argument(
        "--spread",
        choices=["seeds", "pooled"],
        default="seeds",
        help="a cell's ±: std of the per-seed final scores (ours, the Guided paper's), or over every final episode,"
        " evaluation and seed (TD3BC++)",
    )
    p.add_argument(
        "--total-spread",
        choices=["quadrature", "sum"],
        default="quadrature",
        help="the Total's ±: √Σ of the rows' variances (ours), or Σ of the rows' stds (both papers)",
    )
    p.add_argument(
        "--iqm",
        action="store_true",
        help="add a row under the Total: the interquartile mean over every run (dataset × seed) with its 95%% "
        "stratified-bootstrap interval (rliable's protocol; in the CSV, the ci_low and ci_high columns)",
    )
    _extension_datasets(p, "rows below the Total, marked (extension), not summed")
    p.add_argument(
        "--omit",
        action="append",
        default=[],
        metavar="ALGO:DATASET",
        help="a cell the paper leaves out: shown as –, needs no runs, and its column has no Total (repeatable)",
    )
    _note(p)
    _seeds(p)
    p.set_defaults(func=_score_table)


def _add_taming_figures(add: Callable[..., argparse.ArgumentParser], final_inputs: argparse.ArgumentParser) -> None:
    """The TD3BC++ paper's figures and its relaxation weights."""
    p = add(
        "divergence-figure",
        help="policy-to-data divergence on expert vs contaminant pairs, and the score (TD3BC++ Figure 4)",
    )
    _algorithms_and_datasets(p)
    _figure(p)
    _runs(p)
    p.set_defaults(func=_divergence_figure)

    p = add(
        "box-figure", parents=[final_inputs], help="final scores as box plots over seeds, per dataset and algorithm"
    )
    _algorithms_and_datasets(p)
    p.add_argument("--title", default="")
    _figure(p)
    p.set_defaults(func=_box_figure)

    p = add("q-figure", help="Q of expert vs contaminant dataset actions at a few snapshots (TD3BC++ Figure 6)")
    p.add_argument("--algorithms", nargs="+", required=True, help="the algorithm of each snapshots file, in order")
    _figure(p)
    p.add_argument("snapshots", nargs="+", help="snapshots.pt of runs on an expert-random-X dataset")
    p.set_defaults(func=_q_figure)

    p = add(
        "relaxation-weights",
        help="TD3BC++'s relaxation weight W on a run's dataset, by time within the episode, per snapshot and seed",
    )
    p.add_argument("--run", required=True, help="run directory whose snapshots.pt kept the critics")
    p.add_argument("--dataset-dir", required=True, help="the Minari dataset directory the run trained on")
    p.add_argument("--bins", nargs="+", type=int, help="edges of the time-in-episode bins (default: 0 10 50 200 1000)")
    p.add_argument("--batches", type=int, default=200, help="minibatches of 256 drawn per snapshot")
    p.add_argument("--out", help="CSV of the table (default: print only)")
    p.set_defaults(func=_relaxation_weights)

    p = add("alpha-figure", parents=[final_inputs], help="final score against α, one line per λ_GP (TD3BC++ Figure 7)")
    p.add_argument(
        "--grid", nargs="+", required=True, metavar="ALGO:ALPHA:LAMBDA", help="each grid point's algorithm, α and λ_GP"
    )
    _algorithms_and_datasets(p, algorithms=False)
    _note(p)
    _figure(p)
    p.set_defaults(func=_alpha_figure)

    p = add("contamination-figure", parents=[final_inputs], help="final score vs %% random data (TD3BC++ Figure 3)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--envs", nargs="+", required=True)
    p.add_argument(
        "--percents", nargs="+", type=int, required=True, help="contamination percents; 0 (the expert dataset) is added"
    )
    _figure(p)
    p.set_defaults(func=_contamination_figure)


def _add_figures(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Learning curves, the BEAR blog's return and Q, Guided TD3+BC's safety figure and the SimHash figure."""
    p = add("learning-curves", help="normalised score over training, mean and ±1 sd band over seeds")
    _algorithms_and_datasets(p)
    p.add_argument("--columns", type=int, default=5, help="panels per row")
    _figure(p)
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_learning_curves)

    p = add("return-q-figure", help="return and mean Q over training, per dataset (BEAR blog Figure 1)")
    _algorithms_and_datasets(p)
    _figure(p)
    _runs(p)
    p.set_defaults(func=_return_q_figure)

    p = add(
        "safety-figure",
        help="%% change of falls + unsafe-height events and of Σ|a| over all evaluations, method vs baseline",
    )
    p.add_argument("--baseline", required=True, help="algorithm the change is relative to, e.g. td3bc")
    p.add_argument("--method", required=True, help="algorithm compared, e.g. guided_td3bc")
    _algorithms_and_datasets(p, algorithms=False)
    _extension_datasets(p, "bars after the paper's, labelled as an extension")
    _seeds(p)
    p.add_argument("--table", required=True, help="output stem of the totals: STEM.csv, STEM.md, STEM.tex")
    _figure(p)
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_safety_figure)

    p = add("conf-figure", help="bucket sizes and conf(s) distribution of SimHash indexes")
    p.add_argument("--names", nargs="+", required=True)
    _figure(p)
    p.add_argument(
        "--histograms", help="output stem of the per-dataset conf(s) histograms: STEM.png, STEM.pdf, STEM.csv"
    )
    p.add_argument("indexes", nargs="+")
    p.set_defaults(func=_conf_figure)

    p = add(
        "gallery",
        help="docs/results.md: the gallery's figures, small, beside the paper's claims and the run's verdicts "
        "(with --run-config)",
    )
    p.add_argument("--findings", required=True, help="findings.json of the run (the findings command's)")
    p.add_argument("--img-dir", default="docs/img", help="where the small PNGs and manifest.json go")
    p.add_argument("--page", default="docs/results.md", help="the gallery page written")
    p.add_argument("figures", nargs="+", help="the gallery's figures (offrl.report.gallery.GALLERY), in its order")
    p.set_defaults(func=_gallery)
