"""The README's "One run by hand", run exactly as written (the block is read from the README), at the smoke scale."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO


def by_hand_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## One run by hand") :]
    return re.search(r"^```bash\n(.*?)^```", section, flags=re.S | re.M)[1]


def test_the_block_builds_a_dataset_trains_evaluates_and_scores():
    block = by_hand_block()
    assert "snakemake resources/datasets/hopper-medium.json" in block
    assert [line.split()[:3] for line in block.splitlines() if line.startswith("python")] == [
        ["python", "-m", "offrl"]
    ] * 3


@pytest.mark.slow
def test_one_run_by_hand_as_written(tmp_path):
    # A checkout at the smoke scale: the workflow and shipped policies linked, .test's config as config/config.yaml.
    for name in ("Snakefile", "workflow", "envs", "profiles"):  # profiles/default names the config file
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "shipped").symlink_to(REPO / "resources" / "shipped")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((REPO / ".test" / "config" / "config.yaml").read_text())
    (tmp_path / "by_hand.sh").write_text("set -euo pipefail\n" + by_hand_block())
    env = {
        **os.environ,
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(["bash", "by_hand.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evaluation = pd.read_csv(tmp_path / "results" / "by-hand" / "td3bc" / "evaluation.csv")
    assert set(evaluation["seed"]) == {0, 1, 2} and sorted(evaluation["step"].unique()) == [500, 1000, 1500, 2000]
    score = (tmp_path / "results" / "by-hand" / "score.md").read_text()
    assert "| dataset | TD3+BC |" in score and "| hopper-medium |" in score and "TD3+BC" in result.stdout
