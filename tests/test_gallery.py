"""The gallery: the committed docs/img/ are `snakemake gallery`'s outputs at the committed config, and the
command that writes them puts each figure beside the paper's claim and the run's verdict."""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from offrl.cli import main  # noqa: E402
from offrl.plan import resolved_config  # noqa: E402
from offrl.report.gallery import GALLERY, IMAGE_WIDTH, config_sha256, file_sha256  # noqa: E402
from tests.conftest import REPO  # noqa: E402

MANIFEST = REPO / "docs" / "img" / "manifest.json"


def test_committed_gallery_is_the_gallery_target_at_the_committed_config():
    """Fails when config/config.yaml (or a schema default) changed since the gallery was made: run
    `snakemake gallery --cores 2` and commit docs/results.md and docs/img/."""
    manifest = json.loads(MANIFEST.read_text())
    config = resolved_config(
        [str(REPO / "config" / "config.yaml")], REPO / "workflow" / "schemas" / "config.schema.yaml"
    )
    assert manifest["config_sha256"] == config_sha256(config), "the gallery was made at another config"
    assert manifest["scale"] == config["scale"] == "default"
    assert [image["source"] for image in manifest["images"]] == [entry.figure for entry in GALLERY]
    page = (REPO / "docs" / "results.md").read_text()
    for image in manifest["images"]:
        path = REPO / image["image"]
        assert file_sha256(path) == image["sha256"], f"{image['image']} is not the image the gallery target wrote"
        assert f"(img/{path.name})" in page
    committed = sorted(p.name for p in MANIFEST.parent.glob("*.png"))
    assert committed == sorted(Path(image["image"]).name for image in manifest["images"]), "a stray image"


def _figure(path: Path, width_inches: float) -> None:
    fig, ax = plt.subplots(figsize=(width_inches, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _finding(study: str, source: str, claim: str, verdict: str, estimate: float | None) -> dict:
    interval = (None, None) if estimate is None else (estimate - 1, estimate + 1)
    return dict(
        study=study,
        claim=claim,
        source=source,
        effect="% change (< 0 holds)",
        estimate=estimate,
        low=interval[0],
        high=interval[1],
        verdict=verdict,
    )


def test_gallery_command_writes_small_images_the_page_and_the_manifest(tmp_path):
    config = resolved_config(
        [str(REPO / "config" / "config.yaml")], REPO / "workflow" / "schemas" / "config.schema.yaml"
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    figures = []
    for entry, width in zip(GALLERY, (15, 4, 6, 15)):
        figures.append(tmp_path / Path(entry.figure).name)
        _figure(figures[-1], width)
    findings = [
        _finding("SAFER", "Figure 1", "SAFER's likely actions hold fewer unsafe pairs", "holds", -6.0),
        _finding("SAFER", "Table 1", "SAFER has fewer safety violations than parrot", "reversed", 24.0),
        _finding("SAFER", "Figure 4", "actions inside the bound are unsafe at most 15 %", "reversed", 24.9),
    ]
    (tmp_path / "findings.json").write_text(json.dumps({"scale": "default", "findings": findings}))
    docs = tmp_path / "docs"
    main(
        ["--run-config", str(tmp_path / "config.yaml"), "gallery", "--findings", str(tmp_path / "findings.json")]
        + ["--img-dir", str(docs / "img"), "--page", str(docs / "results.md"), *map(str, figures)]
    )
    manifest = json.loads((docs / "img" / "manifest.json").read_text())
    assert manifest["config_sha256"] == config_sha256(config) and manifest["scale"] == "default"
    # 4 inches at 150 dpi (600 px) is not enlarged; 15 inches (2250 px) shrinks to IMAGE_WIDTH (1200 px).
    widths = [Image.open(docs / "img" / Path(e.figure).name).width for e in GALLERY]
    assert widths == [IMAGE_WIDTH, 600, 900, IMAGE_WIDTH]
    for image, figure in zip(manifest["images"], figures):
        assert image["sha256"] == file_sha256(image["image"]) and image["source_sha256"] == file_sha256(figure)
    page = (docs / "results.md").read_text()
    figure1 = page[page.index("## SAFER, Figure 1") : page.index("## SAFER, Figure 4")]
    assert "(img/safer_fig1.png)" in figure1
    assert (
        "| **holds** | SAFER's likely actions hold fewer unsafe pairs | % change (< 0 holds) | -6 | [-7, -5] |"
        in figure1
    )
    assert "fewer safety violations than parrot" not in page  # Table 1's finding is not a figure's
    assert "| **reversed** | actions inside the bound are unsafe at most 15 %" in page
    assert "No finding of this run checks this figure." in page[page.index("## Guided TD3+BC's SimHash") :]


def test_gallery_refuses_a_figure_it_does_not_show_and_a_missing_config(tmp_path, capsys):
    config = resolved_config(
        [str(REPO / "config" / "config.yaml")], REPO / "workflow" / "schemas" / "config.schema.yaml"
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit):
        main(["--run-config", str(tmp_path / "config.yaml"), "gallery", "--findings", "f.json", "taming_fig3.png"])
    assert "not gallery figures: ['taming_fig3.png']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["gallery", "--findings", "f.json", "guided_fig1.png"])
    assert "gallery needs --run-config" in capsys.readouterr().err


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_shows_gallery_images_and_its_links_reach_its_headings():
    readme = (REPO / "README.md").read_text()
    top = readme[: readme.index("## Two commands")]
    images = re.findall(r"\]\((docs/img/[\w.]+\.png)\)", top)
    assert 2 <= len(images) <= 3 and all((REPO / image).is_file() for image in images)
    anchors = {_anchor(line[3:]) for line in readme.splitlines() if line.startswith("## ")}
    links = set(re.findall(r"\]\(#([\w-]+)\)", readme))
    assert links and links <= anchors, links - anchors
    assert {"two-commands", "run-on-slurm", "where-things-go"} <= links
