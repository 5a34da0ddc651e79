"""UWAC (Wu, Zhai, Srivastava, Susskind, Zhang, Salakhutdinov & Goh 2021, "Uncertainty Weighted Actor-Critic for Offline
Reinforcement Learning").

BEAR (offrl.algos.bear, whose losses this reuses) with MC-dropout critics: every critic
evaluation drops hidden units at rate p, the variance of Q over K dropout passes measures how
far a pair is from the data, and the critic and actor losses down-weight uncertain pairs:

    critic:  Σₖ mean_B (w(s′)·(Qₖ(s, a) − y))² = Σₖ mean_B w(s′)²·(Qₖ(s, a) − y)²  (``critic_weighting="error"``,
             the reference's ``((qf1_pred - target_Q) * weight).pow(2)``), or Σₖ mean_B w(s′)·(Qₖ(s, a) − y)²
             (``"squared_error"``, the paper's eq.); Qₖ one dropout pass, y BEAR's target with each Q′ₖ
             the mean of K passes; w(s′) = w(maxⱼ Σₖ Var Q′ₖ(s′, a′ⱼ)) over BEAR's sampled next actions
    actor:   mean_B [−w(s, ã)·minₖ Q̄ₖ(s, ã) + α·MMD(s)],  Q̄ₖ the mean of K passes at the first of
             the n policy samples ã, w from Σₖ Var Qₖ(s, ã) (no gradient through w; applied once)
    w(v):    clip(exp(−β·v), w_min, w_max)  (``weighting="exp"``, the reference's default
             ``--use_exp_weight True``, ``uwac_dropout.py::_get_weight``), or
             clip(β / v, w_min, w_max)  (``"inverse"``, the paper's)

Reference version: apple/ml-uwac, which the TD3BC++ paper ran "with default hyperparameters"
(``rlkit/torch/sac/uwac_dropout.py::UWACTrainer``, ``examples/UWAC_hdf5_d4rl.py``): dropout 0.1
after every hidden ReLU of 256×256 critics, on at all times (target critics and evaluation too),
K = 100 passes (``multiple``'s default), β = 0.5, w clipped to [0, 1], spectral normalisation of
every Linear layer of every critic, hidden and output, targets included (``--SN`` default True,
``rlkit/torch/networks.py::Dropout_Mlp``), Gaussian kernel with σ = 20, ε = 0.07, n = 4 MMD
samples, 10 next actions from the current policy (no target actor), λ = 0.75, actor noise
unclipped, 256×256 actor at learning rate 1e-4, critics 3e-4, VAE 3e-4 (750×750), α 1e-3 with
log α clamped to [−5, 10], τ = 0.005. The actor's warm-up is the first 40,000 steps
(``if self._n_train_steps_total >= 40000``): ``warmup_fraction`` = 0.04 of the paper scale's 1M
steps (the reference runs 3M). Evaluation (``batch_rl_algorithm.py::policy_fn``, ``--num_samples
100``): 100 actions from π, the argmax of Q₁ as the mean of ``eval_dropout_samples`` = 100 dropout
passes (:class:`offrl.nets.SampledArgmaxPolicy`). That is 10⁴ critic rows per state and step: 11.2 s
per environment step for 5 seeds × 10 episodes of a 256×256 critic on one CPU thread (AMD EPYC,
loaded), 76 ms with one pass per sample; ``eval_dropout_samples`` = 0 evaluates Q₁ without dropout
(the network whose units are each pass's expectation), for evaluations on CPUs.

Departures: the spectral norm's power iteration takes one step per update for the critics and one
for their targets (torch's takes one per forward in training mode). The rest of BEAR as
offrl.algos.bear. Dropout masks are drawn from each seed's generator, so seeds stay independent. The
example script imports ``rlkit.torch.sac.uwac_ensemble``, absent from the repository: as released it
does not run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offrl.algos.base import Batch
from offrl.algos.bear import BEAR, BEARConfig
from offrl.nets import QEnsemble

WEIGHTINGS = ("exp", "inverse")
CRITIC_WEIGHTINGS = ("error", "squared_error")  # w·(Q − y) squared (the reference), or w·(Q − y)² (the paper)


@dataclass
class UWACConfig(BEARConfig):
    dropout: float = 0.1
    dropout_samples: int = 100
    eval_dropout_samples: int = 100  # Q₁'s passes at evaluation; 0: no dropout there
    beta: float = 0.5
    weighting: str = "exp"
    weight_min: float = 0.0
    weight_max: float = 1.0
    critic_weighting: str = "error"
    spectral_norm: bool = True  # of every critic layer
    # BEAR's options at the UWAC reference's values.
    kernel: str = "gaussian"
    sigma: float = 20.0
    epsilon: float = 0.07
    mmd_samples: int = 4
    warmup_fraction: float = 0.04
    target_policy: str = "current"
    actor_q: str = "first"
    noise_clip: float | None = None
    eval_samples: int = 100
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    vae_lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.critic_weighting not in CRITIC_WEIGHTINGS:
            raise ValueError(f"critic_weighting must be one of {CRITIC_WEIGHTINGS}, got {self.critic_weighting!r}")
        if self.spectral_norm and self.gradient_penalty > 0:
            raise ValueError("gradient_penalty needs spectral_norm false (the penalty's ∇ₐQ reads the raw weights)")
        if not 0.0 < self.dropout < 1.0:
            raise ValueError(f"dropout must be in (0, 1), got {self.dropout}")
        if self.eval_dropout_samples < 0:
            raise ValueError(
                f"eval_dropout_samples must be at least 0 (0: no dropout), got {self.eval_dropout_samples}"
            )
        if self.dropout_samples < 2:
            raise ValueError(
                f"dropout_samples must be at least 2 (a variance needs two passes), got {self.dropout_samples}"
            )


class UWAC(BEAR):
    def policy_options(self) -> dict:
        c = self.config
        dropout = c.dropout if c.eval_dropout_samples > 0 else 0.0
        return {"spectral_norm": c.spectral_norm, "dropout": dropout, "dropout_samples": max(c.eval_dropout_samples, 1)}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        # Spectral norm's power iteration: one step per update for the critics and their targets (torch's
        # spectral_norm steps at every forward, several per update; σ's estimate converges either way).
        self.critic.mlp.power_iteration()
        self.critic_target.mlp.power_iteration()
        return super().update(batch)

    def ensemble(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(K, S, N): one dropout pass of every critic of every seed at the pairs ``(S, N, ·)``."""
        k = self.config.num_qs
        masks = critic.mlp.dropout_masks(self.generators, k, obs.shape[1], self.config.dropout, obs.device)
        return critic.heads(obs, actions, k, masks)

    def dropout_moments(
        self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, S, N) each critic's mean over ``dropout_samples`` passes, and (S, N) the variances summed over the
        critics."""
        passes = self.config.dropout_samples
        q = self.ensemble(critic, obs.repeat(1, passes, 1), actions.repeat(1, passes, 1))
        q = q.view(self.config.num_qs, self.seeds, passes, -1)
        return q.mean(dim=2), q.var(dim=2).sum(dim=0)  # unbiased variance, as the reference's torch.var

    @torch.no_grad()
    def uncertainty_weight(self, variance: torch.Tensor) -> torch.Tensor:
        """w(v) of the summed variances, clipped; no gradient flows through it."""
        c = self.config
        weight = c.beta / variance if c.weighting == "inverse" else torch.exp(-c.beta * variance)
        return weight.clamp(c.weight_min, c.weight_max)

    def target_values(self, next_obs: torch.Tensor, next_action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The target critics' means and each pair's weight on the squared error: w², or w (``critic_weighting``)."""
        mean, variance = self.dropout_moments(self.critic_target, next_obs, next_action)
        weight = self.uncertainty_weight(variance)
        return mean, weight.square() if self.config.critic_weighting == "error" else weight

    def actor_value(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) minₖ Q̄ₖ(s, ã) at the first of each state's n samples ``(S, B·n, ·)``, and its weight."""
        mean, variance = self.dropout_moments(self.critic, self.first_sample(obs), self.first_sample(action))
        return mean.min(dim=0).values, self.uncertainty_weight(variance)
