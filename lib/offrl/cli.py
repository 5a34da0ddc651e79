"""Command line: ``python -m offrl <command> ...``; every Snakemake rule runs one of these."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

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

    env, kind = _split_dataset(args.dataset)
    path = args.dataset_dir or f"{args.root}/{minari_id(env, kind)}"
    provenance = dataset_provenance(path)
    config = TrainConfig(
        algorithm=args.algo,
        env=env,
        dataset=args.dataset,
        seeds=args.seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        log_every=args.log_every,
        device=args.device,
        options=json.loads(args.options),
        critic_snapshots=args.critic_snapshots,
        contaminant_from=provenance.get("expert_transitions") if provenance.get("source") == "contaminated" else None,
    )
    record = train(load_dataset(path), config, args.out, checkpoint=args.checkpoint, progress=not args.quiet)
    print(json.dumps({k: record[k] for k in ("device", "wall_time_s", "resumed_from_step")}))


def _split_dataset(name: str) -> tuple[str, str]:
    from offrl.data.contaminate import parse_contaminated, parse_subset
    from offrl.data.generate import KINDS
    from offrl.envs import ENV_SPECS

    env, _, kind = name.partition("-")
    if env not in ENV_SPECS or (kind not in KINDS and parse_contaminated(kind) is None and parse_subset(kind) is None):
        raise ValueError(
            f"dataset {name!r} is not <env>-<kind> with env in {sorted(ENV_SPECS)} and kind in {list(KINDS)},"
            " expert-random-X / expert-cloned-X (X in 1..99) or expert-firstN"
        )
    return env, kind


def _evaluate(args: argparse.Namespace) -> None:
    from offrl.evaluate import evaluate_snapshots

    if not 0.0 < args.q_tail < 1.0:
        raise ValueError(f"--q-tail must be in (0, 1), got {args.q_tail}")
    scores, diagnostic = evaluate_snapshots(args.snapshots, args.episodes, progress=not args.quiet, tail=args.q_tail)
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
    for algorithm in args.algorithms:
        result = bench(algorithm, args.steps, args.members, args.device, reference=not args.no_reference)
        first = first or result
        if len(args.algorithms) > 1:
            result[f"speed_vs_{first['algorithm']}"] = round(result["steps_per_s_total"] / first["steps_per_s_total"], 2)
        print(json.dumps(result), flush=True)


def _command_line() -> str:
    return shlex.join(["python", "-m", "offrl", *sys.argv[1:]])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="offrl", description=__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub = parser.add_subparsers(dest="command", required=True)
    # The inputs of every command that reports final scores.
    final_inputs = argparse.ArgumentParser(add_help=False)
    final_inputs.add_argument("--last", type=int, default=10, help="final score = the mean of this many last evaluations")
    final_inputs.add_argument("evaluations", nargs="+", help="evaluation.csv files of runs")

    p = sub.add_parser("behaviour", help="train TD3 online; write expert and medium actors, replay buffer, manifest")
    p.add_argument("--env", required=True, help="hopper, walker2d or halfcheetah")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_behaviour)

    from offrl.data.contaminate import CONTAMINANTS
    from offrl.data.generate import KINDS

    p = sub.add_parser("collect", help="generate one D4RL-protocol dataset as a Minari dataset, with a JSON summary")
    p.add_argument("--env", required=True)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--behaviour", default=None, help="directory of the behaviour policies (expert.pt, medium.pt, replay_medium.npz)")
    p.add_argument("--size", type=int, required=True, help="transitions (medium-replay: at most this many, the most recent)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.1, help="std of the Gaussian action noise of policy rollouts")
    p.add_argument("--root", required=True, help="Minari datasets root (MINARI_DATASETS_PATH)")
    p.add_argument("--summary", required=True, help="where to write the JSON summary")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_collect)

    p = sub.add_parser("clone", help="the cloned behaviour policy: BC on the first transitions of the expert dataset, as a raw-state actor")
    p.add_argument("--env", required=True)
    p.add_argument("--expert-dir", required=True, help="the expert Minari dataset")
    p.add_argument("--fraction", type=float, default=0.01, help="share of the expert dataset's transitions, from its start")
    p.add_argument("--steps", type=int, default=10000, help="BC gradient steps")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="actor file (.pt)")
    p.add_argument("--manifest", required=True, help="what was cloned and how it scores (.json)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_clone)

    p = sub.add_parser("contaminate", help="expert-random-X / expert-cloned-X: the expert dataset with its final X%% replaced by random or cloned transitions")
    p.add_argument("--env", required=True)
    p.add_argument("--percent", type=int, required=True, help="share of contaminant transitions, 1..99")
    p.add_argument("--contaminant", choices=CONTAMINANTS, default="random", help="the dataset kind spliced in")
    p.add_argument("--root", required=True, help="Minari root holding the expert and contaminant datasets; the result goes there too")
    p.add_argument("--summary", required=True, help="JSON summary (.json)")
    p.set_defaults(func=_contaminate)

    p = sub.add_parser("subset", help="expert-firstN: the expert dataset's first N transitions (BEAR blog Figure 1)")
    p.add_argument("--env", required=True)
    p.add_argument("--size", type=int, required=True, help="transitions kept, from the start")
    p.add_argument("--root", default="resources/minari")
    p.add_argument("--summary", required=True)
    p.set_defaults(func=_subset)

    p = sub.add_parser("download", help="fetch a remote Minari dataset into the local root, with a JSON summary")
    p.add_argument("--remote-id", required=True, help="e.g. mujoco/hopper/expert-v0")
    p.add_argument("--env", required=True)
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--root", required=True)
    p.add_argument("--summary", required=True)
    p.set_defaults(func=_download)

    p = sub.add_parser("dataset-table", help="table of dataset sizes and returns from their JSON summaries")
    p.add_argument("--out", required=True, help="output stem: writes STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--layout", choices=("datasets", "contamination"), default="datasets",
                   help="datasets: sizes and returns; contamination: expert and contaminant transitions (Table 3)")
    p.add_argument("summaries", nargs="+")
    p.set_defaults(func=_dataset_table)

    from offrl.algos.presets import PRESETS

    p = sub.add_parser("train", help="train an offline algorithm on one dataset, several seeds at once")
    p.add_argument("--algo", required=True, choices=sorted(PRESETS))
    p.add_argument("--dataset", required=True, help="<env>-<kind>, e.g. hopper-medium")
    p.add_argument("--root", default="resources/minari", help="Minari datasets root")
    p.add_argument("--dataset-dir", default=None, help="the Minari dataset directory (default: found under --root)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--eval-every", type=int, default=5000, help="policy snapshot interval")
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index>")
    p.add_argument("--options", default="{}", help="JSON object of algorithm options, e.g. '{\"alpha\": 2.5}'")
    p.add_argument("--out", required=True, help="run directory: snapshots.pt, train_log.csv, config.json")
    p.add_argument("--checkpoint", default=None, help="resume file, kept outside --out")
    p.add_argument("--critic-snapshots", type=int, default=20,
                   help="the Q diagnostic: at most this many snapshots keep the critic (the last and every k-th before it)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate every snapshot of a run in vectorised envs")
    p.add_argument("--snapshots", required=True)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--algo", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="CSV, one row per episode")
    p.add_argument("--q-out", default=None, help="CSV of the slides' Q diagnostic, one row per episode (offrl.qdiagnostic)")
    p.add_argument("--q-tail", type=float, default=0.01,
                   help="a truncated episode's steps count in the Q diagnostic while the missing return weighs at most this (γ^(T−t) ≤ tail)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("q-overestimation", help="learned Q minus the actual discounted return: table and figure over training (the slides)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--last", type=int, default=10, help="the table averages each seed's last N snapshots")
    p.add_argument("--table", required=True, help="output stem: STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.add_argument("diagnostics", nargs="+", help="q_diagnostic.csv files of the evaluation jobs")
    p.set_defaults(func=_q_overestimation)

    p = sub.add_parser("score-table", parents=[final_inputs], help="final scores (mean of the last N evaluations), mean ± std over seeds")
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

    p = sub.add_parser("divergence-figure", help="policy-to-data divergence on expert vs contaminant pairs, and the score (TD3BC++ Figure 4)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.add_argument("runs", nargs="+", help="run directories (each with train_log.csv and evaluation.csv)")
    p.set_defaults(func=_divergence_figure)

    p = sub.add_parser("box-figure", parents=[final_inputs], help="final scores as box plots over seeds, per dataset and algorithm")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--title", default="")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.set_defaults(func=_box_figure)

    p = sub.add_parser("q-figure", help="Q of expert vs contaminant dataset actions at a few snapshots (TD3BC++ Figure 6)")
    p.add_argument("--algorithms", nargs="+", required=True, help="the algorithm of each snapshots file, in order")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.add_argument("snapshots", nargs="+", help="snapshots.pt of runs on an expert-random-X dataset")
    p.set_defaults(func=_q_figure)

    p = sub.add_parser("alpha-figure", parents=[final_inputs], help="final score against α, one line per λ_GP (TD3BC++ Figure 7)")
    p.add_argument("--grid", nargs="+", required=True, metavar="ALGO:ALPHA:LAMBDA", help="each grid point's algorithm, α and λ_GP")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.set_defaults(func=_alpha_figure)

    p = sub.add_parser("contamination-figure", parents=[final_inputs], help="final score vs % random data (TD3BC++ Figure 3)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--envs", nargs="+", required=True)
    p.add_argument("--percents", nargs="+", type=int, required=True, help="contamination percents; 0 (the expert dataset) is added")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.set_defaults(func=_contamination_figure)

    p = sub.add_parser("learning-curves", help="normalised score over training, mean and ±1 sd band over seeds")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--columns", type=int, default=5, help="panels per row")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_learning_curves)

    p = sub.add_parser("return-q-figure", help="return and mean Q over training, per dataset (BEAR blog Figure 1)")
    p.add_argument("--algorithms", nargs="+", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf, STEM.csv")
    p.add_argument("runs", nargs="+", help="run directories (each with train_log.csv and evaluation.csv)")
    p.set_defaults(func=_return_q_figure)

    p = sub.add_parser("safety-figure", help="%% change of falls + unsafe-height events and of Σ|a| over all evaluations, method vs baseline")
    p.add_argument("--baseline", required=True, help="algorithm the change is relative to, e.g. td3bc")
    p.add_argument("--method", required=True, help="algorithm compared, e.g. guided_td3bc")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--extension-datasets", nargs="*", default=[], help="bars after the paper's, labelled as an extension")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds' evaluations (default: all in the files)")
    p.add_argument("--table", required=True, help="output stem of the totals: STEM.csv, STEM.md, STEM.tex")
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.add_argument("evaluations", nargs="+")
    p.set_defaults(func=_safety_figure)

    p = sub.add_parser("index", help="SimHash index of a dataset's states: exact bucket counts and conf(s)")
    p.add_argument("--dataset-dir", required=True)
    p.add_argument("--k", type=int, default=50, help="hash bits")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection matrix A")
    p.add_argument("--out", required=True, help="index file (.npz)")
    p.add_argument("--summary", required=True, help="bucket statistics (.json)")
    p.set_defaults(func=_index)

    p = sub.add_parser("conf-figure", help="bucket sizes and conf(s) distribution of SimHash indexes")
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--figure", required=True, help="output stem: STEM.png, STEM.pdf")
    p.add_argument("--histograms", help="output stem of the per-dataset conf(s) histograms: STEM.png, STEM.pdf")
    p.add_argument("indexes", nargs="+")
    p.set_defaults(func=_conf_figure)

    p = sub.add_parser("bench", help="gradient steps per second on random Hopper-sized data; one JSON line per algorithm")
    p.add_argument("algorithms", nargs="+", choices=sorted(PRESETS), metavar="ALGORITHM", help=f"one or more of {sorted(PRESETS)}")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--members", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-reference", action="store_true", help="skip the plain reference loop")
    p.set_defaults(func=_bench)

    add_safer_commands(sub)
    add_findings_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from offrl.data.dataset import DatasetError

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        args.func(args)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        # Expected failures (bad input, missing data, no network) get one line, not a traceback.
        print(f"offrl {args.command}: error: {err}", file=sys.stderr)
        sys.exit(1)
