"""Every figure readable alone: the papers' names with the ids in a footnote, what bands and bars are, no clipped text, its data beside it.

Text outside a figure raises (pyproject's filterwarnings turns offrl.report.figures.ClippedTextWarning into an error).
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from offrl.report import (  # noqa: E402
    figures,
    names,  # noqa: E402
    safety,
    scores,
    simhash,
)
from offrl.report.names import dataset_name, id_footnote, paper_name, spread_label  # noqa: E402
from offrl.safer import report as safer  # noqa: E402
from offrl.simhash import SimHashIndex  # noqa: E402

ALGORITHMS = ["td3bc", "td3bc_pp", "bear_small"]
DATASETS = ["hopper-expert", "hopper-expert-random-30"]


@pytest.fixture
def drawn(monkeypatch):
    """Each saved figure's texts (titles, labels, legends, footnote), by file name."""
    texts: dict[str, str] = {}
    real = figures.save_figure

    def record(fig, stem, footnote=""):
        texts[Path(stem).name] = " | ".join(t.get_text() for t in fig.findobj(Text)) + " | " + footnote
        real(fig, stem, footnote)

    for module in (scores, safety, simhash, safer):
        monkeypatch.setattr(module, "save_figure", record)
    return texts


def evaluations() -> pd.DataFrame:
    rows = [
        {
            "algorithm": a,
            "dataset": d,
            "seed": seed,
            "step": step,
            "episode": 0,
            "normalized_score": 10.0 * i + seed + step / 100,
            "return": 100.0 * i + step,
            "length": 100,
            "fell": False,
            "unsafe_height_steps": 0,
            "sum_abs_action": 5.0,
        }
        for i, a in enumerate(ALGORITHMS)
        for d in DATASETS
        for seed in (0, 1)
        for step in (100, 200, 300)
    ]
    return pd.DataFrame(rows)


def logs() -> pd.DataFrame:
    rows = [
        {
            "algorithm": a,
            "dataset": d,
            "step": step,
            "seed": seed,
            "q_mean": 10.0 ** (step / 100),
            "divergence_expert_p75": 0.1,
            "divergence_contaminant_p75": 1.0,
        }
        for a in ALGORITHMS
        for d in DATASETS
        for seed in (0, 1)
        for step in (100, 200, 300)
    ]
    return pd.DataFrame(rows)


def test_names_are_declared_once_and_variants_show_their_preset():
    assert paper_name("td3bc_pp") == "TD3BC++" and paper_name("guided_td3bc") == "Guided TD3+BC"
    assert (
        paper_name("bear_256") == "BEAR (256)" and paper_name("td3bc_gp_policy_actions") == "TD3+BC+GP (policy_actions)"
    )
    assert paper_name("safer_u15") == "SAFER (≤15% unsafe)" and paper_name("mystery") == "mystery"
    assert id_footnote(["td3bc", "td3bc", "mystery"]) == "ids: TD3+BC = td3bc"
    assert spread_label([3, 3]) == "mean ± s.d. over 3 seeds" and spread_label([2, 3], "mean") == "mean over 2-3 seeds"
    assert dataset_name("walker2d-medium-replay") == "Walker2d medium-replay"
    assert safer.method_name("contextual_parrot") == "Context PAR."
    from offrl.algos.presets import PRESETS

    assert all(name in names.PAPER_NAMES for name in PRESETS), "every preset has its paper's name"
    assert len(set(names.PAPER_NAMES.values())) == len(names.PAPER_NAMES), "no two ids share a name"


def test_a_clipped_title_is_found():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title("a title far too long to fit in a two-inch figure at this size", fontsize=14)
    assert figures.overflowing_text(fig) == [f"panel 0 ({ax.get_title()!r})"]
    with pytest.warns(figures.ClippedTextWarning):
        figures.save_figure(fig, Path("/tmp") / f"offrl-clipped-{id(fig)}")


def check(texts: str, tmp_path: Path, stem: str, spread: str, names=ALGORITHMS) -> None:
    assert (tmp_path / f"{stem}.png").is_file() and (tmp_path / f"{stem}.csv").is_file(), stem
    assert spread in texts, (stem, texts)
    for name in names:
        assert paper_name(name) in texts, (stem, name)
    if any(paper_name(n) != n for n in names):
        assert id_footnote(names) in texts, stem


def test_offline_figures(tmp_path, drawn):
    final = scores.final_scores(evaluations(), last=2)
    scores.plot_learning_curves(evaluations(), tmp_path / "curves", ALGORITHMS, DATASETS)
    check(drawn["curves"], tmp_path, "curves", "line, band: mean ± s.d. over 2 seeds")
    scores.plot_final_boxes(
        final, tmp_path / "boxes", ALGORITHMS, DATASETS[:1], title="Gradient penalty: which actions it samples"
    )
    check(drawn["boxes"], tmp_path, "boxes", "box: quartiles, whiskers 1.5 IQR, over 2 seeds")
    scores.plot_contamination_curves(final, tmp_path / "fig3", ALGORITHMS, ["hopper"], [30])
    check(drawn["fig3"], tmp_path, "fig3", "mean ± s.d. over 2 seeds")
    scores.plot_alpha_grid(final, tmp_path / "fig7", [("td3bc", 2.5, 0.0), ("td3bc_pp", 2.5, 1.0)], DATASETS)
    check(drawn["fig7"], tmp_path, "fig7", "mean ± s.d. over 2 seeds", names=[])
    scores.plot_divergence(logs(), evaluations(), tmp_path / "fig4", ALGORITHMS, DATASETS)
    check(drawn["fig4"], tmp_path, "fig4", "mean over 2 seeds")
    scores.plot_return_and_q(logs(), evaluations(), tmp_path / "bear_fig1", ALGORITHMS, DATASETS)
    check(drawn["bear_fig1"], tmp_path, "bear_fig1", "mean over 2 seeds")
    probe = {step: {"expert": torch.randn(2, 50), "contaminant": torch.randn(2, 50) - 1} for step in (100, 200, 300)}
    for i, algorithm in enumerate(("td3bc", "td3bc_gp")):
        torch.save({"algorithm": algorithm, "seeds": [0, 1], "probe_q": probe}, tmp_path / f"run{i}.pt")
    scores.plot_q_histograms([tmp_path / "run0.pt", tmp_path / "run1.pt"], ["td3bc", "td3bc_gp"], tmp_path / "fig6")
    check(drawn["fig6"], tmp_path, "fig6", "density, pooled over 1 run(s)", names=["td3bc", "td3bc_gp"])


def test_score_table_shows_paper_names_spread_and_ids(tmp_path):
    final = scores.final_scores(evaluations(), last=2)
    scores.write_score_table(final, ["td3bc", "td3bc_pp"], DATASETS, tmp_path / "table", gains={"td3bc_pp": "td3bc"})
    markdown = (tmp_path / "table.md").read_text()
    assert "| dataset | TD3+BC | TD3BC++ |" in markdown and "vs TD3+BC)" in markdown
    assert (
        "Final normalised score: mean over 2 seeds ± sample std of the per-seed final scores" in markdown
        and "ids: TD3+BC = td3bc, TD3BC++ = td3bc_pp" in markdown
    )
    assert list(pd.read_csv(tmp_path / "table.csv", header=[0, 1], index_col=0).columns.get_level_values(1)[:2]) == [
        "td3bc",
        "td3bc_pp",
    ]


def test_safety_figure_spells_out_datasets(tmp_path, drawn):
    data = evaluations().replace({"td3bc_pp": "guided_td3bc"})
    comparison = safety.safety_comparison(data, "td3bc", "guided_td3bc", DATASETS)
    safety.write_safety_comparison(comparison, tmp_path / "guided_fig1")
    safety.plot_safety_comparison(comparison, tmp_path / "guided_fig1", "guided_td3bc", "td3bc")
    assert "Hopper\nexpert-random-30" in drawn["guided_fig1"] and "h-e" not in drawn["guided_fig1"]
    assert "Guided TD3+BC vs TD3+BC" in drawn["guided_fig1"] and (tmp_path / "guided_fig1.csv").is_file()
    assert "h = hopper" in (tmp_path / "guided_fig1.md").read_text()


def test_simhash_figures_write_their_numbers(tmp_path, drawn):
    rng = np.random.default_rng(0)
    paths = []
    for name in DATASETS:
        SimHashIndex.build(rng.normal(size=(200, 11)).astype(np.float32), k=4, seed=0).save(tmp_path / f"{name}.npz")
        paths.append(tmp_path / f"{name}.npz")
    simhash.plot_conf(paths, DATASETS, tmp_path / "conf")
    simhash.plot_conf_histograms(paths, DATASETS, tmp_path / "hist")
    assert pd.read_csv(tmp_path / "conf.csv").groupby("dataset")["states"].sum().tolist() == [200, 200]
    assert pd.read_csv(tmp_path / "hist.csv").groupby("dataset")["states"].sum().tolist() == [200, 200]
