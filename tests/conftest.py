import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from offrl.data import Dataset
from offrl.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The CLI's subcommands by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def assert_same_run(a: Path, b: Path, steps: list[int]) -> tuple[dict, dict]:
    """Two training runs (``train``'s output directories) alike: snapshots at ``steps``, every actor equal to the
    bit, and the same log. Returns both ``snapshots.pt`` contents, for what a test checks beyond that."""
    first, second = (torch.load(run / "snapshots.pt", weights_only=True) for run in (a, b))
    assert sorted(first["actors"]) == sorted(second["actors"]) == steps
    for step in first["actors"]:
        for name, tensor in first["actors"][step].items():
            assert torch.equal(tensor, second["actors"][step][name]), (step, name)
    pd.testing.assert_frame_equal(pd.read_csv(a / "train_log.csv"), pd.read_csv(b / "train_log.csv"))
    return first, second


def resume_after_kill(command: list[str], checkpoint: Path, total: int, timeout: int = 900) -> int:
    """Run ``command`` (a training run of ``total`` steps) until it has saved ``checkpoint``, kill it with SIGKILL,
    then run it again to the end; returns the step the killed run's checkpoint held.

    The caller compares the outputs with an uninterrupted run's (:func:`assert_same_run` for offline training).
    """
    proc = subprocess.Popen(command)
    deadline = time.monotonic() + timeout
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    kept = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < kept < total
    subprocess.run(command, check=True, timeout=timeout)
    assert not checkpoint.exists()  # a finished run removes its checkpoint
    return kept


def hopper_random_minari(root: Path, steps: int) -> Path:
    """A Hopper random-policy rollout of ``steps`` written as offrl's Minari dataset under ``root``: its directory."""
    from offrl.data.build import write_with_summary
    from offrl.data.generate import rollout

    write_with_summary(
        rollout("hopper", None, steps, seed=0), "hopper", "random", root, root / "s.json", {"source": "test"}
    )
    return root / "offrl" / "hopper" / "random-v0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the smoke run is slow whatever its marks say: the run takes 10-20 minutes."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The .test scale, run once per test session in a fresh directory; returns that directory.

    The workflow's end-to-end tests and the cost plan's check (tests/test_plan.py) read the same run.
    """
    workdir = tmp_path_factory.mktemp("smoke")
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "all",
            "--cores",
            "2",
            "--directory",
            str(workdir),
        ],
        cwd=workdir,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=1800,  # about 11 min on 2 idle cores; a slower CI machine must not fail on time alone
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


@pytest.fixture
def one_thread():
    """Tiny networks: on a machine shared with training jobs, extra threads only wait on each other (up to 30×
    slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_dataset() -> Dataset:
    """Two hand-made episodes: one ends in a fall (terminal), one at the time limit (timeout)."""
    rng = np.random.default_rng(0)
    n = 7
    states = rng.normal(size=(n + 2, 11)).astype(np.float32)  # episode 0: states 0-3, episode 1: states 4-8
    current = np.r_[0:3, 4:8]
    return Dataset(
        observations=states[current],
        actions=rng.uniform(-1, 1, size=(n, 3)).astype(np.float32),
        rewards=np.arange(n, dtype=np.float32),
        next_observations=states[current + 1],
        terminals=np.array([0, 0, 1, 0, 0, 0, 0], bool),
        timeouts=np.array([0, 0, 0, 0, 0, 0, 1], bool),
        episode_ids=np.array([0, 0, 0, 1, 1, 1, 1]),
    )


@pytest.fixture
def cpu_config():
    """A TrainConfig on hopper-random on the CPU, TD3+BC on seed 0 unless told: the loop's sizes (and any field)
    given."""

    def config(
        steps: int,
        eval_every: int,
        log_every: int,
        batch_size: int,
        algorithm: str = "td3bc",
        seeds: tuple[int, ...] = (0,),
        **fields,
    ) -> TrainConfig:
        return TrainConfig(
            algorithm=algorithm,
            env="hopper",
            dataset="hopper-random",
            seeds=list(seeds),
            steps=steps,
            eval_every=eval_every,
            log_every=log_every,
            batch_size=batch_size,
            device="cpu",
            **fields,
        )

    return config


def network_available() -> bool:
    """Whether Minari's remote answers (the offline-failure tests skip where it does)."""
    from offrl.data.download import DownloadError, check_reachable

    try:
        check_reachable("hf://farama-minari", timeout_s=3)
    except DownloadError:
        return False
    return True
