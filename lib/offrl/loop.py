"""The pieces every training loop shares: the offline loop (``offrl.train``), online TD3 (``offrl.online``) and
SAFER's downstream SAC (``offrl.safer.downstream``).

:class:`TrainingRun` holds a run's bookkeeping, so a loop function keeps only its own steps:

- progress: a bar over steps ``start + 1 .. total`` that a resumed run shows already ``start`` along, with the
  latest logged values beside it (:meth:`TrainingRun.show`);
- the NaN/inf watch (:class:`NonFiniteWatch`): the first step whose logged losses were not all finite and the
  members (seeds) that went bad, kept on the device until read, so a GPU step never waits on it;
- the wall clock across resumes (:meth:`TrainingRun.elapsed`): the seconds of every try, not only the last;
- the checkpoint: written atomically (a kill mid-write keeps the previous one), of tensors, numbers, strings,
  lists and dicts only, so it loads with ``torch.load(weights_only=True)``; resumed only when it belongs to the
  same run (its ``identity``: the configuration less what may change between tries, such as the total steps).

A loop reads: ``state = run.resume()`` (restore what it holds), ``for step in run.steps():`` (train,
``run.watch.update(step, logs)``; ``run.save(step, {...})`` at its checkpoint steps, which checks the watch
first), then ``run.finish()``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from offrl.files import UnreadableFileError, load_tensors, write_atomically


class NonFiniteError(RuntimeError):
    """A loss or Q-value became NaN or infinite."""


def progress_bar(start: int, total: int, desc: str, progress: bool = True) -> tqdm:
    """Steps ``start + 1 .. total``, shown as a bar already ``start`` steps along (a resumed run)."""
    steps = range(start + 1, total + 1)
    return tqdm(steps, initial=start, total=total, desc=desc, disable=not progress, mininterval=5.0)


class NonFiniteWatch:
    """The first step whose logged values were not all finite, and which members went bad at it.

    Kept on the device until :meth:`check` reads it. ``members`` names the leading axis of the logged values
    (one name per seed); without names the error gives the step only.
    """

    def __init__(self, device: torch.device | str = "cpu", members: Sequence[str] = ()) -> None:
        self.members = list(members)
        self.first_bad = torch.tensor(-1, device=device)
        self.bad_members = torch.zeros(max(len(self.members), 1), dtype=torch.bool, device=device)

    def update(self, step: int, logs: dict[str, torch.Tensor]) -> None:
        if not logs:
            return
        m = len(self.bad_members)
        # Each value summed per member (its leading axis); a value without one counts for every member.
        per_member = torch.stack(
            [v.reshape(m, -1).sum(1) if v.dim() and v.shape[0] == m else v.sum().expand(m) for v in logs.values()]
        ).sum(0)
        bad = ~torch.isfinite(per_member)
        first = bad.any() & (self.first_bad < 0)
        # ``step`` as a plain number: a tensor made of it would be a host-to-device copy, and a wait, every step on a
        # GPU.
        self.first_bad = torch.where(first, step, self.first_bad)
        self.bad_members = torch.where(first, bad, self.bad_members)

    def check(self, run: str) -> None:
        """Raise :class:`NonFiniteError` naming ``run``, the step and the members, if any step so far went bad."""
        step = int(self.first_bad.item())
        if step >= 0:
            names = [name for name, bad in zip(self.members, self.bad_members.tolist()) if bad]
            where = f" ({', '.join(names)})" if names else ""
            raise NonFiniteError(
                f"{run}: a loss or Q-value became NaN or infinite at step {step}{where};"
                " the run stops here (no result is written)"
            )


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` through :func:`offrl.files.write_atomically`: a kill mid-write keeps the previous checkpoint."""
    return write_atomically(path, lambda tmp: torch.save(state, tmp))


class TrainingRun:
    """One run's progress bar, NaN/inf watch, wall clock and checkpoint (the module's docstring shows the loop).

    ``name`` heads the bar and the errors; ``members`` names the seeds trained at once; ``checkpoint`` (None: never)
    is saved by :meth:`save` and resumed by :meth:`resume` when its ``identity`` equals this run's.
    """

    def __init__(
        self,
        name: str,
        total: int,
        members: Sequence[str],
        checkpoint: str | Path | None,
        identity: dict[str, Any],
        device: torch.device | str = "cpu",
        progress: bool = True,
    ) -> None:
        self.name, self.total, self.identity, self.progress = name, total, identity, progress
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.watch = NonFiniteWatch(device, members)
        self.start, self.wall_before, self.started = 0, 0.0, time.time()
        self.bar: tqdm | None = None

    def resume(self) -> dict[str, Any] | None:
        """The loop's state from the checkpoint, read into host memory, if there is one of this run; else None.

        A checkpoint of another run is ignored with a message; a damaged one, or one carrying pickled objects,
        is an error (deleting it is the user's call); one past ``total`` too (it cannot be finalised earlier).
        """
        if self.checkpoint is None or not self.checkpoint.is_file():
            return None
        try:
            saved = load_tensors(self.checkpoint, "checkpoint")
        except UnreadableFileError as err:
            raise UnreadableFileError(f"{err}; delete it to start the run afresh") from err
        if not isinstance(saved, dict) or saved.get("identity") != self.identity:
            print(f"checkpoint {self.checkpoint} belongs to another run: ignoring it, starting afresh", file=sys.stderr)
            return None
        if saved["step"] > self.total:
            raise ValueError(
                f"checkpoint {self.checkpoint} is at step {saved['step']}, past the run's {self.total} steps:"
                " raise the steps"
            )
        self.start, self.wall_before = saved["step"], saved["wall_s"]
        print(f"resumed from {self.checkpoint} at step {self.start}", file=sys.stderr)
        return saved["state"]

    def steps(self) -> Iterator[int]:
        """Steps ``start + 1 .. total`` on the progress bar."""
        self.bar = progress_bar(self.start, self.total, self.name, self.progress)
        return iter(self.bar)

    def show(self, **values: Any) -> None:
        """The latest logged values beside the bar."""
        if self.bar is not None:
            self.bar.set_postfix(values)

    def check(self) -> None:
        """Stop the run (:class:`NonFiniteError`) if a logged value went NaN or infinite."""
        self.watch.check(self.name)

    def elapsed(self) -> float:
        """Wall seconds of the run, tries before a resume included."""
        return self.wall_before + time.time() - self.started

    def save(self, step: int, state: dict[str, Any]) -> None:
        """Checkpoint the loop's ``state`` at ``step``; never a diverged learner's: the watch is checked first."""
        self.check()
        if self.checkpoint is not None:
            saved = {"identity": self.identity, "step": step, "wall_s": self.elapsed(), "state": state}
            save_checkpoint(saved, self.checkpoint)

    def finish(self, keep_checkpoint: bool = False) -> None:
        """Close the bar; a finished run's outputs replace its checkpoint unless ``keep_checkpoint``."""
        if self.bar is not None:
            self.bar.close()
        if self.checkpoint is not None and not keep_checkpoint:
            self.checkpoint.unlink(missing_ok=True)
