"""``python -m offrl findings``: every study's headline claims checked on this run's outputs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd


def _keyed(specs: list[str], flag: str) -> dict[str, str]:
    """``KEY=PATH`` arguments as a dict."""
    pairs = [spec.partition("=") for spec in specs]
    bad = [spec for spec, (_, sep, path) in zip(specs, pairs, strict=True) if not sep or not path]
    if bad:
        raise ValueError(f"{flag} expects KEY=PATH arguments, got {bad}")
    return {key: path for key, _, path in pairs}


def _findings(args: argparse.Namespace) -> None:
    from offrl.report import findings as checks
    from offrl.report.scores import load_evaluations, load_final_probe_q, load_run_logs

    found = []
    if args.guided_evaluations:
        evaluations = load_evaluations(args.guided_evaluations)
        if args.guided_seeds:
            evaluations = evaluations[evaluations["seed"].isin(args.guided_seeds)]
        mixed = [d for d in args.guided_datasets if d.split("-", 1)[1] in args.guided_mixed_kinds]
        found += checks.guided_findings(evaluations, args.guided_datasets, mixed, args.last)
    if args.taming_runs:
        logs, evaluations = load_run_logs(args.taming_runs)
        found += checks.taming_findings(
            evaluations, logs, args.taming_datasets, args.last, args.collapse_from, args.collapse_margin
        )
        contaminated = [d for d in args.taming_datasets if "-expert-random-" in d]
        found.append(checks.gp_q_finding(load_final_probe_q(args.taming_runs), contaminated))
    if args.q_diagnostics:
        from offrl.report.overestimation import load_diagnostics

        found += checks.bear_blog_findings(load_diagnostics(args.q_diagnostics), args.q_datasets, args.last)
    if args.safer_runs or args.safer_likelihood or args.safer_calibration:
        from offrl.safer import report as safer

        runs = safer.parse_runs(args.safer_runs, "--safer-runs")
        # Without downstream runs (the gallery's findings), Table 1's checks are left out.
        summary = safer.run_summary(safer.load_downstream(runs), args.final_fraction) if runs else None
        likelihood = {
            prior: pd.read_csv(path) for prior, path in _keyed(args.safer_likelihood, "--safer-likelihood").items()
        }
        calibration = None
        if args.safer_calibration:
            calibration = pd.concat(
                [
                    pd.read_csv(path).assign(task=int(task), prior_seed=int(prior or 0))
                    for (task, _, prior), path in (
                        (key.partition(":"), path)
                        for key, path in _keyed(args.safer_calibration, "--safer-calibration").items()
                    )
                ]
            )
        found += checks.safer_findings(summary, args.safer_tasks, likelihood, calibration, args.safer_target)
    if not found:
        raise ValueError(
            "no study's inputs given: pass --guided-evaluations, --taming-runs, --q-diagnostics, --safer-runs,"
            " --safer-likelihood or --safer-calibration"
        )
    print(
        checks.write_findings(found, args.out, args.scale)[
            ["study", "claim", "estimate", "low", "high", "verdict"]
        ].to_string()
    )


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The findings command, made by ``add(name, help=...)`` (the CLI's, which adds the global options)."""
    p = add("findings", help="check each paper's headline claims: effect, 95%% bootstrap CI over seeds, verdict")
    p.add_argument("--out", required=True, help="output stem: STEM.md, STEM.json")
    p.add_argument("--scale", default="", help="the scale's name, for the title")
    p.add_argument("--last", type=int, default=10, help="final score = the mean of this many last evaluations")
    p.add_argument(
        "--guided-evaluations", nargs="*", default=[], help="evaluation.csv of TD3+BC and Guided TD3+BC runs"
    )
    p.add_argument("--guided-datasets", nargs="*", default=[], help="the datasets of Guided TD3+BC's Table 1")
    p.add_argument(
        "--guided-seeds", type=int, nargs="*", default=[], help="the study's seeds (default: every seed in the files)"
    )
    p.add_argument(
        "--guided-mixed-kinds",
        nargs="*",
        default=["medium-replay", "medium-expert"],
        help="dataset kinds that mix policies (Figure 1's safety claims are checked on these)",
    )
    p.add_argument(
        "--taming-runs",
        nargs="*",
        default=[],
        help="run directories of TD3+BC and TD3BC++ on expert and expert-random-X data",
    )
    p.add_argument("--taming-datasets", nargs="*", default=[], help="those expert and expert-random-X datasets")
    p.add_argument(
        "--collapse-from", type=int, default=50, help="the random share (%%) from which TD3+BC is claimed to collapse"
    )
    p.add_argument(
        "--collapse-margin",
        type=float,
        default=0.0,
        help="normalised points TD3+BC's peak-minus-final on ER50+ must exceed the same on expert data by",
    )
    p.add_argument(
        "--q-diagnostics", nargs="*", default=[], help="q_diagnostic.csv of naive SAC, BEAR and TD3+BC runs (BEAR blog)"
    )
    p.add_argument("--q-datasets", nargs="*", default=[], help="the datasets of those runs")
    p.add_argument(
        "--safer-runs", nargs="*", default=[], help="METHOD:TASK[:PRIOR_SEED]=log.csv of the downstream runs"
    )
    p.add_argument("--safer-tasks", type=int, nargs="*", default=[], help="the downstream tasks of SAFER's Table 1")
    p.add_argument("--safer-likelihood", nargs="*", default=[], help="PRIOR=likelihood.csv (Figure 1's probe)")
    p.add_argument(
        "--safer-calibration",
        nargs="*",
        default=[],
        help="TASK[:PRIOR_SEED]=calibration.csv (Figure 4's rollouts, one file per SAFER prior)",
    )
    p.add_argument("--safer-target", type=float, default=None, help="the bound's target share of Table 1 (e.g. 0.15)")
    p.add_argument(
        "--final-fraction",
        type=float,
        default=0.2,
        help="SAFER: success rate over the episodes ending in this last share",
    )
    p.set_defaults(func=_findings)
