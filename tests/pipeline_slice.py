"""A slice of the smoke pipeline for the Slurm and fault tests: one dataset, one training job, its evaluation, the D4RL
table."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
TABLE = "results/tables/d4rl.md"
RUN = "results/runs/td3bc/hopper-random/seed0-1-2"
CHECKPOINT = "results/checkpoints/td3bc/hopper-random/seed0-1-2.pt"
DATASET_SUMMARY = "resources/datasets/hopper-random.json"


def slice_config(path: Path, device: str = "cpu") -> Path:
    """The .test config cut to hopper-random and TD3+BC; ``auto`` makes the training rule ask for a GPU."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["datasets"]["kinds"] = ["random"]
    config["offline"]["algorithms"] = ["td3bc"]
    config["offline"]["device"] = device
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_env(base: dict[str, str] | None = None) -> dict[str, str]:
    base = dict(base or os.environ)
    return {**base, "PATH": os.pathsep.join([os.path.dirname(sys.executable), base["PATH"]])}


def assert_same_results(a: Path, b: Path) -> None:
    """The slice's table, evaluation and every policy snapshot are equal in two run directories."""
    pd.testing.assert_frame_equal(
        pd.read_csv(a / "results/tables/d4rl.csv"), pd.read_csv(b / "results/tables/d4rl.csv")
    )
    pd.testing.assert_frame_equal(pd.read_csv(a / RUN / "evaluation.csv"), pd.read_csv(b / RUN / "evaluation.csv"))
    runs = [torch.load(root / RUN / "snapshots.pt", weights_only=True) for root in (a, b)]
    assert sorted(runs[0]["actors"]) == sorted(runs[1]["actors"])
    for step, actor in runs[0]["actors"].items():
        for name, tensor in actor.items():
            assert torch.equal(tensor, runs[1]["actors"][step][name]), (step, name)
