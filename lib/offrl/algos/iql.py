"""Implicit Q-Learning (Kostrikov, Nair, Levine 2021, "Offline Reinforcement Learning with Implicit Q-Learning").

No action outside the dataset is ever evaluated: V is an upper expectile of the target Q over the
data's actions, Q regresses onto r + γ·V(s′), and the actor is advantage-weighted behaviour cloning:

    value:   mean_B L₂^τ(min(Q̂₁, Q̂₂)(s, a) − V(s)),   L₂^τ(u) = |τ − 1(u < 0)|·u²,  τ = 0.7        (eq. 5)
    critic:  Σᵢ mean_B (Qᵢ(s, a) − r − γ·(1 − done)·V(s′))²                                    (eq. 6)
    actor:   mean_B min(exp(β·(min(Q̂₁, Q̂₂)(s, a) − V(s))), 100) · ℓ(s, a),  β = 3                (eq. 7)
             ℓ = −log N(a; tanh(μ(s)), σ²) for the Gaussian actor (``actor="gaussian"``, σ one learned
             value per action dimension, log σ clamped to [−5, 2]); ℓ = Σ_act (tanh(μ(s)) − a)²
             for the deterministic one (``actor="deterministic"``, CORL's ``iql_deterministic``)

with Q̂ the target critics (Polyak τ_target = 0.005). One step of each per minibatch in the order of
the reference (ikostrikov/implicit_q_learning, ``learner.py``): V, then the actor with the new V,
then Q with the new V, then the targets. The actor's learning rate decays from 3e-4 to 0 along a
cosine over the run (``optax.cosine_decay_schedule`` there, over its 1M steps; here over the run's
length, which the training loop tells :meth:`IQL.plan`). Rewards are scaled by
1000 / (max − min episode return) of the dataset (``normalize_rewards``), as the reference's
``train_offline.py`` (``normalize``) does for the locomotion tasks: the advantages, and so the weights exp(β·A),
then mean the same at any reward scale. Hyperparameters of the reference's MuJoCo configuration
(``configs/mujoco_config.py``): expectile 0.7, temperature β = 3, learning rates 3e-4, two hidden layers of 256,
batch 256, no dropout; the Gaussian actor with a tanh mean and a state-independent σ (``NormalTanhPolicy`` with
``state_dependent_std=False, tanh_squash_distribution=False``), evaluated at its mean.

Departures: states normalised by the dataset's mean and std (CORL's ``normalize: true``; the reference
does not); ``nn.Linear``'s initialisation, not the reference's orthogonal one; the target critics start
as copies of the critics (as both references).

Members: ``S`` actors (the mean, an :class:`offrl.nets.DeterministicActor`, which is also the
evaluation policy) with one log σ row each, ``S`` value networks, ``2S`` critics (member ``q·S + s``
is critic ``q`` of seed ``s``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.data import Dataset
from offrl.nets import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    DeterministicActor,
    EnsembleMLP,
    QEnsemble,
    adam,
    gradient_step,
    seeded_init,
    soft_update,
    twin_min,
)

ACTORS = ("gaussian", "deterministic")


@dataclass
class IQLConfig:
    expectile: float = 0.7  # τ
    beta: float = 3.0  # inverse temperature of the advantage weights
    max_weight: float = 100.0
    discount: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    value_lr: float = 3e-4
    critic_lr: float = 3e-4
    cosine_actor_lr: bool = True
    actor: str = "gaussian"
    normalize_rewards: bool = True
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        if self.actor not in ACTORS:
            raise ValueError(f"actor must be one of {ACTORS}, got {self.actor!r}")
        if not 0.0 < self.expectile < 1.0:
            raise ValueError(f"expectile must be in (0, 1), got {self.expectile}")


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """L₂^τ(u) = |τ − 1(u < 0)|·u², elementwise."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.square()


def advantage_weight(advantage: torch.Tensor, beta: float, max_weight: float) -> torch.Tensor:
    """min(exp(β·A), max_weight), elementwise."""
    return torch.exp(beta * advantage).clamp(max=max_weight)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mean, exp(log_std)²) summed over the last (action) dimension."""
    return (-0.5 * ((actions - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)


def reward_scale(dataset: Dataset) -> float:
    """1000 / (max − min episode return); 1 when every episode returns the same."""
    returns = dataset.episode_returns()
    spread = float(returns.max() - returns.min()) if len(returns) else 0.0
    return 1000.0 / spread if spread > 0 else 1.0


class IQL(OfflineAlgorithm):
    checkpointed = ("actor", "value", "critic", "critic_target", "actor_opt", "value_opt", "critic_opt")
    checkpointed_values = ("log_std", "updates")
    normalize_states = True

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: IQLConfig, device: torch.device
    ) -> None:
        self.config = c = config
        self.seeds = seeds = len(generators)
        self.actor = DeterministicActor(seeds, obs_dim, act_dim, tuple(c.hidden)).to(device)
        self.value = EnsembleMLP(seeds, obs_dim, 1, tuple(c.hidden)).to(device)
        self.critic = QEnsemble(2 * seeds, obs_dim, act_dim, tuple(c.hidden)).to(device)
        seeded_init(generators, (self.actor, 1), (self.value, 1), (self.critic, 2))
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_std = nn.Parameter(torch.zeros(seeds, 1, act_dim, device=device))
        actor_params = (
            [*self.actor.parameters(), self.log_std] if c.actor == "gaussian" else list(self.actor.parameters())
        )
        # The actor's rate and the update count live on the device, so a captured update (offrl.capture) follows the
        # cosine.
        self.actor_opt = adam(actor_params, torch.tensor(c.actor_lr, device=device))
        self.value_opt = adam(self.value.parameters(), c.value_lr)
        self.critic_opt = adam(self.critic.parameters(), c.critic_lr)
        self.updates = torch.zeros((), dtype=torch.float64, device=device)
        self.total_steps: int | None = None  # the cosine's length; None until plan() (a constant rate)

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: the actor's learning rate reaches 0 at its end."""
        self.total_steps = total_steps

    def per_transition(self, dataset: Dataset) -> dict[str, np.ndarray]:
        """The rewards the losses use: scaled by 1000 / (max − min episode return), or as they are."""
        if not self.config.normalize_rewards:
            return {}
        return {"scaled_reward": dataset.rewards * reward_scale(dataset)}

    def actor_lr(self) -> torch.Tensor:
        """The actor's rate at this update, a 0-dim tensor: ½·lr·(1 + cos(π·t/T)), t = 0 at the first update."""
        c = self.config
        if not c.cosine_actor_lr or self.total_steps is None:
            return torch.full_like(self.updates, c.actor_lr)
        progress = (self.updates - 1).clamp(max=self.total_steps) / self.total_steps
        return 0.5 * c.actor_lr * (1.0 + torch.cos(math.pi * progress))

    def target_q(self, batch: Batch) -> torch.Tensor:
        """(S, B): min(Q̂₁, Q̂₂) at the dataset's pairs."""
        return twin_min(self.critic_target, batch.obs, batch.actions)

    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs).squeeze(-1)

    def value_loss(self, batch: Batch, target_q: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_seed = expectile_loss(target_q - self.state_value(batch.obs), self.config.expectile).mean(dim=1)
        return per_seed.sum(), {"value_loss": per_seed.detach()}

    def behaviour_loss(self, batch: Batch) -> torch.Tensor:
        """(S, B): ℓ(s, a), the negative log-likelihood of the data's action or its squared error."""
        mean = self.actor(batch.obs)
        if self.config.actor == "deterministic":
            return (mean - batch.actions).square().sum(dim=-1)
        log_std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        return -gaussian_log_prob(batch.actions, mean, log_std)

    def actor_loss(self, batch: Batch, target_q: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        with torch.no_grad():
            advantage = target_q - self.state_value(batch.obs)
            weight = advantage_weight(advantage, c.beta, c.max_weight)
        per_seed = (weight * self.behaviour_loss(batch)).mean(dim=1)
        return per_seed.sum(), {
            "actor_loss": per_seed.detach(),
            "advantage_mean": advantage.mean(dim=1),
            "weight_mean": weight.mean(dim=1),
        }

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rewards = batch.extras.get("scaled_reward", batch.rewards)
        with torch.no_grad():
            target = rewards + self.config.discount * batch.not_done * self.state_value(batch.next_obs)
        q = self.critic.heads(batch.obs, batch.actions, 2)
        per_seed = (q - target).square().mean(dim=2).sum(dim=0)
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach()}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        with torch.no_grad():
            target_q = self.target_q(batch)
        loss, logs = self.value_loss(batch, target_q)
        gradient_step(self.value_opt, loss)

        self.actor_opt.param_groups[0]["lr"].copy_(self.actor_lr())  # in place: a captured graph reads it there
        loss, actor_logs = self.actor_loss(batch, target_q)
        gradient_step(self.actor_opt, loss)

        loss, critic_logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)
        soft_update(self.critic_target, self.critic, self.config.tau)
        return logs | actor_logs | critic_logs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's first critic at (s, a)."""
        return self.critic(obs, actions, members=slice(0, self.seeds))
