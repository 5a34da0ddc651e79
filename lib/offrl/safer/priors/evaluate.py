"""What a trained prior says: the safety bounds (Algorithm 3), Figure 1's probe, Figure 4's rollouts.

Both read the data through the prior with c fixed to its posterior mean E[c | Λ], as
Algorithms 1 and 3 do at inference time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from offrl.safer.grasp import GraspTask, SafeGraspEnv
from offrl.safer.grasp_script import GraspRollouts
from offrl.safer.priors.assurance import UnreachableTarget, safety_bound, unsafe_fraction_within
from offrl.safer.priors.latent import bounded_map
from offrl.safer.priors.model import RollingWindow, SkillPrior, prior_action
from offrl.safer.priors.train import safe_rows

CHUNK = 8192  # rows per forward pass: the windows of a whole dataset at once would not fit


@torch.no_grad()
def _per_row(prior: SkillPrior, data: GraspRollouts, rows: np.ndarray, latent: bool) -> np.ndarray:
    """z = f⁻¹(a; s, E[c | Λ]) (``latent``) or log p(a | s, E[c | Λ]) of the given rows."""
    out = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        states = torch.as_tensor(data.transitions.observations[chunk])
        actions = torch.as_tensor(data.transitions.actions[chunk])
        windows = torch.as_tensor(data.windows[chunk]) if prior.context_dim else None
        if latent:
            out.append(prior.latent(states, actions, windows).numpy())
        else:
            out.append(prior.log_prob(states, actions, windows, sample=False)[0].numpy())
    return np.concatenate(out) if out else np.zeros((0,))


def safety_bounds(
    prior: SkillPrior,
    data: GraspRollouts,
    targets: Sequence[float],
    seed: int,
    balance: bool = True,
    safe_set: str = "trajectory",
) -> pd.DataFrame:
    """η for each target unsafe fraction u, by Algorithm 3 on Algorithm 2's safe and unsafe pairs.

    The safe pairs are the prior's own safe set (``safe_set``, :func:`offrl.safer.priors.train.safe_rows`:
    not the failed "miss" episodes), the unsafe ones every ω = 1 pair.
    ``balance`` runs it on as many safe as unsafe pairs (a fixed random subset of the safe
    ones): the data's own share of unsafe pairs (about a tenth) is below most targets, and
    Algorithm 3 would stop at once with η holding every pair. Because that 50/50 mix is not the
    data's, each bound is also read on the data's own mix, every pair of the dataset.

    Columns: ``target``, ``bound``, ``reached``, ``in_bound_unsafe_fraction`` (among the
    in-bound pairs Algorithm 3 ran on), ``safe_pairs``, ``unsafe_pairs`` (the pairs it ran on),
    ``data_in_bound_unsafe_fraction`` (among the in-bound pairs of the whole dataset),
    ``data_unsafe_fraction`` (the dataset's share of unsafe pairs), ``data_pairs``. A target no
    bound reaches (an unsafe z nearer the origin than any safe one left: possible for 0 %)
    keeps the last bound that still held safe data, ``reached`` False.
    """
    rng = np.random.default_rng(seed)
    safe, unsafe = safe_rows(data, safe_set), np.flatnonzero(data.violations)
    if len(unsafe) == 0 or len(safe) == 0:
        raise ValueError(f"{len(safe)} safe and {len(unsafe)} unsafe pairs: Algorithm 3 needs both kinds")
    if balance and len(safe) > len(unsafe):
        safe = np.sort(rng.choice(safe, len(unsafe), replace=False))
    z = _per_row(prior, data, np.arange(len(data.violations)), latent=True)
    z_safe, z_unsafe = z[safe], z[unsafe]
    z_data_safe = z[~data.violations]
    rows = []
    for target in targets:
        try:
            bound, reached = safety_bound(z_safe, z_unsafe, target, rng), True
        except UnreachableTarget as unreachable:
            bound, reached = unreachable.bound, False
        rows.append(
            {
                "target": float(target),
                "bound": bound,
                "reached": reached,
                "in_bound_unsafe_fraction": unsafe_fraction_within(z_safe, z_unsafe, bound),
                "safe_pairs": len(safe),
                "unsafe_pairs": len(unsafe),
                "data_in_bound_unsafe_fraction": unsafe_fraction_within(z_data_safe, z_unsafe, bound),
                "data_unsafe_fraction": float(data.violations.mean()),
                "data_pairs": len(z),
            }
        )
    return pd.DataFrame(rows)


def unsafe_among_likely(prior: SkillPrior, data: GraspRollouts, top_percents: Sequence[float]) -> pd.DataFrame:
    """Figure 1: the % of unsafe pairs among the ``top_percent`` % most likely (s, a) of ``data``."""
    log_p = _per_row(prior, data, np.arange(len(data.violations)), latent=False)
    order = np.argsort(-log_p, kind="stable")
    rows = []
    for top in top_percents:
        if not 0 < top <= 100:
            raise ValueError(f"top_percent = {top}: must be in (0, 100]")
        pairs = max(1, int(round(len(order) * top / 100)))
        rows.append(
            {
                "top_percent": float(top),
                "unsafe_percent": 100.0 * float(data.violations[order[:pairs]].mean()),
                "pairs": pairs,
            }
        )
    return pd.DataFrame(rows)


def calibration_rollouts(
    task: GraspTask,
    prior: SkillPrior,
    bounds: pd.DataFrame,
    rollouts: int,
    seed: int,
    latent_map: str = "truncated_normal",
) -> pd.DataFrame:
    """Figure 4: episodes acting a = f(z; s, E[c | Λ]) with z drawn inside (−η, η)^d, for each bound's η.

    z is ``latent_map`` (``offrl.safer.priors.latent``) of a uniform u ∈ [−1, 1]^d: by default the
    prior's own N(0, I) truncated to the bound, which is what SAFER's downstream policy draws
    from at the start of training; ``box``: uniform inside the bound. One row per (target,
    rollout): ``steps``, ``unsafe_steps`` (ω = 1), ``unsafe_fraction`` and ``success``. The
    same environment seeds and the same u serve every bound, so bounds differ in η alone.
    """
    if rollouts < 1:
        raise ValueError(f"rollouts = {rollouts}: must be at least 1")
    to_latent = bounded_map(latent_map)
    env = SafeGraspEnv(task)
    action_dim = env.action_space.shape[0]
    rows = []
    for target, bound in zip(bounds["target"], bounds["bound"]):
        rng = np.random.default_rng(seed)
        for rollout in range(rollouts):
            observation, _ = env.reset(seed=seed * 10_000 + rollout)
            window = RollingWindow(1, prior.window, observation.shape[0])
            steps = unsafe = 0
            done = success = False
            while not done:
                latent = to_latent(
                    torch.as_tensor(rng.uniform(-1.0, 1.0, (1, action_dim)), dtype=torch.float32), float(bound)
                )
                windows = torch.from_numpy(window.states) if prior.context_dim else None
                action = prior_action(prior, latent, torch.from_numpy(observation[None]), windows)[0].numpy()
                window.push(observation[None])
                observation, _, terminated, truncated, info = env.step(action)
                steps, unsafe, success = steps + 1, unsafe + info["violation"], info["success"]
                done = terminated or truncated
            rows.append(
                {
                    "target": float(target),
                    "bound": float(bound),
                    "rollout": rollout,
                    "steps": steps,
                    "unsafe_steps": unsafe,
                    "unsafe_fraction": unsafe / steps,
                    "success": bool(success),
                }
            )
    return pd.DataFrame(rows)
