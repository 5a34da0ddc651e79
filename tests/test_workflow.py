"""The Snakemake workflow itself: lint, dry runs of every scale, and the smoke scale end to end."""

import json
import math
import os
import shutil
import subprocess
import sys

import minari
import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

# Every test here runs Snakemake (lint, dry runs, the smoke pipeline): minutes.
pytestmark = pytest.mark.slow
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
KINDS = ["random", "medium", "medium-replay", "medium-expert", "expert"]


def snakemake(*args: str, cwd=REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml", ".test/config/config.yaml"])
def test_dry_run_builds_the_dag(configfile, tmp_path):
    result = snakemake("all", "-n", "--configfile", str(REPO / configfile), "--directory", str(tmp_path))
    rules = (
        "collect_dataset",
        "dataset_table",
        "train_offline",
        "evaluate_run",
        "d4rl_table",
        "d4rl_curves",
        "simhash_index",
        "simhash_figure",
        "guided_table1",
        "guided_fig1",
    )
    rules += ("subset_dataset", "bear_fig1")
    if configfile != "config/config.yaml":  # the default scale builds the BEAR blog's Figure 1 only
        rules += ("bear_curves",)
    rules += ("q_overestimation",)
    for rule in rules:
        assert rule in result.stdout


def test_the_profile_prints_no_commands_and_a_quiet_dry_run_is_a_summary(tmp_path):
    """profiles/default prints no shell command per job; `-n --quiet rules` gives the paper scale's jobs as a
    job-count table, no block per job (what README and profiles/README.md give for a dry run's summary)."""
    paper = ("all", "-n", "--configfile", str(REPO / "config/paper.yaml"), "--directory", str(tmp_path))
    result = snakemake(*paper)
    output = result.stdout + result.stderr
    assert "rule train_offline:" in output and "python -m offrl" not in output
    quiet = snakemake(*paper, "--quiet", "rules")
    summary = quiet.stdout + quiet.stderr
    assert "Job stats:" in summary and "train_offline" in summary and "rule train_offline:" not in summary
    # A row per rule (each training pack is a rule of its own), far from a block of lines per job.
    assert len(summary.splitlines()) < 600


def test_paper_scale_config_is_its_file_and_the_schema_defaults(tmp_path):
    """--configfile config/paper.yaml is the whole config: no default-scale key of config/config.yaml leaks in."""
    import yaml
    from snakemake.utils import validate

    snakemake(
        "results/config.yaml",
        "--cores",
        "1",
        "--configfile",
        str(REPO / "config" / "paper.yaml"),
        "--directory",
        str(tmp_path),
    )
    resolved = yaml.safe_load((tmp_path / "results" / "config.yaml").read_text())
    expected = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(expected, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # fills the schema's defaults
    assert resolved == expected
    # The keys that leaked from config/config.yaml before: every TD3BC++ artefact (the gym ones but our fig7_gym sweep,
    # and the Adroit ones), SAFER's priors with the PriorConfig defaults (appendix C: SGD + momentum, lr 1e-4,
    # λ = 1e-4), 256-wide downstream SAC, no bear_256.
    assert resolved["taming"]["artefacts"] == [
        "table1",
        "table8",
        "fig3",
        "fig4",
        "fig5",
        "fig6",
        "fig8",
        "fig11",
    ]
    assert resolved["taming"]["adroit"]["artefacts"] == ["table2", "table4", "fig7"]
    assert resolved["safer"]["prior"]["options"] == {} and resolved["safer"]["downstream"]["hidden"] == [256, 256]
    from offrl.safer.priors.train import prior_config

    safer = prior_config("safer", **resolved["safer"]["prior"]["options"])
    assert (safer.optimizer, safer.lr, safer.unsafe_weight) == ("sgd", 1e-4, 1e-4)
    assert resolved["variants"] == {} and resolved["scale"] == "paper"


def test_default_scale_loads_its_own_file_without_a_configfile(tmp_path):
    import yaml

    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    snakemake("results/config.yaml", "--cores", "1", "--directory", str(tmp_path))
    resolved = yaml.safe_load((tmp_path / "results" / "config.yaml").read_text())
    assert resolved["scale"] == "default" and "bear_256" in resolved["variants"]


def test_smoke_pipeline_builds_minari_datasets(smoke_run, monkeypatch):
    workdir = smoke_run
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(workdir / "resources" / "minari"))
    for kind in KINDS:
        dataset = minari.load_dataset(f"offrl/hopper/{kind}-v0")
        episode = next(iter(dataset.iterate_episodes()))
        assert len(episode.observations) == len(episode.actions) + 1
        assert dataset.storage.metadata["ref_max_score"] == pytest.approx(3234.3)
        summary = json.loads((workdir / "resources" / "datasets" / f"hopper-{kind}.json").read_text())
        assert summary["transitions"] == dataset.total_steps
        assert all(math.isfinite(summary[key]) for key in ("return_mean", "normalized_score"))
    table = (workdir / "results" / "tables" / "datasets.md").read_text()
    assert all(f"hopper-{kind} " in table for kind in KINDS)


def test_smoke_medium_replay_ends_at_the_medium_checkpoint(smoke_run):
    workdir = smoke_run
    manifest = json.loads((workdir / "resources" / "behaviour" / "hopper" / "manifest.json").read_text())
    summary = json.loads((workdir / "resources" / "datasets" / "hopper-medium-replay.json").read_text())
    assert summary["transitions"] == min(summary["size"], manifest["replay_medium_transitions"])


def test_smoke_pipeline_builds_the_table_and_figure(smoke_run):
    workdir = smoke_run
    table = pd.read_csv(workdir / "results" / "tables" / "d4rl.csv", header=[0, 1], index_col=0)
    assert list(table.index) == [f"hopper-{kind}" for kind in KINDS] + ["Total"]
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    for suffix in ("md", "tex"):
        assert "Total" in (workdir / "results" / "tables" / f"d4rl.{suffix}").read_text()
    assert (workdir / "results" / "figures" / "d4rl_curves.png").stat().st_size > 10_000
    evaluation = pd.read_csv(workdir / "results" / "runs" / "td3bc" / "hopper-medium" / "seed0-1-2" / "evaluation.csv")
    assert set(evaluation["seed"]) == {0, 1, 2} and np.isfinite(evaluation["normalized_score"]).all()
    assert (workdir / "results" / "runs" / "bc" / "hopper-expert" / "seed0-1-2" / "config.json").is_file()


def test_report_gathers_tables_and_figures(smoke_run):
    workdir = smoke_run
    snakemake("--report", str(workdir / "report.html"), "--directory", str(workdir), cwd=workdir)
    html = (workdir / "report.html").read_text(errors="replace")
    assert "d4rl_curves.png" in html and "datasets.md" in html


def test_smoke_pipeline_indexes_the_datasets(smoke_run):
    workdir = smoke_run
    summary = json.loads((workdir / "results" / "index" / "hopper-medium" / "simhash.json").read_text())
    assert summary["k"] == 50 and summary["states"] == 2000
    assert sum(int(size) * n for size, n in summary["bucket_size_histogram"].items()) == 2000
    assert (workdir / "results" / "figures" / "simhash_conf.png").stat().st_size > 10_000


def test_smoke_pipeline_builds_guided_table1_and_figure1(smoke_run):
    workdir = smoke_run
    table = pd.read_csv(workdir / "results" / "tables" / "guided_table1.csv", header=[0, 1], index_col=0)
    assert list(table.index) == [f"hopper-{kind}" for kind in KINDS] + ["Total"]
    assert set(table.columns.get_level_values(1)) == {"td3bc", "guided_td3bc"}
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    figure1 = pd.read_csv(workdir / "results" / "figures" / "guided_fig1.csv", index_col=0)
    assert figure1["label"].tolist() == ["h-r", "h-m", "h-mr", "h-me", "h-e"]
    assert np.isfinite(figure1[["events_change_pct", "sum_abs_action_change_pct"]].to_numpy()).all()
    for name in ("guided_fig1", "simhash_conf_hist"):
        assert (workdir / "results" / "figures" / f"{name}.png").stat().st_size > 10_000


def test_smoke_guided_runs_use_the_safety_expert_and_the_index(smoke_run):
    workdir = smoke_run
    manifest = json.loads((workdir / "resources" / "safety_expert" / "hopper" / "manifest.json").read_text())
    assert manifest["config"]["ctrl_cost_weight"] == 0.1 and "medium" not in manifest
    assert math.isfinite(manifest["expert"]["sum_sq_action_per_step"])
    run = json.loads(
        (workdir / "results" / "runs" / "guided_td3bc" / "hopper-medium" / "seed0-1-2" / "config.json").read_text()
    )
    assert run["config"]["options"] == {
        "guide_expert": "resources/safety_expert/hopper/expert.pt",
        "guide_index": "results/index/hopper-medium/simhash.npz",
    }


def test_smoke_pipeline_builds_contaminated_datasets_and_table3(smoke_run):
    workdir = smoke_run
    table = pd.read_csv(workdir / "results" / "tables" / "contamination.csv", index_col=0)
    assert list(table.index) == ["hopper-expert-random-30", "hopper-expert-cloned-30"]
    assert table["transitions"].tolist() == [2000, 2000] and table["contaminant_transitions"].tolist() == [600, 600]
    assert (table["expert_transitions"] + table["contaminant_transitions"] == table["transitions"]).all()
    expert = json.loads((workdir / "resources" / "datasets" / "hopper-expert.json").read_text())
    assert table["reward_mean"].iloc[0] < expert["reward_mean"]  # random data earns less per step than the expert
    cloned = json.loads((workdir / "resources" / "behaviour" / "hopper" / "cloned.json").read_text())
    assert cloned["expert_transitions"] == 500 and math.isfinite(cloned["normalized_score"])


def test_smoke_pipeline_builds_taming_table1_and_figure3(smoke_run):
    workdir = smoke_run
    table = pd.read_csv(workdir / "results" / "tables" / "taming_table1.csv", header=[0, 1], index_col=0)
    settings = ["expert", "medium-expert", "expert-random-30"]
    assert list(table.index) == [f"hopper-{s}" for s in settings] + ["Total"]
    assert list(dict.fromkeys(table.columns.get_level_values(1))) == [
        "bc_10pct",
        "td3bc",
        "td3bc_pp",
        "cql_small",
        "cql_rho_small",
        "iql",
        "fisher_brc_small",
        "uwac_small",
        "brac_p_small",
        "brac_v_small",
    ]
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    assert "% vs TD3+BC)" in (workdir / "results" / "tables" / "taming_table1.md").read_text()
    curve = pd.read_csv(workdir / "results" / "figures" / "taming_fig3.csv")
    assert sorted(set(curve["percent"])) == [0, 30] and np.isfinite(curve["mean"]).all()
    assert (workdir / "results" / "figures" / "taming_fig3.png").stat().st_size > 10_000
    assert (workdir / "results" / "figures" / "taming_fig4.png").stat().st_size > 10_000
    assert (workdir / "results" / "figures" / "taming_fig8.png").stat().st_size > 10_000
    for figure in ("taming_fig5", "taming_fig6", "taming_fig7_gym", "taming_fig11"):
        assert (workdir / "results" / "figures" / f"{figure}.png").stat().st_size > 10_000, figure
    table8 = pd.read_csv(workdir / "results" / "tables" / "taming_table8.csv", header=[0, 1], index_col=0)
    assert list(table8.index) == [f"hopper-{kind}" for kind in KINDS] + ["Total"]
    assert np.isfinite(table8.to_numpy(dtype=float)).all()
    log = pd.read_csv(
        workdir / "results" / "runs" / "td3bc" / "hopper-expert-random-30" / "seed0-1-2" / "train_log.csv"
    )
    assert np.isfinite(log[["divergence_expert_p75", "divergence_contaminant_p75"]].to_numpy()).all()


def test_variant_runs_its_preset_with_its_options(tmp_path):
    import yaml

    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["variants"]["td3bc_pp_gp01"] = {"preset": "td3bc_pp", "options": {"gradient_penalty": 0.1}}
    config["offline"]["algorithms"] = ["td3bc", "td3bc_pp_gp01"]
    config["offline"]["seeds_per_job"] = 2  # seeds 0, 1, 2 in two jobs: groups 0-1 and 2
    (tmp_path / "variant.yaml").write_text(yaml.safe_dump(config))
    target = "results/runs/td3bc_pp_gp01/hopper-expert/seed0-1/evaluation.csv"
    result = snakemake(target, "-n", "-p", "--configfile", str(tmp_path / "variant.yaml"), "--directory", str(tmp_path))
    assert "train --algo td3bc_pp --dataset hopper-expert" in result.stdout
    assert (
        """--options '{"gradient_penalty": 0.1}' --out results/runs/td3bc_pp_gp01/hopper-expert/seed0-1"""
        in result.stdout
    )
    assert "evaluate --snapshots results/runs/td3bc_pp_gp01/hopper-expert/seed0-1/snapshots.pt" in result.stdout
    assert "--algo td3bc_pp_gp01" in result.stdout  # the evaluation is labelled with the variant's name
    everything = snakemake(
        "all", "-n", "-p", "--configfile", str(tmp_path / "variant.yaml"), "--directory", str(tmp_path)
    )
    assert "--seeds 0 1 " in everything.stdout and "--seeds 2 " in everything.stdout


def test_smoke_pipeline_builds_the_bear_blog_figures(smoke_run):
    workdir = smoke_run
    figure1 = pd.read_csv(workdir / "results" / "figures" / "bear_fig1.csv")
    assert set(figure1["algorithm"]) == {"sac", "bear_small"}
    assert set(figure1["dataset"]) == {"hopper-expert-first1000", "hopper-expert-first2000"}
    assert np.isfinite(figure1["q_mean"].dropna()).all() and np.isfinite(figure1["return"].dropna()).all()
    subset = json.loads((workdir / "resources" / "datasets" / "hopper-expert-first1000.json").read_text())
    assert subset["transitions"] == 1000 and subset["source"] == "subset"
    for name in ("bear_fig1", "bear_curves"):
        assert (workdir / "results" / "figures" / f"{name}.png").stat().st_size > 10_000, name
    for algorithm in ("bear_small", "bcq_small", "sac"):
        evaluation = pd.read_csv(
            workdir / "results" / "runs" / algorithm / "hopper-random" / "seed0-1-2" / "evaluation.csv"
        )
        assert set(evaluation["seed"]) == {0, 1, 2} and np.isfinite(evaluation["normalized_score"]).all()


def test_smoke_pipeline_builds_the_q_overestimation_table_and_figure(smoke_run):
    workdir = smoke_run
    table = pd.read_csv(workdir / "results" / "tables" / "q_overestimation.csv", index_col=0)
    assert list(table.index) == ["sac", "bear_small", "td3bc", "bc"] and set(table["dataset"]) == {
        "hopper-expert-first1000"
    }
    with_q = table.loc[["sac", "bear_small", "td3bc"]]
    assert (with_q["critic"] == "kept").all() and np.isfinite(
        with_q[["q_mean", "return_mean", "gap_mean", "gap_along_mean"]].to_numpy()
    ).all()
    assert (
        table.loc["bc", "critic"] == "none"
        and np.isnan(table.loc["bc", "gap_mean"])
        and np.isfinite(table.loc["bc", "return_mean"])
    )
    assert "no Q-function" in (workdir / "results" / "tables" / "q_overestimation.md").read_text()
    assert (workdir / "results" / "figures" / "q_overestimation.png").stat().st_size > 10_000
    # Every evaluation writes the per-episode diagnostic beside its scores, the same episodes.
    run = workdir / "results" / "runs" / "sac" / "hopper-expert-first1000" / "seed0-1-2"
    scores, diagnostic = pd.read_csv(run / "evaluation.csv"), pd.read_csv(run / "q_diagnostic.csv")
    assert (scores["length"].to_numpy() == diagnostic["length"].to_numpy()).all()


def test_bear_joins_taming_table1_by_configuration(tmp_path):
    import yaml

    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["taming"]["algorithms"] = ["td3bc", "td3bc_pp", "bear", "bear_pp"]
    config["taming"]["figure_algorithms"] = ["td3bc", "bear", "bear_pp"]
    (tmp_path / "bear.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(
        "results/tables/taming_table1.md",
        "results/figures/taming_fig3.png",
        "-n",
        "-p",
        "--configfile",
        str(tmp_path / "bear.yaml"),
        "--directory",
        str(tmp_path),
    )
    assert "--gain td3bc_pp:td3bc --gain bear_pp:bear" in result.stdout
    assert "train --algo bear --dataset hopper-expert-random-30" in result.stdout
    assert "train --algo bear_pp --dataset hopper-medium-expert" in result.stdout


def test_smoke_pipeline_builds_every_safer_artefact(smoke_run):
    workdir = smoke_run
    results = workdir / "results"
    table = pd.read_csv(results / "tables" / "safer_table1.csv", header=[0, 1], index_col=[0, 1])
    assert set(table.index.get_level_values(1)) == {
        "sac",
        "parrot",
        "contextual_parrot",
        "prior_explore",
        "safer_no_context",
        "safer",
        "csc",
    }
    assert np.isfinite(table.xs("mean", axis=1, level=0).to_numpy(dtype=float)).all()
    for number in (1, 4, 5, 6, 7, 8):
        assert (results / "figures" / f"safer_fig{number}.png").stat().st_size > 10_000
        data = pd.read_csv(results / "figures" / f"safer_fig{number}.csv")
        assert (
            len(data)
            and np.isfinite(data.select_dtypes("number").drop(columns=["std"], errors="ignore").to_numpy()).all()
        )
    probe = json.loads((results / "safer" / "priors" / "safer" / "seed1" / "probe.json").read_text())
    assert probe["look_steps"] == 3 and {"kl_safe", "swap_action_change", "r2_clearance_from_c"} <= set(probe)
    for prior_seed in (0, 1):  # every prior seed's rollouts, for Figure 4's check
        calibration = pd.read_csv(results / "safer" / "calibration" / f"prior{prior_seed}" / "task1.csv")
        assert sorted(calibration["target"].unique()) == [0.0, 0.15, 0.3, 0.45]
    bounds = pd.read_csv(results / "safer" / "priors" / "safer" / "seed1" / "bounds.csv")
    reached = bounds[bounds["reached"]]
    assert (
        bounds["bound"].is_monotonic_increasing
        and (reached["in_bound_unsafe_fraction"] <= reached["target"] + 1e-12).all()
    )
    assert (bounds["data_in_bound_unsafe_fraction"].between(0, 1)).all()  # each bound read on the data's own mix too
    log = pd.read_csv(results / "safer" / "downstream" / "safer_u0" / "task1" / "prior0" / "seed0-1" / "log.csv")
    assert set(log["seed"]) == {0, 1} and log["step"].max() == 300
    fig6 = pd.read_csv(results / "figures" / "safer_fig6.csv")
    assert "csc" in set(fig6["method"])  # Conservative Safety Critics beside SAFER in the violation curves
    run = json.loads(
        (results / "safer" / "downstream" / "safer_u0" / "task1" / "prior0" / "seed0-1" / "config.json").read_text()
    )
    assert (
        run["config"]["latent_map"] == "truncated_normal" and run["task"]["observe_geometry"] is False
    )  # the defaults
    summary = json.loads((workdir / "resources" / "grasp" / "offline.json").read_text())
    assert summary["unsafe_fraction"] > 0 and 0 < summary["success_fraction"] < 1
    assert summary["observe_geometry"] is False and summary["look_steps"] == 3  # the geometry in a first look only


def test_smoke_findings_report_every_configured_study(smoke_run):
    workdir = smoke_run
    payload = json.loads((workdir / "results" / "findings.json").read_text())
    studies = {f["study"] for f in payload["findings"]}
    assert {"Guided TD3+BC", "SAFER"} <= studies
    for finding in payload["findings"]:
        assert finding["verdict"] in ("holds", "reversed", "inconclusive", "not measured")
        if finding["verdict"] != "not measured":
            assert finding["low"] <= finding["estimate"] <= finding["high"] or finding["low"] == finding["high"]
    assert "# Findings at the test scale" in (workdir / "results" / "findings.md").read_text()


def test_the_gpu_command_without_a_target_runs_all(tmp_path):
    result = snakemake(
        "-n",
        "--cores",
        "8",
        "--resources",
        "gpu=2",
        "--configfile",
        str(REPO / ".test/config/config.yaml"),
        "--directory",
        str(tmp_path),
    )
    assert "train_offline" in result.stdout and "safer_table1" in result.stdout


def test_paper_table1_and_figure3_have_cql_and_iql(tmp_path):
    result = snakemake(
        "results/tables/taming_table1.md",
        "results/figures/taming_fig3.png",
        "-n",
        "-p",
        "--configfile",
        str(REPO / "config" / "paper.yaml"),
        "--directory",
        str(tmp_path),
    )
    for algorithm in ("cql", "iql"):
        # The paper scale packs the runs of one algorithm and env (offline.pack_members): one train-pack command.
        assert any(
            f"train-pack --algo {algorithm} " in line and "--run walker2d-expert-random-70 " in line
            for line in result.stdout.splitlines()
        ), algorithm
    table, figure = (
        next(line for line in result.stdout.splitlines() if command in line)
        for command in ("score-table", "contamination-figure")
    )
    assert " cql " in table and " iql " in table and " cql " in figure and " iql " in figure


def test_report_of_a_partial_run_builds_and_lists_what_is_missing(tmp_path):
    # One target built: the report holds it and names every artefact of `all` not built yet.
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    snakemake("results/tables/datasets.md", "--cores", "2", "--directory", str(tmp_path), cwd=tmp_path)
    snakemake("--report", str(tmp_path / "report.html"), "--directory", str(tmp_path), cwd=tmp_path)
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "datasets.md" in html
    for missing in ("results/tables/d4rl.md", "results/figures/d4rl_curves.png", "results/tables/safer_table1.md"):
        assert missing in html, missing


def test_every_figure_has_its_data_beside_it(smoke_run):
    workdir = smoke_run
    figures = sorted((workdir / "results" / "figures").glob("*.png"))
    assert len(figures) > 10
    assert [png.name for png in figures if not png.with_suffix(".csv").is_file()] == []
