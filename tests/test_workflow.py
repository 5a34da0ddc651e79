"""The Snakemake workflow itself: lint, dry runs of every scale, and the smoke scale end to end."""

import json
import math
import os
import shutil
import subprocess
import sys
import time

import minari
import pytest

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
KINDS = ["random", "medium", "medium-replay", "medium-expert", "expert"]


def snakemake(*args: str, cwd=REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml", ".test/config/config.yaml"])
def test_dry_run_builds_the_dag(configfile, tmp_path):
    result = snakemake("all", "-n", "--configfile", str(REPO / configfile), "--directory", str(tmp_path))
    assert "collect_dataset" in result.stdout and "dataset_table" in result.stdout


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The .test scale, run once in a fresh directory."""
    workdir = tmp_path_factory.mktemp("smoke")
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    start = time.monotonic()
    snakemake("all", "--cores", "2", "--directory", str(workdir), cwd=workdir)
    return workdir, time.monotonic() - start


def test_smoke_data_stage_builds_minari_datasets(smoke_run, monkeypatch):
    workdir, seconds = smoke_run
    assert seconds < 300, f"data stage took {seconds:.0f} s"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workdir / "resources" / "minari"))
    for kind in KINDS:
        dataset = minari.load_dataset(f"offrl/hopper/{kind}-v0")
        episode = next(iter(dataset.iterate_episodes()))
        assert len(episode.observations) == len(episode.actions) + 1
        assert dataset.storage.metadata["ref_max_score"] == pytest.approx(3234.3)
        summary = json.loads((workdir / "resources" / "datasets" / f"hopper-{kind}.json").read_text())
        assert summary["transitions"] == dataset.total_steps
        assert all(math.isfinite(summary[key]) for key in ("return_mean", "normalized_score"))
    table = (workdir / "results" / "tables" / "datasets.md").read_text()
    assert all(f"hopper-{kind} " in table for kind in KINDS)


def test_smoke_medium_replay_ends_at_the_medium_checkpoint(smoke_run):
    workdir, _ = smoke_run
    manifest = json.loads((workdir / "resources" / "behaviour" / "hopper" / "manifest.json").read_text())
    summary = json.loads((workdir / "resources" / "datasets" / "hopper-medium-replay.json").read_text())
    assert summary["transitions"] == min(summary["size"], manifest["replay_medium_transitions"])
