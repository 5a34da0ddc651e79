"""SAFER's safety assurance (section 3.4, Algorithm 3): a bound η on the abstract action z.

Data actions are mapped to z = f⁻¹(a; s, E[c | Λ]) by the trained prior; those with every
component inside the open box (−η, η) are "in bound". Algorithm 3 starts from a bound that
holds every z and repeats: draw a bootstrap set of ⌊S(1−u)⌋ in-bound safe and ⌊S·u⌋ in-bound
unsafe z (S in-bound in all, u the largest tolerated unsafe fraction; the paper writes
ε = 1 − u), set η to the largest |component| in it, and stop once at most a fraction u of the
in-bound z are unsafe. The z attaining η falls out of the open box, so η shrinks every round.
"""

from __future__ import annotations

import numpy as np


class UnreachableTarget(RuntimeError):
    """No bound holds safe data with at most the target share of unsafe data; ``bound`` is the last one that held safe
    data."""

    def __init__(self, message: str, bound: float) -> None:
        super().__init__(message)
        self.bound = bound


def unsafe_fraction_within(z_safe: np.ndarray, z_unsafe: np.ndarray, bound: float) -> float:
    """The fraction of unsafe rows among the rows of ``z_safe`` and ``z_unsafe`` inside (−bound, bound)."""
    safe = int((np.abs(z_safe).max(-1) < bound).sum())
    unsafe = int((np.abs(z_unsafe).max(-1) < bound).sum())
    return unsafe / (safe + unsafe) if safe + unsafe else 0.0


def safety_bound(
    z_safe: np.ndarray,
    z_unsafe: np.ndarray,
    max_unsafe_fraction: float,
    rng: np.random.Generator,
    initial_bound: float | None = None,
    max_iterations: int = 1_000_000,
) -> float:
    """Algorithm 3: η such that at most ``max_unsafe_fraction`` of the in-bound data z are unsafe.

    ``initial_bound`` defaults to just above the largest |component|, so every z starts in bound.
    Only the bootstrap set's maximum matters, and for k draws with replacement from n sorted
    values its index is ⌊n·U^{1/k}⌋ (the largest of k uniforms is U^{1/k}), so one uniform per
    set stands in for the k draws: same distribution, O(1) per round instead of O(S).
    """
    if not 0 <= max_unsafe_fraction < 1:
        raise ValueError(f"max_unsafe_fraction = {max_unsafe_fraction}: must be in [0, 1)")
    norms_safe = np.sort(np.abs(z_safe).max(-1))
    norms_unsafe = np.sort(np.abs(z_unsafe).max(-1))
    if len(norms_safe) == 0:
        raise ValueError("z_safe is empty: the bound needs safe data actions")
    bound = (
        initial_bound
        if initial_bound is not None
        else float(np.nextafter(max(norms_safe[-1], norms_unsafe.max(initial=0.0)), np.inf))
    )

    def in_bound(bound: float) -> tuple[int, int]:  # how many safe and unsafe norms are < bound
        return int(np.searchsorted(norms_safe, bound, side="left")), int(
            np.searchsorted(norms_unsafe, bound, side="left")
        )

    in_safe, in_unsafe = in_bound(bound)
    last_with_safe = bound
    for _ in range(max_iterations):
        total = in_safe + in_unsafe
        draws = (
            (norms_safe, in_safe, int(total * (1 - max_unsafe_fraction))),
            (norms_unsafe, in_unsafe, int(total * max_unsafe_fraction)),
        )
        maxima = [norms[int(n * rng.random() ** (1 / k))] for norms, n, k in draws if n and k]
        if not maxima:
            # An unsafe z lies nearer the origin than every safe z still in bound.
            raise UnreachableTarget(
                f"no safe data left in bound at η = {bound}: "
                f"no bound reaches max_unsafe_fraction = {max_unsafe_fraction}",
                last_with_safe,
            )
        bound = float(max(maxima))
        in_safe, in_unsafe = in_bound(bound)
        if in_safe:
            last_with_safe = bound
        if in_unsafe <= max_unsafe_fraction * (in_safe + in_unsafe):
            return bound
    raise RuntimeError(
        f"Algorithm 3 did not reach max_unsafe_fraction = {max_unsafe_fraction} in {max_iterations} rounds"
    )
