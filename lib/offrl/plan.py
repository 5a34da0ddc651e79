"""The cost of a run before it starts:
``python -m offrl plan --configfile config/paper.yaml [--gpus 2 --cores 16 | --jobs 100]``.

**Jobs** are Snakemake's own: a dry run of target ``all`` with ``--forceall`` in a child process
(``python -m offrl.plan``), where a logging handler collects the JOB_INFO records Snakemake 9 emits
for every job (the structured records its logger plugins receive: rule, wildcards, threads,
resources, shell command, inputs, outputs, benchmark file). Nothing here rebuilds the DAG: a job
depends on the jobs whose outputs are its inputs.

**A job's seconds**: the same job's ``benchmark:`` TSV in a previous run of the same config (in
``--directory``), else ``start-up + units × seconds per unit`` from ``benchmarks/costs.yaml``, the
units read from the job's own command line: training ``steps × seeds`` member-steps (on a GPU ``steps``,
a step of all seeds at once; CPU figures of rules with a batch are at batch 256, scaled by batch/256),
evaluation ``steps/eval-every snapshots × seeds × episodes × 1000`` environment steps (every episode
at full length: falls end them sooner), datasets their transitions, online learners their steps after
the random ones (which count in the rule's start-up), and so on (``UNITS``). Figures are
one thread's; a job's extra threads are assumed not to speed it up. A job holds its threads' cores
and its GPUs while it runs: CPU-hours are seconds × threads of the jobs on CPUs, GPU-hours seconds ×
GPUs of the jobs on GPUs (their host threads are held in the wall time, not counted as CPU-hours).

**Wall time**: list scheduling over the DAG. Whenever a job ends, ready jobs start, those with the
longest path to the end first, while their threads and GPUs fit the box (``--cores``, ``--gpus``);
on a cluster (``--jobs J``) at most J jobs run at once, each with its own resources.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from offrl.files import write_atomically

# The repository's figures (lib/offrl/plan.py → the repository root), wherever the workflow or the command runs.
COSTS = Path(__file__).resolve().parents[2] / "benchmarks" / "costs.yaml"
EPISODE_STEPS = 1000  # Gymnasium MuJoCo's time limit: evaluation episodes are projected at full length
CLUSTER_CORES = 1024  # cores the dry run offers on a cluster, so no rule's threads are cut down


@dataclass
class Job:
    """One job of the dry run, and its projected cost."""

    rule: str
    wildcards: dict[str, str]
    threads: int
    gpus: int
    shell: str
    benchmark: str | None
    inputs: list[str]
    outputs: list[str]
    seconds: float = 0.0
    algorithm: str = ""  # ``name``, a variant under its preset (variants cost what their preset costs)
    size: str = ""
    figure: str = ""

    @property
    def name(self) -> str:
        """What the rule runs: the algorithm (a preset or a variant), SAFER method or prior kind of its wildcards
        ('' for other rules)."""
        if self.rule == "train_pack":  # no wildcards: its runs' directories, results/runs/<algo>/...
            return self.outputs[0].split("/")[2]
        return next((self.wildcards[k] for k in ("algo", "method", "prior") if k in self.wildcards), "")

    @property
    def members(self) -> int:
        """A training job's ensemble members: its seeds, or every seed of every run of a pack (its --run SEEDS)."""
        if self.rule == "train_pack":
            words = shlex.split(self.shell.split(" > ")[0])
            return sum(len(words[i + 3].split("-")) for i, word in enumerate(words) if word == "--run")
        return len(self.options["seeds"])

    @property
    def options(self) -> dict[str, list[str]]:
        """The job's command-line options (``--steps 200`` → ``{"steps": ["200"]}``), up to its redirection."""
        words = shlex.split(self.shell.split(" > ")[0]) if self.shell else []
        options: dict[str, list[str]] = {}
        key = None
        for word in words:
            if word.startswith("--"):
                key = word[2:]
                options[key] = []
            elif key is not None:
                options[key].append(word)
        return options


# ---- the dry run -------------------------------------------------------------------------------


def _print_jobs(snakemake_args: list[str]) -> None:
    """Child process: run Snakemake's command line with ``snakemake_args`` and print its jobs as JSON."""
    import contextlib
    import io
    import logging

    from snakemake.cli import main
    from snakemake_interface_logger_plugins.common import LogEvent

    jobs: list[dict[str, Any]] = []

    class JobInfo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == LogEvent.JOB_INFO:
                r: Any = record
                jobs.append(
                    {
                        "rule": r.rule_name,
                        "wildcards": dict(r.wildcards),
                        "threads": r.threads,
                        "gpus": int(dict(r.resources).get("gpu", 0)),
                        "shell": r.shellcmd or "",
                        "benchmark": r.benchmark,
                        "inputs": list(r.input),
                        "outputs": list(r.output),
                    }
                )

    logging.getLogger().addHandler(JobInfo())  # Snakemake's logger propagates to the root logger
    text = io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
        try:
            main(snakemake_args)
        except SystemExit as exit_:
            code = exit_.code
    if code:  # a Snakefile's own sys.exit(message) arrives as the code
        sys.exit((text.getvalue() + (code if isinstance(code, str) else ""))[-3000:])
    print(json.dumps(jobs))


def dry_run(
    configfiles: Sequence[str], cores: int, gpus: int, snakefile: Path, targets: Sequence[str] = ("all",)
) -> list[Job]:
    """The jobs of ``snakemake TARGETS --forceall`` (default ``all``) for ``configfiles`` on ``cores`` cores and
    ``gpus`` GPUs (`--resources gpu=`): a target file or rule name is priced with only the jobs it needs."""
    with tempfile.TemporaryDirectory(prefix="offrl-plan-") as workdir:
        args = [
            *targets,
            "--dry-run",
            "--forceall",
            "--snakefile",
            str(snakefile.resolve()),
            "--directory",
            workdir,
            "--cores",
            str(cores),
            "--resources",
            f"gpu={gpus}",
            "--configfile",
            *[str(Path(c).resolve()) for c in configfiles],
        ]
        result = subprocess.run(
            [sys.executable, "-m", "offrl.plan", *args], check=False, capture_output=True, text=True
        )
    if result.returncode:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise ValueError("the Snakemake dry run failed: " + " | ".join(lines[-6:]))
    annotation = re.compile(r" \([^()]*\)$")  # Snakemake marks e.g. "(directory)" after a path
    jobs = []
    for raw in json.loads(result.stdout):
        # One rule per pack (workflow/rules/train_packs.smk): priced, grouped and listed as one rule.
        raw["rule"] = "train_pack" if raw["rule"].startswith("train_pack_") else raw["rule"]
        raw["inputs"] = [annotation.sub("", f) for f in raw["inputs"]]
        raw["outputs"] = [annotation.sub("", f) for f in raw["outputs"]]
        jobs.append(Job(**raw))
    return jobs


# ---- each job's seconds ------------------------------------------------------------------------


def _number(options: dict[str, list[str]], name: str) -> float:
    return float(options[name][0])


def _train_units(job: Job, _: dict[str, Job]) -> tuple[float, str]:
    steps, members = _number(job.options, "steps"), job.members
    return steps * members, f"{_short(steps)} steps × {members} {'members' if job.rule == 'train_pack' else 'seeds'}"


def _evaluate_units(job: Job, producers: dict[str, Job]) -> tuple[float, str]:
    o = job.options
    train = producers[o["snapshots"][0]].options
    snapshots, seeds, episodes = (
        _number(train, "steps") / _number(train, "eval-every"),
        len(job.wildcards["seeds"].split("-")),  # the run's seeds, also where a pack trained it
        _number(o, "episodes"),
    )
    return (
        snapshots * seeds * episodes * episode_steps(o.get("dataset", [""])[0]),
        f"{snapshots:.0f} snapshots × {seeds} seeds × {episodes:.0f} episodes",
    )


def _env(options: dict[str, list[str]]) -> str:
    """The env of a job's ``--dataset`` (its name's first part), "" where it names none."""
    return options.get("dataset", [""])[0].split("-", 1)[0]


def episode_steps(dataset: str) -> int:
    """An evaluation episode at full length: its env's time limit (locomotion's 1000, Adroit's 200, Pen's 100);
    MuJoCo's where the command names no dataset of a known env."""
    from offrl.envs import ENV_SPECS

    env = dataset.split("-", 1)[0]
    return ENV_SPECS[env].max_episode_steps if env in ENV_SPECS else EPISODE_STEPS


def _option_units(
    name: str, label: str, times: str | None = None, less: str | None = None
) -> Callable[[Job, dict[str, Job]], tuple[float, str]]:
    """Units = the option ``name`` (less the option ``less``, e.g. the random steps before learning; × the number of
    values of ``times``, e.g. seeds)."""

    def units(job: Job, _: dict[str, Job]) -> tuple[float, str]:
        o = job.options
        n = len(o[times]) if times else 1
        value = _number(o, name) - (_number(o, less) if less else 0)
        return value * n, f"{_short(value)} {label}" + (f" × {n} {times}" if times else "")

    return units


def _grasp_units(job: Job, _: dict[str, Job]) -> tuple[float, str]:
    o = job.options
    tasks = _number(o, "data-tasks")  # the evaluation tasks are among the data tasks
    episodes = _number(o, "episodes-per-task")
    return episodes * tasks, f"{episodes:.0f} episodes × {tasks:.0f} tasks"


# The work of each rule with a per-unit figure in benchmarks/costs.yaml; other rules cost their start-up.
UNITS: dict[str, Callable[[Job, dict[str, Job]], tuple[float, str]]] = {
    "train_offline": _train_units,
    "train_pack": _train_units,
    "evaluate_run": _evaluate_units,
    "collect_dataset": _option_units("size", "transitions"),
    "behaviour_policy": _option_units("total-steps", "learning steps", less="start-steps"),
    "safety_expert": _option_units("total-steps", "learning steps", less="start-steps"),
    "cloned_policy": _option_units("steps", "BC steps"),
    "grasp_data": _grasp_units,
    "safer_prior": _option_units("steps", "steps"),
    "safer_downstream": _option_units("steps", "learning steps", times="seeds", less="start-steps"),
}


# The rules that train offline: a job of seeds, or a pack of runs (the same figures, by members).
TRAINING = ("train_offline", "train_pack")

UNIT_NAMES = {
    "evaluate_run": "env step",
    "collect_dataset": "transition",
    "behaviour_policy": "step",
    "safety_expert": "step",
    "grasp_data": "episode",
    "safer_prior": "step",
    "safer_downstream": "step × seed",
}


def _short(n: float) -> str:
    """1000000 → 1M, 25000 → 25k."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= scale and n % (scale / 10) == 0:
            return f"{n / scale:g}{suffix}"
    return f"{n:g}"


def load_costs(path: Path = COSTS) -> dict[str, Any]:
    """The figures of ``benchmarks/costs.yaml``: this plan's and the workflow's `runtime` requests
    (workflow/rules/resources.smk)."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


def captured_rate(costs: dict[str, Any], members: float) -> float:
    """Member-steps/s of one captured TD3+BC process of ``members`` members on one GPU.

    ``train_offline.gpu_captured.td3bc`` of ``costs`` gives it at a few sizes; between them it is interpolated
    linearly in log members and log rate; past the largest the GPU is taken as full (the total stays).
    """
    points = sorted((int(k), float(v)) for k, v in costs["train_offline"]["gpu_captured"]["td3bc"].items())
    if members <= points[0][0]:
        return points[0][1] * members / points[0][0]
    for (m0, r0), (m1, r1) in zip(points, points[1:]):
        if members <= m1:
            t = math.log(members / m0) / math.log(m1 / m0)
            return math.exp((1 - t) * math.log(r0) + t * math.log(r1))
    return points[-1][1]


def projected_seconds(
    costs: dict[str, Any],
    rule: str,
    units: float = 0.0,
    *,
    name: str = "",
    preset: str = "",
    batch: float = 256,
    gpu: bool = False,
    members: int = 5,
    capture: bool = False,
    sharing: int = 1,
) -> tuple[float, str]:
    """A job's seconds (start-up + work) from ``costs``, and which figure it comes from.

    ``units`` is the rule's work as ``UNITS`` counts it (training: member-steps on the CPU, steps on a GPU).
    ``name`` is the config's name of what the job runs (a variant, a SAFER method), ``preset`` its preset:
    a training figure is the name's, else the preset's. CPU figures are at batch 256, scaled by ``batch``/256.
    A training job on a GPU holds ``members`` members and shares its GPU with ``sharing`` - 1 others like it:
    eager, its steps/s are the measured 5-seed job's; ``capture``d, it gets 1/``sharing`` of the member-steps/s
    of one process of ``sharing`` × ``members`` members (:func:`captured_rate`), scaled by the preset's eager
    speed against TD3+BC's. A figure that rests on an estimate says "estimate".
    """
    startup = costs["startup_s"].get(rule, costs["startup_s"]["default"])
    if rule == "train_offline" and gpu:
        table = costs["train_offline"]["gpu"]
        found = next((n for n in (name, preset, costs["train_offline"]["gpu_same_as"].get(preset)) if n in table), None)
        source = f"{found} {table[found]:g} steps/s" if found else ""
        if found is None:
            found = min(table, key=table.get)
            source = f"estimate: no figure, {found}'s (the slowest measured) {table[found]:g} steps/s"
        if not capture:
            if members != 5 and "estimate" not in source:
                source += f" (estimate: measured at 5 seeds, taken for {members})"
            shared = f" ({sharing} jobs per GPU, estimate: sharing its speed)" if sharing > 1 else ""
            return startup + units * sharing / table[found], f"GPU eager: {source}{shared}"
        total = sharing * members
        ratio = table[found] / table["td3bc"]
        rate = captured_rate(costs, total) * ratio / sharing  # this job's member-steps/s
        return startup + units * members / rate, (
            f"GPU captured (estimate: TD3+BC's {captured_rate(costs, total):,.0f} member-steps/s at {total} members"
            + (f" × {found}'s eager speed / TD3+BC's, {ratio:.2f}" if found != "td3bc" else "")
            + (f"; {sharing} jobs per GPU" if sharing > 1 else "")
            + ")"
        )
    scaled = f", × {batch:g}/256 batch" if batch != 256 else ""
    if rule in ("train_offline", "cloned_policy"):  # cloned_policy: BC's steps
        table = costs["train_offline"]["cpu"]
        found = "bc" if rule == "cloned_policy" else next((n for n in (name, preset) if n in table), None)
        if found is None:
            raise ValueError(
                f"{COSTS}: train_offline.cpu has no figure for {name} (preset {preset}); "
                "measure it: benchmarks/cpu_costs.py"
            )
        return startup + units * batch / 256 / table[found], f"CPU: {found} {table[found]:g} member-steps/s{scaled}"
    if rule in UNITS:
        figure = costs["per_unit"][rule]
        default = isinstance(figure, dict) and name not in figure
        if isinstance(figure, dict):
            figure = figure["default" if default else name]
        # A policy that samples and scores actions (argmax-Q over N samples) adds its call's cost per env step.
        policy = costs.get("evaluate_policy", {}).get(preset, 0.0) if rule == "evaluate_run" else 0.0
        return (
            startup + units * (figure * batch / 256 + policy),
            f"CPU: {figure * 1e3:.3g} ms per {UNIT_NAMES[rule]}"
            + (" (the rule's default)" if default else "")
            + (f" + {preset}'s policy {policy * 1e3:.3g} ms" if policy else "")
            + scaled,
        )
    return startup, "start-up only (light jobs: tables, figures, indexes, ...)"


def project(
    jobs: list[Job], costs: dict[str, Any], measured: dict[str, float], capture: bool = False, sharing: int = 1
) -> None:
    """Set each job's ``seconds``, ``size`` and ``figure`` (which figure its projection comes from).

    ``capture``: training on a GPU runs captured; ``sharing``: training jobs per GPU (:func:`projected_seconds`).
    """
    producers = {path: job for job in jobs for path in job.outputs}
    for job in jobs:
        job.algorithm = job.name
        if job.rule in (*TRAINING, "evaluate_run"):  # the preset: a training job's --algo
            job.algorithm = (job if job.rule in TRAINING else producers[job.options["snapshots"][0]]).options["algo"][0]
        if job.rule in UNITS:
            units, job.size = UNITS[job.rule](job, producers)
        else:
            units = 0.0
        if job.benchmark in measured:
            job.seconds, job.figure = measured[job.benchmark], "measured: this job in the previous run"
            continue
        o = job.options
        training = job.rule in TRAINING
        gpu = training and bool(job.gpus)
        if gpu:
            units = _number(o, "steps")  # a step trains every member at once
        batch = _number(o, "batch-size") if "batch-size" in o and not gpu else 256
        job.seconds, job.figure = projected_seconds(
            costs,
            "train_offline" if training else job.rule,
            units,
            # Evaluation costs what its env's simulator costs: its figures are per env.
            name=_env(o) if job.rule == "evaluate_run" else job.name,
            preset=job.algorithm,
            batch=batch,
            gpu=gpu,
            members=job.members if training else 1,
            capture=capture,
            sharing=sharing,
        )


def measured_seconds(directory: Path, config: dict[str, Any], jobs: list[Job]) -> tuple[dict[str, float], str]:
    """Each job's seconds in a previous run of the same config in ``directory`` (``benchmark:`` TSVs), and a note.

    A job's time is the smaller of its wall time and its CPU time: on a machine shared with other
    work the wall time is longer than the job's own (as the figures of benchmarks/costs.yaml, this
    counts a job's extra threads as no speed-up). Training runs on another device than this plan's are not used.
    """
    import pandas as pd
    import yaml

    resolved = directory / "results" / "config.yaml"
    if not resolved.is_file():
        return {}, f"no previous run in {directory} (no results/config.yaml): figures from {COSTS}"
    if yaml.safe_load(resolved.read_text()) != config:
        return {}, f"{directory}/logs/benchmarks not used: {resolved} is another config"
    measured = {}
    for job in jobs:
        tsv = directory / job.benchmark if job.benchmark else None
        if tsv is None or not tsv.is_file():
            continue
        if job.rule in TRAINING:
            run = directory / next(f for f in job.outputs if f.endswith("config.json"))
            device = json.loads(run.read_text()).get("device", "") if run.is_file() else ""
            if device.startswith("cuda") != bool(job.gpus):
                continue
        row = pd.read_csv(tsv, sep="\t").iloc[-1]
        measured[job.benchmark] = float(min(row["s"], row["cpu_time"]))
    return (
        measured,
        f"{len(measured)} jobs measured in {directory}/logs/benchmarks (same config); the others from {COSTS}",
    )


def resolved_config(configfiles: Sequence[str], schema: Path) -> dict[str, Any]:
    """The config as a run resolves it (files merged in order, schema defaults filled): what results/config.yaml
    holds."""
    from offrl.config import load_config_files, validate_config

    config = load_config_files(configfiles)
    validate_config(config, schema)
    return config


# ---- the wall time -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What the scheduling simulation sees of a job."""

    seconds: float
    threads: int = 1
    gpus: int = 0
    after: tuple[int, ...] = ()


def wall_time(tasks: Sequence[Task], cores: float = math.inf, gpus: float = math.inf, slots: float = math.inf) -> float:
    """Seconds until every task has run: list scheduling, longest path to the end first, as resources allow.

    A task starts once every task in its ``after`` has ended, when ``min(threads, cores)`` cores and
    ``gpus`` GPUs are free and fewer than ``slots`` tasks run (a cluster's ``--jobs``). Ready tasks
    are tried in order of their longest path to the end, and any that fits starts.
    """
    children: list[list[int]] = [[] for _ in tasks]
    waiting = [len(t.after) for t in tasks]
    for i, task in enumerate(tasks):
        if task.gpus > gpus:
            raise ValueError(f"a job needs {task.gpus} GPU(s) and the box has {gpus:g}")
        for parent in task.after:
            children[parent].append(i)
    order = [i for i, n in enumerate(waiting) if n == 0]
    left = list(waiting)
    for i in order:  # grows as parents are visited: a topological order
        for child in children[i]:
            left[child] -= 1
            if left[child] == 0:
                order.append(child)
    if len(order) != len(tasks):
        raise ValueError("the jobs' dependencies have a cycle")
    rank = [0.0] * len(tasks)
    for i in reversed(order):
        rank[i] = tasks[i].seconds + max((rank[c] for c in children[i]), default=0.0)

    ready = [i for i, n in enumerate(waiting) if n == 0]
    running: list[tuple[float, int]] = []
    free = {"cores": cores, "gpus": gpus, "slots": slots}
    now = 0.0
    while ready or running:
        ready.sort(key=lambda i: -rank[i])
        blocked = []
        for i in ready:
            need = {"cores": min(tasks[i].threads, cores), "gpus": tasks[i].gpus, "slots": 1}
            if all(need[k] <= free[k] for k in free):
                for k in free:
                    free[k] -= need[k]
                heapq.heappush(running, (now + tasks[i].seconds, i))
            else:
                blocked.append(i)
        ready = blocked
        now, done = heapq.heappop(running)
        finished = [done]
        while running and running[0][0] == now:
            finished.append(heapq.heappop(running)[1])
        for i in finished:
            free["cores"] += min(tasks[i].threads, cores)
            free["gpus"] += tasks[i].gpus
            free["slots"] += 1
            for child in children[i]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
    return now


def tasks_of(jobs: list[Job]) -> list[Task]:
    producers = {path: i for i, job in enumerate(jobs) for path in job.outputs}
    return [
        Task(job.seconds, job.threads, job.gpus, tuple(sorted({producers[f] for f in job.inputs if f in producers})))
        for job in jobs
    ]


# ---- the plan ----------------------------------------------------------------------------------


@dataclass
class Group:
    rule: str
    algorithm: str
    size: str
    device: str
    jobs: int = 0
    seconds: float = 0.0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    figures: set[str] = field(default_factory=set)


def groups_of(jobs: list[Job], sharing: int = 1) -> list[Group]:
    """Jobs by rule, algorithm, size and device (the light rules in one group), the costliest first.

    A job on a GPU shared by ``sharing`` jobs holds 1/``sharing`` of it: its GPU-hours are its hours / sharing.
    """
    groups: dict[tuple[str, str, str, str], Group] = {}
    for job in jobs:
        device = "gpu" if job.gpus else "cpu"
        rule = job.rule if job.rule in UNITS else "other rules"
        key = (rule, job.algorithm if rule == job.rule else "", job.size, device)
        group = groups.setdefault(key, Group(*key))
        group.jobs += 1
        group.seconds += job.seconds
        if job.gpus:
            group.gpu_hours += job.seconds * job.gpus / sharing / 3600
        else:
            group.cpu_hours += job.seconds * job.threads / 3600
        group.figures.add(job.figure)
    return sorted(groups.values(), key=lambda g: (-(g.cpu_hours + g.gpu_hours), g.rule, g.algorithm))


def _hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 0.1 or h == 0 else f"{h * 60:.1f} min"


def table(groups: list[Group]) -> str:
    header = ["rule", "algorithm", "jobs", "per job", "on", "h/job", "CPU-h", "GPU-h", "figure"]
    rows = [header]
    for g in groups:
        rows.append(
            [
                g.rule,
                g.algorithm,
                str(g.jobs),
                g.size,
                g.device,
                _hours(g.seconds / g.jobs / 3600),
                _hours(g.cpu_hours),
                _hours(g.gpu_hours),
                "; ".join(sorted(g.figures)),
            ]
        )
    rows.append(
        [
            "total",
            "",
            str(sum(g.jobs for g in groups)),
            "",
            "",
            "",
            _hours(sum(g.cpu_hours for g in groups)),
            _hours(sum(g.gpu_hours for g in groups)),
            "",
        ]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    right = {2, 5, 6, 7}
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths) + "  ------")
    return "\n".join(lines)


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The plan command, made by ``add(name, help=...)`` (the CLI's, which adds the global options)."""
    p = add(
        "plan", help="before a run: its jobs by rule and algorithm, CPU- and GPU-hours, wall time on a box or a cluster"
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help=(
            "files or rule names to price, with only the jobs they need (default: all), "
            "e.g. results/figures/taming_fig3.png"
        ),
    )
    p.add_argument(
        "--configfile", nargs="+", required=True, metavar="YAML", help="the run's config files, as given to Snakemake"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--cores", type=int, default=os.cpu_count(), help="a box's CPU cores")
    where.add_argument(
        "--jobs",
        type=int,
        help="a cluster: jobs running at once (each with its own cores and GPU); instead of --cores/--gpus",
    )
    p.add_argument(
        "--gpus", type=int, default=0, help="a box's GPUs; 0: training on the CPUs, as `--resources gpu=0` runs it"
    )
    p.add_argument(
        "--directory",
        type=Path,
        default=Path("."),
        help=(
            "a previous run's directory: its logs/benchmarks give the jobs' times where its results/config.yaml "
            "is this config"
        ),
    )
    p.add_argument("--json", type=Path, help="also write the plan here as JSON")
    p.add_argument(
        "--markdown-table",
        action="store_true",
        help="print only the README's cost table of these config files: two boxes and a cluster (README_SETUPS)",
    )
    p.set_defaults(func=run)


@dataclass
class Plan:
    """A projection: its jobs (priced), their groups, and the wall time where it runs."""

    jobs: list[Job]
    groups: list[Group]
    wall: float
    where: str
    note: str
    capture: bool
    sharing: int

    @property
    def estimated(self) -> list[Group]:
        """The groups whose projection rests on an estimate, not a measured figure."""
        return [g for g in self.groups if any("estimate" in f for f in g.figures)]


def make_plan(
    configfiles: Sequence[str],
    cores: int,
    gpus: int,
    jobs: int | None = None,
    capture: bool = True,
    sharing: int = 1,
    directory: Path = Path("."),
    targets: Sequence[str] = ("all",),
) -> Plan:
    """Price ``snakemake TARGETS`` for ``configfiles`` on a box (``cores``, ``gpus``) or a cluster
    (``jobs`` at once)."""
    costs = load_costs()
    cluster = jobs is not None
    found = dry_run(
        configfiles,
        CLUSTER_CORES if cluster else cores,
        jobs if cluster else gpus * sharing,
        Path("Snakefile"),
        targets,
    )
    config = resolved_config(configfiles, Path("workflow") / "schemas" / "config.schema.yaml")
    capture = capture and config["offline"]["capture"] == "auto"
    measured, note = measured_seconds(directory, config, found)
    project(found, costs, measured, capture=capture, sharing=sharing)
    if cluster:
        wall = wall_time(tasks_of(found), slots=jobs)
        where = f"a cluster running {jobs} jobs at once"
    else:
        wall = wall_time(tasks_of(found), cores=cores, gpus=gpus * sharing)
        where = f"one box of {cores} cores and {gpus} GPU(s)" + (
            f", {sharing} training jobs per GPU" if sharing > 1 else ""
        )
    return Plan(found, groups_of(found, sharing), wall, where, note, capture, sharing)


# The README's paper-scale table (README.md, between its plan-table markers): these boxes and a cluster.
README_SETUPS = (
    ("one box, 16 cores, 1 GPU", "--cores 16 --gpus 1", {"cores": 16, "gpus": 1}),
    ("one box, 16 cores, 2 GPUs", "--cores 16 --gpus 2", {"cores": 16, "gpus": 2}),
    ("a cluster, 100 jobs at once", "--jobs 100", {"cores": 16, "gpus": 0, "jobs": 100}),
)


def readme_table(configfiles: Sequence[str]) -> str:
    """The README's cost table of ``configfiles``, one row per :data:`README_SETUPS`, from :func:`make_plan`."""
    rows = ["| where | jobs | CPU-h | GPU-h | wall |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, flags, where in README_SETUPS:
        plan = make_plan(configfiles, **where, directory=Path("/nonexistent"))
        cpu, gpu = (sum(getattr(g, k) for g in plan.groups) for k in ("cpu_hours", "gpu_hours"))
        days = f" ({plan.wall / 86400:.1f} days)" if plan.wall > 2 * 86400 else ""
        rows.append(
            f"| {label} (`{flags}`) | {len(plan.jobs)} | {cpu:,.0f} | {gpu:,.0f} | {plan.wall / 3600:,.1f} h{days} |"
        )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> None:
    if not Path("Snakefile").is_file():
        raise FileNotFoundError("no Snakefile here: run `offrl plan` from the repository root")
    missing = [path for path in args.configfile if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"--configfile: no such file {', '.join(missing)}")
    if args.jobs is not None and args.gpus:
        raise ValueError(
            "--gpus describes a box (with --cores); a cluster (--jobs) gives every training job its own GPU"
        )
    if args.markdown_table:
        print(readme_table(args.configfile))
        return
    plan = make_plan(
        args.configfile,
        args.cores,
        args.gpus,
        args.jobs,
        capture=args.capture == "auto",
        sharing=args.jobs_per_gpu,
        directory=args.directory,
        targets=args.targets or ["all"],
    )
    groups = plan.groups
    targets = " ".join(args.targets or ["all"])
    print(f"Cost plan of `snakemake {targets}` with --configfile {' '.join(args.configfile)}: {len(plan.jobs)} jobs\n")
    print(table(groups))
    print(f"\nWall time on {plan.where}: {plan.wall / 3600:,.1f} h (list scheduling over the DAG, longest path first)")
    print(
        f"Figures: {plan.note}. CPU-h: hours × threads of the CPU jobs; GPU-h: hours × GPUs of the GPU jobs"
        " (whose threads are held in the wall time, not counted as CPU-h)."
    )
    print(
        f"Assumptions: training on a GPU runs {'captured' if plan.capture else 'eagerly'}"
        f" ({'offline.capture and --capture' if plan.capture else 'offline.capture or --capture off'}),"
        f" {plan.sharing} training job(s) per GPU (--jobs-per-gpu); a pack trains its members in one process"
        " (offline.pack_members); evaluation runs every episode to full length on the CPUs."
    )
    estimated = plan.estimated
    if estimated:
        hours = sum(g.gpu_hours + g.cpu_hours for g in estimated)
        names = sorted({f"{g.rule} {g.algorithm}".strip() for g in estimated})
        print(
            f"Rows resting on estimates (their figure says which; {len(estimated)} rows, {hours:,.1f} h): "
            f"{', '.join(names)}"
        )
    if args.json:
        plan_json = {
            "configfiles": args.configfile,
            "where": {"jobs": args.jobs} if args.jobs is not None else {"cores": args.cores, "gpus": args.gpus},
            "wall_hours": plan.wall / 3600,
            "cpu_hours": sum(g.cpu_hours for g in groups),
            "gpu_hours": sum(g.gpu_hours for g in groups),
            "figures": plan.note,
            "groups": [{**asdict(g), "figures": sorted(g.figures)} for g in groups],
            "jobs": [
                {k: v for k, v in asdict(job).items() if k not in ("shell", "inputs", "outputs")} for job in plan.jobs
            ],
        }
        write_atomically(args.json, lambda path: path.write_text(json.dumps(plan_json, indent=1)))


if __name__ == "__main__":
    _print_jobs(sys.argv[1:])
