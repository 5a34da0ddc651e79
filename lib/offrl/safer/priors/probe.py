"""Does the safety variable c carry what the state hides? Three readings of a trained prior on its data.

SAFER's premise (§3.2) is that the window Λ of previous states holds safety information the current
state s_t does not. In the grasp task the container and object geometry is seen in a first look only
(``GraspTask.look_steps``), so on the rows whose s_t hides it but whose Λ still holds the look
(``look_steps ≤ t < look_steps + w``) the prior can only know it through c. On those rows:

- ``kl_safe``: the mean KL(q_ρ(c | Λ) ‖ N(0, I)) over the prior's safe set, in nats. Near 0, the
  posterior is the prior whatever Λ holds and c carries nothing (posterior collapse).
- ``swap_action_change``: the mean |Δa| per action dimension, at z = 0, when a row's own window is
  replaced by the window of a row from another task (the data's actuation noise is 0.1).
- ``r2_<quantity>_from_{c,state,window}``: a held-out linear probe's R² for each hidden quantity
  from E[c | Λ], from s_t alone, and from the raw window Λ (what there is to carry). The probe is
  ridge regression fit on half the episodes and scored on the other half.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from offrl.safer.grasp import GraspTask
from offrl.safer.grasp_script import GraspRollouts
from offrl.safer.priors.context import kl_to_standard_normal
from offrl.safer.priors.model import SkillPrior
from offrl.safer.priors.train import safe_rows

CHUNK = 8192  # rows per forward pass
RIDGE = 1.0  # on standardised features: negligible against thousands of rows, keeps collinear ones solvable


def episode_steps(episode_ids: np.ndarray) -> np.ndarray:
    """Each row's step t within its episode (0 at the first row of an episode)."""
    row = np.arange(len(episode_ids))
    first = np.r_[True, episode_ids[1:] != episode_ids[:-1]]
    return row - np.maximum.accumulate(np.where(first, row, 0))


def hidden_geometry(tasks: Sequence[GraspTask]) -> dict[str, np.ndarray]:
    """Per task, the hidden quantities the probe reads: clearance, container half-width, wall height (metres)."""
    return {
        "clearance": np.array([task.clearance for task in tasks]),
        "half_width": np.array([task.container_width / 2 for task in tasks]),
        "wall_height": np.array([task.wall_height for task in tasks]),
    }


def probe_r2(x: np.ndarray, y: np.ndarray, train: np.ndarray, ridge: float = RIDGE) -> float:
    """R² on the rows outside ``train`` of a ridge regression of ``y`` on ``x`` fit on the ``train`` rows.

    Features are standardised by the training rows (a constant feature becomes 0); the intercept is
    not penalised. R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² over the held-out rows, ȳ their own mean.
    """
    x = x.reshape(len(x), -1).astype(np.float64)
    mean, std = x[train].mean(0), x[train].std(0)
    z = np.where(std > 0, (x - mean) / np.where(std > 0, std, 1.0), 0.0)
    design = np.c_[np.ones(len(z)), z]
    penalty = ridge * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    weights = np.linalg.solve(design[train].T @ design[train] + penalty, design[train].T @ y[train])
    test = ~train
    residual = y[test] - design[test] @ weights
    total = y[test] - y[test].mean()
    return float(1.0 - residual @ residual / (total @ total))


@torch.no_grad()
def _batched(fn: Any, *arrays: np.ndarray) -> np.ndarray:
    out = [fn(*(torch.as_tensor(a[i : i + CHUNK]) for a in arrays)).numpy() for i in range(0, len(arrays[0]), CHUNK)]
    return np.concatenate(out)


def window_probe(
    prior: SkillPrior, data: GraspRollouts, tasks: Sequence[GraspTask], seed: int = 0, safe_set: str = "trajectory"
) -> dict[str, Any]:
    """The readings of the module docstring for ``prior`` on ``data`` collected on ``tasks`` (its task list)."""
    look = tasks[0].look_steps
    steps = episode_steps(data.transitions.episode_ids)
    rows = np.flatnonzero((steps >= look) & (steps < look + prior.window))
    if len(rows) < 4:
        raise ValueError(f"{len(rows)} rows hide the geometry with the look in their window: too few to probe")
    states, windows = data.transitions.observations[rows], data.windows[rows]
    rng = np.random.default_rng(seed)
    episodes = np.unique(data.transitions.episode_ids[rows])
    train = np.isin(data.transitions.episode_ids[rows], rng.choice(episodes, len(episodes) // 2, replace=False))
    task_of_row = data.task_ids[rows]
    result: dict[str, Any] = {
        "look_steps": look,
        "observe_geometry": tasks[0].observe_geometry,
        "window": prior.window,
        "context_dim": prior.context_dim,
        "probe_rows": int(len(rows)),
    }
    features = {"state": states, "window": windows}  # the geometry columns of s_t: zeros unless observed
    if prior.context_dim:
        safe_windows = data.windows[safe_rows(data, safe_set)]
        kl = _batched(lambda w: kl_to_standard_normal(*prior.posterior(w)), safe_windows)
        result["kl_safe"] = float(kl.mean())
        features["c"] = _batched(lambda w: prior.posterior(w)[0], windows)
        # Each row gets the window of a row from another task; z = 0 is the prior's mode.
        other = rng.permutation(len(rows))
        moved = task_of_row[other] != task_of_row
        zero = np.zeros((len(rows), prior.flow.action_dim), np.float32)
        own = _batched(prior.action, zero, states, windows)
        swapped = _batched(prior.action, zero, states, windows[other])
        result["swap_action_change"] = float(np.abs(own - swapped)[moved].mean())
    for name, per_task in hidden_geometry(tasks).items():
        target = per_task[task_of_row]
        for source, x in features.items():
            result[f"r2_{name}_from_{source}"] = probe_r2(x, target, train)
    return result
