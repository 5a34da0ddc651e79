"""From the downstream policy's action u ∈ [−1, 1]^d to the prior's abstract action z.

SAC acts through a tanh, in [−1, 1]^d. PARROT leaves z unbounded and maps u through the
inverse normal CDF of (u + 1)/2 (PAPER-NOTES), so a uniform u (SAC's start steps, and its
entropy bonus pushes towards one) becomes z ~ N(0, I), the flow's own base distribution.

SAFER keeps z inside the box (−η, η) of Algorithm 3; the paper says no more than that. Two
readings (``LATENT_MAPS``, the ``safer.latent_map`` option):

- ``truncated_normal`` (the default): the same map as PARROT's into the prior's N(0, I)
  truncated to (−η, η), per dimension z = Φ⁻¹(Φ(−η) + (u + 1)/2·(Φ(η) − Φ(−η))). A uniform u
  gives z ~ N(0, I) conditioned on the box, so SAFER and PARROT differ only in their prior and
  the bound; as η → ∞ it is PARROT's map.
- ``box``: z = η·u. A uniform u is uniform in the box, pushed to its corners relative to the
  prior, which is where Algorithm 3 leaves the unsafe latents.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

EDGE = 1e-6  # u is kept this far inside ±1 so Φ⁻¹ stays finite


def _check_bound(bound: float) -> None:
    if not bound > 0:
        raise ValueError(f"bound = {bound}: the safety bound η must be positive")


def bounded_latent(u: torch.Tensor, bound: float) -> torch.Tensor:
    """SAFER's ``box`` map: z = η·u, uniform in (−η, η) for a uniform u."""
    _check_bound(bound)
    return bound * u


def gaussian_latent(u: torch.Tensor, edge: float = EDGE) -> torch.Tensor:
    """PARROT: z = Φ⁻¹((u + 1)/2) = √2·erfinv(u), with u kept ``edge`` inside ±1 so z stays finite."""
    return math.sqrt(2) * torch.erfinv(u.clamp(-1 + edge, 1 - edge))


def truncated_gaussian_latent(u: torch.Tensor, bound: float, edge: float = EDGE) -> torch.Tensor:
    """SAFER's ``truncated_normal`` map: z = Φ⁻¹(Φ(−η) + (u + 1)/2·(Φ(η) − Φ(−η))), inside [−η, η].

    Computed in float64 (Φ(η) rounds to 1 in float32 from η ≈ 5.4) and clamped to [−η, η]
    against the last rounding; u is kept ``edge`` inside ±1 as in :func:`gaussian_latent`, so
    an infinite η gives exactly PARROT's map.
    """
    _check_bound(bound)
    eta = torch.tensor(bound, dtype=torch.float64)
    low, high = torch.special.ndtr(-eta), torch.special.ndtr(eta)
    p = low + (u.clamp(-1 + edge, 1 - edge).to(torch.float64) + 1) / 2 * (high - low)
    return torch.special.ndtri(p).clamp(-bound, bound).to(u.dtype)


LATENT_MAPS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "truncated_normal": truncated_gaussian_latent,
    "box": bounded_latent,
}


def bounded_map(name: str) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The map named ``name`` from u ∈ [−1, 1]^d to z inside (−η, η)."""
    if name not in LATENT_MAPS:
        raise ValueError(f"latent_map = {name!r}; allowed: {', '.join(LATENT_MAPS)}")
    return LATENT_MAPS[name]
