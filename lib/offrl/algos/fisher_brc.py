"""Fisher-BRC (Kostrikov, Tompson, Fergus & Nachum 2021, "Offline Reinforcement Learning with Fisher Divergence Critic
Regularization").

The critic is an offset from the log-density of a behaviour model μ fitted first,
Q(s, a) = O(s, a) + log μ(a | s), and the offset's action gradient is penalised at the
policy's actions (the Fisher divergence between π and the Boltzmann policy of Q, to first order):

    μ:       a mixture of 5 tanh-Gaussians per action dimension (offrl.nets.TanhGaussianMixture),
             fitted alone for the run's first ``pretrain_fraction`` (offrl.algos.behaviour)
    critic:  Σᵢ mean_B (Oᵢ(s, a) + log μ(a | s) − y)² + λ·mean_B Σᵢ ‖∇ₐ Oᵢ(s, ã)‖²,   ã ~ π(· | s)
             y = r + b + γ·(1 − done)·minᵢ [O′ᵢ(s′, a′) + log μ(a′ | s′)],   a′ ~ π(· | s′)
    actor:   mean_B (α·log π(ã | s) − minᵢ [Oᵢ(s, ã) + log μ(ã | s)]),   ã ~ π(· | s) reparameterised
    α:       SAC's temperature, target entropy −act_dim (offrl.algos.sac)

Reference version: google-research ``fisher_brc`` (``fisher_brc.py``, ``train_eval_offline.py``):
λ = ``f_reg`` = 0.1 (the ``--f_reg`` flag's default; the TD3BC++ paper's Table 6 takes 1 for the gym tasks,
config/paper.yaml's ``env_options``), reward bonus b = 5 (their "CQL style" bonus), 256×256×256 actor and
critics, learning rates 3e-4, τ = 0.005, no entropy term in the target; the behaviour model
256×256 with learning rate 1e-3, divided by 10 at 80% and by 100 at 90% of its phase; 1M
behaviour steps then 1M RL steps (``bc_pretraining_steps``, ``num_updates``), hence
``pretrain_fraction`` = 0.5 of the run: the reference's phases are those of a 2M-step run, a 1M-step
run has 500k + 500k. The snapshots
taken during the behaviour phase hold the untrained actor. Evaluation uses tanh(mean(s)), as
the reference's ``act``.

Departures: nn.Linear's initialisation instead of orthogonal; the actor's log σ clamped to
[−5, 2] (the shared actor) instead of [−20, 2]; α descends log α·(…) as our SAC, where the
reference descends α·(…) (same fixed point); the gradient penalty is the plugins' one with
threshold 0, ReLU(‖∇‖ − 0)² = ‖∇‖².

Members: ``S`` actors and behaviour models, ``2S`` offsets (member ``i·S + s`` is offset ``i``
of seed ``s``), one temperature per seed for each of π and μ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offrl.algos.base import Batch
from offrl.algos.behaviour import BehaviourCloning
from offrl.algos.plugins import heads_gradient_penalty
from offrl.algos.sac import SAC, SACConfig
from offrl.nets import QEnsemble, TanhGaussianMixture, seeded_init

CLIP = 1e-6  # actions are clipped to ±(1 − CLIP) inside log μ, as the reference


@dataclass
class FisherBRCConfig(SACConfig):
    hidden: tuple[int, ...] = (256, 256, 256)
    f_reg: float = 0.1
    reward_bonus: float = 5.0
    components: int = 5
    behaviour_hidden: tuple[int, ...] = (256, 256)
    behaviour_lr: float = 1e-3
    pretrain_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.pretrain_fraction < 1.0:
            raise ValueError(f"pretrain_fraction must be in [0, 1), got {self.pretrain_fraction}")


class FisherBRC(SAC):
    checkpointed = (*SAC.checkpointed, "behaviour")
    checkpointed_values = (*SAC.checkpointed_values, "updates")

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        generators: list[torch.Generator],
        config: FisherBRCConfig,
        device: torch.device,
    ) -> None:
        super().__init__(obs_dim, act_dim, generators, config, device)
        model = TanhGaussianMixture(self.seeds, obs_dim, act_dim, config.components, tuple(config.behaviour_hidden)).to(
            device
        )
        seeded_init(generators, (model, 1))
        self.behaviour = BehaviourCloning(model, generators, act_dim, config.behaviour_lr, CLIP)
        self.updates = 0
        self.pretrain_steps = 0

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: μ alone is fitted for its first ``pretrain_fraction``."""
        self.pretrain_steps = round(self.config.pretrain_fraction * total_steps)

    def behaviour_lr(self, update: int) -> float:
        """The ``update``-th update's rate, the reference's piecewise-constant schedule, at 80% and 90% of the behaviour
        phase."""
        progress = (update - 1) / self.pretrain_steps
        return self.config.behaviour_lr * (1.0 if progress < 0.8 else 0.1 if progress < 0.9 else 0.01)

    def twin_min(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): minᵢ Qᵢ = minᵢ Oᵢ + log μ(a | s); SAC's actor loss then is Fisher-BRC's."""
        return super().twin_min(critic, obs, actions) + self.behaviour.model.log_prob(obs, actions, CLIP)

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        with torch.no_grad():
            next_action = self.actor.sample(batch.next_obs, self.noise(batch.next_obs))[0]
            target = (
                batch.rewards
                + c.reward_bonus
                + c.discount * batch.not_done * self.twin_min(self.critic_target, batch.next_obs, next_action)
            )
            log_mu = self.behaviour.model.log_prob(batch.obs, batch.actions, CLIP)
            policy_action = self.actor.sample(batch.obs, self.noise(batch.obs))[0]
        q = self.critic.heads(batch.obs, batch.actions, 2) + log_mu
        per_seed = (q - target).square().mean(dim=2).sum(dim=0)
        penalty = heads_gradient_penalty(self.critic, batch.obs, policy_action, 2, threshold=0.0)
        per_seed = per_seed + c.f_reg * penalty
        return per_seed.sum(), {
            "critic_loss": per_seed.detach(),
            "q_mean": q[0].mean(dim=1).detach(),
            "gradient_penalty": penalty.detach(),
        }

    def capture_variant(self, update: int) -> float | None:
        """The branch the ``update``-th update takes (offrl.capture): the behaviour phase at its rate, or the rest."""
        return self.behaviour_lr(update) if update <= self.pretrain_steps else None

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        if self.updates <= self.pretrain_steps:
            return self.behaviour.step(batch.obs, batch.actions, self.behaviour_lr(self.updates))
        self.behaviour.model.requires_grad_(False)  # fitted: from here on only ∂ log μ/∂a flows
        return super().update(batch)
