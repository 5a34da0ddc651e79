"""Behaviour policies and datasets: ``behaviour``, ``collect``, ``clone``, ``contaminate``, ``subset``, ``download``,
``standin``, ``index``.

``behaviour``'s options are :class:`offrl.online.TD3Config`'s fields (``offrl.options``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from offrl.commands.checks import check_dataset_record
from offrl.data.contaminate import CONTAMINANTS
from offrl.data.generate import KINDS
from offrl.envs import ADROIT_ENVS, ADROIT_KINDS, ENV_SPECS
from offrl.files import write_atomically
from offrl.online import TD3Config
from offrl.options import add_fields, command_line, field_values


def _behaviour(args: argparse.Namespace) -> None:
    from offrl.online import train_online

    config = TD3Config(**field_values(args, TD3Config))
    manifest = train_online(
        args.env,
        config,
        args.out,
        progress=not args.quiet,
        command=command_line(),
        device=args.device,
        capture=args.capture,
        jobs_per_gpu=args.jobs_per_gpu,
        keep_checkpoint=args.keep_checkpoint,
    )
    print(json.dumps({k: manifest[k] for k in ("env", "expert", "medium") if k in manifest}))


def _collect(args: argparse.Namespace) -> None:
    from offrl.data.build import generate, write_with_summary

    dataset = generate(
        args.env, args.kind, args.behaviour, args.size, args.seed, args.noise, args.root, progress=not args.quiet
    )
    provenance = {
        "source": "local",
        "seed": args.seed,
        "noise": args.noise,
        "size": args.size,
        "behaviour": args.behaviour,
        "command": command_line(),
    }
    summary = write_with_summary(dataset, args.env, args.kind, args.root, args.summary, provenance)
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

    check_dataset_record(args.expert_dir, args.env, f"--env {args.env}")
    expert = load_dataset(args.expert_dir)
    transitions = max(1, round(args.fraction * len(expert)))
    config = TrainConfig(
        algorithm="bc",
        env=args.env,
        dataset=f"{args.env}-expert[:{transitions}]",
        seeds=[args.seed],
        steps=args.steps,
        eval_every=args.steps,
        log_every=args.steps,
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as tmp:
        train(truncate(expert, transitions), config, tmp, progress=not args.quiet)
        export_snapshot(f"{tmp}/snapshots.pt", args.out, env=args.env, expert_transitions=transitions)
    scores = evaluate_policy(NumpyActor(load_actor(args.out)), args.env, args.eval_episodes, seed=1_000_000 + args.seed)
    manifest = {
        "env": args.env,
        "algorithm": "BC",
        "command": command_line(),
        "seed": args.seed,
        "fraction": args.fraction,
        "expert_transitions": transitions,
        "steps": args.steps,
        "eval_episodes": args.eval_episodes,
        "eval_return_mean": float(scores["return"].mean()),
        "normalized_score": float(normalized_score(args.env, scores["return"].mean())),
    }
    write_json(args.manifest, manifest)
    print(json.dumps(manifest))


def _contaminate(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_with_summary
    from offrl.data.contaminate import contaminate
    from offrl.data.dataset import dataset_provenance, load_dataset

    root = args.root
    parts = [f"{root}/{minari_id(args.env, kind)}" for kind in ("expert", args.contaminant)]
    for path in parts:
        check_dataset_record(path, args.env, f"--env {args.env}")
    dataset, mask = contaminate(load_dataset(parts[0]), load_dataset(parts[1]), args.percent)
    provenance = {
        "source": "contaminated",
        "percent": args.percent,
        "contaminant": args.contaminant,
        "expert_transitions": int((~mask).sum()),
        "contaminant_transitions": int(mask.sum()),
        "standin": any(dataset_provenance(part).get("standin", False) for part in parts),
        "command": command_line(),
    }
    summary = write_with_summary(
        dataset, args.env, f"expert-{args.contaminant}-{args.percent}", root, args.summary, provenance
    )
    print(json.dumps(summary))


def _subset(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_with_summary
    from offrl.data.contaminate import truncate
    from offrl.data.dataset import load_dataset

    path = f"{args.root}/{minari_id(args.env, 'expert')}"
    check_dataset_record(path, args.env, f"--env {args.env}")
    dataset = truncate(load_dataset(path), args.size)
    provenance = {"source": "subset", "subset_of": "expert", "first": args.size, "command": command_line()}
    summary = write_with_summary(dataset, args.env, f"expert-first{args.size}", args.root, args.summary, provenance)
    print(json.dumps(summary))


def _download(args: argparse.Namespace) -> None:
    from offrl.data.build import minari_id, write_json
    from offrl.data.dataset import dataset_provenance, load_dataset
    from offrl.data.download import download, reference_scores
    from offrl.envs import env_spec

    path = download(args.remote_id, args.root, minari_id(args.env, args.kind), needed=args.needed)
    check_dataset_record(path, args.env, f"--env {args.env} (--remote-id {args.remote_id})")
    spec = env_spec(args.env)
    # Scores are normalised with the registry's D4RL constants; the dataset's own are kept beside them to compare.
    own = {f"dataset_{key}": value for key, value in reference_scores(path).items()}
    summary = {
        "env": args.env,
        "kind": args.kind,
        "minari_id": minari_id(args.env, args.kind),
        "source": "minari",
        "remote_id": args.remote_id,
        "standin": bool(dataset_provenance(path).get("standin", False)),
        "ref_min_score": spec.ref_min_score,
        "ref_max_score": spec.ref_max_score,
        **own,
        **load_dataset(path).summary(args.env),
        "path": str(path),
    }
    write_json(args.summary, summary)
    print(json.dumps(summary))


def _standin(args: argparse.Namespace) -> None:
    from offrl.data.standin import write_standin

    print(write_standin(args.env, args.kind, args.episodes, args.seed, args.root))


def _index(args: argparse.Namespace) -> None:
    from offrl.data import load_dataset
    from offrl.data.build import write_json
    from offrl.simhash import SimHashIndex

    index = SimHashIndex.build(load_dataset(args.dataset_dir).observations, k=args.k, seed=args.seed)
    write_atomically(args.out, index.save)
    summary = index.summary()
    write_json(args.summary, summary)
    print(json.dumps({k: summary[k] for k in ("k", "states", "buckets", "fraction_alone", "conf_mean")}))


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The data commands, each made by ``add(name, help=...)`` (the trunk's, which adds the global options)."""
    envs = sorted(ENV_SPECS)
    generated = [env for env in envs if env not in ADROIT_ENVS]  # Adroit's data is downloaded, never generated here
    p = add("behaviour", help="train TD3 online; write expert and medium actors, replay buffer, manifest")
    p.add_argument("--env", required=True, choices=generated)
    p.add_argument("--out", required=True, help="output directory")
    add_fields(p, TD3Config)
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help=(
            "keep OUT/checkpoint.pt (saved at the last step too), so a rerun with a larger --total-steps "
            "extends the run"
        ),
    )
    p.set_defaults(func=_behaviour)

    p = add("collect", help="generate one D4RL-protocol dataset as a Minari dataset, with a JSON summary")
    p.add_argument("--env", required=True, choices=generated)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument(
        "--behaviour",
        default=None,
        help="directory of the behaviour policies (expert.pt, medium.pt, replay_medium.npz)",
    )
    p.add_argument(
        "--size", type=int, required=True, help="transitions (medium-replay: at most this many, the most recent)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian action noise of policy rollouts")
    p.add_argument("--root", required=True, help="Minari datasets root (MINARI_DATASETS_PATH)")
    p.add_argument("--summary", required=True, help="where to write the JSON summary")
    p.set_defaults(func=_collect)

    p = add(
        "clone",
        help="the cloned behaviour policy: BC on the first transitions of the expert dataset, as a raw-state actor",
    )
    p.add_argument("--env", required=True, choices=generated)
    p.add_argument("--expert-dir", required=True, help="the expert Minari dataset")
    p.add_argument(
        "--fraction", type=float, default=0.01, help="share of the expert dataset's transitions, from its start"
    )
    p.add_argument("--steps", type=int, default=10000, help="BC gradient steps")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="actor file (.pt)")
    p.add_argument("--manifest", required=True, help="what was cloned and how it scores (.json)")
    p.set_defaults(func=_clone)
    _add_derived_commands(add, envs)


def _add_derived_commands(add: Callable[..., argparse.ArgumentParser], envs: list[str]) -> None:
    """The commands that derive, fetch or index a dataset: contaminate, subset, download, standin, index."""
    p = add(
        "contaminate",
        help="expert-random-X / expert-cloned-X: the expert dataset with its final X%% replaced by random or cloned"
        " transitions",
    )
    p.add_argument("--env", required=True, choices=envs)
    p.add_argument("--percent", type=int, required=True, help="share of contaminant transitions, 1..99")
    p.add_argument("--contaminant", choices=CONTAMINANTS, default="random", help="the dataset kind spliced in")
    p.add_argument(
        "--root",
        required=True,
        help="Minari root holding the expert and contaminant datasets; the result goes there too",
    )
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
    p.add_argument(
        "--needed",
        nargs="*",
        default=[],
        metavar="REMOTE_ID",
        help="every remote id the run downloads: a failure names them all and how to place them by hand",
    )
    p.set_defaults(func=_download)

    p = add(
        "standin",
        help="a stand-in for an Adroit Minari dataset (a few episodes of a scripted or random policy), under its"
        " Minari id in a Minari root",
    )
    p.add_argument("--env", required=True, choices=ADROIT_ENVS)
    p.add_argument("--kind", required=True, choices=ADROIT_KINDS)
    p.add_argument("--episodes", type=int, required=True, help="full episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", required=True, help="Minari root (what MINARI_DATASETS_PATH would name)")
    p.set_defaults(func=_standin)

    p = add("index", help="SimHash index of a dataset's states: exact bucket counts and conf(s)")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--k", type=int, default=50, help="hash bits")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection matrix A")
    p.add_argument("--out", required=True, help="index file (.npz)")
    p.add_argument("--summary", required=True, help="bucket statistics (.json)")
    p.set_defaults(func=_index)
