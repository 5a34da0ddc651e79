"""Tables written three ways: CSV (for machines), Markdown and LaTeX (for people).

Cells are strings by the time they are written; ``bold`` marks cells to emphasise
(the best of a row), rendered ``**x**`` in Markdown and ``\\textbf{x}`` in LaTeX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from offrl.files import write_csv, write_text
from offrl.report.scale import with_scale


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("±", r"$\pm$"),
    ):
        text = text.replace(char, escaped)
    return text


def to_markdown(table: pd.DataFrame, bold: pd.DataFrame | None = None) -> str:
    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    rows = []
    for i, (label, row) in enumerate(table.iterrows()):
        cells = [str(v) for v in row]
        if bold is not None:
            cells = [f"**{c}**" if bold.iloc[i, j] else c for j, c in enumerate(cells)]
        rows.append([str(label), *cells])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * len(table.columns)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_latex(table: pd.DataFrame, bold: pd.DataFrame | None = None, caption: str = "") -> str:
    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    lines = [
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    for i, (label, row) in enumerate(table.iterrows()):
        cells = [_latex_escape(str(v)) for v in row]
        if bold is not None:
            cells = [rf"\textbf{{{c}}}" if bold.iloc[i, j] else c for j, c in enumerate(cells)]
        lines.append(" & ".join([_latex_escape(str(label)), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {line}" for line in caption.splitlines()]
    return "\n".join(lines) + "\n"


def write_table(
    data: pd.DataFrame, display: pd.DataFrame, stem: str | Path, bold: pd.DataFrame | None = None, footnote: str = ""
) -> None:
    """Write ``data`` (numbers) to ``stem.csv`` and ``display`` (formatted) to ``stem.md`` and ``stem.tex``, with
    ``footnote`` and the scale (:mod:`offrl.report.scale`) under both."""
    stem = Path(stem)
    footnote = with_scale(footnote)
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_csv(data, stem.with_suffix(".csv"))
    write_text(
        stem.with_suffix(".md"), to_markdown(display, bold) + "".join(f"\n{line}\n" for line in footnote.splitlines())
    )
    write_text(stem.with_suffix(".tex"), to_latex(display, bold, caption=footnote))


DATASET_COLUMNS = [
    "transitions",
    "episodes",
    "terminals",
    "timeouts",
    "return_mean",
    "return_min",
    "return_max",
    "normalized_score",
]


def dataset_table(summary_paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per dataset (``env-kind``) with its size and return statistics."""
    rows = [json.loads(Path(p).read_text()) for p in summary_paths]
    data = pd.DataFrame(rows).assign(dataset=lambda d: d["env"] + "-" + d["kind"]).set_index("dataset")[DATASET_COLUMNS]
    display = data.copy()
    for col in ("return_mean", "return_min", "return_max", "normalized_score"):
        display[col] = data[col].map(lambda v: f"{v:.1f}")
    return data, display


CONTAMINATION_COLUMNS = {
    "transitions": "total transitions",
    "expert_transitions": "expert transitions",
    "contaminant_transitions": "contaminant transitions",
    "reward_mean": "average reward",
}


def contamination_table(summary_paths: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3 of the TD3BC++ paper: per contaminated dataset, its size, expert and contaminant shares, mean reward."""
    rows = [json.loads(Path(p).read_text()) for p in summary_paths]
    missing = [row["minari_id"] for row in rows if "contaminant_transitions" not in row]
    if missing:
        raise ValueError(f"not contaminated datasets (no contaminant count): {missing}")
    data = (
        pd.DataFrame(rows)
        .assign(dataset=lambda d: d["env"] + "-" + d["kind"])
        .set_index("dataset")[list(CONTAMINATION_COLUMNS)]
    )
    display = data.rename(columns=CONTAMINATION_COLUMNS)
    display["average reward"] = data["reward_mean"].map(lambda v: f"{v:.2f}")
    return data, display
