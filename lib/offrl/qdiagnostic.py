"""The lecture slides' diagnostic: learned Q minus the actual return of the evaluated policy.

Offline Q-learning can overestimate the value of actions the data never shows (the slides,
"Offline Q-Learning algorithms can overestimate the value of unseen actions"; the BEAR blog's
Figure 1). For every policy snapshot of a run this measures

- Q at the dataset's initial states, Q(s₀, π(s₀)) averaged over the dataset's episode starts,
  against the discounted return of the evaluated policy's episodes (which start from the
  env's reset distribution, as every episode of the dataset does);
- along the evaluation rollouts, Q(s_t, π(s_t)) against the discounted Monte-Carlo return
  G_t = Σ_{k≥t} γ^{k−t}·r_k of the same episode from s_t.

The protocol: an algorithm with a critic defines ``q_values(obs, actions) -> (S, n)``, its
value of each pair for each of its ``S`` members, on states as it trains on them (normalised
where it normalises): the Q its actor maximises. An algorithm without one (BC) has no Q; its
rows carry the return alone. γ is the algorithm's own ``config.discount``. The training loop
keeps, at its snapshots (``TrainConfig.critic_snapshots`` of them at most), the state of the modules ``q_values`` reads
(:func:`critic_modules`), and the evaluation rebuilds the algorithm around them (:class:`SnapshotQ`).

Truncated tails. Q estimates the return of an unbounded episode; an episode cut by the time
limit at T leaves G_t short of it by γ^{T−t}·V(s_T). A terminated episode gives the exact
return at every step (nothing follows a termination). Of a truncated one only the steps
t ≤ T − H count (``comparable``), H = ⌈log(tail) / log γ⌉, where the missing tail weighs at
most ``tail`` times the value of the state at the cut: with γ = 0.99 and tail = 0.01, H = 459,
the first 542 steps of a 1000-step episode. No tail is bootstrapped with the learned Q, which
would mix the estimate into the truth it is checked against.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from offrl.algos.base import has_q_values

DEFAULT_TAIL = 0.01


def discounted_returns(rewards: np.ndarray, discount: float) -> np.ndarray:
    """G_t = r_t + γ·G_{t+1} over one episode's rewards, with G_T = 0 after its last step."""
    returns = np.empty(len(rewards))
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + discount * running
        returns[t] = running
    return returns


def tail_horizon(discount: float, tail: float) -> int:
    """H = ⌈log(tail) / log γ⌉: the fewest steps before a cut whose missing return weighs at most ``tail``."""
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be in (0, 1), got {discount}")
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    return math.ceil(math.log(tail) / math.log(discount) - 1e-9)


def comparable_steps(length: int, truncated: bool, discount: float, tail: float) -> np.ndarray:
    """(length,) bool: the steps whose Monte-Carlo return stands for the unbounded return (see the module)."""
    if not truncated:
        return np.ones(length, dtype=bool)
    return np.arange(length) <= length - tail_horizon(discount, tail)


def critic_modules(algo: Any, obs_dim: int, act_dim: int, device: torch.device | str) -> tuple[str, ...]:
    """The names (among ``algo.checkpointed``) of the modules ``algo.q_values`` reads; () without ``q_values``.

    Found by trial: a module is read when setting its parameters to NaN turns Q into NaN. Every
    parameter, random stream and generator is restored, so a run that asks gives the same numbers.
    """
    if not has_q_values(algo):
        return ()
    members = algo.seeds
    obs = torch.zeros(members, 2, obs_dim, device=device)
    actions = torch.zeros(members, 2, act_dim, device=device)
    generators = getattr(algo, "generators", [])  # an algorithm that draws no noise (IQL) keeps none
    generator_states = [g.get_state() for g in generators]
    names = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for name in algo.checkpointed:
            module = getattr(algo, name)
            if not isinstance(module, nn.Module):
                continue
            saved = [p.detach().clone() for p in module.parameters()]
            for p in module.parameters():
                p.fill_(float("nan"))
            if torch.isnan(algo.q_values(obs, actions)).any():
                names.append(name)
            for p, value in zip(module.parameters(), saved):
                p.copy_(value)
    for g, state in zip(generators, generator_states):
        g.set_state(state)
    if not names:
        raise ValueError(f"{type(algo).__name__}.q_values reads none of its modules {algo.checkpointed}")
    return tuple(names)


class SnapshotQ:
    """A run's algorithm rebuilt on the CPU from its ``snapshots.pt``, its Q loaded snapshot by snapshot."""

    def __init__(self, run: dict[str, Any]) -> None:
        from offrl.algos.presets import build

        generators = [torch.Generator().manual_seed(int(seed)) for seed in run["seeds"]]
        self.algo = build(
            run["algorithm"], run["obs_dim"], run["act_dim"], generators, torch.device("cpu"), run["options"]
        )
        self.discount = float(self.algo.config.discount)
        self.critics = run["critics"]

    def load(self, step: int) -> None:
        for name, state in self.critics[step].items():
            getattr(self.algo, name).load_state_dict(state)

    @torch.inference_mode()
    def __call__(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, n) Q of pairs ``(S, n, ·)`` on the algorithm's (normalised) states."""
        return self.algo.q_values(obs, actions)


class Rollouts:
    """What :func:`offrl.evaluate.evaluate_policy` shows its observer: each step's states, actions and rewards.

    Only the first episode of each sub-env counts (``live``), as in the evaluation itself.
    """

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.lengths: np.ndarray | None = None
        self.terminated: np.ndarray | None = None
        self.stacked: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (T, n, ·) copies, made once

    def __call__(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        live: np.ndarray,
    ) -> None:
        if self.lengths is None:
            self.lengths = np.zeros(len(obs), dtype=np.int64)
            self.terminated = np.zeros(len(obs), dtype=bool)
        self.stacked = None
        self.obs.append(np.array(obs, dtype=np.float32))
        self.actions.append(np.array(action, dtype=np.float32))
        self.rewards.append(np.array(reward, dtype=np.float64))
        self.lengths += live
        self.terminated |= live & terminated & ~truncated

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sub-env ``i``'s states, actions and rewards over its first episode."""
        if self.stacked is None:
            self.stacked = (np.stack(self.obs), np.stack(self.actions), np.stack(self.rewards))
        n = int(self.lengths[i])
        obs, actions, rewards = self.stacked
        return obs[:n, i], actions[:n, i], rewards[:n, i]


# What the ``critic`` column of the diagnostic says about a run's Q.
CRITIC_KEPT, NO_CRITIC, CRITIC_NOT_KEPT = "kept", "none", "not kept"


def critic_status(run: dict[str, Any]) -> str:
    """``kept``: its snapshots hold the critic; ``none``: the algorithm has no Q (BC); ``not kept``: a run from before
    the diagnostic."""
    if "critics" not in run:
        return CRITIC_NOT_KEPT
    return CRITIC_KEPT if run["critics"] else NO_CRITIC


def rollout_rows(
    rollouts: Rollouts,
    q: SnapshotQ | None,
    obs_mean: torch.Tensor,
    obs_std: torch.Tensor,
    members: int,
    discount: float,
    tail: float,
) -> pd.DataFrame:
    """One row per episode (sub-env ``s·E + e`` is episode ``e`` of member ``s``): Q against the return
    from s₀ and along the episode.

    Without ``q`` the Q columns are NaN. ``discount`` is the return's γ (the algorithm's, or the
    caller's for one without Q).
    """
    episodes = len(rollouts.lengths) // members
    steps = [rollouts.episode(i) for i in range(len(rollouts.lengths))]
    values = member_q(steps, q, obs_mean, obs_std, members) if q is not None else None
    rows = []
    for i, (_, _, rewards) in enumerate(steps):
        returns = discounted_returns(rewards, discount)
        comparable = comparable_steps(len(rewards), not rollouts.terminated[i], discount, tail)
        row = {
            "episode": i % episodes,
            "length": len(rewards),
            "terminated": bool(rollouts.terminated[i]),
            "discount": discount,
            "return_initial": returns[0],
            "initial_comparable": bool(comparable[0]),
            "comparable_steps": int(comparable.sum()),
            "return_along": returns[comparable].mean() if comparable.any() else np.nan,
            "q_initial": np.nan,
            "q_along": np.nan,
        }
        if values is not None:
            row["q_initial"] = values[i][0]
            row["q_along"] = values[i][comparable].mean() if comparable.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@torch.inference_mode()
def member_q(
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    q: SnapshotQ,
    obs_mean: torch.Tensor,
    obs_std: torch.Tensor,
    members: int,
) -> list[np.ndarray]:
    """Q(s_t, a_t) along each episode by its own member's Q (episode ``i``: member ``i // E``), in one call.

    Each member's episodes go end to end in its row of an ``(S, n, ·)`` batch, padded to the longest
    row with zeros whose values are dropped: every member evaluates its own states only.
    """
    per_member = len(steps) // members
    groups = [steps[s * per_member : (s + 1) * per_member] for s in range(members)]
    width = max(sum(len(rewards) for _, _, rewards in group) for group in groups)
    obs = torch.zeros(members, width, steps[0][0].shape[1])
    actions = torch.zeros(members, width, steps[0][1].shape[1])
    for s, group in enumerate(groups):
        n = sum(len(rewards) for _, _, rewards in group)
        obs[s, :n] = torch.as_tensor(np.concatenate([o for o, _, _ in group]))
        actions[s, :n] = torch.as_tensor(np.concatenate([a for _, a, _ in group]))
    values = q((obs - obs_mean) / obs_std, actions).double().numpy()
    out = []
    for s, group in enumerate(groups):
        ends = np.cumsum([len(rewards) for _, _, rewards in group])
        out.extend(np.split(values[s, : ends[-1]], ends[:-1]))
    return out


@torch.inference_mode()
def dataset_initial_q(
    q: SnapshotQ,
    actor: nn.Module,
    initial_states: torch.Tensor,
    obs_mean: torch.Tensor,
    obs_std: torch.Tensor,
    members: int,
) -> np.ndarray:
    """(S,): each member's mean Q(s₀, π(s₀)) over the dataset's initial states, π the evaluated policy."""
    x = ((initial_states - obs_mean) / obs_std).expand(members, -1, -1)
    return q(x, actor(x).clamp(-1.0, 1.0)).double().mean(dim=1).numpy()
