"""The gallery: a few of the default run's figures, small, in the repository (``docs/results.md``, ``docs/img/``).

A visitor sees what the pipeline produces without running it. ``snakemake gallery`` builds the
figures of :data:`GALLERY` and the findings they bear on, then ``python -m offrl gallery`` shrinks
each figure to a PNG under ``docs/img/``, writes ``docs/results.md`` (each figure beside the
paper's claim and this run's verdict) and ``docs/img/manifest.json``: the SHA-256 of the resolved
config the figures were made at, and each image's source and SHA-256. tests/test_gallery.py
recomputes the config's hash from config/config.yaml, so a committed gallery made at another
config fails there until ``snakemake gallery`` is run again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from offrl.files import write_atomically, write_text


@dataclass(frozen=True)
class Entry:
    """One gallery figure: the run's file, and the study and source (as the findings name them) it shows."""

    figure: str
    study: str
    source: str
    title: str
    shows: str


# Figures whose default-scale jobs are cheap: about 31 CPU-minutes together, projected from benchmarks/costs.yaml
# (23 of them Guided TD3+BC's four training runs).
GALLERY = (
    Entry(
        "results/figures/guided_fig1.png",
        "Guided TD3+BC",
        "Figure 1",
        "Guided TD3+BC, Figure 1: safety against TD3+BC",
        "% change of unsafe episodes and of the cumulative Σ‖a‖₁ over all evaluations of training, then what the"
        " cumulative measure is made of: the action size per step and the episodes' length, both algorithms.",
    ),
    Entry(
        "results/figures/safer_fig1.png",
        "SAFER",
        "Figure 1",
        "SAFER, Figure 1: unsafe pairs among each prior's most likely actions",
        "The share of unsafe state-action pairs among the top X % most likely holdout pairs, PARROT against SAFER.",
    ),
    Entry(
        "results/figures/safer_fig4.png",
        "SAFER",
        "Figure 4",
        "SAFER, Figure 4: calibration of the safety bound",
        "Each rollout's share of unsafe steps with latents drawn inside the bound for a target share; calibrated"
        " where the dots lie on or under y = x.",
    ),
    Entry(
        "results/figures/simhash_conf.png",
        "Guided TD3+BC",
        "SimHash index",
        "Guided TD3+BC's SimHash index: how states share buckets, and the conf(s) they get",
        "Per dataset, the fraction of states against how many share their hash code (k bits), and the min-max"
        " normalised count conf(s) that switches the guidance term of the critic's target.",
    ),
)
IMAGE_WIDTH = 1200  # pixels: a wide figure's labels stay readable; a few hundred kB at most


def config_sha256(config: dict[str, Any]) -> str:
    """The SHA-256 of a resolved config, independent of key order and YAML layout."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shrink(source: str | Path, target: str | Path, width: int = IMAGE_WIDTH) -> None:
    """``source`` PNG resized to ``width`` pixels wide (never enlarged) at ``target``."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        write_atomically(Path(target), lambda tmp: image.save(tmp, format="PNG", optimize=True))


def _verdicts(findings: Sequence[dict[str, Any]], entry: Entry) -> list[str]:
    rows = [f for f in findings if f["study"] == entry.study and f["source"] == entry.source]
    if not rows:
        return ["No finding of this run checks this figure."]
    lines = ["| verdict | the paper's claim | effect | estimate | 95 % CI |", "| --- | --- | --- | ---: | --- |"]
    for f in rows:
        measured = f["estimate"] is not None
        estimate = f"{f['estimate']:+.3g}" if measured else ""
        ci = f"[{f['low']:+.3g}, {f['high']:+.3g}]" if measured else ""
        cells = (f"**{f['verdict']}**", f["claim"], f["effect"], estimate, ci)
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return lines


def build_gallery(
    run_config: str | Path, findings_json: str | Path, figures: Sequence[str], img_dir: str | Path, page: str | Path
) -> dict[str, Any]:
    """Shrink ``figures`` (the :data:`GALLERY` entries' files, in order) into ``img_dir``; write its manifest and
    ``page``."""
    entries = {Path(e.figure).name: e for e in GALLERY}
    unknown = [f for f in figures if Path(f).name not in entries]
    if unknown:
        raise ValueError(f"not gallery figures: {unknown}; the gallery shows {sorted(entries)}")
    config = yaml.safe_load(Path(run_config).read_text())
    findings = json.loads(Path(findings_json).read_text())["findings"]
    img_dir, page = Path(img_dir), Path(page)
    img_dir.mkdir(parents=True, exist_ok=True)
    images = []
    lines = [
        "# Results: the default run's figures",
        "",
        "<!-- Written by `snakemake gallery` (lib/offrl/report/gallery.py): edit that, not this page. -->",
        "",
        f"A few figures of a run at the **{config['scale']}** scale (`config/config.yaml`), each beside the paper's",
        "claim it bears on and this run's verdict on it (from a 95 % bootstrap interval: `holds` when it lies",
        "on the paper's side of 0, `reversed` when wholly on the other, `inconclusive` when it straddles 0).",
        "Every figure says its steps, seeds and data size in its footer. All findings of a whole run, with what",
        "each means: [findings.md](findings.md). Regenerate: `snakemake gallery --cores 2` (the jobs these",
        "figures need, about 31 CPU-minutes at the default scale), then commit `docs/results.md` and `docs/img/`.",
        "",
    ]
    for figure in figures:
        entry = entries[Path(figure).name]
        image = img_dir / Path(figure).name
        shrink(figure, image)
        images.append(
            {
                "image": image.as_posix(),
                "source": entry.figure,
                "sha256": file_sha256(image),
                "source_sha256": file_sha256(figure),
            }
        )
        link = Path(image).relative_to(page.parent) if image.is_relative_to(page.parent) else image
        lines += [f"## {entry.title}", "", f"![{entry.title}]({link.as_posix()})", "", entry.shows, ""]
        lines += [*_verdicts(findings, entry), ""]
    manifest = {"scale": config["scale"], "config_sha256": config_sha256(config), "images": images}
    write_text(img_dir / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    write_text(page, "\n".join(lines))
    return manifest
