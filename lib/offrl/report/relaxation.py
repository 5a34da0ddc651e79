"""Where TD3BC++'s constraint relaxation lifts the BC term: W(s, a) by time since the episode's start.

W (the "Taming" paper's eq. 10) min-max normalises Q(s, a) over each minibatch, so the batch's
lowest-Q transitions get W ≈ 0 and lose their BC term, whatever the absolute gap in Q. This reads a
run's kept critics (its ``snapshots.pt``, see :mod:`offrl.qdiagnostic`) and its dataset, draws
minibatches of training's size (the same ones for every seed and snapshot), computes W with the
algorithm's own ``relaxation_weight``, and averages it per bin of the time step within the
episode, per snapshot and seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from offrl.data import Dataset

DEFAULT_BINS = (0, 10, 50, 200, 1000)


def episode_time(dataset: Dataset) -> np.ndarray:
    """(N,) each transition's time step within its episode."""
    return np.concatenate([np.arange(s.stop - s.start) for s in dataset.episode_slices()])


def weight_by_time(weights: np.ndarray, times: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Mean W per bin [edges[i], edges[i+1]) of ``times``: ``weights`` (S, n, B) over index batches whose
    times are ``times`` (n, B); returns (S, bins), NaN for a bin no batch reaches."""
    out = np.full((weights.shape[0], len(edges) - 1), np.nan)
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (times >= low) & (times < high)
        if inside.any():
            out[:, i] = weights[:, inside].mean(axis=1)
    return out


def relaxation_by_time(
    run_dir: str | Path,
    dataset_dir: str | Path,
    edges: Sequence[int] | None = None,
    batches: int = 200,
    batch_size: int = 256,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per kept snapshot and seed: the run's mean W per time bin (columns ``W[a,b)``) and overall.

    ``edges`` are the bins' edges (default ``DEFAULT_BINS``); ``batches`` minibatches of ``batch_size``
    transitions are drawn with ``seed``, the same for every snapshot.
    """
    from offrl.algos.base import Batch
    from offrl.data.dataset import load_dataset
    from offrl.files import load_tensors
    from offrl.qdiagnostic import SnapshotQ

    run = load_tensors(Path(run_dir) / "snapshots.pt", "training snapshots")
    q = SnapshotQ(run)
    if not hasattr(q.algo, "relaxation_weight") or q.algo.config.relaxation is None:
        raise ValueError(f"{run_dir}: {run['algorithm']} has no constraint relaxation (options relaxation: null)")
    data = load_dataset(dataset_dir)
    obs = (torch.as_tensor(data.observations) - run["obs_mean"]) / run["obs_std"]
    actions = torch.as_tensor(data.actions)
    times = episode_time(data)
    edges = DEFAULT_BINS if edges is None else edges
    index = np.random.default_rng(seed).integers(0, len(times), size=(batches, batch_size))
    members = len(run["seeds"])
    unused = torch.empty(0)  # rewards, next states, not-done: W reads the states and actions only
    rows = []
    for step in sorted(run["critics"]):
        q.load(step)
        weights = np.stack(
            [
                q.algo.relaxation_weight(
                    Batch(
                        obs[i].expand(members, -1, -1),
                        actions[i].expand(members, -1, -1),
                        unused,
                        unused,
                        unused,
                    )
                ).numpy()
                for i in index
            ],
            axis=1,
        )  # (S, batches, B)
        binned = weight_by_time(weights, times[index], edges)
        for s, member_seed in enumerate(run["seeds"]):
            row = {"step": step, "seed": member_seed}
            row |= {f"W[{a},{b})": binned[s, i] for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))}
            rows.append(row | {"W": float(weights[s].mean())})
    return pd.DataFrame(rows)
