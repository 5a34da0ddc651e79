"""The scale a table or figure was made at, from the run's resolved config (``results/config.yaml``).

A default-scale curve (10k steps, 3 seeds) looks like a paper's (1M steps, 5 seeds); every
table's footnote and every figure's footer says which it is: the scale's name, the study's
training steps, seeds and data size. The CLI sets the note once per command
(``--run-config``, ``--study``), and :func:`offrl.report.figures.save_figure` and
:func:`offrl.report.tables.write_table` append it to what they write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

# Each study, and what of the config its artefacts are made from.
STUDIES = ("datasets", "offline", "guided", "taming", "bear_blog", "safer")

_NOTE: ContextVar[str] = ContextVar("scale_note", default="")


def _seeds(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def scale_note(config: dict[str, Any], study: str) -> str:
    """One line: ``Scale: default — 10,000 training steps, 3 seeds (0, 1, 2), datasets of 100,000 transitions.``"""
    if study not in STUDIES:
        raise ValueError(f"--study must be one of {', '.join(STUDIES)}, got {study!r}")
    offline, size = config["offline"], config["datasets"]["size"]
    data = f"datasets of {size:,} transitions"
    if study == "datasets":
        what = data
    elif study == "offline":
        what = f"{offline['steps']:,} training steps, {_seeds(offline['seeds'])}, {data}"
    elif study == "guided":
        what = f"{offline['steps']:,} training steps, {_seeds(config['guided']['seeds'])}, {data}"
    elif study == "taming":
        steps = config["taming"].get("steps") or offline["steps"]  # taming.steps: the study's own budget, if set
        what = f"{steps:,} training steps, {_seeds(offline['seeds'])}, {data}"
    elif study == "bear_blog":
        sizes = " and ".join(f"{n:,}" for n in config["bear_blog"]["figure1_sizes"])
        what = f"{offline['steps']:,} training steps, {_seeds(offline['seeds'])}, expert data of {sizes} transitions"
    else:
        safer = config["safer"]
        downstream = safer["downstream"]
        what = (
            f"prior {safer['prior']['steps']:,} steps on {safer['data']['episodes_per_task']} episodes per task;"
            f" downstream {downstream['steps']:,} steps, {_seeds(downstream['seeds'])}"
        )
    return f"Scale: {config['scale']} — {what}."


def load_scale_note(path: str | Path, study: str) -> str:
    """:func:`scale_note` of the resolved config at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--run-config: no such file {path} (the run's results/config.yaml)")
    try:
        return scale_note(yaml.safe_load(path.read_text()), study)
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"--run-config {path}: no key {err} (give the run's resolved config, results/config.yaml)"
        ) from err


@contextmanager
def stated_scale(note: str) -> Iterator[None]:
    """Within the block, every table and figure written states ``note``."""
    token = _NOTE.set(note)
    try:
        yield
    finally:
        _NOTE.reset(token)


def with_scale(footnote: str) -> str:
    """``footnote`` with the current scale note on its own line (as it is when no note is set)."""
    note = _NOTE.get()
    return "\n".join(part for part in (footnote, note) if part)
