"""Every figure readable alone: the papers' names with the ids in a footnote, what bands and bars are, no clipped
text, its data beside it.

Text outside a figure raises (pyproject's filterwarnings turns offrl.report.figures.ClippedTextWarning into an error).
"""

import json
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
    tables,
)
from offrl.report.names import dataset_name, id_footnote, paper_name, spread_label  # noqa: E402
from offrl.report.scale import load_scale_note, scale_note, stated_scale  # noqa: E402
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


def test_safety_figure_per_step_actions_and_lengths(tmp_path, drawn):
    """Guided's episodes last 200 steps with Σ‖a‖₁ 15, TD3+BC's 100 with 10: +50 % cumulative, 0.075 vs 0.1 per step."""
    data = evaluations().replace({"td3bc_pp": "guided_td3bc"})
    guided = data["algorithm"] == "guided_td3bc"
    data["sum_abs_action"] = np.where(guided, 15.0, 10.0)
    data.loc[guided, "length"] = 200
    comparison = safety.safety_comparison(data, "td3bc", "guided_td3bc", DATASETS)
    row = comparison.loc["hopper-expert"]
    assert row["sum_abs_action_change_pct"] == pytest.approx(50.0)
    assert (row["abs_action_per_step_td3bc"], row["abs_action_per_step_guided_td3bc"]) == pytest.approx((0.1, 0.075))
    assert row["abs_action_per_step_change_pct"] == pytest.approx(-25.0)
    assert (row["mean_length_td3bc"], row["mean_length_guided_td3bc"]) == (100.0, 200.0)
    safety.plot_safety_comparison(comparison, tmp_path / "guided_fig1", "guided_td3bc", "td3bc")
    text = drawn["guided_fig1"]
    assert "‖a‖₁ per step" in text and "episode length" in text and "cumulative Σ‖a‖₁" in text
    # No falls in either algorithm: the empty events bars say so.
    assert "none in\neither" in text


def test_an_empty_events_bar_names_a_baseline_without_events(tmp_path, drawn):
    data = evaluations().replace({"td3bc_pp": "guided_td3bc"})
    data.loc[data["algorithm"] == "guided_td3bc", "fell"] = True
    comparison = safety.safety_comparison(data, "td3bc", "guided_td3bc", DATASETS)
    safety.plot_safety_comparison(comparison, tmp_path / "guided_fig1", "guided_td3bc", "td3bc")
    assert "n/a: none\nfor TD3+BC" in drawn["guided_fig1"] and "none in\neither" not in drawn["guided_fig1"]


SCALE_CONFIG = {
    "scale": "default",
    "datasets": {"size": 100000},
    "offline": {"steps": 10000, "seeds": [0, 1, 2]},
    "guided": {"seeds": [0, 1]},
    "taming": {"steps": 20000},
    "bear_blog": {"figure1_sizes": [10000, 100000]},
    "safer": {
        "prior": {"steps": 3000},
        "data": {"episodes_per_task": 25},
        "downstream": {"steps": 10000, "seeds": [0]},
    },
}


@pytest.mark.parametrize(
    "study, note",
    [
        ("datasets", "Scale: default — datasets of 100,000 transitions."),
        ("offline", "Scale: default — 10,000 training steps, 3 seeds (0, 1, 2), datasets of 100,000 transitions."),
        ("guided", "Scale: default — 10,000 training steps, 2 seeds (0, 1), datasets of 100,000 transitions."),
        ("taming", "Scale: default — 20,000 training steps, 3 seeds (0, 1, 2), datasets of 100,000 transitions."),
        (
            "bear_blog",
            "Scale: default — 10,000 training steps, 3 seeds (0, 1, 2), expert data of 10,000 and 100,000 transitions.",
        ),
        ("safer", "Scale: default — prior 3,000 steps on 25 episodes per task; downstream 10,000 steps, 1 seed (0)."),
    ],
)
def test_scale_note_per_study(study, note):
    assert scale_note(SCALE_CONFIG, study) == note


def test_the_taming_note_takes_offline_steps_without_a_study_budget():
    config = {**SCALE_CONFIG, "taming": {}}  # taming.steps is optional: its runs then train offline.steps
    assert scale_note(config, "taming").startswith("Scale: default — 10,000 training steps, 3 seeds")


def test_scale_note_refuses_an_unknown_study_and_a_config_without_the_keys(tmp_path):
    with pytest.raises(ValueError, match="--study must be one of datasets, offline, guided"):
        scale_note(SCALE_CONFIG, "d4rl")
    (tmp_path / "partial.yaml").write_text("scale: default\n")
    with pytest.raises(ValueError, match=r"--run-config .*partial.yaml: no key 'offline' \(give the run's resolved"):
        load_scale_note(tmp_path / "partial.yaml", "offline")


def test_every_table_and_figure_states_the_scale_set_for_it(tmp_path):
    note = scale_note(SCALE_CONFIG, "offline")
    data = pd.DataFrame({"score": [1.0]}, index=pd.Index(["hopper-medium"], name="dataset"))
    fig, _ = plt.subplots()
    with stated_scale(note):
        tables.write_table(data, data.astype(str), tmp_path / "table", footnote="ids: TD3+BC = td3bc")
        figures.save_figure(fig, tmp_path / "figure", footnote="ids: TD3+BC = td3bc")
    markdown = (tmp_path / "table.md").read_text()
    assert "\nids: TD3+BC = td3bc\n\nScale: default — 10,000 training steps" in markdown
    assert "% Scale: default — 10,000 training steps" in (tmp_path / "table.tex").read_text()
    footer = [t.get_text() for t in fig.texts]
    assert len(footer) == 1 and footer[0].startswith("ids: TD3+BC = td3bc\nScale: default — 10,000 training")
    # Outside the block nothing is added.
    tables.write_table(data, data.astype(str), tmp_path / "plain")
    assert "Scale" not in (tmp_path / "plain.md").read_text()


def test_the_cli_reads_the_scale_from_the_run_config(tmp_path):
    import yaml

    from offrl.cli import main

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(SCALE_CONFIG))
    summary = {
        "env": "hopper",
        "kind": "medium",
        **{c: 1.0 for c in tables.DATASET_COLUMNS},
    }
    (tmp_path / "hopper-medium.json").write_text(json.dumps(summary))
    main(
        ["dataset-table", "--run-config", str(tmp_path / "config.yaml"), "--study", "datasets"]
        + ["--out", str(tmp_path / "datasets"), str(tmp_path / "hopper-medium.json")]
    )
    assert "Scale: default — datasets of 100,000 transitions." in (tmp_path / "datasets.md").read_text()
    with pytest.raises(SystemExit):
        main(
            [
                "dataset-table",
                "--run-config",
                str(tmp_path / "missing.yaml"),
                "--out",
                str(tmp_path / "x"),
                str(tmp_path / "hopper-medium.json"),
            ]
        )
