"""Build one dataset of the pipeline: generate it locally or download it, then summarise it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offrl.data.dataset import Dataset, DatasetError, load_dataset, write_minari
from offrl.data.generate import KINDS, replay_dataset, rollout
from offrl.files import write_atomically
from offrl.policies import NumpyActor, load_actor


def minari_id(env: str, kind: str) -> str:
    """The local Minari id of a dataset, e.g. ``offrl/hopper/medium-replay-v0``."""
    return f"offrl/{env}/{kind}-v0"


def generate(
    env: str,
    kind: str,
    behaviour_dir: str | Path | None,
    size: int,
    seed: int,
    noise: float,
    root: str | Path,
    progress: bool = True,
) -> Dataset:
    """Generate dataset ``kind`` for ``env`` following D4RL's protocol (see :mod:`offrl.data.generate`).

    ``medium-expert`` is the union of the ``medium`` and ``expert`` datasets already under ``root``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; allowed: {', '.join(KINDS)}")
    behaviour = Path(behaviour_dir) if behaviour_dir is not None else None
    if kind == "random":
        return rollout(env, None, size, seed, progress=progress)
    if kind in ("medium", "expert", "cloned"):
        policy = NumpyActor(load_actor(behaviour / f"{kind}.pt"))
        return rollout(env, policy, size, seed, noise=noise, progress=progress)
    if kind == "medium-replay":
        return replay_dataset(behaviour / "replay_medium.npz", size)
    # medium-expert: exactly the union of the two datasets the pipeline already built.
    parts = [load_dataset(Path(root) / minari_id(env, part)) for part in ("medium", "expert")]
    return Dataset.concatenate(parts)


def write_with_summary(
    dataset: Dataset, env: str, kind: str, root: str | Path, summary_path: str | Path, provenance: dict[str, Any]
) -> dict[str, Any]:
    """Write the Minari dataset and its JSON summary (the summary last, atomically)."""
    path = write_minari(dataset, root, minari_id(env, kind), env, metadata={**provenance, "env": env, "kind": kind})
    summary = {
        "env": env,
        "kind": kind,
        "minari_id": minari_id(env, kind),
        **dataset.summary(env),
        **provenance,
        "path": str(path),
    }
    write_json(summary_path, summary)
    return summary


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write JSON through a temporary file, so a reader never sees half a file."""
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n"))


def load_summary(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset summary not found: {path}")
    return json.loads(path.read_text())
