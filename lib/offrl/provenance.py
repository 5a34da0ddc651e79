"""What produced a result: the code's commit, torch, and the CPU, recorded beside every run's config.

Two runs of the same config and seed give the same numbers on one machine; across CPUs (or
torch builds) float reductions may round differently and long runs drift apart. The record
says which commit and machine a number came from, so such a drift can be told from a code change.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def code_commit() -> str | None:
    """The git commit of the checkout this package runs from, with "+dirty" when the package's
    files differ from it; None outside a git checkout (an installed wheel)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".") else "")


def provenance() -> dict[str, str | None]:
    """The keys every run's config.json (or manifest.json) carries: commit, torch, cpu."""
    return {"commit": code_commit(), "torch": torch.__version__, "cpu": cpu_model()}
