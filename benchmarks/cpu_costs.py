"""Measure the CPU figures of benchmarks/costs.yaml: CPU seconds per unit of work of each heavy rule, one thread.

    PYTHONPATH=lib python benchmarks/cpu_costs.py > /tmp/cpu_costs.yaml

Every figure is process CPU time, not wall time, so a machine shared with other jobs gives the
figures of an idle core (up to cache contention). Training speed: `offrl bench`'s loop (3 members,
batch 256, random Hopper-sized data) timed with the CPU clock. The other rules: their `python -m offrl`
command run at two sizes; the difference in CPU time over the difference in units is the figure per
unit, and what the smaller run took beyond its units is the rule's start-up (`default`: the CPU time
of `python -m offrl --help`, which imports what every command imports).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import offrl.bench
from offrl.config import all_variants, load_config_files, validate_config

FAST = ["td3bc", "bc", "bc_10pct", "td3bc_10pct", "guided_td3bc", "td3bc_cr", "td3bc_gp", "td3bc_pp", "sac", "iql"]
SLOW = ["bcq", "bear", "bear_d4rl", "bear_pp_d4rl", "fisher_brc", "uwac", "cql"]
SMOKE = [
    "bcq_small",
    "bear_small",
    "brac_p_small",
    "brac_v_small",
    "cql_small",
    "cql_rho_small",
    "fisher_brc_small",
    "uwac_small",
]
DEFAULT = ["bear_256"]


def child_cpu(command: list[str]) -> float:
    """CPU seconds of one ``python -m offrl`` command, run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "offrl", *command], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def per_unit(
    rule: str, command: Callable[[int], list[str]], small: int, large: int, units_per: float = 1.0, offset: int = 0
) -> tuple[float, float]:
    """A rule's CPU seconds per unit and its start-up: ``command(n)`` does ``(n - offset) * units_per`` units.

    Per unit: (cpu(large) - cpu(small)) / ((large - small) * units_per); start-up: the rest of cpu(small).
    """
    cpu_small = child_cpu(command(small))
    figure = (child_cpu(command(large)) - cpu_small) / ((large - small) * units_per)
    startup = cpu_small - (small - offset) * units_per * figure
    print(f"# {rule}: {figure:.3g} CPU-s per unit, start-up {startup:.2f} CPU-s", file=sys.stderr, flush=True)
    return figure, startup


def train_rates() -> dict[str, float]:
    """Member-steps per CPU second, 1 thread, 3 members, batch 256."""
    offrl.bench.time.perf_counter = time.process_time  # the bench loop, timed by the CPU clock
    variants = {}
    for path in (".test/config/config.yaml", "config/config.yaml"):
        config = load_config_files([path])
        validate_config(
            config, "workflow/schemas/config.schema.yaml"
        )  # fills the schema's defaults, which the sweeps read
        variants.update(all_variants(config))
    rates = {}
    for names, steps in ((FAST, 100), (SLOW, 10), (SMOKE, 50), (DEFAULT, 10)):
        for name in names:
            preset, options = (variants[name]["preset"], variants[name]["options"]) if name in variants else (name, {})
            result = offrl.bench.bench(preset, steps, 3, "cpu", reference=False, options=options)
            rates[name] = result["steps_per_s_total"]
            print(f"# {name}: {rates[name]} member-steps/CPU-s", file=sys.stderr, flush=True)
    return rates


def offrl_args(command: str, threads: bool = True, **options: object) -> list[str]:
    """A ``python -m offrl`` command line: ``--threads 1`` (unless ``threads`` is False), the command, then each option
    as ``--name value`` (``_`` in a name read as ``-``; a tuple gives several values, True a bare flag)."""
    args = ["--threads", "1", command] if threads else [command]
    for name, value in options.items():
        args.append("--" + name.replace("_", "-"))
        if value is not True:
            args.extend(str(v) for v in (value if isinstance(value, tuple) else (value,)))
    return args


def main() -> None:
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="offrl-costs-"))
    per, startup = {}, {"default": min(child_cpu(["--help"]) for _ in range(3))}
    print(f"# start-up {startup['default']:.2f} CPU-s", file=sys.stderr, flush=True)

    def collect(size: int) -> list[str]:
        return offrl_args(
            "collect",
            threads=False,
            env="halfcheetah",
            kind="random",
            behaviour=tmp,
            size=size,
            seed=size,
            root=tmp / f"m{size}",
            summary=tmp / f"c{size}.json",
            quiet=True,
        )

    per["collect_dataset"], startup["collect_dataset"] = per_unit("collect_dataset", collect, 5000, 25000)
    dataset = {"dataset": "halfcheetah-random", "dataset_dir": tmp / "m5000" / "offrl" / "halfcheetah" / "random-v0"}

    def train(steps: int) -> list[str]:  # 3 seeds, a snapshot every 10 steps
        return offrl_args(
            "train",
            algo="td3bc",
            **dataset,
            seeds=(0, 1, 2),
            steps=steps,
            eval_every=10,
            log_every=10,
            device="cpu",
            out=tmp / f"run{steps}",
            quiet=True,
        )

    _, startup["train_offline"] = per_unit("train_offline", train, 10, 40, units_per=3)

    def evaluate(steps: int) -> list[str]:  # HalfCheetah never falls: every episode is 1000 steps
        return offrl_args(
            "evaluate",
            snapshots=tmp / f"run{steps}" / "snapshots.pt",
            episodes=10,  # 10 at once, as at the paper scale
            algo="td3bc",
            dataset="halfcheetah-random",
            out=tmp / f"evaluation{steps}.csv",
            q_out=tmp / f"q{steps}.csv",
            quiet=True,
        )

    # units: env steps = snapshots (steps / 10) × 3 seeds × 10 episodes × 1000 steps
    per["evaluate_run"], startup["evaluate_run"] = per_unit(
        "evaluate_run", evaluate, 10, 40, units_per=3 * 10 * 1000 / 10
    )
    tasks = {"task_seed": 0, "data_tasks": 6, "eval_tasks": 2}

    def grasp(episodes: int) -> list[str]:
        return offrl_args(
            "grasp-data",
            threads=False,
            **tasks,
            root=tmp / "minari",
            dataset_id=f"grasp/e{episodes}-v0",
            summary=tmp / f"g{episodes}.json",
            episodes_per_task=episodes,
        )

    # units: episodes per task × 6 data tasks (the evaluation tasks among them)
    per["grasp_data"], startup["grasp_data"] = per_unit("grasp_data", grasp, 5, 25, units_per=6)
    grasp_dir = tmp / "minari" / "grasp" / "e25-v0"

    def prior(steps: int) -> list[str]:
        return offrl_args(
            "safer-prior", kind="safer", dataset_dir=grasp_dir, steps=steps, batch_size=256, out=tmp / f"prior{steps}"
        )

    per["safer_prior"], startup["safer_prior"] = per_unit("safer_prior", prior, 50, 550)
    child_cpu(offrl_args("safer-prior", kind="parrot", dataset_dir=grasp_dir, steps=50, out=tmp / "parrot"))
    per["safer_downstream"] = {}
    for method in ("sac", "parrot", "csc"):  # parrot: a prior-based method without bounds

        def downstream(steps: int, method: str = method) -> list[str]:
            with_prior = {"prior": tmp / "parrot" / "prior.pt"} if method == "parrot" else {}
            return offrl_args(
                "downstream",
                method=method,
                **tasks,
                task=1,
                data_summary=tmp / "g25.json",
                **with_prior,
                seeds=(0, 1, 2),
                steps=steps,
                start_steps=500,
                batch_size=256,
                log_every=100,
                hidden=(256, 256),
                out=tmp / f"{method}{steps}",
            )

        # units: steps past the 500 random ones × 3 seeds (the random steps count in the start-up)
        per["safer_downstream"][method], startup["safer_downstream"] = per_unit(
            f"downstream {method}", downstream, 600, 1100, units_per=3, offset=500
        )

    def online(steps: int) -> list[str]:
        return offrl_args(
            "behaviour",
            env="hopper",
            out=tmp / f"td3_{steps}",
            total_steps=steps,
            start_steps=500,
            eval_every=steps,
            eval_episodes=1,
            quiet=True,
        )

    # units: steps past the 500 random ones (which count in the start-up)
    per["behaviour_policy"], startup["behaviour_policy"] = per_unit("behaviour_policy", online, 1000, 2000, offset=500)
    print(json.dumps({"startup_s": startup, "per_unit": per, "train_cpu": train_rates()}, indent=1))


if __name__ == "__main__":
    main()
