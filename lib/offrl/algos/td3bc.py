"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning").

TD3 with a behaviour-cloning term in the actor loss, on states normalised by the dataset's
mean and std. Hyperparameters and loss forms follow the reference code (sfujim/TD3_BC):

    critic:  Σᵢ mean_B (Qᵢ(s, a) − y)²,
             y = r + γ·(1 − done)·min(Q₁′, Q₂′)(s′, clip(π′(s′) + clip(ε, ±0.5), ±1)), ε ~ N(0, 0.2²)
    actor:   −λ·mean_B Q₁(s, π(s)) + mean_{B, act} (π(s) − a)²,   λ = α / mean_B |Q₁(s, π(s))| (detached)

every ``policy_freq`` = 2 critic steps, with τ = 0.005 target updates. Without the BC term
(``behavior_cloning=False``) this is TD3 itself, which ``offrl.online`` trains online. The BC term is the mean
over batch and action dimensions (``F.mse_loss`` in the reference), not a summed norm.

Guided TD3+BC (Verma et al., eq. 2) is an option: with a safety expert π_T and a SimHash
index, the critic target becomes y − (1 − conf(s))·‖a − π_T(s)‖², the squared norm summed
over action dimensions (the paper does not say; we sum). conf ≡ 1 is plain TD3+BC.
Section 3 also says "we include a regularization term to push the offline policy towards the
safety expert in states with poor confidence". The paper gives no such term and ends its method
with eq. 2 ("This completes the description of our framework"), after calling what eq. 2 does
"the push towards the safety expert": we read the sentence as describing eq. 2, so the default
is eq. 2 alone. The actor-side reading is the option ``actor_guidance`` = w > 0, which adds
w·mean_B (1 − conf(s))·‖π(s) − π_T(s)‖² (summed over action dimensions, as in the target) to
the actor loss.

TD3BC++ (the "Taming policy constrained offline RL" paper) adds the two plugins of
:mod:`offrl.algos.plugins`, both options: a gradient penalty λ_GP·Σᵢ mean(ReLU(‖∇ₐQᵢ‖₂ − k)²)
added to the critic loss every ``gp_every`` = 5 critic steps, on the batch's states repeated
``gp_repeats`` = 16 times with ``gp_actions`` (uniform in the action box, or the dataset's or the
policy's); and critic-weighted constraint relaxation, each sample's BC term weighted by
W(s, a) = min-max normalised mean-of-critics Q over the minibatch (``relaxation="minmax"``,
eqs. 10, 12) or the raw Q (``"raw_q"``, the appendix listing), detached.

Every tensor carries a leading member dimension: ``S`` seeds train together as ``S`` actors
and ``2S`` critics (member ``q·S + s`` is critic ``q`` of seed ``s``), each seed with its own
minibatches and noise (see :mod:`offrl.train`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.algos.plugins import PluginOptions, heads_gradient_penalty, penalty_inputs, relaxation_weight
from offrl.data import Dataset
from offrl.nets import (
    DeterministicActor,
    QEnsemble,
    adam,
    frozen,
    gradient_step,
    seeded_init,
    seeded_normal,
    soft_update,
    twin_min,
)
from offrl.policies import NumpyActor, load_actor
from offrl.simhash import SimHashIndex


@dataclass
class TD3BCConfig(PluginOptions):  # and the TD3BC++ plugins' options (off by default)
    alpha: float = 2.5
    discount: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    # False: no BC term, the actor ascends Q₁ alone; that is TD3, which trains the behaviour policies.
    behavior_cloning: bool = True
    # Guided TD3+BC: the safety expert's actor (.pt) and the dataset's SimHash index (.npz).
    guide_expert: str | None = None
    guide_index: str | None = None
    # Guided TD3+BC, the actor-side reading of section 3: weight of (1 − conf(s))·‖π(s) − π_T(s)‖² in the actor loss;
    # 0 = eq. 2 alone.
    actor_guidance: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.guide_expert is None) != (self.guide_index is None):
            raise ValueError("Guided TD3+BC needs both guide_expert and guide_index")
        if self.actor_guidance < 0:
            raise ValueError(f"actor_guidance must be ≥ 0, got {self.actor_guidance}")
        if self.actor_guidance > 0 and self.guide_expert is None:
            raise ValueError("actor_guidance needs Guided TD3+BC's guide_expert and guide_index")


class TD3BC(OfflineAlgorithm):
    checkpointed = ("actor", "critic", "actor_target", "critic_target", "actor_opt", "critic_opt")
    checkpointed_values = ("updates",)
    normalize_states = True

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: TD3BCConfig, device: torch.device
    ) -> None:
        self.config = config
        self.seeds = seeds = len(generators)
        self.generators = generators
        self.actor = DeterministicActor(seeds, obs_dim, act_dim, tuple(config.hidden)).to(device)
        self.critic = QEnsemble(2 * seeds, obs_dim, act_dim, tuple(config.hidden)).to(device)
        seeded_init(generators, (self.actor, 1), (self.critic, 2))
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), config.critic_lr)
        self.updates = 0

    def per_transition(self, dataset: Dataset) -> dict[str, np.ndarray]:
        """For the guided target: conf(s) and the safety expert's action π_T(s) at every dataset state."""
        if self.config.guide_expert is None:
            return {}
        index = SimHashIndex.load(self.config.guide_index)
        expert = NumpyActor(load_actor(self.config.guide_expert))
        chunks = range(0, len(dataset), 65536)
        return {
            "conf": index.conf(dataset.observations),
            "expert_action": np.concatenate([expert(dataset.observations[i : i + 65536]) for i in chunks]),
        }

    def target_noise(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Target policy smoothing noise, each seed's slice from its own generator."""
        c = self.config
        noise = seeded_normal(self.generators, shape[1:], device)
        return (noise * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        with torch.no_grad():
            next_action = (
                self.actor_target(batch.next_obs) + self.target_noise(batch.actions.shape, batch.actions.device)
            ).clamp(-1.0, 1.0)
            target = batch.rewards + c.discount * batch.not_done * twin_min(
                self.critic_target, batch.next_obs, next_action
            )
            logs = {}
            if "conf" in batch.extras:
                # Guided TD3+BC: where the data is thin (low conf), values of actions away from the expert's drop.
                distance = (batch.actions - batch.extras["expert_action"]).square().sum(dim=-1)
                guidance = (1.0 - batch.extras["conf"]) * distance
                target = target - guidance
                logs["guidance_mean"] = guidance.mean(dim=1)
        q = self.critic.heads(batch.obs, batch.actions, 2)
        per_seed = (q - target).square().mean(dim=2).sum(dim=0)  # (S,): Σᵢ mean_B (Qᵢ − y)²
        if c.gradient_penalty > 0 and self.updates % c.gp_every == 0:
            penalty = self.gradient_penalty(batch)
            per_seed = per_seed + c.gradient_penalty * penalty
            logs["gradient_penalty"] = penalty.detach()
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach(), **logs}

    def gradient_penalty(self, batch: Batch) -> torch.Tensor:
        """(S,): Σᵢ mean over repeated states of ReLU(‖∇ₐQᵢ(s, a)‖₂ − k)², for both critics i."""
        c = self.config
        obs, actions = penalty_inputs(batch.obs, batch.actions, c.gp_repeats, c.gp_actions, self.generators, self.actor)
        return heads_gradient_penalty(self.critic, obs, actions, 2, c.gp_threshold)

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pi = self.actor(batch.obs)
        q1 = self.critic(batch.obs, pi, members=slice(0, self.seeds))  # (S, B): each seed's Q₁
        if not self.config.behavior_cloning:
            per_seed = -q1.mean(dim=1)
            return per_seed.sum(), {"actor_loss": per_seed.detach()}
        lmbda = self.config.alpha / q1.abs().mean(dim=1, keepdim=True).detach()
        squared_error = (pi - batch.actions).square().mean(dim=2)  # (S, B)
        logs = {}
        if self.config.relaxation is not None:
            weight = self.relaxation_weight(batch)
            bc = (weight * squared_error).mean(dim=1)
            logs["relaxation_weight_mean"] = weight.mean(dim=1)
        else:
            bc = squared_error.mean(dim=1)
        per_seed = -(lmbda * q1).mean(dim=1) + bc
        if self.config.actor_guidance > 0:
            # The actor-side reading of Guided TD3+BC: towards π_T where the data is thin.
            distance = (pi - batch.extras["expert_action"]).square().sum(dim=2)  # (S, B)
            guidance = ((1.0 - batch.extras["conf"]) * distance).mean(dim=1)
            per_seed = per_seed + self.config.actor_guidance * guidance
            logs["actor_guidance"] = guidance.detach()
        return per_seed.sum(), {
            "actor_loss": per_seed.detach(),
            "bc_mse": squared_error.mean(dim=1).detach(),
            "lambda": lmbda[:, 0],
            **logs,
        }

    @torch.no_grad()
    def relaxation_weight(self, batch: Batch) -> torch.Tensor:
        """(S, B): W(s, a) from the mean of both critics at the dataset's (s, a); no gradient flows through it."""
        q = self.critic.heads(batch.obs, batch.actions, 2).mean(dim=0)
        return relaxation_weight(q, self.config.relaxation)

    def capture_variant(self, update: int) -> tuple[bool, bool]:
        """The branches the ``update``-th update takes (offrl.capture): the actor's step, the gradient penalty."""
        c = self.config
        return update % c.policy_freq == 0, c.gradient_penalty > 0 and update % c.gp_every == 0

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1  # counts from 1, as total_it in the reference: the actor and the penalty run on its multiples
        loss, logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)

        if self.updates % self.config.policy_freq == 0:
            with frozen(self.critic):  # the actor step needs ∂Q/∂a only
                loss, actor_logs = self.actor_loss(batch)
                gradient_step(self.actor_opt, loss)
            logs |= actor_logs
            soft_update(self.critic_target, self.critic, self.config.tau)
            soft_update(self.actor_target, self.actor, self.config.tau)
        return logs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's first critic at (s, a)."""
        return self.critic(obs, actions, members=slice(0, self.seeds))
