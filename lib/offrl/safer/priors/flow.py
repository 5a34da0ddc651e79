"""Conditional RealNVP: the behavioural prior a = f_φ(z; s, c) of PARROT and SAFER.

Affine coupling layers (Dinh et al. 2017) with alternating binary masks over the action
dimensions. Each layer keeps the masked half and moves the other by
x ↦ x·exp(s) + t, with (s, t) from an MLP of the masked half and the condition (the state,
and for SAFER the safety variable c). The log-scale is bounded as ``scale_bound·tanh(·)`` so
that one bad batch cannot blow up exp(s). The base is N(0, I), so
log p(a | condition) = log N(f⁻¹(a)) + log|det ∂f⁻¹/∂a| is exact.

``forward`` maps z → a (acting), ``inverse`` maps a → z (likelihood, Algorithm 3); each
returns the log|det| of its own Jacobian. The last layer of every coupling MLP starts at
zero, so an untrained flow is the identity.

Unlike ``offrl.nets`` there is no leading member dimension: the safety variable's transformer
has no batched-ensemble form, so seeds of a prior train in separate processes.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AffineCoupling(nn.Module):
    """One coupling layer: the dimensions where ``mask`` is 1 pass through and condition the rest."""

    def __init__(self, mask: torch.Tensor, condition_dim: int, hidden: tuple[int, ...], scale_bound: float) -> None:
        super().__init__()
        dim = len(mask)
        self.register_buffer("mask", mask.float())
        self.scale_bound = scale_bound
        sizes = (dim + condition_dim, *hidden)
        layers: list[nn.Module] = []
        for i, o in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(i, o), nn.ReLU()]
        last = nn.Linear(sizes[-1], 2 * dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def _scale_shift(self, kept: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_scale, shift = self.net(torch.cat([kept, condition], dim=-1)).chunk(2, dim=-1)
        moved = 1 - self.mask
        return moved * self.scale_bound * torch.tanh(raw_scale), moved * shift

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift = self._scale_shift(self.mask * x, condition)
        return x * log_scale.exp() + shift, log_scale.sum(-1)

    def inverse(self, y: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_scale, shift = self._scale_shift(self.mask * y, condition)  # the kept half is unchanged: same (s, t)
        return (y - shift) * (-log_scale).exp(), -log_scale.sum(-1)


class ConditionalRealNVP(nn.Module):
    """``layers`` coupling layers over ``action_dim`` dimensions, conditioned on a ``condition_dim`` vector.

    The paper's default is 3 bijectors (appendix C); with alternating masks every action
    dimension is moved by at least one of them once there are two or more.
    """

    def __init__(
        self,
        action_dim: int,
        condition_dim: int,
        layers: int = 3,
        hidden: tuple[int, ...] = (256, 256),
        scale_bound: float = 2.0,
    ) -> None:
        super().__init__()
        if action_dim < 2:
            raise ValueError(f"action_dim = {action_dim}: a coupling layer needs at least 2 dimensions")
        if layers < 1:
            raise ValueError(f"layers = {layers}: must be at least 1")
        self.action_dim, self.condition_dim = action_dim, condition_dim
        even = torch.arange(action_dim) % 2 == 0
        self.couplings = nn.ModuleList(
            AffineCoupling(even if k % 2 == 0 else ~even, condition_dim, hidden, scale_bound) for k in range(layers)
        )

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a = f(z; condition) and log|det ∂a/∂z|, per row."""
        log_det = z.new_zeros(z.shape[:-1])
        for coupling in self.couplings:
            z, layer_log_det = coupling(z, condition)
            log_det = log_det + layer_log_det
        return z, log_det

    def inverse(self, a: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z = f⁻¹(a; condition) and log|det ∂z/∂a|, per row."""
        log_det = a.new_zeros(a.shape[:-1])
        for coupling in reversed(self.couplings):
            a, layer_log_det = coupling.inverse(a, condition)
            log_det = log_det + layer_log_det
        return a, log_det

    def log_prob(self, a: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Exact log p(a | condition) under the N(0, I) base (paper eq. 2)."""
        z, log_det = self.inverse(a, condition)
        return standard_normal_log_prob(z) + log_det

    def sample(self, condition: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One action per condition row, from z ~ N(0, I)."""
        z = torch.randn(
            *condition.shape[:-1], self.action_dim, generator=generator, device=condition.device, dtype=condition.dtype
        )
        return self(z, condition)[0]


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.square() + math.log(2 * math.pi)).sum(-1)
