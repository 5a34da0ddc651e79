"""Faults injected into real Snakemake runs of a pipeline slice (tests/pipeline_slice.py).

- ``kill -9`` of the whole Snakemake process tree while the dataset is written and again
  mid-training: the killed run's lock refuses the rerun, naming ``--unlock``; after it, the
  rerun redoes the incomplete jobs, resumes from the training checkpoint, and its tables and
  policies equal an uninterrupted run's;
- a second Snakemake in the same directory while one runs: refused by Snakemake's lock;
- a full disk (a small tmpfs as ``resources/``): the dataset job fails in one line naming the
  cause (HDF5 itself segfaults on a full disk, so the writer checks the free space first),
  leaves nothing Snakemake would take as done, and the rerun after space is freed completes.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.pipeline_slice import (
    CHECKPOINT,
    DATASET_SUMMARY,
    RUN,
    SNAKEMAKE,
    TABLE,
    assert_same_results,
    slice_config,
    snakemake_env,
)

pytestmark = pytest.mark.slow
LIMIT_S = 900


def command(config: Path, *targets: str) -> list[str]:
    return [
        *SNAKEMAKE,
        *(targets or (TABLE,)),
        "--cores",
        "2",
        "--configfile",
        str(config),
    ]  # targets first: --configfile takes every word after it


def snakemake(workdir: Path, config: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(config, *targets), cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=LIMIT_S
    )


def start(workdir: Path, config: Path) -> subprocess.Popen:
    """Snakemake in a session of its own, so that killing the group kills every job it started."""
    return subprocess.Popen(
        command(config),
        cwd=workdir,
        env=snakemake_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_tree_when(proc: subprocess.Popen, ready, what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {LIMIT_S} s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return slice_config(tmp_path_factory.mktemp("config") / "slice.yaml")


@pytest.fixture(scope="module")
def straight(config, tmp_path_factory):
    """The uninterrupted reference run; a second Snakemake started in its directory meanwhile is refused."""
    workdir = tmp_path_factory.mktemp("straight")
    run = start(workdir, config)
    locks = workdir / ".snakemake" / "locks"
    while not (locks.is_dir() and any(locks.iterdir())):
        assert run.poll() is None, "the run ended before it locked its directory"
        time.sleep(0.05)
    second = snakemake(workdir, config)
    assert run.wait(timeout=LIMIT_S) == 0
    return workdir, second


def test_a_second_run_in_the_same_directory_is_refused(straight):
    second = straight[1]
    assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr, second.stderr[
        -3000:
    ]


def test_killed_writing_the_dataset_and_mid_training_the_rerun_equals_an_uninterrupted_run(config, straight, tmp_path):
    run = start(tmp_path, config)
    kill_tree_when(run, (tmp_path / "logs/datasets/hopper-random.log").exists, "the dataset job")
    assert not (tmp_path / DATASET_SUMMARY).exists()  # the summary is written last, so nothing looks done
    # Snakemake's lock cannot tell a killed run from a live one: the rerun is refused, naming the fix.
    refused = snakemake(tmp_path, config)
    assert refused.returncode != 0 and "It can be removed with the --unlock argument" in refused.stdout + refused.stderr
    assert snakemake(tmp_path, config, "--unlock").returncode == 0

    run = start(tmp_path, config)
    kill_tree_when(run, (tmp_path / CHECKPOINT).exists, "a training checkpoint")
    assert not (tmp_path / RUN / "snapshots.pt").exists()
    assert snakemake(tmp_path, config, "--unlock").returncode == 0

    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / RUN / "config.json").read_text())["resumed_from_step"] > 0
    assert_same_results(straight[0], tmp_path)


def test_a_full_disk_fails_the_job_clearly_and_the_rerun_after_freeing_space_completes(config, tmp_path):
    resources = tmp_path / "resources"
    resources.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(resources)], capture_output=True, text=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        full = snakemake(tmp_path, config, DATASET_SUMMARY)
        assert full.returncode != 0
        assert "Error in rule collect_dataset" in full.stdout + full.stderr
        log = (tmp_path / "logs/datasets/hopper-random.log").read_text()
        assert (
            log.startswith("offrl collect: error: No space left on device for the dataset under ")
            and log.count("\n") == 1
        ), log[-3000:]
        assert not (tmp_path / DATASET_SUMMARY).exists() and not (resources / "minari").exists()

        subprocess.run(["mount", "-o", "remount,size=64m", str(resources)], check=True)
        freed = snakemake(tmp_path, config, DATASET_SUMMARY)
        assert freed.returncode == 0, freed.stderr[-3000:]
        assert json.loads((tmp_path / DATASET_SUMMARY).read_text())["transitions"] > 0
    finally:
        subprocess.run(["umount", "-l", str(resources)], capture_output=True)
