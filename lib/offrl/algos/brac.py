"""BRAC-p and BRAC-v (Wu, Tucker & Nachum 2019, "Behavior Regularized Offline Reinforcement Learning").

A behaviour model μ is fitted first; the actor then maximises Q minus α times a sampled
estimate of KL(π(· | s) ‖ μ(· | s)), and BRAC-v subtracts the same penalty inside the value
target (a "value penalty"); BRAC-p only in the policy (``value_penalty=False``):

    μ:       a tanh-Gaussian fitted alone for the run's first ``pretrain_fraction`` (offrl.algos.behaviour)
    D̂(s):    (1/n)·Σⱼ [log π(ãⱼ | s) − log μ(clip(ãⱼ) | s)],  ãⱼ ~ π(· | s) reparameterised, n = 4
    critic:  Σᵢ mean_B (Qᵢ(s, a) − y)²,
             y = r + γ·(1 − done)·(minᵢ Q′ᵢ(s′, a′) − α·D̂(s′)),  a′ ~ π(· | s′)      (BRAC-v)
             y = r + γ·(1 − done)·minᵢ Q′ᵢ(s′, a′)                                   (BRAC-p)
    actor:   mean_B (α·D̂(s) − minᵢ Qᵢ(s, ã)),  ã ~ π(· | s);  α·D̂(s) alone during the warm-up

with α fixed. Reference version: google-research ``behavior_regularized_offline_rl``
(``brac_primal_agent.py``, ``run_primal.sh``, ``run_bc.sh``, ``divergences.py``): KL with
n = 4 samples, α = 0.1 (``run_primal.sh``), actions clipped to ±(1 − 10⁻³) inside log μ,
two Q-functions and their minimum (``ensemble_q_lambda`` = 1), no entropy term
(``alpha_entropy`` = 0), critics 300×300 at learning rate 1e-3, actor 200×200 at 3e-4,
τ = 0.005, 20k warm-up steps of 500k; μ 200×200 at 5e-4 for 300k steps, hence
``pretrain_fraction`` = 0.375 (300k of 800k) and ``warmup_fraction`` = 0.04 of the RL phase.
The snapshots taken during the behaviour phase hold the untrained actor. Evaluation uses
tanh(mean(s)), the reference's ``DeterministicSoftPolicy``.

log σ of π and μ is squashed into [−5, 0] as the reference's ``networks.py::ActorNetwork._get_outputs``:
log σ = −5 + 2.5·(tanh(x) + 1) (``log_std="tanh"``; ``"clamp"``, clamp(x, −5, 2), is the shared actor's).

Departures: no weight decay (the reference's default is 0 too). At a 1M-step run the phases are
375k behaviour steps and 625k RL steps (the reference: 300k and 500k, two runs).

Members: ``S`` actors and behaviour models, ``2S`` critics (member ``i·S + s`` is critic ``i``
of seed ``s``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.algos.behaviour import BehaviourCloning
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

CLIP = 1e-3  # actions are clipped to ±(1 − CLIP) inside log μ, as the reference's CLIP_EPS


@dataclass
class BRACConfig:
    value_penalty: bool = True  # BRAC-v; False: BRAC-p
    alpha: float = 0.1
    kl_samples: int = 4
    discount: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    behaviour_lr: float = 5e-4
    actor_hidden: tuple[int, ...] = (200, 200)
    critic_hidden: tuple[int, ...] = (300, 300)
    behaviour_hidden: tuple[int, ...] = (200, 200)
    pretrain_fraction: float = 0.375
    warmup_fraction: float = 0.04
    log_std: str = "tanh"  # of π and μ (offrl.nets.LOG_STD_MODES)

    def __post_init__(self) -> None:
        if self.log_std not in LOG_STD_MODES:
            raise ValueError(f"log_std must be one of {LOG_STD_MODES}, got {self.log_std!r}")
        if not 0.0 <= self.pretrain_fraction < 1.0:
            raise ValueError(f"pretrain_fraction must be in [0, 1), got {self.pretrain_fraction}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")


class BRAC(OfflineAlgorithm):
    checkpointed = ("actor", "critic", "critic_target", "behaviour", "actor_opt", "critic_opt")
    checkpointed_values = ("updates",)
    normalize_states = False  # raw states, as the reference

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: BRACConfig, device: torch.device
    ) -> None:
        self.config = c = config
        self.seeds = seeds = len(generators)
        self.generators = generators
        self.act_dim = act_dim
        self.actor = TanhGaussianActor(seeds, obs_dim, act_dim, tuple(c.actor_hidden), c.log_std).to(device)
        self.critic = QEnsemble(2 * seeds, obs_dim, act_dim, tuple(c.critic_hidden)).to(device)
        model = TanhGaussianActor(seeds, obs_dim, act_dim, tuple(c.behaviour_hidden), c.log_std).to(device)
        seeded_init(generators, (self.actor, 1), (self.critic, 2), (model, 1))
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.behaviour = BehaviourCloning(model, generators, act_dim, c.behaviour_lr, CLIP)
        self.actor_opt = adam(self.actor.parameters(), c.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), c.critic_lr)
        self.updates = 0
        self.pretrain_steps = self.warmup_steps = 0

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: μ alone first, then the actor's warm-up within the rest."""
        self.pretrain_steps = round(self.config.pretrain_fraction * total_steps)
        self.warmup_steps = round(self.config.warmup_fraction * (total_steps - self.pretrain_steps))

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ã ~ π(· | s) reparameterised and log π(ã | s), each seed's noise from its own generator."""
        action, _, log_prob = self.actor.sample(
            obs, seeded_normal(self.generators, (obs.shape[1], self.act_dim), obs.device)
        )
        return action, log_prob

    def twin_min(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): min(Q₁, Q₂) of each seed."""
        return twin_min(critic, obs, actions)

    def divergence(self, obs: torch.Tensor) -> torch.Tensor:
        """(S, B): D̂(s), the KL estimate from ``kl_samples`` actions of π at each state."""
        n = self.config.kl_samples
        repeated = obs.repeat_interleave(n, dim=1)  # each state n times in a row
        action, log_pi = self.sample(repeated)
        log_mu = self.behaviour.model.log_prob(repeated, action, CLIP)
        return (log_pi - log_mu).view(self.seeds, -1, n).mean(dim=2)

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        logs = {}
        with torch.no_grad():
            value = self.twin_min(self.critic_target, batch.next_obs, self.sample(batch.next_obs)[0])
            if c.value_penalty:
                penalty = c.alpha * self.divergence(batch.next_obs)
                value = value - penalty
                logs["value_penalty"] = penalty.mean(dim=1)
            target = batch.rewards + c.discount * batch.not_done * value
        q = self.critic.heads(batch.obs, batch.actions, 2)
        per_seed = (q - target).square().mean(dim=2).sum(dim=0)
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach(), **logs}

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        divergence = self.divergence(batch.obs)
        per_sample = self.config.alpha * divergence
        if self.updates > self.pretrain_steps + self.warmup_steps:
            per_sample = per_sample - self.twin_min(self.critic, batch.obs, self.sample(batch.obs)[0])
        per_seed = per_sample.mean(dim=1)
        return per_seed.sum(), {"actor_loss": per_seed.detach(), "kl": divergence.mean(dim=1).detach()}

    def capture_variant(self, update: int) -> tuple[bool, bool]:
        """The branches the ``update``-th update takes (offrl.capture): the behaviour model's phase, the actor's Q
        term."""
        return update <= self.pretrain_steps, update > self.pretrain_steps + self.warmup_steps

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        if self.updates <= self.pretrain_steps:
            return self.behaviour.step(batch.obs, batch.actions)
        self.behaviour.model.requires_grad_(False)  # fitted: from here on only ∂ log μ/∂a flows

        loss, logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)

        with frozen(self.critic):  # the actor step needs ∂Q/∂a only
            loss, actor_logs = self.actor_loss(batch)
            gradient_step(self.actor_opt, loss)

        soft_update(self.critic_target, self.critic, self.config.tau)
        return logs | actor_logs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's min(Q₁, Q₂) at (s, a), the value its actor maximises (the Q diagnostic)."""
        return self.twin_min(self.critic, obs, actions)
