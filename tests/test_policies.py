"""Snapshots of every policy kind: written by a run, rebuilt and evaluated the same way twice."""

import numpy as np
import pytest
import torch

from offrl.evaluate import evaluate_snapshots
from offrl.policies import export_snapshot, snapshot_policy
from offrl.train import train

SMALL = {"hidden": [16, 16]}
KINDS = {
    "bc": ("deterministic", SMALL),
    "td3bc": ("deterministic", SMALL),
    "sac": ("tanh_gaussian", SMALL),
    "bear": ("sampled_argmax", {**SMALL, "vae_hidden": [16, 16]}),
    "uwac": (
        "sampled_argmax",
        {**SMALL, "vae_hidden": [16, 16], "dropout_samples": 2, "eval_dropout_samples": 2, "eval_samples": 3},
    ),
    "bcq": ("bcq", {**SMALL, "vae_hidden": [16, 16]}),
}


@pytest.mark.parametrize("algorithm", sorted(KINDS))
def test_snapshot_round_trip(algorithm, tiny_dataset, tmp_path, cpu_config):
    kind, options = KINDS[algorithm]
    config = cpu_config(
        steps=4, eval_every=2, log_every=2, batch_size=4, algorithm=algorithm, seeds=(0, 1), options=options
    )
    train(tiny_dataset, config, tmp_path, progress=False)
    run = torch.load(tmp_path / "snapshots.pt", weights_only=True)
    assert run["policy"]["kind"] == kind and sorted(run["actors"]) == [2, 4]
    policy = snapshot_policy(run)
    policy.load_state_dict(run["actors"][4])  # the state fits the rebuilt policy exactly
    first, diagnostic = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=1)
    assert set(first["step"]) == {2, 4} and set(first["seed"]) == {0, 1} and np.isfinite(first["return"]).all()
    again, diagnostic_again = evaluate_snapshots(tmp_path / "snapshots.pt", episodes=1)
    assert first.equals(again) and diagnostic.equals(diagnostic_again)  # reproducible, sampling policies too
    # The Q diagnostic covers the same episodes; an algorithm without a critic (BC) has no Q.
    assert (diagnostic[["step", "seed", "episode"]].to_numpy() == first[["step", "seed", "episode"]].to_numpy()).all()
    assert (diagnostic["length"].to_numpy() == first["length"].to_numpy()).all()
    q_columns = diagnostic[["q_dataset_initial", "q_initial", "q_along"]]
    assert q_columns.isna().all().all() if algorithm == "bc" else np.isfinite(q_columns.to_numpy()).all()
    assert set(diagnostic["critic"]) == {"none" if algorithm == "bc" else "kept"}
    assert (
        diagnostic["q_dataset_initial"].groupby([diagnostic["step"], diagnostic["seed"]]).nunique()
        == (0 if algorithm == "bc" else 1)
    ).all()
    if kind != "deterministic":
        with pytest.raises(ValueError, match="only deterministic actors can be exported"):
            export_snapshot(tmp_path / "snapshots.pt", tmp_path / "actor.pt")
