"""Soft Actor-Critic (Haarnoja et al. 2018) trained naively on a fixed dataset: the BEAR blog's Figure 1.

    critic:      Σᵢ mean_B (Qᵢ(s, a) − y)²,
                 y = r + γ·(1 − done)·(min(Q₁′, Q₂′)(s′, a′) − α·log π(a′ | s′)),  a′ ~ π(· | s′)
                 (without the −α·log π term when ``backup_entropy`` is False, as CQL trains)
    actor:       mean_B (α·log π(ã | s) − min(Q₁, Q₂)(s, ã)),  ã ~ π(· | s) reparameterised
    temperature: −mean_B log α·(log π(ã | s) + H̄),  target entropy H̄ = −act_dim

with the tanh-Gaussian actor of :class:`offrl.nets.TanhGaussianActor`, one update of each per
step and τ = 0.005 target updates; sizes and learning rates of the SAC paper (256×256, 3e-4).
Nothing keeps π near the data, so Q at actions the data never shows can grow without bound:
``q_mean`` (Q₁ on the batch's own pairs) is logged at every step to show it. Large finite
values are the finding and are kept; only NaN/inf stops the run (offrl.train).

Members: ``S`` actors, ``2S`` critics (member ``q·S + s`` is critic ``q`` of seed ``s``), one
temperature per seed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.nets import (
    LOG_STD_MODES,
    QEnsemble,
    TanhGaussianActor,
    adam,
    frozen,
    gradient_step,
    seeded_init,
    seeded_normal,
    soft_update,
    twin_min,
)


@dataclass
class SACConfig:
    discount: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    initial_alpha: float = 1.0
    """SAC's initial temperature"""
    hidden: tuple[int, ...] = (256, 256)
    # False: the target leaves out −α·log π(a′ | s′) (CQL's "deterministic backup").
    backup_entropy: bool = True
    # How the actor's log σ is bounded (offrl.nets.LOG_STD_MODES): "clamp" to [−5, 2], as rlkit's SAC.
    log_std: str = "clamp"

    def __post_init__(self) -> None:
        if self.log_std not in LOG_STD_MODES:
            raise ValueError(f"log_std must be one of {LOG_STD_MODES}, got {self.log_std!r}")


class SAC(OfflineAlgorithm):
    checkpointed = ("actor", "critic", "critic_target", "actor_opt", "critic_opt", "alpha_opt")
    checkpointed_values = ("log_alpha",)
    normalize_states = False  # raw states, as the online algorithm (and the blog's baseline)

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: SACConfig, device: torch.device
    ) -> None:
        self.config = config
        self.seeds = seeds = len(generators)
        self.generators = generators
        self.actor = TanhGaussianActor(seeds, obs_dim, act_dim, tuple(config.hidden), config.log_std).to(device)
        self.critic = QEnsemble(2 * seeds, obs_dim, act_dim, tuple(config.hidden)).to(device)
        seeded_init(generators, (self.actor, 1), (self.critic, 2))
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((seeds,), math.log(config.initial_alpha), device=device))
        self.target_entropy = -float(act_dim)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), config.critic_lr)
        self.alpha_opt = adam([self.log_alpha], config.alpha_lr)

    def noise(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's standard normal draws for a batch of states, each seed's from its own generator."""
        return seeded_normal(self.generators, (obs.shape[1], self.actor.spec["act_dim"]), obs.device)

    def twin_min(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): min(Q₁, Q₂) of each seed (Fisher-BRC adds log μ to both)."""
        return twin_min(critic, obs, actions)

    def action_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): what the actor maximises besides its entropy, min(Q₁, Q₂); a constrained variant adds its penalty."""
        return self.twin_min(self.critic, obs, actions)

    def td_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(S,): Σᵢ mean_B (Qᵢ(s, a) − y)², and Q at the batch's pairs (2, S, B)."""
        with torch.no_grad():
            next_action, _, next_log_prob = self.actor.sample(batch.next_obs, self.noise(batch.next_obs))
            next_value = self.twin_min(self.critic_target, batch.next_obs, next_action)
            if self.config.backup_entropy:
                next_value = next_value - self.log_alpha.exp()[:, None] * next_log_prob
            target = batch.rewards + self.config.discount * batch.not_done * next_value
        q = self.critic.heads(batch.obs, batch.actions, 2)
        return (q - target).square().mean(dim=2).sum(dim=0), q

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_seed, q = self.td_loss(batch)
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach()}

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The loss, log π(ã | s) of the sampled actions (S, B) for the temperature, and logs."""
        alpha = self.log_alpha.exp().detach()[:, None]
        action, _, log_prob = self.actor.sample(batch.obs, self.noise(batch.obs))
        per_seed = (alpha * log_prob - self.action_value(batch.obs, action)).mean(dim=1)
        return (
            per_seed.sum(),
            log_prob.detach(),
            {"actor_loss": per_seed.detach(), "entropy": -log_prob.mean(dim=1).detach()},
        )

    def temperature_loss(self, log_prob: torch.Tensor) -> torch.Tensor:
        """α rises while the policy's entropy is below the target, falls while above."""
        return -(self.log_alpha[:, None] * (log_prob + self.target_entropy)).mean(dim=1).sum()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss, logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)
        return logs | self.actor_update(batch)

    def actor_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The actor's and the temperature's steps, then the target critics' Polyak update."""
        with frozen(self.critic):  # the actor step needs ∂Q/∂a only
            loss, log_prob, actor_logs = self.actor_loss(batch)
            gradient_step(self.actor_opt, loss)

        loss = self.temperature_loss(log_prob)
        gradient_step(self.alpha_opt, loss)

        soft_update(self.critic_target, self.critic, self.config.tau)
        return actor_logs | {"alpha": self.log_alpha.exp().detach()}

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions a ~ π(· | s) to execute while collecting data online, ``(S, B, act_dim)``."""
        return self.actor.sample(obs, self.noise(obs))[0]

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's min(Q₁, Q₂) at (s, a), the value its actor maximises."""
        return self.twin_min(self.critic, obs, actions)
