"""The TD3BC++ paper's Adroit tasks: the env registry, the data path (download, placed by hand, stand-ins),
the expert-cloned recipe and Table 4's statistics, Table 2's omitted cells, and the workflow's Adroit slice."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from offrl.config import ConfigError, adroit_study, check_config, validate_config
from offrl.data import load_dataset
from offrl.data.contaminate import contaminant_count, contaminate
from offrl.data.download import download, placement_hint
from offrl.data.standin import standin_dataset, write_standin
from offrl.envs import ADROIT_ENVS, env_spec, make_env, minari_remote_id, normalized_score
from offrl.report.scores import OMITTED, score_table
from offrl.report.tables import contamination_table
from tests.conftest import REPO, network_available
from tests.pipeline_slice import SNAKEMAKE, snakemake_env

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED = REPO / "resources" / "shipped"


@pytest.mark.parametrize(
    ("env", "gym_id", "obs", "act", "steps"),
    [
        ("door", "AdroitHandDoor-v1", 39, 28, 200),
        ("hammer", "AdroitHandHammer-v1", 46, 26, 200),
        ("pen", "AdroitHandPen-v1", 45, 24, 100),
        ("relocate", "AdroitHandRelocate-v1", 39, 30, 200),
    ],
)
def test_adroit_env_matches_its_registry_entry(env, gym_id, obs, act, steps):
    gym_env = make_env(env)
    first, _ = gym_env.reset(seed=0)
    assert env_spec(env).gym_id == gym_id == gym_env.spec.id
    assert first.shape == (obs,) and gym_env.action_space.shape == (act,)
    assert (env_spec(env).obs_dim, env_spec(env).act_dim) == (obs, act)
    assert gym_env.spec.max_episode_steps == env_spec(env).max_episode_steps == steps  # D4RL's: Pen's 100
    gym_env.close()


def test_adroit_normalised_scores_use_d4rl_random_and_expert_returns():
    # 100 · (R − random) / (expert − random), the D4RL constants.
    assert normalized_score("door", -56.512833) == pytest.approx(0.0)
    assert normalized_score("door", 2880.5693) == pytest.approx(100.0)
    assert normalized_score("hammer", (12794.134825 - 274.856578) / 2) == pytest.approx(50.0)
    assert normalized_score("pen", 96.262799 + 0.25 * (3076.8331 - 96.262799)) == pytest.approx(25.0)
    assert normalized_score("relocate", 4233.877797) == pytest.approx(100.0)
    assert normalized_score("relocate", 0.0) == pytest.approx(100 * 6.425911 / (4233.877797 + 6.425911))


def test_plan_projects_adroit_evaluations_at_their_episode_length():
    from offrl.plan import episode_steps

    assert episode_steps("pen-expert-cloned-50") == 100 and episode_steps("door-expert") == 200
    assert episode_steps("hopper-medium") == 1000 and episode_steps("") == 1000


def test_minari_ids_are_d4rls_v2_and_bad_names_say_what_is_allowed():
    assert ADROIT_ENVS == ("door", "hammer", "pen", "relocate")
    assert minari_remote_id("door", "expert") == "D4RL/door/expert-v2"
    assert minari_remote_id("relocate", "cloned") == "D4RL/relocate/cloned-v2"
    with pytest.raises(ValueError, match="kind 'human' of door: allowed: expert, cloned"):
        minari_remote_id("door", "human")
    with pytest.raises(ValueError, match="hopper.*downloaded envs: door, hammer, pen, relocate"):
        minari_remote_id("hopper", "expert")


def test_standins_are_whole_episodes_that_differ_by_kind():
    expert, cloned = (standin_dataset("pen", kind, episodes=2, seed=0) for kind in ("expert", "cloned"))
    for data in (expert, cloned):
        data.validate()
        assert len(data) == 200 and data.num_episodes == 2  # 2 × Pen's 100 steps, each ending at the time limit
        assert data.timeouts.sum() == 2 and not data.terminals.any()
    assert np.abs(expert.actions).mean() < 0.15 < np.abs(cloned.actions).mean()  # held still vs uniform in [-1, 1]
    with pytest.raises(ValueError, match="stand-in kind 'random': allowed: expert, cloned"):
        standin_dataset("pen", "random", 1, 0)


def test_download_takes_a_copy_placed_by_hand(tmp_path, monkeypatch):
    placed = tmp_path / "placed"
    write_standin("pen", "cloned", episodes=1, seed=3, root=placed)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(placed))
    path = download("D4RL/pen/cloned-v2", tmp_path / "minari", "offrl/pen/cloned-v0", needed=["D4RL/pen/cloned-v2"])
    assert path == (tmp_path / "minari" / "offrl" / "pen" / "cloned-v0").resolve()
    got, want = load_dataset(path), standin_dataset("pen", "cloned", episodes=1, seed=3)
    np.testing.assert_array_equal(got.actions, want.actions)
    np.testing.assert_array_equal(got.rewards, want.rewards)
    assert (placed / "D4RL" / "pen" / "cloned-v2").is_dir()  # the hand-placed copy stays


def test_placement_hint_names_every_id_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    hint = placement_hint(["D4RL/pen/expert-v2", "D4RL/pen/cloned-v2"])
    assert "minari download D4RL/pen/expert-v2 D4RL/pen/cloned-v2" in hint
    assert str(tmp_path) in hint and "MINARI_DATASETS_PATH" in hint and "\n" not in hint


@pytest.mark.skipif(network_available(), reason="tests the offline failure; this machine has network")
def test_missing_adroit_data_fails_in_one_line_naming_the_ids(tmp_path):
    needed = [minari_remote_id(env, kind) for env in ("door", "pen") for kind in ("expert", "cloned")]
    command = [sys.executable, "-m", "offrl", "download", "--remote-id", needed[0], "--env", "door", "--kind"]
    command += ["expert", "--root", str(tmp_path / "minari"), "--summary", str(tmp_path / "s.json"), "--needed"]
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "empty")}
    result = subprocess.run([*command, *needed], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("offrl download: error: cannot reach the Minari remote")
    assert f"`minari download {' '.join(needed)}`" in lines[0] and "MINARI_DATASETS_PATH" in lines[0]
    assert not (tmp_path / "minari" / "offrl").exists()


def test_expert_cloned_recipe_and_table4_statistics(tmp_path):
    expert = standin_dataset("pen", "expert", episodes=3, seed=0)
    cloned = standin_dataset("pen", "cloned", episodes=3, seed=1)
    mixed, mask = contaminate(expert, cloned, 30)
    # Appendix A: the final X% of the expert transitions replaced by the cloned dataset's first X%.
    assert contaminant_count(300, 30) == 90 and mask.sum() == 90 and len(mixed) == 300
    np.testing.assert_array_equal(mixed.actions[:210], expert.actions[:210])
    np.testing.assert_array_equal(mixed.actions[210:], cloned.actions[:90])
    assert mixed.timeouts[209] and mixed.timeouts[-1]  # both cuts end as truncations
    # Table 4's columns from the summaries the contaminate command writes: sizes and the mean reward.
    summary = {
        "env": "pen",
        "kind": "expert-cloned-30",
        "minari_id": "offrl/pen/expert-cloned-30-v0",
        "expert_transitions": 210,
        "contaminant_transitions": 90,
        **mixed.summary("pen"),
    }
    (tmp_path / "s.json").write_text(json.dumps(summary))
    data, display = contamination_table([tmp_path / "s.json"])
    row = data.loc["pen-expert-cloned-30"]
    assert (row["transitions"], row["expert_transitions"], row["contaminant_transitions"]) == (300, 210, 90)
    want = (expert.rewards[:210].sum(dtype=np.float64) + cloned.rewards[:90].sum(dtype=np.float64)) / 300
    assert row["reward_mean"] == pytest.approx(want, rel=1e-5)
    assert display.loc["pen-expert-cloned-30", "average reward"] == f"{want:.2f}"


def final_scores(cells: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [
        {"algorithm": a, "dataset": d, "seed": seed, "normalized_score": score}
        for (a, d), scores in cells.items()
        for seed, score in enumerate(scores)
    ]
    return pd.DataFrame(rows)


def test_omitted_cells_show_a_dash_and_leave_their_column_without_a_total():
    final = final_scores(
        {
            ("bc", "hammer-expert"): [10.0, 20.0],
            ("bc", "pen-expert"): [30.0, 50.0],
            ("cql", "pen-expert"): [1.0, 3.0],
        }
    )
    numbers, display, bold = score_table(
        final, ["bc", "cql"], ["hammer-expert", "pen-expert"], omitted=[("cql", "hammer-expert")]
    )
    assert display.loc["hammer-expert", "cql"] == OMITTED and display.loc["Total", "cql"] == OMITTED
    assert display.loc["pen-expert", "cql"] == "2.0 ± 1.4"  # std of (1, 3): √2
    assert numbers.loc["Total", ("mean", "bc")] == pytest.approx(15.0 + 40.0)
    assert np.isnan(numbers.loc["Total", ("mean", "cql")]) and np.isnan(numbers.loc["hammer-expert", ("mean", "cql")])
    assert bold.loc["hammer-expert", "bc"] and not bold.loc["hammer-expert", "cql"]
    with pytest.raises(ValueError, match=r"no scores for \['cql on hammer-expert'\]"):
        score_table(final, ["bc", "cql"], ["hammer-expert", "pen-expert"])


def test_omitted_cells_keep_gains_and_iqm_to_whole_columns():
    final = final_scores(
        {
            ("td3bc", "hammer-expert"): [10.0, 10.0, 10.0],
            ("td3bc_pp", "hammer-expert"): [20.0, 20.0, 20.0],
            ("cql", "pen-expert"): [5.0, 5.0, 5.0],
            ("td3bc", "pen-expert"): [10.0, 10.0, 10.0],
            ("td3bc_pp", "pen-expert"): [20.0, 20.0, 20.0],
        }
    )
    algorithms, datasets = ["cql", "td3bc", "td3bc_pp"], ["hammer-expert", "pen-expert"]
    numbers, display, _ = score_table(
        final, algorithms, datasets, gains={"td3bc_pp": "td3bc"}, iqm=True, omitted=[("cql", "hammer-expert")]
    )
    assert display.loc["Total", "td3bc_pp"] == "40.0 ± 0.0 (+100.0% vs td3bc)"
    assert display.loc["IQM", "cql"] == OMITTED and np.isnan(numbers.loc["IQM", ("ci_low", "cql")])
    assert numbers.loc["IQM", ("mean", "td3bc")] == pytest.approx(10.0)


def paper_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate_config(config, SCHEMA)
    return config


def test_paper_scale_adroit_grid_leaves_out_cql_on_hammer_and_relocate():
    study = adroit_study(paper_config())
    assert study["table2"][:4] == [
        "door-expert",
        "door-expert-cloned-30",
        "door-expert-cloned-50",
        "door-expert-cloned-70",
    ]
    assert len(study["table2"]) == 16 and len(study["fig7"]) == 12 and len(study["table4"]) == 16
    assert sorted(study["omitted"]) == [
        ("cql", f"{env}-{kind}")
        for env in ("hammer", "relocate")
        for kind in ("expert", "expert-cloned-30", "expert-cloned-50", "expert-cloned-70")
    ]
    assert len(study["runs"]) == 11 * 16 - 8
    assert ("cql", "door-expert") in study["runs"] and ("cql", "hammer-expert") not in study["runs"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"table_contamination": [40]},
            r"taming.adroit.table_contamination \[40\] are not in taming.adroit.contamination \[10, 30, 50, 70\]",
        ),
        ({"omitted": {"sac": ["pen"]}}, r"taming.adroit.omitted names \['sac'\], not in taming.adroit.algorithms"),
        ({"algorithms": ["cql", "nope"]}, r"taming.adroit.algorithms: unknown algorithm\(s\) \['nope'\]"),
    ],
)
def test_bad_adroit_settings_name_the_field(change, message):
    config = paper_config()
    config["taming"]["adroit"].update(change)
    if "algorithms" in change:
        config["taming"]["adroit"]["omitted"] = {}
    with pytest.raises(ConfigError, match=message):
        check_config(config, SHIPPED)


def snakemake_run(args: list[str], cwd, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nice", "-n", "10", *SNAKEMAKE, *args],
        cwd=cwd,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_paper_scale_dry_run_schedules_the_adroit_artefacts_with_minari_ids(tmp_path):
    result = snakemake_run(
        ["-n", "-p", "--cores", "16", "--configfile", str(REPO / "config" / "paper.yaml"), "--directory", str(tmp_path)]
        + ["results/tables/taming_table2.md", "results/tables/taming_table4.md", "results/figures/taming_fig7.png"],
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for env in ADROIT_ENVS:
        for kind in ("expert", "cloned"):
            assert f"--remote-id D4RL/{env}/{kind}-v2" in out
    assert "--omit cql:hammer-expert" in out and "--omit cql:relocate-expert-cloned-70" in out
    assert "results/runs/cql/door-expert-cloned-70/" in out and "results/runs/cql/hammer-expert/" not in out
    assert "adroit_standin" not in out


@pytest.mark.slow
def test_smoke_adroit_slice_builds_tables_2_4_and_figure_7_from_standins(smoke_run):
    """The smoke run (the .test config's `all`) builds the Adroit slice: stand-ins, download, contamination, every
    column of Table 2, Figure 7's grid."""
    assert_adroit_slice(smoke_run)


def assert_adroit_slice(workdir) -> None:
    """What the smoke run's Adroit slice must have built in ``workdir``."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())["taming"]["adroit"]
    table2 = pd.read_csv(workdir / "results/tables/taming_table2.csv", header=[0, 1], index_col=0)
    assert list(table2.index) == ["pen-expert", "pen-expert-cloned-50", "Total"]
    assert list(table2["mean"].columns) == config["algorithms"]
    assert np.isfinite(table2["mean"].to_numpy(dtype=float)).all()
    for artefact in ("tables/taming_table2.md", "tables/taming_table4.md"):
        assert "Built from stand-in data" in (workdir / "results" / artefact).read_text(), artefact
    table4 = pd.read_csv(workdir / "results/tables/taming_table4.csv", index_col=0)
    row = table4.loc["pen-expert-cloned-50"]
    assert (row["transitions"], row["expert_transitions"], row["contaminant_transitions"]) == (200, 100, 100)
    summary = json.loads((workdir / "resources/datasets/pen-expert.json").read_text())
    assert summary["remote_id"] == "D4RL/pen/expert-v2" and summary["standin"] is True
    figure = pd.read_csv(workdir / "results/figures/taming_fig7.csv")
    assert set(figure["dataset"]) == {"pen-expert-cloned-50"} and len(figure) == 4
    assert (workdir / "results/figures/taming_fig7.png").stat().st_size > 10_000
