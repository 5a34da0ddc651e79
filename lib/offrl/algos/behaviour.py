"""A learned behaviour model μ(a | s), fitted by maximum likelihood before the RL phase (Fisher-BRC, BRAC).

Both references fit μ alone first (google-research ``fisher_brc``'s ``bc_pretraining_steps``,
``behavior_regularized_offline_rl``'s separate ``bc`` run), with an entropy bonus whose weight
is tuned towards the target entropy −act_dim:

    μ:  −mean_B [log μ(a | s) + α·Ĥ(s)],  Ĥ(s) = −log μ(ã | s), ã ~ μ(· | s)
    α:  mean_B log α·(Ĥ(s) − H̄),  H̄ = −act_dim  (α rises while the entropy is below the target)

with the dataset's actions clipped to ±(1 − ``clip``) inside log μ. Both references descend
α·(Ĥ − H̄) on α itself; log α here (as :mod:`offrl.algos.sac`): the same fixed point.
``model`` is any member-ensemble density with ``log_prob(obs, actions, clip)`` and
``entropy_estimate(obs, generators)``: :class:`offrl.nets.TanhGaussianActor` (BRAC) or
:class:`offrl.nets.TanhGaussianMixture` (Fisher-BRC).
"""

from __future__ import annotations

import torch
from torch import nn

from offrl.algos.base import Checkpointed
from offrl.nets import adam, gradient_step


class BehaviourCloning(Checkpointed):
    checkpointed = ("model", "opt", "alpha_opt")
    checkpointed_values = ("log_alpha",)

    def __init__(
        self, model: nn.Module, generators: list[torch.Generator], act_dim: int, lr: float, clip: float
    ) -> None:
        self.model, self.generators, self.clip = model, generators, clip
        device = next(model.parameters()).device
        self.log_alpha = nn.Parameter(
            torch.zeros(len(generators), device=device)
        )  # α = 1 at the start, as both references
        self.target_entropy = -float(act_dim)
        self.opt = adam(model.parameters(), lr)
        self.alpha_opt = adam([self.log_alpha], lr)

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The loss summed over members, the entropy estimate Ĥ (S, B) for α, and logs."""
        log_prob = self.model.log_prob(obs, actions, self.clip)
        entropy = self.model.entropy_estimate(obs, self.generators)
        alpha = self.log_alpha.exp().detach()[:, None]
        per_seed = -(alpha * entropy + log_prob).mean(dim=1)
        logs = {
            "behaviour_loss": per_seed.detach(),
            "behaviour_log_prob": log_prob.mean(dim=1).detach(),
            "behaviour_entropy": entropy.mean(dim=1).detach(),
        }
        return per_seed.sum(), entropy.detach(), logs

    def temperature_loss(self, entropy: torch.Tensor) -> torch.Tensor:
        return (self.log_alpha[:, None] * (entropy - self.target_entropy)).mean(dim=1).sum()

    def step(self, obs: torch.Tensor, actions: torch.Tensor, lr: float | None = None) -> dict[str, torch.Tensor]:
        """One update of μ and of α, at learning rate ``lr`` if given (Fisher-BRC's schedule)."""
        if lr is not None:
            for group in (*self.opt.param_groups, *self.alpha_opt.param_groups):
                group["lr"] = lr
        loss, entropy, logs = self.loss(obs, actions)
        gradient_step(self.opt, loss)
        gradient_step(self.alpha_opt, self.temperature_loss(entropy))
        return logs | {"behaviour_alpha": self.log_alpha.exp().detach()}
