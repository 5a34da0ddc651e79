import json
import os
import subprocess
import sys

import pytest

from offrl.bench import bench, packed_vs_separate
from tests.conftest import REPO


@pytest.mark.parametrize("algorithm", ["td3bc", "guided_td3bc", "td3bc_pp", "bear"])
def test_bench_runs_every_kind_of_preset(algorithm):
    # Not a timing test: the command must build the preset (with made-up run files where it needs them) and step it.
    result = bench(algorithm, steps=6, members=2, device="cpu", reference=algorithm == "td3bc")
    assert result["algorithm"] == algorithm and result["members"] == 2 and result["steps_per_s_total"] > 0
    assert ("reference_steps_per_s" in result) == (algorithm == "td3bc")


def test_the_bench_times_every_size_and_a_pack_against_separate_runs():
    # Not a timing test: every size given is one line, and the pack's comparison reports both rates and their ratio.
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "offrl", "--threads", "1", "bench", "td3bc", "bc", "--steps", "4", "--device"]
    done = subprocess.run([*command, "cpu", "--members", "1", "3"], capture_output=True, text=True, env=env, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["algorithm"], r["members"]) for r in lines] == [("td3bc", 1), ("bc", 1), ("td3bc", 3), ("bc", 3)]
    assert all("speed_vs_td3bc" in r for r in lines if r["algorithm"] == "bc")
    result = packed_vs_separate("td3bc", members=3, datasets=2, steps=4)
    assert result["members"] == 3 and result["datasets"] == 2
    ratio = result["packed_member_steps_per_s"] / result["separate_member_steps_per_s"]
    # The rates are printed to 0.1: their ratio agrees with the unrounded one to a few percent at these small rates.
    assert result["packed_vs_separate"] == pytest.approx(ratio, rel=0.05) and result["separate_member_steps_per_s"] > 0


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_the_gpu_scripts_dry_run_passes_its_checks_with_graphs_replayed():
    """benchmarks/gpu_check.py (what gpu.sh runs) on the CPU, its CUDA graphs replayed (tests/graph_replay.py): the
    script a GPU owner spends 8 minutes of a GPU on runs through, and its checks see captured runs equal to eager."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib"), "OMP_NUM_THREADS": "1"}
    script = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--algorithms", "td3bc", "bc"]
    done = subprocess.run(script, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    checks = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"check"')]
    assert [c["check"] for c in checks] == [
        "equality",
        "equality",
        "resume",
        "nan_stop",
        "online_equality",
        "online_speed",
        "online_speed",
    ]
    assert all(c["ok"] for c in checks)
    assert all(c["captured"] for c in checks if c["check"] in ("equality", "resume", "online_equality"))
    assert all(c["max_abs_weight_diff"] == 0.0 for c in checks if "max_abs_weight_diff" in c)
    speeds = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"algorithm"')]
    assert [r["algorithm"] for r in speeds] == ["td3bc", "td3bc", "bc"]
    # The bench's captured path ran too (its speed is the replay's, no figure).
    assert all(r["captured_vs_eager"] > 0 for r in speeds)
    assert "failed checks: none" in done.stdout
