"""The pieces every training loop shares: the offline loop (``offrl.train``), online TD3 (``offrl.online``) and
SAFER's downstream SAC (``offrl.safer.downstream``).

A progress bar that resumes where a run stopped, a watch that stops the run at the first NaN or infinite loss
(without a device sync every step) and a checkpoint written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from offrl.files import write_atomically


class NonFiniteError(RuntimeError):
    """A loss or Q-value became NaN or infinite."""


def progress_bar(start: int, total: int, desc: str, progress: bool = True) -> tqdm:
    """Steps ``start + 1 .. total``, shown as a bar already ``start`` steps along (a resumed run)."""
    steps = range(start + 1, total + 1)
    return tqdm(steps, initial=start, total=total, desc=desc, disable=not progress, mininterval=5.0)


class NonFiniteWatch:
    """The first step whose logged values were not all finite, kept on the device until :meth:`check` reads it."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.first_bad = torch.tensor(-1, device=device)

    def update(self, step: int, logs: dict[str, torch.Tensor]) -> None:
        if not logs:
            return
        bad = ~torch.isfinite(torch.stack([value.sum() for value in logs.values()]).sum())
        # ``step`` as a plain number: a tensor made of it would be a host-to-device copy, and a wait, every step on a GPU.
        self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)

    def check(self, run: str) -> None:
        """Raise :class:`NonFiniteError` naming ``run`` and the step, if any step so far went bad."""
        step = int(self.first_bad.item())
        if step >= 0:
            raise NonFiniteError(
                f"{run}: a loss or Q-value became NaN or infinite at step {step};"
                " the run stops here (no result is written)"
            )


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` through :func:`offrl.files.write_atomically`: a kill mid-write keeps the previous checkpoint."""
    return write_atomically(path, lambda tmp: torch.save(state, tmp))
