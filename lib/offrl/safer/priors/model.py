"""A skill prior: the flow a = f_φ(z; s, c) with, for SAFER, the safety variable's posterior q_ρ(c | Λ).

PARROT's prior has no safety variable (``context_dim = 0``): the flow is conditioned on the
state alone. Contextual PARROT and SAFER condition it on [s, c] too. States are normalised
by the offline data's mean and standard deviation before they reach either network (the
grasp observation mixes metres with quaternion components); the statistics are buffers, so
they travel with the weights.

Saved as ``{"spec": ..., "state": ...}`` by :func:`save_prior`; :func:`load_prior` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from offrl.files import load_tensors
from offrl.safer.priors.context import SafetyContextEncoder, kl_to_standard_normal, sample_context
from offrl.safer.priors.flow import ConditionalRealNVP


class SkillPrior(nn.Module):
    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        context_dim: int = 8,
        window: int = 16,
        layers: int = 3,
        hidden: tuple[int, ...] = (256, 256),
        encoder_dim: int = 32,
        encoder_layers: int = 1,
    ) -> None:
        super().__init__()
        if context_dim < 0:
            raise ValueError(f"context_dim = {context_dim}: must be ≥ 0 (0: no safety variable)")
        self.spec = {
            "state_dim": state_dim,
            "action_dim": action_dim,
            "context_dim": context_dim,
            "window": window,
            "layers": layers,
            "hidden": list(hidden),
            "encoder_dim": encoder_dim,
            "encoder_layers": encoder_layers,
        }
        self.context_dim, self.window = context_dim, window
        self.flow = ConditionalRealNVP(action_dim, state_dim + context_dim, layers, tuple(hidden))
        self.encoder = (
            SafetyContextEncoder(state_dim, context_dim, window, encoder_dim, layers=encoder_layers)
            if context_dim
            else None
        )
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))

    def set_state_statistics(self, observations: np.ndarray) -> None:
        """Normalise states by these data's mean and std (+1e-3, as TD3+BC does)."""
        self.state_mean.copy_(torch.as_tensor(observations.mean(0)))
        self.state_std.copy_(torch.as_tensor(observations.std(0) + 1e-3))

    def normalise(self, states: torch.Tensor) -> torch.Tensor:
        return (states - self.state_mean) / self.state_std

    def posterior(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q_ρ(c | Λ). Zero-padded rows of Λ stay zero after normalising."""
        padding = (windows == 0).all(-1, keepdim=True)
        return self.encoder(self.normalise(windows).masked_fill(padding, 0.0))

    def condition(
        self,
        states: torch.Tensor,
        windows: torch.Tensor | None,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The flow's condition [s, c] and KL(q_ρ(c | Λ) ‖ N(0, I)) per row (zeros without c).

        ``sample``: c drawn by reparameterisation (training); otherwise c = E[c | Λ] (Algorithms 1 and 3).
        """
        normalised = self.normalise(states)
        if self.encoder is None:
            return normalised, normalised.new_zeros(normalised.shape[:-1])
        if windows is None:
            raise ValueError("this prior has a safety variable: it needs the window Λ of previous states")
        mean, log_var = self.posterior(windows)
        context = sample_context(mean, log_var, generator) if sample else mean
        return torch.cat([normalised, context], dim=-1), kl_to_standard_normal(mean, log_var)

    def log_prob(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        windows: torch.Tensor | None,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p_φ(a | s, c) with c ~ q_ρ(c | Λ) (or its mean), and the KL term, per row."""
        condition, kl = self.condition(states, windows, generator, sample)
        return self.flow.log_prob(actions, condition), kl

    @torch.no_grad()
    def latent(self, states: torch.Tensor, actions: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
        """z = f⁻¹(a; s, E[c | Λ]): the abstract action of a data pair (Algorithm 3)."""
        condition, _ = self.condition(states, windows, sample=False)
        return self.flow.inverse(actions, condition)[0]

    @torch.no_grad()
    def action(self, latent: torch.Tensor, states: torch.Tensor, windows: torch.Tensor | None) -> torch.Tensor:
        """a = f(z; s, E[c | Λ]) (Algorithm 1), clipped to the action box."""
        condition, _ = self.condition(states, windows, sample=False)
        return self.flow(latent, condition)[0].clamp(-1.0, 1.0)


def save_prior(prior: SkillPrior, path: str | Path, **extra: Any) -> None:
    """``extra``: plain values only (numbers, strings, lists, dicts, tensors), so the file loads without running
    code."""
    torch.save({"spec": prior.spec, "state": prior.state_dict(), **extra}, path)


def load_prior(path: str | Path, device: torch.device | str = "cpu") -> tuple[SkillPrior, dict[str, Any]]:
    """The prior saved at ``path``, in eval mode, and whatever else was saved beside it."""
    saved = load_tensors(path, "SAFER prior", map_location=device)
    spec = saved.pop("spec")
    prior = SkillPrior(**{**spec, "hidden": tuple(spec["hidden"])})
    prior.load_state_dict(saved.pop("state"))
    return prior.to(device).eval(), saved


class RollingWindow:
    """Λ for S environments at once: the ``window`` states before the current one, oldest first, zero-padded."""

    def __init__(self, seeds: int, window: int, obs_dim: int) -> None:
        self.states = np.zeros((seeds, window, obs_dim), np.float32)

    def push(self, observations: np.ndarray) -> None:
        """Append each environment's state s_k after acting on it (Algorithm 1's FIFO update)."""
        self.states[:, :-1] = self.states[:, 1:]
        self.states[:, -1] = observations

    def clear(self, member: int) -> None:
        """A new episode of environment ``member``: nothing before its first state."""
        self.states[member] = 0.0


def prior_action(
    prior: SkillPrior, latent: torch.Tensor, states: torch.Tensor, windows: torch.Tensor | None
) -> torch.Tensor:
    """a = f_φ(z; s, E[c | Λ]); a prior without a safety variable ignores Λ."""
    return prior.action(latent, states, windows if prior.context_dim else None)
