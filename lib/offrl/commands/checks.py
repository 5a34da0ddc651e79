"""Arguments checked before any work: each refusal one line naming the flag, the value and what was expected.

A run that trains for hours and then cannot write its output, or evaluates the wrong env because
a flag contradicts the snapshots, wastes the hours; these checks run at the commands' entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def check_writable(path: str | Path, flag: str) -> None:
    """``path`` (a directory or file to be written) can be created: its nearest existing ancestor is a writable
    directory."""
    path = Path(path).absolute()
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if ancestor == path and not path.is_dir():
        ancestor = path.parent  # an existing file is replaced through its directory
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: cannot write there ({ancestor} is not a writable directory)")


def check_distinct(values: Sequence[int], flag: str) -> None:
    """No value repeated (two ensemble members with one seed would be one run counted twice)."""
    repeated = sorted({v for v in values if list(values).count(v) > 1})
    if repeated:
        raise ValueError(f"{flag} {' '.join(map(str, values))}: repeated {repeated}; give each once")


def _env_sizes(env: str) -> tuple[str, int, int]:
    """The env's Gymnasium id and observation and action sizes."""
    from offrl.envs import env_spec, make_env

    spec = env_spec(env)
    made = make_env(env)
    try:
        return spec.gym_id, int(made.observation_space.shape[0]), int(made.action_space.shape[0])
    finally:
        made.close()


def check_dataset_record(path: str | Path, env: str, flag: str) -> None:
    """The Minari dataset at ``path`` records the env ``env`` names, and its observation and action sizes.

    Training one env's data under another's name fails only at evaluation, as a tensor-size error.
    A dataset without an env record (from elsewhere) is checked on its sizes alone; one without
    metadata is left to the loader, which says how to build it.
    """
    data_dir = Path(path) / "data" if (Path(path) / "data").is_dir() else Path(path)  # as offrl.data.dataset reads it
    metadata_path = data_dir / "metadata.json"
    if not metadata_path.is_file():
        return
    metadata = json.loads(metadata_path.read_text())
    gym_id, obs_dim, act_dim = _env_sizes(env)

    def size(space: str) -> int | None:
        shape = json.loads(metadata.get(space) or "{}").get("shape") or [None]
        return shape[0]

    recorded_env = json.loads(metadata.get("env_spec") or "{}").get("id")
    recorded = (recorded_env, size("observation_space"), size("action_space"))
    expected = (recorded_env and gym_id, obs_dim, act_dim)
    if recorded != expected:
        raise ValueError(
            f"{flag}: the dataset at {path} records env {recorded[0] or '(none)'} with observations of {recorded[1]}"
            f" and actions of {recorded[2]}, not {env}'s {gym_id} ({obs_dim}, {act_dim})"
        )


def run_record(snapshots: str | Path) -> dict[str, Any]:
    """What a run says about itself: its preset and env (``snapshots.pt``), its dataset (``config.json`` beside it)."""
    from offrl.files import load_tensors

    run = load_tensors(snapshots, "snapshots")
    record = {"algorithm": run["algorithm"], "env": run["env"], "dataset": None}
    config = Path(snapshots).with_name("config.json")
    if config.is_file():
        record["dataset"] = json.loads(config.read_text())["config"]["dataset"]
    return record


def check_against_run(record: dict[str, Any], snapshots: str | Path, preset: str | None, dataset: str | None) -> None:
    """``--algo`` (its preset) and ``--dataset`` agree with the run's own record; the error names both values."""
    if preset is not None and preset != record["algorithm"]:
        raise ValueError(f"--algo names preset {preset}, but the run {snapshots} trained {record['algorithm']}")
    if dataset is None:
        return
    if record["dataset"] is not None and dataset != record["dataset"]:
        raise ValueError(f"--dataset {dataset}, but the run {snapshots} trained on {record['dataset']}")
    env = dataset.partition("-")[0]
    if env != record["env"]:
        raise ValueError(f"--dataset {dataset} is a {env} dataset, but the run {snapshots} trained on {record['env']}")
