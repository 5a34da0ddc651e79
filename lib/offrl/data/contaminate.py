"""Contaminated datasets (TD3BC++ paper, appendix A.1): expert data with a share of other data spliced in.

``expert-random-X``: load the expert dataset and replace its final X% of transitions with the
first X% of the random dataset; ``expert-cloned-X`` likewise with the cloned dataset. The contaminant count is
``floor(X/100 · N)`` for an expert dataset of N transitions (:func:`contaminant_count`; the paper's Table 3
counts, e.g. Hopper's ER7 699,323 of 999,034), so the total stays N. An episode cut by either splice ends as a
truncation (timeout), never as a fake terminal.

``expert-firstN``: the expert dataset's first N transitions alone (the BEAR blog's Figure 1
trains on expert data of two sizes), cut the same way.
"""

from __future__ import annotations

import re

import numpy as np

from offrl.data.dataset import Dataset

CONTAMINANTS = ("random", "cloned")
CONTAMINATED_KIND = re.compile(rf"expert-({'|'.join(CONTAMINANTS)})-([1-9][0-9]?)")


SUBSET_KIND = re.compile(r"expert-first([1-9][0-9]*)")


def parse_subset(kind: str) -> int | None:
    """``"expert-first10000"`` -> ``10000``; None for any other kind."""
    match = SUBSET_KIND.fullmatch(kind)
    return int(match.group(1)) if match else None


def parse_contaminated(kind: str) -> tuple[str, int] | None:
    """``"expert-random-30"`` -> ``("random", 30)``, ``"expert-cloned-10"`` -> ``("cloned", 10)``; None for any other
    kind."""
    match = CONTAMINATED_KIND.fullmatch(kind)
    return (match.group(1), int(match.group(2))) if match else None


def truncate(dataset: Dataset, size: int) -> Dataset:
    """The first ``size`` transitions; an episode the cut splits ends there as a timeout."""
    if not 0 < size <= len(dataset):
        raise ValueError(f"cannot keep {size} of {len(dataset)} transitions")
    part = dataset.select(slice(0, size))
    last = size - 1
    if not (part.terminals[last] or part.timeouts[last]):
        part.timeouts = part.timeouts.copy()
        part.timeouts[last] = True
    return part


def contaminant_count(n: int, percent: int) -> int:
    """Transitions of an ``expert-<contaminant>-percent`` dataset of ``n`` that are the contaminant's:
    floor(percent/100 · n), in integers."""
    return percent * n // 100


def contaminate(expert: Dataset, contaminant: Dataset, percent: int) -> tuple[Dataset, np.ndarray]:
    """Replace the final ``percent``% of ``expert`` with the first as many transitions of ``contaminant``.

    Returns the dataset and a boolean mask of its contaminant transitions (for statistics
    and for measuring the policy on expert vs contaminant states).
    """
    if not 1 <= percent <= 99:
        raise ValueError(f"contamination percent must be in 1..99, got {percent}")
    n = len(expert)
    contaminated = contaminant_count(n, percent)
    if contaminated > len(contaminant):
        raise ValueError(
            f"{percent}% of {n} transitions is {contaminated}, but the contaminant has only {len(contaminant)}"
        )
    parts = [truncate(expert, n - contaminated), truncate(contaminant, contaminated)]
    mask = np.zeros(n, dtype=bool)
    mask[n - contaminated :] = True
    return Dataset.concatenate(parts), mask
