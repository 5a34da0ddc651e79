"""Writing figures: every figure goes out as ``STEM.png`` (for reading) and ``STEM.pdf`` (for papers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, stem: str | Path) -> None:
    """Save a Matplotlib figure (or a seaborn grid) as STEM.png and STEM.pdf, then close it."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        fig.savefig(stem.with_suffix(suffix), dpi=150)
    plt.close(getattr(fig, "figure", fig))
