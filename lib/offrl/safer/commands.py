"""The SAFER study's commands of ``python -m offrl``: grasp data, priors, bounds, downstream RL, report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from offrl.algos.sac import SACConfig
from offrl.data.build import write_json
from offrl.files import write_atomically
from offrl.options import add_fields, command_line, field_default, field_values
from offrl.safer.downstream import DownstreamConfig
from offrl.safer.grasp import LOOK_STEPS
from offrl.safer.priors.train import PRIOR_KINDS, PriorConfig

SAC_OPTIONS = ("hidden", "initial_alpha")  # the downstream command's SAC settings (DownstreamConfig.sac)


def _tasks(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    """The data tasks and the evaluation tasks among them (the least clearance first)."""
    from offrl.safer.grasp import evaluation_task_ids, make_tasks

    tasks = make_tasks(args.task_seed, args.data_tasks, args.observe_geometry, args.look_steps)
    return tasks, [tasks[i] for i in evaluation_task_ids(tasks, args.eval_tasks)]


def _add_task_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task-seed", type=int, default=0, help="seed of the data tasks")
    p.add_argument("--data-tasks", type=int, default=40, help="how many data tasks (the paper: 40)")
    p.add_argument(
        "--eval-tasks",
        type=int,
        default=6,
        help="how many evaluation tasks: the data tasks with the least clearance (the paper: 6 of its 40)",
    )
    p.add_argument(
        "--look-steps",
        type=int,
        default=LOOK_STEPS,
        help="observations at an episode's start that show the container and object dimensions (zeros after)",
    )
    p.add_argument(
        "--observe-geometry",
        action="store_true",
        help="show the container and object dimensions in every observation (an ablation)",
    )


def _grasp_data(args: argparse.Namespace) -> None:
    from offrl.safer.grasp_script import FAILURE_MODES, collect, write_rollouts

    tasks = _tasks(args)[0]  # the paper collects on all 40 tasks, its evaluation tasks among them
    modes = json.loads(args.modes)
    rollouts = collect(tasks, args.episodes_per_task, args.seed, args.noise, modes, window=1)
    provenance = {
        "source": "scripted",
        "seed": args.seed,
        "noise": args.noise,
        "modes": modes,
        "episodes_per_task": args.episodes_per_task,
        "task_seed": args.task_seed,
        "data_tasks": args.data_tasks,
        "look_steps": args.look_steps,
        "observe_geometry": args.observe_geometry,
        "command": command_line(),
    }
    path = write_rollouts(rollouts, args.root, args.dataset_id, provenance)
    observations = rollouts.transitions.observations
    summary = {
        **provenance,
        "minari_id": args.dataset_id,
        "path": str(path),
        "transitions": len(rollouts.transitions),
        "episodes": rollouts.transitions.num_episodes,
        "unsafe_fraction": float(rollouts.violations.mean()),
        "success_fraction": float(rollouts.success.mean()),
        "transitions_per_mode": {mode: int((rollouts.modes == i).sum()) for i, mode in enumerate(FAILURE_MODES)},
        # Every downstream method normalises states by these, the raw-action SAC included.
        "state_mean": observations.mean(0).tolist(),
        "state_std": (observations.std(0) + 1e-3).tolist(),
    }
    write_json(args.summary, summary)
    print(json.dumps({k: summary[k] for k in ("transitions", "episodes", "unsafe_fraction", "success_fraction")}))


def _safer_prior(args: argparse.Namespace) -> None:
    from offrl.safer.grasp_script import load_rollouts
    from offrl.safer.priors.train import prior_config, train_prior

    config = prior_config(
        args.kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed, **json.loads(args.options)
    )
    record = train_prior(
        load_rollouts(args.dataset_dir, config.window),
        config,
        args.out,
        progress=not args.quiet,
        command=command_line(),
    )
    print(json.dumps({k: record[k] for k in ("kind", "safe_rows", "unsafe_rows", "wall_time_s")}))


def _load(prior_path: str, dataset_dir: str) -> tuple[Any, Any, dict[str, Any]]:
    """The prior, the data with its windows and what was saved beside the prior (its kind and safe set)."""
    from offrl.safer.grasp_script import load_rollouts
    from offrl.safer.priors.model import load_prior

    prior, saved = load_prior(prior_path)
    if "safe_set" not in saved:
        raise ValueError(f"{prior_path} does not record its safe set (safe_set): retrain it with `safer-prior`")
    return prior, load_rollouts(dataset_dir, prior.window), saved


def _safer_bounds(args: argparse.Namespace) -> None:
    from offrl.safer.priors.evaluate import safety_bounds

    prior, data, saved = _load(args.prior, args.dataset_dir)
    bounds = safety_bounds(prior, data, args.targets, args.seed, not args.unbalanced, saved["safe_set"])
    _write_csv(bounds, args.out)
    print(bounds.to_string(index=False))


def _safer_likelihood(args: argparse.Namespace) -> None:
    from offrl.safer.priors.evaluate import unsafe_among_likely

    prior, data, _ = _load(args.prior, args.dataset_dir)
    table = unsafe_among_likely(prior, data, args.top_percents)
    _write_csv(table, args.out)
    print(table.to_string(index=False))


def _safer_probe(args: argparse.Namespace) -> None:
    import pandas as pd

    from offrl.safer.priors.probe import window_probe

    prior, data, saved = _load(args.prior, args.dataset_dir)
    result = window_probe(prior, data, _tasks(args)[0], args.seed, saved["safe_set"])
    train_log = Path(args.prior).parent / "train_log.csv"
    if prior.context_dim and train_log.exists():
        result["kl_safe_train_log"] = float(pd.read_csv(train_log)["kl_safe"].iloc[-1])
    write_json(args.out, result)
    print(json.dumps(result, indent=1))


def _eval_task(args: argparse.Namespace) -> Any:
    """Evaluation task ``args.task``, numbered from 1 as in the paper's tables."""
    eval_tasks = _tasks(args)[1]
    if not 1 <= args.task <= len(eval_tasks):
        raise ValueError(f"--task {args.task}: evaluation tasks are numbered 1..{len(eval_tasks)} (--eval-tasks)")
    return eval_tasks[args.task - 1]


def _bound(bounds_csv: str, target: float) -> float:
    import pandas as pd

    bounds = pd.read_csv(bounds_csv)
    match = bounds[(bounds["target"] - target).abs() < 1e-9]
    if match.empty:
        raise ValueError(f"--target {target}: {bounds_csv} has bounds for targets {bounds['target'].tolist()} only")
    return float(match["bound"].iloc[0])


def _downstream(args: argparse.Namespace) -> None:
    import numpy as np

    from offrl.safer.downstream import run_downstream
    from offrl.safer.priors.model import load_prior

    if (args.bounds is None) != (args.target is None):
        raise ValueError("--bounds and --target go together: the bound is the bounds file's row for the target")
    task = _eval_task(args)
    prior = load_prior(args.prior)[0] if args.prior else None
    sac = replace(field_default(DownstreamConfig, "sac"), **field_values(args, SACConfig, only=SAC_OPTIONS))
    bound = _bound(args.bounds, args.target) if args.bounds else None
    config = DownstreamConfig(**field_values(args, DownstreamConfig), bound=bound, sac=sac)
    summary = json.loads(Path(args.data_summary).read_text())
    statistics = None if prior is not None else (np.array(summary["state_mean"]), np.array(summary["state_std"]))
    result = run_downstream(
        task, config, prior, args.seeds, statistics, args.out, progress=not args.quiet, command=command_line()
    )
    print(json.dumps(result))


def _safer_calibration(args: argparse.Namespace) -> None:
    import pandas as pd

    from offrl.safer.priors.evaluate import calibration_rollouts
    from offrl.safer.priors.model import load_prior

    prior, _ = load_prior(args.prior)
    table = calibration_rollouts(
        _eval_task(args), prior, pd.read_csv(args.bounds), args.rollouts, args.seed, args.latent_map
    )
    _write_csv(table, args.out)
    print(table.groupby("target")[["unsafe_fraction", "success"]].mean().to_string())


def _runs(specs: list[str]) -> Any:
    """``METHOD:TASK[:PRIOR_SEED]=log.csv`` arguments as the downstream logs of every run."""
    from offrl.safer.report import load_downstream, parse_runs

    return load_downstream(parse_runs(specs, "run"))


def _keyed(specs: list[str], key: Any = str) -> dict[Any, str]:
    """``key=path`` arguments as a dict."""
    pairs = [spec.partition("=") for spec in specs]
    if any(not path for _, _, path in pairs):
        raise ValueError(f"expected KEY=PATH arguments, got {specs}")
    return {key(name): path for name, _, path in pairs}


def _safer_report(args: argparse.Namespace) -> None:
    from offrl.safer import report as safer

    artefact = args.artefact
    if artefact == "fig1":
        safer.plot_unsafe_likelihood(_keyed(args.inputs), args.out)
    elif artefact == "fig4":
        safer.plot_calibration(_keyed(args.inputs, int), args.out)
    else:
        logs = _runs(args.inputs)
        if artefact == "table1":
            print(
                safer.write_safer_table1(
                    safer.run_summary(logs, args.final_fraction), args.methods, args.tasks, args.out
                ).to_string()
            )
        elif artefact == "fig5":
            if len(args.tasks) != 1:
                raise ValueError(f"fig5 is drawn for one task; --tasks gave {args.tasks}")
            bound_methods = {method: float(percent) for method, percent in _keyed(args.bound_methods).items()}
            safer.plot_bound_tradeoff(
                safer.run_summary(logs, args.final_fraction), args.tasks[0], bound_methods, args.out, args.calibration
            )
        elif artefact in ("fig6", "fig7"):
            safer.plot_violation_curves(logs, args.methods, args.tasks, args.out, cumulative=artefact == "fig6")
        else:
            safer.plot_ablation(logs, args.tasks, args.out)


def _write_csv(table: Any, path: str) -> None:
    write_atomically(path, lambda tmp: table.to_csv(tmp, index=False))


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The SAFER commands, each made by ``add(name, help=...)`` (the trunk's, which adds the global options)."""
    p = add(
        "grasp-data",
        help=(
            "scripted grasp episodes on the task family, labelled with ω, success, task and failure mode (SAFER's data)"
        ),
    )
    _add_task_arguments(p)
    p.add_argument("--root", default="resources/minari", help="Minari datasets root")
    p.add_argument("--dataset-id", required=True, help="Minari id, e.g. grasp/offline-v0")
    p.add_argument("--summary", required=True, help="JSON summary to write")
    p.add_argument("--episodes-per-task", type=int, default=25)
    p.add_argument("--noise", type=float, default=0.1, help="actuation noise std of the scripted policy")
    p.add_argument(
        "--modes",
        default='{"none": 0.5, "drift": 0.3, "miss": 0.2}',
        help="JSON: probability of each failure mode per episode",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_grasp_data)

    p = add("safer-prior", help="train a skill prior (PARROT, Contextual PARROT, SAFER, SAFER without c) on grasp data")
    p.add_argument("--kind", required=True, choices=sorted(PRIOR_KINDS))
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--out", required=True, help="output directory")
    add_fields(p, PriorConfig, only=("steps", "batch_size", "seed"))
    p.add_argument("--options", default="{}", help="JSON: PriorConfig fields on top of the kind's")
    p.set_defaults(func=_safer_prior)

    p = add("safer-bounds", help="Algorithm 3: the bound η on z for each target unsafe fraction")
    p.add_argument("--prior", required=True)
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--targets", type=float, nargs="+", default=[0.0, 0.15, 0.3, 0.45])
    p.add_argument(
        "--unbalanced", action="store_true", help="run on all safe pairs, not as many as there are unsafe ones"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_safer_bounds)
    _add_reading_commands(add)


def _add_reading_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The commands that read a trained prior or runs: likelihood, probe, rollouts, calibration, report."""
    p = add("safer-likelihood", help="SAFER Figure 1: %% unsafe among the most likely holdout pairs under a prior")
    p.add_argument("--prior", required=True)
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--top-percents", type=float, nargs="+", default=[1, 5, 10, 25, 50, 100])
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_safer_likelihood)

    p = add(
        "safer-probe",
        help="does c carry the hidden geometry? KL_safe, the action change when windows are swapped, probe R²",
    )
    _add_task_arguments(p)
    p.add_argument("--prior", required=True)
    p.add_argument("--dataset-dir", required=True, help="the data the prior trained on (same task arguments)")
    p.add_argument("--seed", type=int, default=0, help="the probe's episode split and the swapped windows")
    p.add_argument("--out", required=True, help="JSON to write")
    p.set_defaults(func=_safer_probe)

    p = add(
        "downstream", help="Algorithm 1: SAC on one evaluation grasp task, over raw actions or a prior's latent actions"
    )
    _add_task_arguments(p)
    p.add_argument("--task", type=int, required=True, help="evaluation task, 1..--eval-tasks")
    add_fields(p, DownstreamConfig)
    p.add_argument("--prior", default=None, help="prior.pt (every method but sac and csc)")
    p.add_argument("--bounds", default=None, help="bounds.csv of the prior (safer, safer_no_context)")
    p.add_argument("--target", type=float, default=None, help="which bound: its maximum unsafe fraction")
    p.add_argument("--data-summary", required=True, help="the grasp data's JSON summary (state statistics)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_fields(p, SACConfig, only=SAC_OPTIONS, defaults=asdict(field_default(DownstreamConfig, "sac")))
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_downstream)

    p = add("safer-calibration", help="SAFER Figure 4: rollouts with z drawn inside each bound on one evaluation task")
    _add_task_arguments(p)
    p.add_argument("--task", type=int, required=True, help="evaluation task, 1..--eval-tasks")
    p.add_argument("--prior", required=True)
    p.add_argument("--bounds", required=True, help="bounds.csv of the prior")
    p.add_argument("--rollouts", type=int, default=20)
    p.add_argument(
        "--latent-map",
        default="truncated_normal",
        help="z of uniform u: truncated_normal (the prior's N(0, I) truncated to the bound) or box (uniform inside it)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=_safer_calibration)

    p = add("safer-report", help="SAFER's Table 1 or one of its Figures 1, 4-8 (offrl.safer.report)")
    p.add_argument("artefact", choices=("table1", "fig1", "fig4", "fig5", "fig6", "fig7", "fig8"))
    p.add_argument("--out", required=True, help="output stem (STEM.md/.png, STEM.csv)")
    p.add_argument("--methods", nargs="+", default=[], help="table1, fig6, fig7: the methods, in row order")
    p.add_argument("--tasks", type=int, nargs="+", default=[], help="table1, fig5-fig8: the evaluation tasks")
    p.add_argument(
        "--final-fraction",
        type=float,
        default=0.2,
        help="success rate over the episodes ending in this last share of the steps",
    )
    p.add_argument("--bound-methods", nargs="+", default=[], help="fig5: METHOD=TARGET_PERCENT for each bound")
    p.add_argument("--calibration", default=None, help="fig5: the task's calibration CSV (puts η on the axis)")
    p.add_argument(
        "inputs",
        nargs="+",
        help="fig1: PRIOR=likelihood.csv; fig4: TASK=calibration.csv; others: METHOD:TASK[:PRIOR_SEED]=log.csv",
    )
    p.set_defaults(func=_safer_report)
