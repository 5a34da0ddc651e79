"""Packed runs (offrl.train.train_pack): several datasets of one env and algorithm in one process.

A pack's members are a separate run's members, bit for bit: every member samples its own dataset with its
own generator, normalised by its dataset's statistics, and the ensemble's members share no arithmetic
(batched matmuls, elementwise Adam), as the seeds-as-members tests already show for seeds.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from offrl.algos.presets import PRESETS
from offrl.config import pack_runs
from offrl.data.build import write_with_summary
from offrl.data.generate import rollout
from offrl.train import NonFiniteError, Run, TrainConfig, check_pack, member_states, train, train_pack

# Guided TD3+BC reads a SimHash index per dataset in its options, so its runs never share a pack (TD3+BC's
# arithmetic is tested); UWAC's 100 dropout passes are shrunk to 4 below to keep the test short.
PACKED_PRESETS = sorted(set(PRESETS) - {"guided_td3bc"})
SMALL = {"uwac": {"dropout_samples": 4}}
# Bit for bit on this project's CPU (torch 2.13 CPU build). The others agree to float32 rounding: a batched matmul
# of 1 member (a separate run of one seed) and of 3 (the pack) take different kernels, whose sums round
# differently in their last bits (at most 1.6e-6 on a weight after 4 steps: IQL; 5.8e-11 on BEAR++'s last bias),
# which is also why the seeds-as-members tests of BEAR and Fisher-BRC, UWAC, BRAC compare with assert_close.
# Evaluation policies that draw every member's noise from one generator of their own (BCQ's latents, the
# argmax-Q₁ policy's samples of BEAR and UWAC): their divergence probe depends on the ensemble's members.
SAMPLING = {"bcq", "bear", "bear_d4rl", "bear_pp", "bear_pp_d4rl", "uwac"}
EXACT = {"bc", "bc_10pct", "bcq", "bear", "bear_d4rl", "brac_p", "brac_v", "cql", "cql_rho", "sac", "td3bc"}
EXACT |= {"td3bc_cr", "td3bc_gp", "td3bc_pp"}
# UWAC amplifies that rounding within a few steps (by step 4, 3e-4 on weights and 7 % on the VAE loss: a minimum
# over critics, or a clipped 1 / variance weight, that rounding tips one way or the other), so it is compared
# at its first snapshot, step 2, where it agrees to float32's rounding too.
STEPS = {"uwac": [2]}


@pytest.fixture(scope="module")
def datasets():
    """Two Hopper datasets of other sizes and statistics: random actions, and a second rollout."""
    return {"hopper-a": rollout("hopper", None, 600, seed=0), "hopper-b": rollout("hopper", None, 450, seed=5)}


def config(algorithm, dataset, seeds, contaminant_from=None, **sizes):
    return TrainConfig(
        algorithm=algorithm,
        env="hopper",
        dataset=dataset,
        seeds=list(seeds),
        steps=sizes.get("steps", 4),
        eval_every=sizes.get("eval_every", 2),
        log_every=sizes.get("log_every", 2),
        batch_size=16,
        device="cpu",
        options=SMALL.get(algorithm, {}),
        contaminant_from=contaminant_from,
    )


def assert_same_outputs(a, b, steps, exact=True, probe_draws=False):
    """Two runs' snapshots (actors, critics, probe values, normalisation), logs and configs alike: to the bit, or
    with ``exact`` False to float32's rounding (torch.testing.assert_close's defaults, rtol 1.3e-6, atol 1e-5).

    ``probe_draws``: the evaluation policy draws every member's noise from one generator of its own
    (:data:`SAMPLING`), so the divergence probe's log columns depend on the ensemble's members (as they already do on
    the run's other seeds), and are left out; training never reads that generator.
    """
    same = torch.equal if exact else lambda x, y: torch.testing.assert_close(x, y) is None
    first, second = (torch.load(run / "snapshots.pt", weights_only=True) for run in (a, b))
    assert sorted(first["actors"]) == sorted(second["actors"]) == steps
    for key in ("obs_mean", "obs_std", "initial_states"):
        assert torch.equal(first[key], second[key]), key
    for part in ("actors", "critics", "probe_q"):
        assert sorted(first[part]) == sorted(second[part]), part
        for step, modules in first[part].items():
            flat = modules.items() if part != "actors" else [("actor", modules)]
            other = second[part][step] if part != "actors" else {"actor": second[part][step]}
            for name, state in flat:
                state = state if isinstance(state, dict) else {"": state}
                want = other[name] if isinstance(other[name], dict) else {"": other[name]}
                for k, tensor in state.items():
                    assert same(tensor, want[k]), (part, step, name, k)
    logs = [pd.read_csv(run / "train_log.csv") for run in (a, b)]
    if probe_draws:
        logs = [log.drop(columns=[c for c in log if c.startswith("divergence_")]) for log in logs]
    # To 1e-5 (pandas' default, as assert_same_run): a logged loss is a mean over the batch, summed in another order.
    pd.testing.assert_frame_equal(*logs)
    records = [json.loads((run / "config.json").read_text()) for run in (a, b)]
    assert records[0]["config"] == records[1]["config"]


@pytest.mark.parametrize("algorithm", PACKED_PRESETS)
def test_a_packs_runs_equal_separate_runs(algorithm, datasets, tmp_path, one_thread):
    """Two datasets, three members (seeds 0, 1 on one, 2 on the other); the first contaminated from its 300th
    transition, so its divergence probe and Q on the probe's pairs are packed too. Bit for bit (:data:`EXACT`)
    or to float32's rounding."""
    steps = STEPS.get(algorithm, [2, 4])
    runs = [
        Run(datasets["hopper-a"], config(algorithm, "hopper-a", (0, 1), 300, steps=steps[-1]), tmp_path / "pack/a"),
        Run(datasets["hopper-b"], config(algorithm, "hopper-b", (2,), steps=steps[-1]), tmp_path / "pack/b"),
    ]
    records = train_pack(runs, progress=False)
    assert [r["pack"] for r in records] == [{"datasets": ["hopper-a", "hopper-b"], "members": 3}] * 2
    for run, name in zip(runs, "ab"):
        train(run.dataset, run.config, tmp_path / "alone" / name, progress=False)
        exact, probe_draws = algorithm in EXACT, algorithm in SAMPLING and name == "a"
        assert_same_outputs(tmp_path / "alone" / name, tmp_path / "pack" / name, steps, exact, probe_draws)


def test_a_member_that_goes_nan_is_named_and_the_others_are_written(datasets, tmp_path):
    bad = rollout("hopper", None, 450, seed=5)
    bad.rewards[:] = 1e30  # (Q − y)² overflows float32 at the first critic step
    runs = [
        Run(datasets["hopper-a"], config("td3bc", "hopper-a", (0, 1)), tmp_path / "pack/a"),
        Run(bad, config("td3bc", "hopper-b", (2,)), tmp_path / "pack/b"),
    ]
    with pytest.raises(NonFiniteError, match=r"td3bc on hopper-b, seed 2: .* NaN or infinite at step 1; .*other 1 are"):
        train_pack(runs, progress=False)
    assert not (tmp_path / "pack/b").exists()
    train(runs[0].dataset, runs[0].config, tmp_path / "alone", progress=False)
    assert_same_outputs(tmp_path / "alone", tmp_path / "pack/a", [2, 4])


def test_a_pack_whose_every_run_fails_stops_at_once(datasets, tmp_path):
    bad = rollout("hopper", None, 450, seed=5)
    bad.rewards[:] = 1e30
    runs = [
        Run(bad, config("td3bc", name, (s,), steps=40, eval_every=20), tmp_path / name) for s, name in enumerate("ab")
    ]
    with pytest.raises(NonFiniteError, match="seed 0: .* at step 1; .*seed 1: .* at step 1; the run stops here"):
        train_pack(runs, progress=False)
    assert not any((tmp_path / name).exists() for name in "ab")


def test_a_packs_runs_must_share_all_but_dataset_seeds_and_contaminant():
    a, b = config("td3bc", "hopper-a", (0,)), config("td3bc", "hopper-b", (0,), steps=6)
    with pytest.raises(ValueError, match="a pack's runs must share steps: hopper-b has 6, hopper-a has 4"):
        check_pack([a, b])
    with pytest.raises(ValueError, match="each \\(dataset, seed\\) once"):
        check_pack([a, config("td3bc", "hopper-a", (0, 1))])
    check_pack([a, config("td3bc", "hopper-b", (0, 1), contaminant_from=3)])


def test_member_states_takes_each_heads_members():
    """A twin critic of 3 members is 6: head h of member m at h·3 + m; members [0, 2] are rows 0, 2, 3, 5."""
    weight = torch.arange(6.0).view(6, 1, 1)
    part = member_states({"weight": weight, "scale": torch.tensor(2.0)}, [0, 2], total=3)
    assert part["weight"].flatten().tolist() == [0.0, 2.0, 3.0, 5.0] and part["scale"] == 2.0


def write_minari(root, seed, steps):
    write_with_summary(
        rollout("hopper", None, steps, seed=seed), "hopper", "random", root, root / "s.json", {"source": "test"}
    )
    return root / "offrl" / "hopper" / "random-v0"


def pack_command(dirs, outs, checkpoint):
    runs = [["--run", f"hopper-{name}", str(d), seeds, str(outs / name)] for name, d, seeds in dirs]
    return [
        *(sys.executable, "-m", "offrl", "--threads", "1", "train-pack", "--algo", "td3bc"),
        *(arg for run in runs for arg in run),
        *("--steps", "300", "--batch-size", "64", "--eval-every", "100", "--log-every", "50", "--device", "cpu"),
        *("--checkpoint", str(checkpoint), "--quiet"),
    ]


def test_a_killed_pack_resumes_to_identical_numbers(tmp_path):
    dirs = [("a", write_minari(tmp_path / "a", 0, 2000), "0-1"), ("b", write_minari(tmp_path / "b", 3, 1500), "2")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(pack_command(dirs, tmp_path / "straight", tmp_path / "s.ckpt"), check=True, timeout=900, env=env)

    checkpoint = tmp_path / "resumed.ckpt"
    proc = subprocess.Popen(pack_command(dirs, tmp_path / "resumed", checkpoint), env=env)
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the pack ended before it could be killed"
    kept = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < kept < 300 and not (tmp_path / "resumed" / "a").exists()
    subprocess.run(pack_command(dirs, tmp_path / "resumed", checkpoint), check=True, timeout=900, env=env)

    for name in "ab":
        assert_same_outputs(tmp_path / "straight" / name, tmp_path / "resumed" / name, [100, 200, 300])
        record = json.loads((tmp_path / "resumed" / name / "config.json").read_text())
        assert record["resumed_from_step"] == kept and record["config"]["seeds"] == ([0, 1] if name == "a" else [2])
    log = pd.read_csv(tmp_path / "resumed" / "a" / "train_log.csv")
    assert set(log["seed"]) == {0, 1} and log["step"].max() == 300
    assert not checkpoint.exists()


def test_runs_pack_by_key_up_to_the_members_in_sorted_order():
    runs = [
        ("td3bc", "hopper-medium", "0-1"),
        ("td3bc", "hopper-expert", "0-1"),
        ("td3bc", "hopper-random", "0-1"),
        ("td3bc", "walker2d-expert", "0-1"),
        ("bc", "hopper-expert", "0-1"),
        ("guided", "hopper-expert", "0-1"),
        ("guided", "hopper-medium", "0-1"),
    ]
    key = lambda algo, dataset: None if algo == "guided" else (algo, dataset.split("-")[0])  # noqa: E731
    # hopper's three TD3+BC runs: 6 members, 4 at most: expert and medium, then random alone (not a pack);
    # walker2d's and BC's runs are alone in their groups; Guided never packs.
    assert pack_runs(runs, 4, key) == [[("td3bc", "hopper-expert", "0-1"), ("td3bc", "hopper-medium", "0-1")]]
    assert pack_runs(runs, 6, key) == [[("td3bc", f"hopper-{k}", "0-1") for k in ("expert", "medium", "random")]]
    assert pack_runs(runs, 0, key) == [] and pack_runs(runs, 1, key) == []


def test_the_workflow_trains_packs_whose_runs_land_where_a_runs_job_writes_them(tmp_path):
    """The smoke scale with offline.pack_members: 6 (a dry run): runs of 3 seeds pack two by two, a pack of one
    algorithm and env, its outputs each run's own files, which the evaluation jobs read as they read a run's job's;
    a group's odd run trains alone (at most one per algorithm and env), and Guided TD3+BC's runs all do."""
    import yaml

    from offrl.plan import dry_run
    from tests.conftest import REPO

    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["offline"]["pack_members"] = 6
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = dry_run([str(tmp_path / "config.yaml")], 2, 0, REPO / "Snakefile")
    producers = {path: job for job in jobs for path in job.outputs}
    packs = [job for job in jobs if job.rule == "train_pack"]
    alone = [job.outputs[0].split("/")[2:4] for job in jobs if job.rule == "train_offline"]
    alone = [(algo, dataset.split("-")[0]) for algo, dataset in alone if algo != "guided_td3bc"]
    assert packs and len(alone) == len(set(alone))
    for pack in packs:
        runs = sorted({path.rsplit("/", 1)[0] for path in pack.outputs})
        assert len(runs) >= 2 and pack.members <= 6 and len(pack.outputs) == 3 * len(runs)
        assert len({run.split("/")[2] for run in runs}) == 1  # one algorithm
        assert len({run.split("/")[3].split("-")[0] for run in runs}) == 1  # one env
    packed = {path for pack in packs for path in pack.outputs}
    evaluated = {job.inputs[0] for job in jobs if job.rule == "evaluate_run"}
    assert packed & evaluated == {path for path in packed if path.endswith("snapshots.pt")}
    assert all(producers[path].rule in ("train_pack", "train_offline") for path in evaluated)
