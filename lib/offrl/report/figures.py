"""Writing figures: every figure goes out as ``STEM.png`` (for reading) and ``STEM.pdf`` (for papers).

A figure may carry a footnote (which id each name in it stands for), set below its panels, and
states the scale it was made at (:mod:`offrl.report.scale`) on the footnote's last line.
Text that reaches outside the figure (a long title, a wide legend) is never clipped: the figure
is then saved with a tight bounding box, and a :class:`ClippedTextWarning` says which text did
not fit its layout (the tests turn it into an error).
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

from offrl.files import write_atomically
from offrl.report.scale import with_scale


class ClippedTextWarning(UserWarning):
    """A figure's text reached outside the figure's area as laid out."""


def save_figure(fig: Any, stem: str | Path, footnote: str = "") -> None:
    """Save a Matplotlib figure as STEM.png and STEM.pdf, ``footnote`` and the scale under its panels; close it."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    footnote = with_scale(footnote)
    if footnote:
        width_chars = max(40, int(fig.get_figwidth() * 72 / 6 * 1.6))  # 6-pt characters across the figure
        text = "\n".join(textwrap.fill(line, width_chars) for line in footnote.splitlines())
        note = fig.text(0.005, 0.005, text, fontsize=6, color="dimgray", ha="left", va="bottom")
        fig.canvas.draw()
        height = note.get_window_extent().height / fig.bbox.height
        fig.tight_layout(rect=(0, height + 0.01, 1, 1))
    outside = overflowing_text(fig)
    if outside:
        warnings.warn(ClippedTextWarning(f"{stem.name}: text outside the figure: {outside}"), stacklevel=2)
    bbox = "tight" if outside else None
    for suffix in (".png", ".pdf"):
        write_atomically(stem.with_suffix(suffix), lambda tmp: fig.savefig(tmp, dpi=150, bbox_inches=bbox))
    plt.close(fig)


def overflowing_text(fig: Any) -> list[str]:
    """What of ``fig`` is drawn outside it: panels (by title) whose tick labels, labels, title or legend reach out,
    and figure texts."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def outside(extent: Any) -> bool:
        return extent is not None and (
            extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1
        )

    found = [
        f"panel {i} ({ax.get_title()!r})"
        for i, ax in enumerate(fig.axes)
        if ax.get_visible() and outside(ax.get_tightbbox(renderer))
    ]
    found += [
        text.get_text()
        for text in fig.texts
        if text.get_visible() and text.get_text().strip() and outside(text.get_window_extent(renderer))
    ]
    found += ["figure legend" for legend in fig.legends if outside(legend.get_window_extent(renderer))]
    return found
