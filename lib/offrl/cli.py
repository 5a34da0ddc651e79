"""Command line: ``python -m offrl <command> ...``; every Snakemake rule runs one of these."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from offrl.files import write_atomically
from offrl.findings_cli import add_commands as add_findings_commands
from offrl.safer_cli import add_commands as add_safer_commands

if TYPE_CHECKING:
    import pandas as pd


def _behaviour(args: argparse.Namespace) -> None:
    from offrl.algos.td3 import TD3Config, train_online

    config = TD3Config(
        total_steps=args.total_steps,
        start_steps=args.start_steps,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        expert_checkpoint=args.expert_checkpoint,
        ctrl_cost_weight=args.ctrl_cost_weight,
        expert_only=args.expert_only,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    manifest = train_online(args.env, config, args.out, progress=not args.quiet, command=_command_line())
    print(json.dumps({k: manifest[k] for k in ("env", "expert", "medium") if k in manifest}))


def _collect(args: argparse.Namespace) -> None:
    from offrl.data.build import generate, write_with_summary

    dataset = generate(args.env, args.kind, args.behaviour, args.size, args.seed, args.noise, args.root, progress=not args.quiet)
    provenance = {"source": "local", "seed": args.seed, "noise": args.noise, "size": args.size, "behaviour": args.behaviour, "command": _command_line()}
    summary = write_with_summary(dataset, args.env, args.kind, args.root, args.summary, provenance)
    print(json.dumps(summary))


def _contaminate(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_with_summary
    from offrl.data.contaminate import contaminate
    from offrl.data.dataset import load_dataset

    root = args.root
    dataset, mask = contaminate(load_dataset(f"{root}/{minari_id(args.env, 'expert')}"), load_dataset(f"{root}/{minari_id(args.env, args.contaminant)}"), args.percent)
    provenance = {
        "source": "contaminated", "percent": args.percent, "contaminant": args.contaminant,
        "expert_transitions": int((~mask).sum()), "contaminant_transitions": int(mask.sum()), "command": _command_line(),
    }
    summary = write_with_summary(dataset, args.env, f"expert-{args.contaminant}-{args.percent}", root, args.summary, provenance)
    print(json.dumps(summary))


def _subset(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_with_summary
    from offrl.data.contaminate import truncate
    from offrl.data.dataset import load_dataset

    dataset = truncate(load_dataset(f"{args.root}/{minari_id(args.env, 'expert')}"), args.size)
    provenance = {"source": "subset", "subset_of": "expert", "first": args.size, "command": _command_line()}
    summary = write_with_summary(dataset, args.env, f"expert-first{args.size}", args.root, args.summary, provenance)
    print(json.dumps(summary))


def _clone(args: argparse.Namespace) -> None:
    import tempfile

    from offrl.data import load_dataset
    from offrl.data.build import write_json
    from offrl.data.contaminate import truncate
    from offrl.envs import normalized_score
    from offrl.evaluate import evaluate_policy
    from offrl.policies import NumpyActor, export_snapshot, load_actor
    from offrl.train import TrainConfig, train

    expert = load_dataset(args.expert_dir)
    transitions = max(1, round(args.fraction * len(expert)))
    config = TrainConfig(algorithm="bc", env=args.env, dataset=f"{args.env}-expert[:{transitions}]", seeds=[args.seed],
                         steps=args.steps, eval_every=args.steps, log_every=args.steps, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        train(truncate(expert, transitions), config, tmp, progress=not args.quiet)
        export_snapshot(f"{tmp}/snapshots.pt", args.out, env=args.env, expert_transitions=transitions)
    scores = evaluate_policy(NumpyActor(load_actor(args.out)), args.env, args.eval_episodes, seed=1_000_000 + args.seed)
    manifest = {
        "env": args.env, "algorithm": "BC", "command": _command_line(), "seed": args.seed, "fraction": args.fraction,
        "expert_transitions": transitions, "steps": args.steps, "eval_episodes": args.eval_episodes,
        "eval_return_mean": float(scores["return"].mean()), "normalized_score": float(normalized_score(args.env, scores["return"].mean())),
    }
    write_json(args.manifest, manifest)
    print(json.dumps(manifest))


def _download(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_json
    from offrl.data.dataset import load_dataset
    from offrl.data.download import download

    path = download(args.remote_id, args.root, minari_id(args.env, args.kind))
    summary = {"env": args.env, "kind": args.kind, "minari_id": minari_id(args.env, args.kind), "source": "minari", "remote_id": args.remote_id, **load_dataset(path).summary(args.env), "path": str(path)}
    write_json(args.summary, summary)
    print(json.dumps(summary))


def _dataset_table(args: argparse.Namespace) -> None:
    from offrl.report.tables import contamination_table, dataset_table, write_table

    data, display = (contamination_table if args.layout == "contamination" else dataset_table)(args.summaries)
    write_table(data, display, args.out)


def _train(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.data.build import minari_id
    from offrl.data.dataset import dataset_provenance
    from offrl.train import TrainConfig, train

    env, kind = _split_dataset(args.dataset, own_data=args.dataset_dir is not None)
    preset, variant_options = _resolve_algorithm(args.algo, args)
    _check_intervals(args)
    path = args.dataset_dir or f"{args.root}/{minari_id(env, kind)}"
    provenance = dataset_provenance(path)
    config = TrainConfig(
        algorithm=preset,
        env=env,
        dataset=args.dataset,
        seeds=args.seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        log_every=args.log_every,
        device=args.device,
        options={**variant_options, **json.loads(args.options)},
        critic_snapshots=args.critic_snapshots,
        contaminant_from=provenance.get("expert_transitions") if provenance.get("source") == "contaminated" else None,
    )
    record = train(load_dataset(path), config, args.out, checkpoint=args.checkpoint, progress=not args.quiet, capture=args.capture,
                   jobs_per_gpu=args.jobs_per_gpu)
    print(json.dumps({k: record[k] for k in ("device", "wall_time_s", "resumed_from_step")}))


def _check_intervals(args: argparse.Namespace) -> None:
    """--steps, --eval-every and --log-every must nest; the error names each flag, and which ones are defaults."""

    def flag(name: str) -> str:
        value = getattr(args, name)
        default = " (default)" if value == args.command_parser.get_default(name) else ""
        return f"--{name.replace('_', '-')} {value}{default}"

    if args.steps % args.eval_every:
        raise ValueError(f"{flag('steps')} must be a multiple of {flag('eval_every')}")
    if args.eval_every % args.log_every:
        raise ValueError(f"{flag('log_every')} must divide {flag('eval_every')}: give --log-every a divisor of {args.eval_every}")


def _resolve_algorithm(name: str, args: argparse.Namespace) -> tuple[str, dict]:
    """An algorithm name's preset and options: a preset itself, or a variant of --configfile / --variants."""
    from offrl.algos.presets import PRESETS
    from offrl.config import config_variants

    if name in PRESETS:
        return name, {}
    files = args.configfile if args.configfile is not None else [f for f in (DEFAULT_CONFIG,) if os.path.isfile(f)]
    variants = {**config_variants(files), **json.loads(args.variants)}
    if name not in variants:
        source = f"variants of {', '.join(files)}" if files else "variants (none: no --configfile)"
        raise ValueError(f"--algo {name}: unknown; allowed: presets {', '.join(sorted(PRESETS))}; {source}: {', '.join(sorted(variants)) or '-'}")
    return variants[name]["preset"], dict(variants[name].get("options", {}))


def _split_dataset(name: str, own_data: bool = False) -> tuple[str, str]:
    """``<env>-<kind>``; with ``own_data`` (a dataset directory given) the kind is a free label, the env still one of ours."""
    from offrl.data.contaminate import parse_contaminated, parse_subset
    from offrl.data.generate import KINDS
    from offrl.envs import ENV_SPECS

    env, _, kind = name.partition("-")
    if own_data and env in ENV_SPECS and kind:
        return env, kind
    if env not in ENV_SPECS or (kind not in KINDS and parse_contaminated(kind) is None and parse_subset(kind) is None):
        raise ValueError(
            f"dataset {name!r} is not <env>-<kind> with env in {sorted(ENV_SPECS)} and kind in {list(KINDS)},"
            " expert-random-X / expert-cloned-X (X in 1..99) or expert-firstN (any label with --dataset-dir)"
        )
    return env, kind


def _evaluate(args: argparse.Namespace) -> None:
    from offrl.evaluate import evaluate_snapshots

    _resolve_algorithm(args.algo, args)
    _split_dataset(args.dataset, own_data=True)  # a label: the snapshots know their env
    if not 0.0 < args.q_tail < 1.0:
        raise ValueError(f"--q-tail must be in (0, 1), got {args.q_tail}")
    # --threads: worker processes over the snapshots (the rule's threads:), one torch thread each.
    scores, diagnostic = evaluate_snapshots(args.snapshots, args.episodes, progress=not args.quiet, tail=args.q_tail, workers=args.threads)
    for frame, path in ((scores, args.out), (diagnostic, args.q_out)):
        if path is None:
            continue
        frame.insert(0, "algorithm", args.algo)
        frame.insert(1, "dataset", args.dataset)
        write_atomically(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))


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
        raise ValueError(f"--seeds {missing} have no evaluations; the files hold seeds {sorted(set(evaluations['seed']))}")
    return evaluations[evaluations["seed"].isin(args.seeds)]


def _score_table(args: argparse.Namespace) -> None:
    from offrl.report.scores import final_episodes, final_scores, write_score_table

    evaluations = _study_evaluations(args)
    final = final_scores(evaluations, args.last)
    episodes = final_episodes(evaluations, args.last) if args.spread == "pooled" else None
    gains = dict(pair.split(":", 1) for pair in args.gain)
    display = write_score_table(final, args.algorithms, args.datasets, args.table, gains, spread=args.spread,
                                total_spread=args.total_spread, episodes=episodes, extension=args.extension_datasets)
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


def _alpha_figure(args: argparse.Namespace) -> None:
    from offrl.report.scores import plot_alpha_grid

    grid = [(name, float(alpha), float(weight)) for name, alpha, weight in (point.split(":") for point in args.grid)]
    final = _final_scores(args)
    print(plot_alpha_grid(final, args.figure, grid, args.datasets).to_string())


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

    comparison = safety_comparison(_study_evaluations(args), args.baseline, args.method, args.datasets, args.extension_datasets)
    write_safety_comparison(comparison, args.table)
    plot_safety_comparison(comparison, args.figure, args.method, args.baseline)
    print(comparison.to_string())


def _index(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.data.build import write_json
    from offrl.simhash import SimHashIndex

    index = SimHashIndex.build(load_dataset(args.dataset_dir).observations, k=args.k, seed=args.seed)
    write_atomically(args.out, index.save)
    summary = index.summary()
    write_json(args.summary, summary)
    print(json.dumps({k: summary[k] for k in ("k", "states", "buckets", "fraction_alone", "conf_mean")}))


def _conf_figure(args: argparse.Namespace) -> None:
    from offrl.report.simhash import plot_conf, plot_conf_histograms

    plot_conf(args.indexes, args.names, args.figure)
    if args.histograms:
        plot_conf_histograms(args.indexes, args.names, args.histograms)


def _bench(args: argparse.Namespace) -> None:
    from offrl.bench import bench

    # Several algorithms time one after the other in this process, so their ratio is fair on a noisy machine.
    first = None
    for name in args.algorithms:
        preset, options = _resolve_algorithm(name, args)
        result = bench(preset, args.steps, args.members, args.device, reference=not args.no_reference, options=options, capture=args.capture,
                       jobs_per_gpu=args.jobs_per_gpu)
        result["algorithm"] = name
        first = first or result
        if len(args.algorithms) > 1:
            result[f"speed_vs_{first['algorithm']}"] = round(result["steps_per_s_total"] / first["steps_per_s_total"], 2)
        print(json.dumps(result), flush=True)


def _command_line() -> str:
    return shlex.join(["python", "-m", "offrl", *sys.argv[1:]])


# Default thread count by hand: the networks are small, so more threads mostly wait on each other (on a busy
# 2-core machine the default of every core ran TD3+BC 40x slower than one thread). Snakemake rules pass their `threads:`.
DEFAULT_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
# The config whose variants --algo may name when no --configfile is given (relative to where the command runs).
DEFAULT_CONFIG = "config/config.yaml"


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (required options and off-by-default flags have none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.required or action.default in (None, False, argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)".strip()


def _global_options(in_command: bool) -> argparse.ArgumentParser:
    """--threads, --device, --quiet: accepted before the command and after it.

    After the command they default to SUPPRESS, so that a value given before it is not overwritten.
    """
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("global options (before or after the command)")

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if in_command else value

    group.add_argument("--threads", type=int, default=default(DEFAULT_THREADS), metavar="N",
                       help=f"torch CPU threads (default: {DEFAULT_THREADS}, i.e. min(2, this machine's cores); "
                            "Snakemake passes each rule's threads, 1 per training job by default; evaluate: worker processes)")
    group.add_argument("--device", default=default("auto"),
                       help="train and bench: auto (a free GPU, else the CPU), cpu, cuda (a free GPU) or cuda:<index> (default: auto)")
    group.add_argument("--quiet", action="store_true", default=default(False), help="no progress bar")
    group.add_argument("--capture", choices=("auto", "off"), default=default("auto"),
                       help="train and bench: auto runs each training step as a captured CUDA graph on a GPU; off always eagerly (debugging)")
    group.add_argument("--jobs-per-gpu", type=int, default=default(1), metavar="K", help="train and bench: jobs sharing one GPU (offline.jobs_per_gpu)")
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Give every command the help formatter, and a help line to options that have none (so their default shows)."""
    parser.formatter_class = _HelpFormatter
    for action in parser._actions:
        if action.help is None and action.default not in (None, False, argparse.SUPPRESS):
            action.help = "(default: %(default)s)"
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _show_defaults(command)


def _algorithm_options(p: argparse.ArgumentParser) -> None:
    """Where --algo's variants come from (train, evaluate, bench)."""
    p.add_argument("--configfile", nargs="+", default=None, metavar="YAML",
                   help=f"config files whose variants (TD3BC++ sweeps included) the algorithm may name, merged in order"
                        f" (default: {DEFAULT_CONFIG} where it exists)")
    p.add_argument("--variants", default="{}", help='JSON of more variants, {name: {"preset": ..., "options": {...}}}')


def build_parser() -> argparse.ArgumentParser:
    from offrl.algos.presets import PRESETS
    from offrl.data.contaminate import CONTAMINANTS
    from offrl.data.generate import KINDS
    from offrl.downstream import METHODS
    from offrl.envs import ENV_SPECS
    from offrl.priors.train import PRIOR_KINDS

    envs = sorted(ENV_SPECS)
    algorithm_help = f"a preset ({', '.join(sorted(PRESETS))}) or a variant of --configfile / --variants"
    parser = argparse.ArgumentParser(prog="offrl", description=__doc__, parents=[_global_options(in_command=False)])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = sub.add_parser

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A command that takes the global options too."""
        p = command(name, parents=[*kwargs.pop("parents", []), _global_options(in_command=True)], **kwargs)
        p.set_defaults(command_parser=p)
        return p

    # The inputs of every command that reports final scores.
    final_inputs = argparse.ArgumentParser(add_help=False)
    final_inputs.add_argument("--last", type=int, default=10, help="final score = the mean of this many last evaluations")
    final_inputs.add_argument("evaluations", nargs="+", help="evaluation.csv files of runs")

    p = add("behaviour", help="train TD3 online; write expert and medium actors, replay buffer, manifest")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--start-steps", type=int, default=25_000)
    p.add_argument("--eval-every", type=int, default=5000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--expert-checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--ctrl-cost-weight", type=float, default=None, help="the env's control-cost weight (safety expert)")
    p.add_argument("--expert-only", action="store_true", help="write only the expert actor (safety expert): no medium actor, no replay buffer")
    p.add_argument("--checkpoint-every", type=int, default=50_000,
                   help="save OUT/checkpoint.pt every this many steps and resume from it (0: never); a rerun with a smaller "
                        "--total-steps finalises a run stopped early")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_behaviour)

    p = add("collect", help="generate one D4RL-protocol dataset as a Minari dataset, with a JSON summary")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--behaviour", default=None, help="directory of the behaviour policies (expert.pt, medium.pt, replay_medium.npz)")
    p.add_argument("--size", type=int, required=True, help="transitions (medium-replay: at most this many, the most recent)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian action noise of policy rollouts")
    p.add_argument("--root", required=True, help="Minari datasets root (MINARI_DATASETS_PATH)")
    p.add_argument("--summary", required=True, help="where to write the JSON summary")
    p.set_defaults(func=_collect)

    p = add("clone", help="the cloned behaviour policy: BC on the first transitions of the expert dataset, as a raw-state actor")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--expert-dir", required=True, help="the expert Minari dataset")
    p.add_argument("--fraction", type=float, default=0.01, help="share of the expert dataset's transitions, from its start")
    p.add_argument("--steps", type=int, default=10000, help="BC gradient steps")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="actor file (.pt)")
    p.add_argument("--manifest", required=True, help="what was cloned and how it scores (.json)")
    p.set_defaults(func=_clone)

    p = add("contaminate", help="expert-random-X / expert-cloned-X: the expert dataset with its final X%% replaced by random or cloned transitions")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--percent", type=int, required=True, help="share of contaminant transitions, 1..99")
    p.add_argument("--contaminant", choices=CONTAMINANTS, default="random", help="the dataset kind spliced in")
    p.add_argument("--root", required=True, help="Minari root holding the expert and contaminant datasets; the result goes there too")
    p.add_argument("--summary", required=True, help="JSON summary (.json)")
    p.set_defaults(func=_contaminate)

    p = add("subset", help="expert-firstN: the expert dataset's first N transitions (BEAR blog Figure 1)")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--size", type=int, required=True, help="transitions kept, from the start")
    p.add_argument("--root", default="resources/minari")
    p.add_argument("--summary", required=True)
    p.set_defaults(func=_subset)

    p = add("download", help="fetch a remote Minari dataset into the local root, with a JSON summary")
    p.add_argument("--remote-id", required=True, help="e.g. mujoco/hopper/expert-v0")
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--root", required=True)
    p.add_argument("--summary", required=True)
    p.set_defaults(func=_download)

    p = add("dataset-table", help="table of dataset sizes and returns from their JSON summaries")
    p.add_argument("--out", required=True, help="output stem: writes STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--layout", choices=("datasets", "contamination"), default="datasets",
                   help="datasets: sizes and returns; contamination: expert and contaminant transitions (Table 3)")
    p.add_argument("summaries", nargs="+")
    p.set_defaults(func=_dataset_table)

    p = add("train", help="train an offline algorithm on one dataset, several seeds at once")
    p.add_argument("--algo", required=True, help=algorithm_help)
    _algorithm_options(p)
    p.add_argument("--dataset", required=True, help="<env>-<kind>, e.g. hopper-medium (with --dataset-dir: <env>-<any label>)")
    p.add_argument("--root", default="resources/minari", help="Minari datasets root")
    p.add_argument("--dataset-dir", default=None, help="the Minari dataset directory (default: found under --root)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, trained at once as ensemble members")
    p.add_argument("--steps", type=int, default=1_000_000, help="gradient steps (the papers: 1M)")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch per seed")
    p.add_argument("--eval-every", type=int, default=5000, help="policy snapshot interval; divides --steps")
    p.add_argument("--log-every", type=int, default=1000, help="train_log.csv row interval; divides --eval-every")
    p.add_argument("--options", default="{}", help="JSON object of algorithm options, e.g. '{\"alpha\": 2.5}'")
    p.add_argument("--out", required=True, help="run directory: snapshots.pt, train_log.csv, config.json")
    p.add_argument("--checkpoint", default=None, help="resume file, kept outside --out")
    p.add_argument("--critic-snapshots", type=int, default=20,
                   help="the Q diagnostic: at most this many snapshots keep the critic (the last and every k-th before it)")
    p.set_defaults(func=_train)

    p = add("evaluate", help="evaluate every snapshot of a run in vectorised envs")
    p.add_argument("--snapshots", required=True)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--algo", required=True, help=f"the run's algorithm (written in each row): {algorithm_help}")
    _algorithm_options(p)
    p.add_argument("--dataset", required=True, help="the run's dataset (written in each row), <env>-<label>")
    p.add_argument("--out", required=True, help="CSV, one row per episode")
    p.add_argument("--q-out", default=None, help="CSV of the slides' Q diagnostic, one row per episode (offrl.qdiagnostic)")
    p.add_argument("--q-tail", type=float, default=0.01,
                   help="a truncated episode's steps count in the Q diagnostic while the missing return weighs at most this (γ^(T−t) ≤ tail)")
    p.set_defaults(func=_evaluate)

    p = add("q-overestimation", help="learned Q minus the actual discounted return: table and figure over training (the slides)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--last", type=int, default=10, help="the table averages each seed's last N snapshots")
    p.add_argument("--table", required=True, help="output stem: STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.add_argument("diagnostics", nargs="+", help="q_diagnostic.csv files of the evaluation jobs")
    p.set_defaults(func=_q_overestimation)

    p = add("score-table", parents=[final_inputs], help="final scores (mean of the last N evaluations), mean ± std over seeds")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--table", required=True, help="output stem: STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--gain", action="append", default=[], metavar="ALGO:BASELINE",
                   help="show ALGO's Total gain in %% over BASELINE's, e.g. td3bc_pp:td3bc (repeatable)")
    p.add_argument("--spread", choices=["seeds", "pooled"], default="seeds",
                   help="a cell's ±: std of the per-seed final scores (ours, the Guided paper's), or over every final episode, evaluation and seed (TD3BC++)")
    p.add_argument("--total-spread", choices=["quadrature", "sum"], default="quadrature",
                   help="the Total's ±: √Σ of the rows' variances (ours), or Σ of the rows' stds (both papers)")
    p.add_argument("--extension-datasets", nargs="*", default=[], help="rows below the Total, marked (extension), not summed")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds' evaluations (default: all in the files)")
    p.set_defaults(func=_score_table)

    p = add("divergence-figure", help="policy-to-data divergence on expert vs contaminant pairs, and the score (TD3BC++ Figure 4)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.add_argument("runs", nargs="+", help="run directories (each with train_log.csv and evaluation.csv)")
    p.set_defaults(func=_divergence_figure)

    p = add("box-figure", parents=[final_inputs], help="final scores as box plots over seeds, per dataset and algorithm")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--title", default="")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.set_defaults(func=_box_figure)

    p = add("q-figure", help="Q of expert vs contaminant dataset actions at a few snapshots (TD3BC++ Figure 6)")
    p.add_argument("--algorithms", nargs="+", required=True, help="the algorithm of each snapshots file, in order")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.add_argument("snapshots", nargs="+", help="snapshots.pt of runs on an expert-random-X dataset")
    p.set_defaults(func=_q_figure)

    p = add("alpha-figure", parents=[final_inputs], help="final score against α, one line per λ_GP (TD3BC++ Figure 7)")
    p.add_argument("--grid", nargs="+", required=True, metavar="ALGO:ALPHA:LAMBDA", help="each grid point's algorithm, α and λ_GP")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.set_defaults(func=_alpha_figure)

    p = add("contamination-figure", parents=[final_inputs], help="final score vs %% random data (TD3BC++ Figure 3)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--envs", nargs="+", required=True)
    p.add_argument("--percents", nargs="+", type=int, required=True, help="contamination percents; 0 (the expert dataset) is added")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.set_defaults(func=_contamination_figure)

    p = add("learning-curves", help="normalised score over training, mean and ±1 sd band over seeds")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--columns", type=int, default=5, help="panels per row")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_learning_curves)

    p = add("return-q-figure", help="return and mean Q over training, per dataset (BEAR blog Figure 1)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.add_argument("runs", nargs="+", help="run directories (each with train_log.csv and evaluation.csv)")
    p.set_defaults(func=_return_q_figure)

    p = add("safety-figure", help="%% change of falls + unsafe-height events and of Σ|a| over all evaluations, method vs baseline")
    p.add_argument("--baseline", required=True, help="algorithm the change is relative to, e.g. td3bc")
    p.add_argument("--method", required=True, help="algorithm compared, e.g. guided_td3bc")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--extension-datasets", nargs="*", default=[], help="bars after the paper's, labelled as an extension")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds' evaluations (default: all in the files)")
    p.add_argument("--table", required=True, help="output stem of the totals: STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_safety_figure)

    p = add("index", help="SimHash index of a dataset's states: exact bucket counts and conf(s)")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--k", type=int, default=50, help="hash bits")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection matrix A")
    p.add_argument("--out", required=True, help="index file (.npz)")
    p.add_argument("--summary", required=True, help="bucket statistics (.json)")
    p.set_defaults(func=_index)

    p = add("conf-figure", help="bucket sizes and conf(s) distribution of SimHash indexes")
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv (the plotted numbers)")
    p.add_argument("--histograms", help="output stem of the per-dataset conf(s) histograms: STEM.png, STEM.pdf, STEM.csv")
    p.add_argument("indexes", nargs="+")
    p.set_defaults(func=_conf_figure)

    p = add("bench", help="gradient steps per second on random Hopper-sized data, eager and captured; one JSON line per algorithm")
    p.add_argument("algorithms", nargs="+", metavar="ALGORITHM", help=f"one or more: {algorithm_help}")
    _algorithm_options(p)
    p.add_argument("--steps", type=int, default=500, help="timed gradient steps (after a tenth as many untimed)")
    p.add_argument("--members", type=int, default=1, help="seeds trained at once, as ensemble members")
    p.add_argument("--no-reference", action="store_true", help="skip the plain reference loop")
    p.set_defaults(func=_bench)

    add_safer_commands(add, prior_kinds=sorted(PRIOR_KINDS), methods=list(METHODS))
    add_findings_commands(add)
    _show_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from offrl.data.dataset import DatasetError

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        # Expected failures (bad input, missing data, no network) get one line, not a traceback.
        print(f"offrl {args.command}: error: {err}", file=sys.stderr)
        sys.exit(1)
