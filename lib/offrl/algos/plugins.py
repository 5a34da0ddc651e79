"""The TD3BC++ / BEAR++ plugins ("Taming policy constrained offline RL"), for any actor-critic.

gradient penalty (eq. 8, appendix listing): states repeated ``repeats`` = 16 times, actions
    sampled for them (uniform in the action box by default; the dataset's or the policy's,
    Figure 5), and per critic mean(ReLU(‖∇ₐQᵢ(s, a)‖₂ − k)²), k = 1; the algorithm adds
    λ_GP times it to its critic loss every N = 5 critic steps;
critic-weighted constraint relaxation (eqs. 10-12): each sample's constraint term (TD3+BC's
    BC error, BEAR's MMD) weighted by W = min-max normalised Q over the minibatch, or the raw
    Q as the appendix listing does; W is computed without gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from offrl.nets import QEnsemble, seeded_uniform

GP_ACTIONS = ("uniform", "dataset", "policy")
RELAXATIONS = (None, "minmax", "raw_q")


@dataclass
class PluginOptions:
    """The plugins' options, shared by the configs of the algorithms that take them (all off by default)."""

    # Gradient penalty weight λ_GP (0: off), its schedule (every N critic steps), repeats, k and action sampling.
    gradient_penalty: float = 0.0
    gp_every: int = 5
    gp_repeats: int = 16
    gp_threshold: float = 1.0
    gp_actions: str = "uniform"
    # Weight of each sample's constraint term: None (off), "minmax" (eq. 10) or "raw_q" (the appendix listing).
    relaxation: str | None = None

    def __post_init__(self) -> None:
        if self.gp_actions not in GP_ACTIONS:
            raise ValueError(f"gp_actions must be one of {GP_ACTIONS}, got {self.gp_actions!r}")
        if self.relaxation not in RELAXATIONS:
            raise ValueError(f"relaxation must be one of {RELAXATIONS}, got {self.relaxation!r}")


def penalty_inputs(
    obs: torch.Tensor,
    dataset_actions: torch.Tensor,
    repeats: int,
    sampling: str,
    generators: list[torch.Generator],
    policy: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (s, a) pairs the penalty is measured at: ``(S, repeats·B, ·)`` each, per seed S.

    ``uniform`` draws each seed's actions from its own generator, so a seed's numbers do not
    depend on the seeds that share its job.
    """
    obs = obs.repeat(1, repeats, 1)
    if sampling == "uniform":
        shape = (obs.shape[1], dataset_actions.shape[2])
        actions = seeded_uniform(generators, shape, obs.device) * 2.0 - 1.0
    elif sampling == "dataset":
        actions = dataset_actions.repeat(1, repeats, 1)
    elif sampling == "policy":
        with torch.no_grad():
            actions = policy(obs)
    else:
        raise ValueError(f"gradient penalty action sampling must be one of {GP_ACTIONS}, got {sampling!r}")
    return obs, actions


def gradient_penalty(
    critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor, threshold: float = 1.0
) -> torch.Tensor:
    """(M,): mean over the pairs of ReLU(‖∇ₐQₘ(s, a)‖₂ − k)² for every critic member m."""
    grad = critic.action_gradient(obs, actions)
    return torch.relu(grad.norm(dim=-1) - threshold).square().mean(dim=1)


def heads_gradient_penalty(
    critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor, heads: int, threshold: float = 1.0
) -> torch.Tensor:
    """(S,): :func:`gradient_penalty` of each of the ``heads`` critics of every seed at its pairs
    ``(S, N, ·)``, summed over the critics."""
    seeds = obs.shape[0]
    per_critic = gradient_penalty(critic, obs.repeat(heads, 1, 1), actions.repeat(heads, 1, 1), threshold)
    return per_critic.view(heads, seeds).sum(dim=0)


@torch.no_grad()
def relaxation_weight(q: torch.Tensor, mode: str = "minmax") -> torch.Tensor:
    """W from Q values ``(S, B)``: min-max normalised per seed over the minibatch (eq. 10), or Q itself ("raw_q")."""
    if mode == "raw_q":
        return q
    if mode != "minmax":
        raise ValueError(f"relaxation must be one of {RELAXATIONS}, got {mode!r}")
    low, high = q.min(dim=1, keepdim=True).values, q.max(dim=1, keepdim=True).values
    spread = high - low
    # Every Q equal: nothing to tell the actions apart, so no relaxation (W = 1).
    return torch.where(spread > 0, (q - low) / spread.clamp_min(1e-12), torch.ones_like(q))
