"""Statistics over seeds: the interquartile mean, stratified bootstrap confidence intervals, verdicts.

The protocol follows Agarwal et al. (2021), "Deep RL at the edge of the statistical precipice"
(rliable): runs are resampled with replacement *within* each stratum (a task, or an
algorithm-task cell), so every replicate keeps the design's number of seeds per cell, and
the interval is the percentile interval of the statistic over replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

VERDICTS = ("holds", "reversed", "inconclusive")


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of the values (rliable's IQM, scipy's trim_mean(·, 0.25))."""
    values = np.sort(np.asarray(values, dtype=float).ravel())
    if values.size == 0:
        raise ValueError("the interquartile mean of no values")
    cut = int(np.floor(0.25 * values.size))
    return float(values[cut : values.size - cut].mean())


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    estimate: float
    low: float
    high: float


def stratified_bootstrap(
    strata: Sequence[np.ndarray],
    statistic: Callable[[Sequence[np.ndarray]], float],
    repetitions: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic(strata)`` with a percentile interval from resampling each stratum's runs with replacement.

    ``strata`` holds one array of per-seed values per stratum (each keeps its size in every
    replicate); ``statistic`` maps such a list to a number. A stratum of one run contributes no
    spread: with one seed per cell the interval is a point.
    """
    strata = [np.asarray(s, dtype=float) for s in strata]
    if not strata or any(s.size == 0 for s in strata):
        raise ValueError("every stratum needs at least one run")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    replicates = np.empty(repetitions)
    for r in range(repetitions):
        replicates[r] = statistic([s[rng.integers(0, s.size, s.size)] for s in strata])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(statistic(strata)), float(low), float(high))


def verdict(interval: Interval, direction: int = 1) -> str:
    """``holds`` if the whole interval lies on the claimed side of 0 (``direction`` +1: above, −1: below),
    ``reversed`` if it lies wholly on the other side, else ``inconclusive``."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be 1 or -1, got {direction}")
    low, high = sorted((direction * interval.low, direction * interval.high))
    if low > 0:
        return "holds"
    if high < 0:
        return "reversed"
    return "inconclusive"
