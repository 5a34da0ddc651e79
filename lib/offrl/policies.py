"""Saving, loading and running trained actors (behaviour policies, safety experts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from offrl.nets import DeterministicActor


def save_actor(actor: DeterministicActor, path: str | Path, member: int = 0, **meta: Any) -> None:
    """Write one member of an actor ensemble as a single-member checkpoint with its sizes."""
    state = {name: tensor[member : member + 1].detach().cpu().clone() for name, tensor in actor.state_dict().items()}
    layers = list(actor.mlp.layers)
    payload = {
        "state_dict": state,
        "obs_dim": layers[0].in_features,
        "act_dim": layers[-1].out_features,
        "hidden": [m.out_features for m in layers[:-1]],
        "max_action": actor.max_action,
        "meta": meta,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def export_snapshot(snapshots: str | Path, path: str | Path, step: int | None = None, member: int = 0, **meta: Any) -> None:
    """Write one member of a training run's snapshot as an actor on raw states (see :func:`save_actor`).

    The run's state normalisation (x − mean)/std is folded into the first layer:
    W′ = W / std (per input row), b′ = b − (mean / std)·W, so rollouts need no statistics.
    """
    run = torch.load(snapshots, map_location="cpu", weights_only=True)
    step = max(run["actors"]) if step is None else step
    actor = DeterministicActor(len(run["seeds"]), run["obs_dim"], run["act_dim"], tuple(run["hidden"]))
    actor.load_state_dict(run["actors"][step])
    first = actor.mlp.layers[0]
    with torch.no_grad():
        mean, std = run["obs_mean"].to(first.weight.dtype), run["obs_std"].to(first.weight.dtype)
        first.bias -= ((mean / std) @ first.weight)[:, None, :]  # (in,) @ (S, in, out) -> (S, 1, out)
        first.weight /= std[None, :, None]
    save_actor(actor, path, member=member, step=step, seed=run["seeds"][member], **meta)


def load_actor(path: str | Path) -> DeterministicActor:
    """Load a single-member actor written by :func:`save_actor`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"actor checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    actor = DeterministicActor(1, payload["obs_dim"], payload["act_dim"], tuple(payload["hidden"]), payload["max_action"])
    actor.load_state_dict(payload["state_dict"])
    return actor.eval()


class NumpyActor:
    """A single-member actor evaluated with NumPy: for rollouts one state at a time,
    where torch's per-call overhead costs more than the arithmetic."""

    def __init__(self, actor: DeterministicActor) -> None:
        layers = list(actor.mlp.layers)
        self.weights = [m.weight.detach()[0].numpy().astype(np.float64) for m in layers]
        self.biases = [m.bias.detach()[0, 0].numpy().astype(np.float64) for m in layers]
        self.max_action = actor.max_action

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=np.float64)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0.0, out=h)
        return self.max_action * np.tanh(h)
