"""Offline training and its evaluation: ``train``, ``train-pack``, ``evaluate``, ``bench``.

``train``'s options are :class:`offrl.train.TrainConfig`'s fields (``offrl.options``); ``--algo`` names a
preset or a variant of a config file, resolved here for all three commands.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from offrl.algos.presets import PRESETS
from offrl.commands.checks import check_against_run, check_dataset_record, check_distinct, check_writable, run_record
from offrl.evaluate import EvalConfig
from offrl.files import write_atomically
from offrl.options import add_fields, field_values
from offrl.train import TrainConfig, train

# train-pack's shared options: TrainConfig's fields but those each --run gives (dataset, seeds).
PACK_FIELDS = ("steps", "batch_size", "eval_every", "log_every", "options", "critic_snapshots")

# The config whose variants --algo may name when no --configfile is given (relative to where the command runs).
DEFAULT_CONFIG = "config/config.yaml"
ALGORITHM_HELP = f"a preset ({', '.join(sorted(PRESETS))}) or a variant of --configfile / --variants"


def _contaminant_from(path: str) -> int | None:
    """A contaminated dataset's first contaminant transition (from its provenance); None for any other."""
    from offrl.data.dataset import dataset_provenance

    provenance = dataset_provenance(path)
    return provenance.get("expert_transitions") if provenance.get("source") == "contaminated" else None


def _train(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.data.build import minari_id

    env, kind = split_dataset(args.dataset, own_data=args.dataset_dir is not None)
    preset, variant_options = resolve_algorithm(args.algo, args, env)
    _check_intervals(args)
    check_distinct(args.seeds, "--seeds")
    check_writable(args.out, "--out")
    if args.checkpoint:
        check_writable(args.checkpoint, "--checkpoint")
    path = args.dataset_dir or f"{args.root}/{minari_id(env, kind)}"
    check_dataset_record(path, env, f"--dataset {args.dataset}")
    values = field_values(args, TrainConfig)
    values["options"] = {**variant_options, **values["options"]}
    config = TrainConfig(
        algorithm=preset, env=env, device=args.device, contaminant_from=_contaminant_from(path), **values
    )
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


def pack_seeds(text: str) -> list[int]:
    """A --run's seeds, joined by '-' as the workflow's run directories name them: ``0-1-2``."""
    if not all(part.isdigit() for part in text.split("-")):
        raise ValueError(f"--run SEEDS {text!r}: expected seeds joined by '-', e.g. 0-1-2")
    return [int(part) for part in text.split("-")]


def _train_pack(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.train import Run, train_pack

    preset, variant_options = resolve_algorithm(args.algo, args)
    _check_intervals(args)
    values = field_values(args, TrainConfig, only=PACK_FIELDS)
    values["options"] = {**variant_options, **values["options"]}
    configs = []
    for name, path, seeds, out in args.run:
        env, _ = split_dataset(name, own_data=True)
        config = TrainConfig(
            algorithm=preset,
            env=env,
            dataset=name,
            seeds=pack_seeds(seeds),
            device=args.device,
            contaminant_from=_contaminant_from(path),
            **values,
        )
        configs.append((config, path, out))
    records = train_pack(
        [Run(load_dataset(path), config, Path(out)) for config, path, out in configs],
        checkpoint=args.checkpoint,
        progress=not args.quiet,
        capture=args.capture,
        jobs_per_gpu=args.jobs_per_gpu,
    )
    print(
        json.dumps({k: records[0][k] for k in ("device", "wall_time_s", "resumed_from_step")} | {"runs": len(records)})
    )


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


def resolve_algorithm(name: str, args: argparse.Namespace, env: str | None = None) -> tuple[str, dict]:
    """An algorithm name's preset and options: a preset itself, or a variant of --configfile / --variants;
    with ``env``, the config's ``env_options`` of that name on that env on top (offrl.config.run_options)."""
    from offrl.config import config_variants, load_config_files, run_options

    files = args.configfile if args.configfile is not None else [f for f in (DEFAULT_CONFIG,) if os.path.isfile(f)]
    config = load_config_files(files) if env is not None else {}
    if name in PRESETS:
        return name, run_options(config, {}, name, env)
    variants = {**config_variants(files), **json.loads(args.variants)}
    if name not in variants:
        source = f"variants of {', '.join(files)}" if files else "variants (none: no --configfile)"
        allowed = f"presets {', '.join(sorted(PRESETS))}; {source}: {', '.join(sorted(variants)) or '-'}"
        raise ValueError(f"--algo {name}: unknown; allowed: {allowed}")
    return variants[name]["preset"], run_options(config, variants, name, env)


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
        args.snapshots,
        args.episodes,
        progress=not args.quiet,
        tail=args.q_tail,
        workers=args.threads,
        config=EvalConfig(**field_values(args, EvalConfig)),
    )
    for frame, path in ((scores, args.out), (diagnostic, args.q_out)):
        if path is None:
            continue
        frame.insert(0, "algorithm", args.algo)
        frame.insert(1, "dataset", args.dataset)
        write_atomically(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))


def _bench(args: argparse.Namespace) -> None:
    from offrl.bench import bench, packed_vs_separate

    # Several algorithms and sizes time one after the other in this process, so their ratios are fair on a noisy
    # machine; each size is its own line, speed_vs_ against the first algorithm at that size.
    first: dict[int, dict] = {}
    for members in args.members:
        for name in args.algorithms:
            preset, options = resolve_algorithm(name, args)
            if args.versus_separate:
                result = packed_vs_separate(
                    preset, members, args.versus_separate, args.steps, args.device, options=options
                )
            else:
                result = bench(
                    preset,
                    args.steps,
                    members,
                    args.device,
                    reference=not args.no_reference,
                    options=options,
                    capture=args.capture,
                    jobs_per_gpu=args.jobs_per_gpu,
                )
            result["algorithm"] = name
            first.setdefault(members, result)
            total = "packed_member_steps_per_s" if args.versus_separate else "steps_per_s_total"
            if len(args.algorithms) > 1:
                result[f"speed_vs_{first[members]['algorithm']}"] = round(result[total] / first[members][total], 2)
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

    p = add(
        "train-pack",
        help="train one algorithm on several datasets of one env in one process, every seed of every run an"
        " ensemble member; each run's outputs are train's",
    )
    p.add_argument("--algo", required=True, help=ALGORITHM_HELP)
    _algorithm_options(p)
    add_fields(p, TrainConfig, only=PACK_FIELDS)
    p.add_argument(
        "--run",
        nargs=4,
        action="append",
        required=True,
        metavar=("DATASET", "DATASET_DIR", "SEEDS", "OUT"),
        help="one run, given once per run: its dataset's name, its Minari directory, its seeds joined by '-' (0-1-2)"
        " and its run directory (snapshots.pt, train_log.csv, config.json)",
    )
    p.add_argument("--checkpoint", default=None, help="the pack's resume file, kept outside every run directory")
    p.set_defaults(func=_train_pack)

    p = add("evaluate", help="evaluate every snapshot of a run, all its episodes stepped at once")
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
    add_fields(p, EvalConfig)
    p.set_defaults(func=_evaluate)

    p = add(
        "bench",
        help="gradient steps per second on random Hopper-sized data, eager and captured; one JSON line per algorithm",
    )
    p.add_argument("algorithms", nargs="+", metavar="ALGORITHM", help=f"one or more: {ALGORITHM_HELP}")
    _algorithm_options(p)
    p.add_argument("--steps", type=int, default=500, help="timed gradient steps (after a tenth as many untimed)")
    p.add_argument(
        "--members",
        type=int,
        nargs="+",
        default=[1],
        help="seeds trained at once, as ensemble members; several sizes, one line each (e.g. packs: 1 5 30 60)",
    )
    p.add_argument(
        "--versus-separate",
        type=int,
        default=0,
        metavar="DATASETS",
        help="instead: a pack of --members members over DATASETS datasets against the same members trained one at"
        " a time as separate one-member runs, both eager, in member-steps/s (offrl.bench.packed_vs_separate)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the plain reference loop")
    p.set_defaults(func=_bench)
