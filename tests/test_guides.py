"""The docs' guides, followed as written: their code blocks are read from the pages, so a guide that drifts fails
here."""

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import offrl.algos
from offrl import cli
from offrl.algos import presets
from offrl.algos.presets import ALGORITHMS, PRESETS, Preset
from offrl.config import check_config, load_config_files, validate_config
from offrl.data.generate import rollout
from offrl.evaluate import evaluate_snapshots
from offrl.report import names
from offrl.train import TensorData, TrainConfig, train
from tests.conftest import REPO
from tests.graph_replay import assert_replayed_like_eager


def code_blocks(page: str, language: str) -> list[str]:
    """The fenced blocks of ``docs/<page>`` in ``language``, in order."""
    text = (REPO / "docs" / page).read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def commands(block: str) -> list[list[str]]:
    """A shell block's commands (backslash continuations joined, comments dropped), as argument lists."""
    joined = block.replace("\\\n", " ")
    return [
        shlex.split(line, comments=True)
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.fixture
def bc_l1(tmp_path, monkeypatch):
    """The guide's steps 1-3: its module among offrl.algos, its registrations in the dicts the guide names."""
    module, algorithm_entry, preset_entry, name_entry, _ = code_blocks("add-an-algorithm.md", "python")
    (tmp_path / "bc_l1.py").write_text(module)
    monkeypatch.setattr(offrl.algos, "__path__", [*offrl.algos.__path__, str(tmp_path)])
    for table, entry in ((ALGORITHMS, algorithm_entry), (PRESETS, preset_entry), (names.PAPER_NAMES, name_entry)):
        for key, value in eval("{" + entry + "}", {"Preset": Preset}).items():
            monkeypatch.setitem(table, key, value)
    return "bc_l1"


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_the_add_an_algorithm_guide_makes_a_working_preset(bc_l1, tmp_path, one_thread, capsys, monkeypatch):
    algo = presets.build(bc_l1, 11, 3, [torch.Generator().manual_seed(s) for s in (0, 1)], torch.device("cpu"))
    assert type(algo).__name__ == "BCL1" and names.paper_name(bc_l1) == "BC (L1)"
    # Step 4's bench line, as written, through the command line.
    bench = next(c for c in commands(code_blocks("add-an-algorithm.md", "bash")[0]) if c[3] == "bench")
    cli.main([*bench[3:5], "--steps", "5", *bench[7:]])  # fewer steps: not a timing test
    assert '"algorithm": "bc_l1"' in capsys.readouterr().out
    # Step 4's capture check, with the options of its CASES entry: captured, its update gives the eager numbers.
    (preset, options), data = (
        eval("{" + code_blocks("add-an-algorithm.md", "python")[4] + "}")[bc_l1],
        rollout("hopper", None, 300, seed=0),
    )

    def make(steps):
        generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
        algo = presets.build(preset, 11, 3, generators, torch.device("cpu"), options)
        return algo, TensorData(data, torch.device("cpu"), algo.normalize_states), generators

    assert_replayed_like_eager(make, monkeypatch)
    # Training and evaluating it: the loop, snapshots and the evaluation know nothing of it.
    config = TrainConfig(
        algorithm=bc_l1,
        env="hopper",
        dataset="hopper-random",
        seeds=[0, 1],
        steps=40,
        eval_every=20,
        log_every=20,
        batch_size=32,
        device="cpu",
    )
    train(rollout("hopper", None, 300, seed=0), config, tmp_path / "run", progress=False)
    scores, diagnostic = evaluate_snapshots(tmp_path / "run" / "snapshots.pt", 1, progress=False)
    assert sorted(scores["step"].unique()) == [20, 40] and np.isfinite(scores["normalized_score"]).all()
    assert set(diagnostic["critic"]) == {"none"}  # no critic: the Q diagnostic has the return alone
    # Step 5: the overlay names it, and the pipeline's config checks accept it.
    overlay = tmp_path / "my.yaml"
    overlay.write_text(code_blocks("add-an-algorithm.md", "yaml")[0])
    config = load_config_files([REPO / ".test" / "config" / "config.yaml", overlay])
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    check_config(config, REPO / "resources" / "shipped")
    assert "bc_l1" in config["offline"]["algorithms"]


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_the_add_a_dataset_guide_trains_and_evaluates_own_data(tmp_path):
    here = f"{tmp_path}/"
    script = code_blocks("add-a-dataset.md", "python")[0].replace("/tmp/", here)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300, env=env, cwd=tmp_path)
    for command in commands(code_blocks("add-a-dataset.md", "bash")[0].replace("/tmp/", here)):
        assert command[:3] == ["python", "-m", "offrl"]
        subprocess.run([sys.executable, *command[1:]], check=True, timeout=600, env=env, cwd=tmp_path)
    evaluation = (tmp_path / "my-run" / "evaluation.csv").read_text()
    assert "td3bc,hopper-mine" in evaluation
    assert yaml.safe_load(code_blocks("add-a-dataset.md", "yaml")[0])["datasets"]["source"] == "minari"
