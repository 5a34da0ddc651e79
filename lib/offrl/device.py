"""Device choice for training jobs: each job claims a GPU of its own.

Snakemake's ``--resources gpu=N`` only counts GPUs; it does not tell a job which one to
use, so every job would land on GPU 0. A job here claims the first GPU whose lock file it
can lock (``flock``, released by the OS when the process ends, even on a crash). Where a
scheduler restricts the visible devices (SLURM sets ``CUDA_VISIBLE_DEVICES``), only those
are candidates, and locks are named by the physical id so that jobs sharing a node agree.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

import torch

_held_locks: list[IO[str]] = []  # open lock files; closing one would release its GPU


def lock_dir() -> Path:
    return Path(os.environ.get("OFFRL_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "offrl-gpu-locks"))


def claim_gpu(count: int, names: list[str] | None = None, directory: Path | None = None) -> int:
    """Lock and return the index of the first free GPU among ``count``; raise if all are taken."""
    names = names or [str(i) for i in range(count)]
    directory = directory or lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        handle = open(directory / f"gpu{names[index]}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held_locks.append(handle)
        return index
    raise RuntimeError(
        f"all {count} visible GPUs are claimed by other offrl jobs (locks in {directory}); "
        "give Snakemake --resources gpu=N with N no larger than the number of GPUs"
    )


def choose_device(request: str = "auto") -> torch.device:
    """``cpu``, ``cuda``/``auto`` (claim a free GPU; ``auto`` falls back to the CPU) or ``cuda:I``."""
    if request == "cpu" or (request == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if request.startswith("cuda:"):
        return torch.device(request)
    if request not in ("auto", "cuda"):
        raise ValueError(f"unknown device {request!r}; allowed: auto, cpu, cuda, cuda:<index>")
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = torch.cuda.device_count()
    names = visible.split(",")[:count] if visible else None
    return torch.device(f"cuda:{claim_gpu(count, names)}")
