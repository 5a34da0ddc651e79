"""From the downstream policy's action u ∈ [−1, 1]^d to the prior's abstract action z.

SAC acts through a tanh, in [−1, 1]^d. SAFER keeps z inside the box (−η, η) of Algorithm 3,
so z = η·u. PARROT leaves z unbounded and maps u through the inverse normal CDF of (u + 1)/2
(PAPER-NOTES), so a uniform u becomes z ~ N(0, I), the flow's own base distribution.
"""

from __future__ import annotations

import math

import torch


def bounded_latent(u: torch.Tensor, bound: float) -> torch.Tensor:
    """SAFER: z = η·u, inside the safety bound's box."""
    if not bound > 0:
        raise ValueError(f"bound = {bound}: the safety bound η must be positive")
    return bound * u


def gaussian_latent(u: torch.Tensor, edge: float = 1e-6) -> torch.Tensor:
    """PARROT: z = Φ⁻¹((u + 1)/2) = √2·erfinv(u), with u kept ``edge`` inside ±1 so z stays finite."""
    return math.sqrt(2) * torch.erfinv(u.clamp(-1 + edge, 1 - edge))
