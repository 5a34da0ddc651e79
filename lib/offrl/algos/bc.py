"""Behaviour cloning: the actor regresses the dataset's actions, mean_{B, act} (π(s) − a)².

The same deterministic tanh actor and state normalisation as TD3+BC, so the two differ
only by the critic (the TD3+BC paper's BC baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.nets import DeterministicActor, adam, gradient_step, seeded_init


@dataclass
class BCConfig:
    lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)


class BC(OfflineAlgorithm):
    checkpointed = ("actor", "actor_opt")
    normalize_states = True

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: BCConfig, device: torch.device
    ) -> None:
        self.config = config
        self.actor = DeterministicActor(len(generators), obs_dim, act_dim, tuple(config.hidden)).to(device)
        seeded_init(generators, (self.actor, 1))
        self.actor_opt = adam(self.actor.parameters(), config.lr)

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_seed = (self.actor(batch.obs) - batch.actions).square().mean(dim=(1, 2))
        return per_seed.sum(), {"actor_loss": per_seed.detach(), "bc_mse": per_seed.detach()}

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss, logs = self.actor_loss(batch)
        gradient_step(self.actor_opt, loss)
        return logs

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)
