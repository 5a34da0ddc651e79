"""UWAC (Wu, Zhai, Srivastava, Susskind, Zhang, Salakhutdinov & Goh 2021, "Uncertainty Weighted Actor-Critic for Offline Reinforcement Learning").

BEAR (offrl.algos.bear, whose losses this reuses) with MC-dropout critics: every critic
evaluation drops hidden units at rate p, the variance of Q over K dropout passes measures how
far a pair is from the data, and the critic and actor losses down-weight uncertain pairs:

    critic:  Σₖ mean_B w(s′)·(Qₖ(s, a) − y)²,  Qₖ one dropout pass, y BEAR's target with each Q′ₖ
             the mean of K passes; w(s′) = w(maxⱼ Σₖ Var Q′ₖ(s′, a′ⱼ)) over BEAR's sampled next actions
    actor:   mean_B [−w(s, ã)·minₖ Q̄ₖ(s, ã) + α·MMD(s)],  Q̄ₖ the mean of K passes at the first of
             the n policy samples ã, w from Σₖ Var Qₖ(s, ã) (no gradient through w)
    w(v):    clip(β / v, w_min, w_max)  (``weighting="inverse"``, the paper's), or
             clip(exp(−β·v), w_min, w_max)  (``"exp"``, the reference script's default)

Reference version: apple/ml-uwac (``rlkit/torch/sac/uwac_dropout.py``,
``examples/UWAC_hdf5_d4rl.py``): dropout 0.1 after every hidden ReLU of 256×256 critics,
K = 100 passes (``multiple``'s default), β = 0.5, w clipped to [0, 1], Gaussian kernel with
σ = 20, ε = 0.07, n = 4 MMD samples, 10 next actions, λ = 0.75, 256×256 actor at learning rate
1e-4, critics 3e-4, VAE 3e-4 (750×750), α 1e-3 with log α clamped to [−5, 10], τ = 0.005; the
actor's warm-up is 40k of 3M steps, ``warmup_fraction`` = 1/75.

Departures: w multiplies the squared error (the paper's loss); the reference multiplies the
error before squaring, i.e. weighs by w². No spectral normalisation of the critics (the
reference script's ``--SN`` default). The actor's MMD samples and the rest of BEAR as
offrl.algos.bear. Dropout masks are drawn from each seed's generator, so seeds stay independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offrl.algos.bear import BEAR, BEARConfig
from offrl.nets import QEnsemble

WEIGHTINGS = ("inverse", "exp")


@dataclass
class UWACConfig(BEARConfig):
    dropout: float = 0.1
    dropout_samples: int = 100
    beta: float = 0.5
    weighting: str = "inverse"
    weight_min: float = 0.0
    weight_max: float = 1.0
    # BEAR's options at the UWAC reference's values.
    kernel: str = "gaussian"
    sigma: float = 20.0
    epsilon: float = 0.07
    mmd_samples: int = 4
    warmup_fraction: float = 40_000 / 3_000_000
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    vae_lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not 0.0 < self.dropout < 1.0:
            raise ValueError(f"dropout must be in (0, 1), got {self.dropout}")
        if self.dropout_samples < 2:
            raise ValueError(
                f"dropout_samples must be at least 2 (a variance needs two passes), got {self.dropout_samples}"
            )


class UWAC(BEAR):
    def ensemble(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(K, S, N): one dropout pass of every critic of every seed at the pairs ``(S, N, ·)``."""
        k = self.config.num_qs
        masks = critic.mlp.dropout_masks(self.generators, k, obs.shape[1], self.config.dropout, obs.device)
        return critic(obs.repeat(k, 1, 1), actions.repeat(k, 1, 1), masks=masks).view(k, self.seeds, -1)

    def dropout_moments(
        self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, S, N) each critic's mean over ``dropout_samples`` passes, and (S, N) the variances summed over the critics."""
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
        mean, variance = self.dropout_moments(self.critic_target, next_obs, next_action)
        return mean, self.uncertainty_weight(variance)

    def actor_value(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) minₖ Q̄ₖ(s, ã) at the first of each state's n samples ``(S, B·n, ·)``, and its weight."""
        n = self.config.mmd_samples
        first = lambda x: x.view(self.seeds, -1, n, x.shape[-1])[:, :, 0]  # noqa: E731
        mean, variance = self.dropout_moments(self.critic, first(obs), first(action))
        return mean.min(dim=0).values, self.uncertainty_weight(variance)
