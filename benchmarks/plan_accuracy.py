"""How close the cost plan comes to a run it projects: projected / measured seconds per rule and algorithm.

    PYTHONPATH=lib python benchmarks/plan_accuracy.py RUN_DIR [--configfile .test/config/config.yaml]

RUN_DIR is a finished run of that config (its ``logs/benchmarks/``), e.g. the smoke run that
``make test`` leaves in pytest's temporary directory, or a copy of ``.test`` after
``snakemake all --directory``. The plan is made from ``benchmarks/costs.yaml`` alone (as for a
config never run), each job priced at the smaller of its wall and CPU time (what the plan projects).
Groups the run spent under 10 CPU seconds on are start-up noise and are left out. A speed figure:
it depends on how busy the machine was, so it is printed here and never asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def measured_benchmarks(run_dir: Path) -> dict[str, float]:
    """CPU seconds of each job in a run's logs/benchmarks: the smaller of wall and CPU time."""
    seconds = {}
    for tsv in (run_dir / "logs" / "benchmarks").rglob("*.tsv"):
        row = pd.read_csv(tsv, sep="\t").iloc[-1]
        seconds[str(tsv.relative_to(run_dir))] = min(row["s"], row["cpu_time"])
    return seconds


def smoke_plan(empty_dir: Path, configfile: str = ".test/config/config.yaml", cores: int = 2) -> dict:
    """The plan's JSON for ``configfile`` from benchmarks/costs.yaml alone (``empty_dir`` holds no run)."""
    out = empty_dir / "plan.json"
    command = [sys.executable, "-m", "offrl", "plan", "--configfile", configfile, "--cores", str(cores)]
    command += ["--directory", str(empty_dir), "--json", str(out)]
    result = subprocess.run(command, cwd=REPO, check=False, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(out.read_text())


def ratios(plan: dict, measured: dict[str, float], floor: float = 10.0) -> dict[tuple[str, str], tuple[float, float]]:
    """(projected, measured) seconds per (rule, algorithm), for groups measured at ``floor`` seconds or more."""
    projected, recorded = defaultdict(float), defaultdict(float)
    for job in plan["jobs"]:
        if job["benchmark"] and job["benchmark"] in measured:
            key = (job["rule"], job["algorithm"])
            projected[key] += job["seconds"]
            recorded[key] += measured[job["benchmark"]]
    return {key: (projected[key], recorded[key]) for key in recorded if recorded[key] >= floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--configfile", default=".test/config/config.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        plan = smoke_plan(Path(empty), args.configfile)
    rows = ratios(plan, measured_benchmarks(args.run_dir))
    print(f"# {platform.node()}, {platform.processor() or platform.machine()}; {args.run_dir}")
    print(f"{'rule':<28} {'algorithm':<18} {'projected s':>12} {'measured s':>11} {'ratio':>6}")
    for (rule, algorithm), (projected, recorded) in sorted(rows.items()):
        print(f"{rule:<28} {algorithm or '-':<18} {projected:>12.1f} {recorded:>11.1f} {projected / recorded:>6.2f}")
    off = [key for key, (p, r) in rows.items() if not 0.5 <= p / r <= 2]
    print(f"{len(rows)} groups, {len(off)} outside [0.5, 2]")


if __name__ == "__main__":
    main()
