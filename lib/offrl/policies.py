"""Saving, loading and running trained actors (behaviour policies, safety experts), and the
evaluation policies a training run snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from offrl.files import load_tensors, write_atomically
from offrl.nets import BCQPolicy, DeterministicActor, SampledArgmaxPolicy, TanhGaussianActor

# Every kind of evaluation policy an algorithm may snapshot (its ``actor``): a module mapping
# states ``(M, B, obs_dim)`` to actions, rebuilt from ``members`` and its ``spec``.
POLICIES: dict[str, type[nn.Module]] = {
    "deterministic": DeterministicActor,  # TD3+BC, BC
    "tanh_gaussian": TanhGaussianActor,  # SAC, BEAR: evaluated deterministically, tanh(μ(s))
    "bcq": BCQPolicy,  # BCQ: the best of perturbed VAE samples by Q₁
    "sampled_argmax": SampledArgmaxPolicy,  # BEAR, UWAC: the best of π's samples by Q₁ (rlkit's policy_fn)
}


def policy_spec(policy: nn.Module) -> dict[str, Any]:
    """What rebuilds ``policy`` for evaluation: its kind and its constructor's arguments besides ``members``."""
    kind = next((kind for kind, cls in POLICIES.items() if type(policy) is cls), None)
    if kind is None:
        raise ValueError(f"{type(policy).__name__} is not an evaluation policy; kinds: {sorted(POLICIES)}")
    return {"kind": kind, **policy.spec}


def build_policy(spec: dict[str, Any], members: int) -> nn.Module:
    """An evaluation policy of ``members`` members from a :func:`policy_spec`."""
    options = dict(spec)
    kind = options.pop("kind")
    if kind not in POLICIES:
        raise ValueError(f"unknown policy kind {kind!r}; allowed: {sorted(POLICIES)}")
    return POLICIES[kind](members, **options)


def snapshot_policy(run: dict[str, Any]) -> nn.Module:
    """The evaluation policy a run's snapshots load into (runs written before policy kinds hold deterministic
    actors)."""
    spec = run.get("policy") or {
        "kind": "deterministic",
        "obs_dim": run["obs_dim"],
        "act_dim": run["act_dim"],
        "hidden": run["hidden"],
    }
    return build_policy(spec, len(run["seeds"]))


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
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def export_snapshot(
    snapshots: str | Path, path: str | Path, step: int | None = None, member: int = 0, **meta: Any
) -> None:
    """Write one member of a training run's snapshot as an actor on raw states (see :func:`save_actor`).

    The run's state normalisation (x − mean)/std is folded into the first layer:
    W′ = W / std (per input row), b′ = b − (mean / std)·W, so rollouts need no statistics.
    """
    run = load_tensors(snapshots, "training snapshots")
    step = max(run["actors"]) if step is None else step
    actor = snapshot_policy(run)
    if not isinstance(actor, DeterministicActor):
        raise ValueError(
            f"{snapshots} holds {policy_spec(actor)['kind']} policies; only deterministic actors can be exported"
        )
    actor.load_state_dict(run["actors"][step])
    first = actor.mlp.layers[0]
    with torch.no_grad():
        mean, std = run["obs_mean"].to(first.weight.dtype), run["obs_std"].to(first.weight.dtype)
        first.bias -= ((mean / std) @ first.weight)[:, None, :]  # (in,) @ (S, in, out) -> (S, 1, out)
        first.weight /= std[None, :, None]
    save_actor(actor, path, member=member, step=step, seed=run["seeds"][member], **meta)


def load_actor(path: str | Path) -> DeterministicActor:
    """Load a single-member actor written by :func:`save_actor`."""
    payload = load_tensors(path, "actor checkpoint")
    actor = DeterministicActor(
        1, payload["obs_dim"], payload["act_dim"], tuple(payload["hidden"]), payload["max_action"]
    )
    actor.load_state_dict(payload["state_dict"])
    return actor.eval()


class NumpyActor:
    """A single-member actor evaluated with NumPy: for rollouts one state at a time,
    where torch's per-call overhead costs more than the arithmetic."""

    def __init__(self, actor: DeterministicActor) -> None:
        layers = list(actor.mlp.layers)
        # .cpu(): the learner may be on a GPU (online TD3); a no-op for a CPU actor.
        self.weights = [m.weight.detach()[0].cpu().numpy().astype(np.float64) for m in layers]
        self.biases = [m.bias.detach()[0, 0].cpu().numpy().astype(np.float64) for m in layers]
        self.max_action = actor.max_action

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=np.float64)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                np.maximum(h, 0.0, out=h)
        return self.max_action * np.tanh(h)
