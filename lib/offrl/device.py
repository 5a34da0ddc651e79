"""Device choice for training jobs: each job claims a share of a GPU.

Snakemake's ``--resources gpu=N`` only counts GPUs; it does not tell a job which one to
use, so every job would land on GPU 0. A GPU has ``jobs_per_gpu`` slots (default 1: a GPU of
its own per job; small runs leave a GPU mostly idle, so several may share it), each a lock
file; a job claims the first free slot, GPUs filled evenly (slot 0 of every GPU before slot 1
of any), with ``flock``, released by the OS when the process ends, even on a crash. Where a
scheduler restricts the visible devices (SLURM sets ``CUDA_VISIBLE_DEVICES``), only those
are candidates, and locks are named by the physical id so that jobs sharing a node agree.
A process that already holds a GPU gets the same one again (``bench`` of several algorithms
claims once per algorithm). The lock directory is per user, so one user's locks never block
another's jobs with a permission error.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path
from typing import IO

import torch

_held_locks: dict[
    Path, IO[str]
] = {}  # this process's lock files and their open handles; closing one would release its GPU


def lock_dir() -> Path:
    """$OFFRL_GPU_LOCK_DIR, else offrl-gpu-locks-<uid> in the temp directory: one per user and node.

    Not $XDG_RUNTIME_DIR: a batch job can inherit the submitting session's, which need not exist on its node.
    """
    return Path(os.environ.get("OFFRL_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / f"offrl-gpu-locks-{os.getuid()}")


def _slot_path(directory: Path, name: str, slot: int) -> Path:
    """Slot 0 keeps the one-job-per-GPU name, so jobs with different ``jobs_per_gpu`` still see each other's first
    slot."""
    return (directory / (f"gpu{name}.lock" if slot == 0 else f"gpu{name}.slot{slot}.lock")).resolve()


def claim_gpu(count: int, names: list[str] | None = None, directory: Path | None = None, jobs_per_gpu: int = 1) -> int:
    """Lock a free slot and return its GPU's index among ``count`` (the GPU this process holds, if any); raise if all
    are taken."""
    if jobs_per_gpu < 1:
        raise ValueError(f"jobs_per_gpu must be at least 1, got {jobs_per_gpu}")
    names = names or [str(i) for i in range(count)]
    directory = directory or lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        if any(_slot_path(directory, names[index], slot) in _held_locks for slot in range(jobs_per_gpu)):
            return index  # flock would refuse a second lock on a file this process has already locked
    slots = [
        (index, _slot_path(directory, names[index], slot)) for slot in range(jobs_per_gpu) for index in range(count)
    ]
    for index, path in slots:
        handle = open(path, "a")  # not "w": that would erase the holder's pid before the lock is tried
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held_locks[path] = handle
        return index
    share = "" if jobs_per_gpu == 1 else f" ({jobs_per_gpu} jobs each)"
    raise RuntimeError(
        f"all {count} visible GPUs{share} are claimed by other offrl jobs (locks in {directory}); "
        "give Snakemake --resources gpu=N with N no larger than the number of GPUs times offline.jobs_per_gpu"
    )


def choose_device(request: str = "auto", jobs_per_gpu: int = 1) -> torch.device:
    """``cpu``, ``cuda``/``auto`` (claim a free GPU slot; ``auto`` falls back to the CPU) or ``cuda:I``."""
    if request == "cpu" or (request == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if request not in ("auto", "cuda") and not re.fullmatch(r"cuda:[0-9]+", request):
        raise ValueError(f"unknown device {request!r}; allowed: auto, cpu, cuda, cuda:<index>")
    if not torch.cuda.is_available():  # a ValueError: the command line reports it in one line
        raise ValueError(f"device {request!r} requested but torch sees no GPU; allowed here: auto, cpu")
    count = torch.cuda.device_count()
    if request.startswith("cuda:"):
        if int(request[5:]) >= count:
            raise ValueError(f"device {request!r} requested but torch sees {count} GPU(s): cuda:0 to cuda:{count - 1}")
        return torch.device(request)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = visible.split(",")[:count] if visible else None
    return torch.device(f"cuda:{claim_gpu(count, names, jobs_per_gpu=jobs_per_gpu)}")
