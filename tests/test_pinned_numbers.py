"""Pinned numbers: a short run of every algorithm must give the numbers recorded in pinned_numbers.json.

The code paths that must not change a result (moving code between modules, deriving the CLI
from dataclasses, capturing updates as graphs, writing outputs atomically) are caught here
the moment they do. Runs are chaotic: over thousands of steps, one reordered float sum moves a
final score anywhere within its seed-to-seed spread (issue 17's 33.0 ± 2.9 against 30.6 ± 12.3).
So the check is short (a few dozen steps) and tight.

A change that is meant to change numbers regenerates the file and says why in its commit:

    PYTHONPATH=lib python tests/test_pinned_numbers.py --update
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from offrl.algos.presets import PRESETS
from offrl.bench import random_dataset, run_files
from offrl.train import TrainConfig, train

PINNED = Path(__file__).with_name("pinned_numbers.json")
STEPS, LOG_EVERY = 40, 20
SEEDS = [0, 3]
# UWAC's dropout ensembles cost seconds a step on a CPU: pinned over fewer steps.
SHORT = {"uwac": 4}
# Close to float precision: a different SIMD path (another CPU) may move the last digits.
RTOL = 1e-4


def pinned_run(preset: str) -> dict[str, list[float]]:
    """The logged losses at every log step, per seed, and the final actors' weight sums."""
    steps = SHORT.get(preset, STEPS)
    dataset = random_dataset(size=2000, seed=1)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)  # Guided TD3+BC's made-up safety expert is drawn from the global generator
        options = run_files(preset, dataset, Path(tmp))
        config = TrainConfig(
            algorithm=preset,
            env="hopper",
            dataset="random",
            seeds=SEEDS,
            steps=steps,
            eval_every=steps,
            log_every=min(LOG_EVERY, steps),
            device="cpu",
            options=options,
        )
        train(dataset, config, Path(tmp) / "run", progress=False)
        log = pd.read_csv(Path(tmp) / "run" / "train_log.csv").sort_values(["step", "seed"])
        actors = torch.load(Path(tmp) / "run" / "snapshots.pt", weights_only=True)["actors"][steps]
    numbers = {name: log[name].tolist() for name in log.columns if name not in ("step", "seed")}
    numbers["actor_weight_sum"] = [float(sum(v.double().sum() for v in actors.values()))]
    return numbers


# Presets whose 40 steps took over a minute on a loaded 2-core machine (--durations): pinned in the slow set.
SLOW_PRESETS = {"bcq", "bear", "bear_d4rl", "bear_pp", "bear_pp_d4rl", "cql", "cql_rho", "uwac"}


@pytest.mark.parametrize(
    "preset", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PRESETS else p for p in sorted(PRESETS)]
)
def test_numbers_unchanged(preset: str, one_thread) -> None:
    expected = json.loads(PINNED.read_text())
    assert preset in expected, f"{preset} has no pinned numbers: run `PYTHONPATH=lib python {__file__} --update`"
    got = pinned_run(preset)
    assert sorted(got) == sorted(expected[preset]), "the logged quantities changed"
    for name, values in expected[preset].items():
        assert got[name] == pytest.approx(values, rel=RTOL, abs=1e-6, nan_ok=True), f"{preset}: {name} moved"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: PYTHONPATH=lib python {sys.argv[0]} --update")
    PINNED.write_text(json.dumps({preset: pinned_run(preset) for preset in sorted(PRESETS)}, indent=1) + "\n")
    print(f"wrote {PINNED}")
