"""Continuous BCQ (Fujimoto, Meger & Precup 2019, "Off-Policy Deep Reinforcement Learning without Exploration").

Loss forms and hyperparameters of the reference code (sfujim/BCQ, ``continuous_BCQ``):

    VAE:          the behaviour model G, mean (D(s, z) − a)² + ½·KL (offrl.nets.EnsembleVAE)
    critic:       Σᵢ mean_B (Qᵢ(s, a) − y)²,
                  y = r + γ·(1 − done)·maxⱼ [λ·min(Q₁′, Q₂′)(s′, a′ⱼ) + (1 − λ)·max(Q₁′, Q₂′)(s′, a′ⱼ)],
                  a′ⱼ = ξ′(s′, G(s′)), j ≤ 10 (the next state repeated 10 times), λ = 0.75
    perturbation: −mean_B Q₁(s, ξ(s, G(s))),  ξ(s, a) = clip(a + Φ·tanh(MLP(s, a)), ±1), Φ = 0.05
    policy:       among ``policy_samples`` actions ξ(s, G(s)), the one with the highest Q₁

with latent draws clipped to ±0.5 when sampling G, τ = 0.005 targets for ξ and the critics,
400×300 networks, a 750×750 VAE with latent size 2·act_dim, and learning rates 1e-3. Evaluation
draws ``policy_samples`` = 100 candidates, as the reference's ``BCQ.py::BCQ.select_action``
(``state.repeat(100, 1)``); the paper's n is 10, 10× cheaper to evaluate.

Members: ``S`` VAEs and perturbation models, ``2S`` critics (member ``q·S + s`` is critic
``q`` of seed ``s``), all held by one :class:`offrl.nets.BCQPolicy`, the evaluation policy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.nets import BCQPolicy, adam, clipped_latent, frozen, gradient_step, seeded_init, soft_update


@dataclass
class BCQConfig:
    discount: float = 0.99
    tau: float = 0.005
    lmbda: float = 0.75  # weight of the minimum in the target's min/max mix
    phi: float = 0.05
    target_samples: int = 10
    policy_samples: int = 100
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    vae_lr: float = 1e-3
    hidden: tuple[int, ...] = (400, 300)
    vae_hidden: tuple[int, ...] = (750, 750)


class BCQ(OfflineAlgorithm):
    checkpointed = ("actor", "perturbation_target", "critic_target", "actor_opt", "critic_opt", "vae_opt")
    normalize_states = False  # raw states, as the reference

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: BCQConfig, device: torch.device
    ) -> None:
        self.config = c = config
        self.seeds = seeds = len(generators)
        self.generators = generators
        self.latent_dim = 2 * act_dim
        self.actor = BCQPolicy(
            seeds, obs_dim, act_dim, tuple(c.hidden), tuple(c.vae_hidden), self.latent_dim, c.phi, c.policy_samples
        ).to(device)
        self.vae, self.perturbation, self.critic = self.actor.vae, self.actor.perturbation, self.actor.critic
        seeded_init(generators, (self.vae, 1), (self.perturbation, 1), (self.critic, 2))
        self.perturbation_target = copy.deepcopy(self.perturbation).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.perturbation.parameters(), c.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), c.critic_lr)
        self.vae_opt = adam(self.vae.parameters(), c.vae_lr)

    def generated(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions G(s) sampled from the VAE, each seed's latents from its own generator."""
        return self.vae.decode(obs, clipped_latent(self.generators, (obs.shape[1], self.latent_dim), obs.device))

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        n, batch_size = c.target_samples, batch.obs.shape[1]
        with torch.no_grad():
            next_obs = batch.next_obs.repeat_interleave(n, dim=1)  # each next state n times in a row
            next_q = self.critic_target.heads(next_obs, self.perturbation_target(next_obs, self.generated(next_obs)), 2)
            mixed = c.lmbda * next_q.min(dim=0).values + (1.0 - c.lmbda) * next_q.max(dim=0).values
            target = (
                batch.rewards + c.discount * batch.not_done * mixed.view(self.seeds, batch_size, n).max(dim=2).values
            )
        q = self.critic.heads(batch.obs, batch.actions, 2)
        per_seed = (q - target).square().mean(dim=2).sum(dim=0)
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach()}

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            sampled = self.generated(batch.obs)
        q1 = self.critic(batch.obs, self.perturbation(batch.obs, sampled), members=slice(0, self.seeds))
        per_seed = -q1.mean(dim=1)
        return per_seed.sum(), {"actor_loss": per_seed.detach()}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss, logs = self.vae.training_loss(batch.obs, batch.actions, self.generators)
        gradient_step(self.vae_opt, loss)

        loss, critic_logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)

        with frozen(self.critic):  # the perturbation step needs ∂Q/∂a only
            loss, actor_logs = self.actor_loss(batch)
            gradient_step(self.actor_opt, loss)

        soft_update(self.critic_target, self.critic, self.config.tau)
        soft_update(self.perturbation_target, self.perturbation, self.config.tau)
        return logs | critic_logs | actor_logs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's Q₁ at (s, a), by which its policy picks among the perturbed samples."""
        return self.critic(obs, actions, members=slice(0, self.seeds))
