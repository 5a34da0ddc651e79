"""Offline training and its evaluation: ``train``, ``evaluate``, ``bench``.

``train``'s options are :class:`offrl.train.TrainConfig`'s fields (``offrl.options``); ``--algo`` names a
preset or a variant of a config file, resolved here for all three commands.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable

from offrl.algos.presets import PRESETS
from offrl.commands.checks import check_against_run, check_dataset_record, check_distinct, check_writable, run_record
from offrl.files import write_atomically
from offrl.options import add_fields, field_values
from offrl.train import TrainConfig, train

# The config whose variants --algo may name when no --configfile is given (relative to where the command runs).
DEFAULT_CONFIG = "config/config.yaml"
ALGORITHM_HELP = f"a preset ({', '.join(sorted(PRESETS))}) or a variant of --configfile / --variants"


def _train(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.data.build import minari_id
    from offrl.data.dataset import dataset_provenance

    env, kind = split_dataset(args.dataset, own_data=args.dataset_dir is not None)
    preset, variant_options = resolve_algorithm(args.algo, args)
    _check_intervals(args)
    check_distinct(args.seeds, "--seeds")
    check_writable(args.out, "--out")
    if args.checkpoint:
        check_writable(args.checkpoint, "--checkpoint")
    path = args.dataset_dir or f"{args.root}/{minari_id(env, kind)}"
    check_dataset_record(path, env, f"--dataset {args.dataset}")
    provenance = dataset_provenance(path)
    values = field_values(args, TrainConfig)
    values["options"] = {**variant_options, **values["options"]}
    contaminant_from = provenance.get("expert_transitions") if provenance.get("source") == "contaminated" else None
    config = TrainConfig(algorithm=preset, env=env, device=args.device, contaminant_from=contaminant_from, **values)
    record = train(
        load_dataset(path),
        config,
        args.out,
        checkpoint=args.checkpoint,
        progress=not args.quiet,
        capture=args.capture,
        jobs_per_gpu=args.jobs_per_gpu,
    )
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
        raise ValueError(
            f"{flag('log_every')} must divide {flag('eval_every')}: give --log-every a divisor of {args.eval_every}"
        )


def resolve_algorithm(name: str, args: argparse.Namespace) -> tuple[str, dict]:
    """An algorithm name's preset and options: a preset itself, or a variant of --configfile / --variants."""
    from offrl.config import config_variants

    if name in PRESETS:
        return name, {}
    files = args.configfile if args.configfile is not None else [f for f in (DEFAULT_CONFIG,) if os.path.isfile(f)]
    variants = {**config_variants(files), **json.loads(args.variants)}
    if name not in variants:
        source = f"variants of {', '.join(files)}" if files else "variants (none: no --configfile)"
        allowed = f"presets {', '.join(sorted(PRESETS))}; {source}: {', '.join(sorted(variants)) or '-'}"
        raise ValueError(f"--algo {name}: unknown; allowed: {allowed}")
    return variants[name]["preset"], dict(variants[name].get("options", {}))


def split_dataset(name: str, own_data: bool = False) -> tuple[str, str]:
    """``<env>-<kind>``; with ``own_data`` (a dataset directory given) the kind is a free label.

    The env is one of ours either way.
    """
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

    # The run's record gives the algorithm and dataset; a flag may rename them (a variant's name, a label) but not
    # contradict them: another preset, or another env's dataset, would evaluate the wrong policy or env.
    preset = resolve_algorithm(args.algo, args)[0] if args.algo else None
    if args.dataset:
        split_dataset(args.dataset, own_data=True)
    if not 0.0 < args.q_tail < 1.0:
        raise ValueError(f"--q-tail must be in (0, 1), got {args.q_tail}")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    for path, flag in ((args.out, "--out"), (args.q_out, "--q-out")):
        if path is not None:
            check_writable(path, flag)
    record = run_record(args.snapshots)
    check_against_run(record, args.snapshots, preset, args.dataset)
    args.algo = args.algo or record["algorithm"]
    args.dataset = args.dataset or record["dataset"]
    if args.dataset is None:
        raise ValueError(f"--dataset: the run {args.snapshots} has no config.json saying its dataset; give it")
    # --threads: worker processes over the snapshots (the rule's threads:), one torch thread each.
    scores, diagnostic = evaluate_snapshots(
        args.snapshots, args.episodes, progress=not args.quiet, tail=args.q_tail, workers=args.threads
    )
    for frame, path in ((scores, args.out), (diagnostic, args.q_out)):
        if path is None:
            continue
        frame.insert(0, "algorithm", args.algo)
        frame.insert(1, "dataset", args.dataset)
        write_atomically(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))


def _bench(args: argparse.Namespace) -> None:
    from offrl.bench import bench

    # Several algorithms time one after the other in this process, so their ratio is fair on a noisy machine.
    first = None
    for name in args.algorithms:
        preset, options = resolve_algorithm(name, args)
        result = bench(
            preset,
            args.steps,
            args.members,
            args.device,
            reference=not args.no_reference,
            options=options,
            capture=args.capture,
            jobs_per_gpu=args.jobs_per_gpu,
        )
        result["algorithm"] = name
        first = first or result
        if len(args.algorithms) > 1:
            result[f"speed_vs_{first['algorithm']}"] = round(
                result["steps_per_s_total"] / first["steps_per_s_total"], 2
            )
        print(json.dumps(result), flush=True)


def _algorithm_options(p: argparse.ArgumentParser) -> None:
    """Where --algo's variants come from (train, evaluate, bench)."""
    p.add_argument(
        "--configfile",
        nargs="+",
        default=None,
        metavar="YAML",
        help=f"config files whose variants (TD3BC++ sweeps included) the algorithm may name, merged in order"
        f" (default: {DEFAULT_CONFIG} where it exists)",
    )
    p.add_argument("--variants", default="{}", help='JSON of more variants, {name: {"preset": ..., "options": {...}}}')


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """train, evaluate and bench, each made by ``add(name, help=...)`` (the trunk's, which adds the global options)."""
    p = add("train", help="train an offline algorithm on one dataset, several seeds at once")
    p.add_argument("--algo", required=True, help=ALGORITHM_HELP)
    _algorithm_options(p)
    add_fields(p, TrainConfig)
    p.add_argument("--root", default="resources/minari", help="Minari datasets root")
    p.add_argument("--dataset-dir", default=None, help="the Minari dataset directory (default: found under --root)")
    p.add_argument("--out", required=True, help="run directory: snapshots.pt, train_log.csv, config.json")
    p.add_argument("--checkpoint", default=None, help="resume file, kept outside --out")
    p.set_defaults(func=_train)

    p = add("evaluate", help="evaluate every snapshot of a run in vectorised envs")
    p.add_argument("--snapshots", required=True)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument(
        "--algo",
        help=f"the run's algorithm as written in each row (default: the run's preset; must name that preset):"
        f" {ALGORITHM_HELP}",
    )
    _algorithm_options(p)
    p.add_argument(
        "--dataset",
        help="the run's dataset as written in each row, <env>-<label> (default: the run's config.json; must agree)",
    )
    p.add_argument("--out", required=True, help="CSV, one row per episode")
    p.add_argument(
        "--q-out", default=None, help="CSV of the slides' Q diagnostic, one row per episode (offrl.qdiagnostic)"
    )
    p.add_argument(
        "--q-tail",
        type=float,
        default=0.01,
        help="a truncated episode's steps count in the Q diagnostic while the missing return weighs at most this"
        " (γ^(T−t) ≤ tail)",
    )
    p.set_defaults(func=_evaluate)

    p = add(
        "bench",
        help="gradient steps per second on random Hopper-sized data, eager and captured; one JSON line per algorithm",
    )
    p.add_argument("algorithms", nargs="+", metavar="ALGORITHM", help=f"one or more: {ALGORITHM_HELP}")
    _algorithm_options(p)
    p.add_argument("--steps", type=int, default=500, help="timed gradient steps (after a tenth as many untimed)")
    p.add_argument("--members", type=int, default=1, help="seeds trained at once, as ensemble members")
    p.add_argument("--no-reference", action="store_true", help="skip the plain reference loop")
    p.set_defaults(func=_bench)
