"""Captured training steps on a GPU: equality with eager, resume, NaN stop, and every speed figure of issue 15;
online TD3 (behaviour policies, safety experts): captured against eager, and its speed on the GPU and on one CPU thread.

Run by ``benchmarks/gpu.sh`` (under 8 minutes on one H100/H200); prints one line per check
and a Markdown table for benchmarks/README.md. Exits non-zero when a check fails (speed
targets are reported, not enforced: they depend on the GPU).

    PYTHONPATH=lib python benchmarks/gpu_check.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from offrl.algos.presets import build
from offrl.bench import ACT_DIM, OBS_DIM, bench, random_dataset, run_files
from offrl.capture import WARMUP, TrainingSteps
from offrl.online import TD3Config, train_online
from offrl.train import NonFiniteError, TensorData, TrainConfig, train

# Every offline preset (Guided TD3+BC's made-up expert and index come from offrl.bench).
ALGORITHMS = [
    "td3bc",
    "bc",
    "guided_td3bc",
    "td3bc_pp",
    "sac",
    "bear",
    "bear_pp",
    "bcq",
    "cql",
    "cql_rho",
    "iql",
    "brac_p",
    "brac_v",
    "fisher_brc",
    "uwac",
]
EQUALITY_STEPS = 300
BATCH = 256  # --dry-run: 16 (the CPU runs UWAC's 100 dropout passes and CQL's 30 actions per state)
RESUME_STEPS = 400
DEVICE = "cuda"  # --dry-run: "cpu", to try every code path of this script without a GPU (graphs replayed on the CPU)
TARGETS = {1: 2500, 5: 1800, 60: 600}  # TD3+BC steps/s per seed, issue 15
OTHER_TARGET = 5.0  # captured / eager for every other algorithm
# Online TD3: learning steps of the captured/eager comparison, and timed per device (one CPU thread: the rules'
# default).
ONLINE_EQUALITY_STEPS = 300
ONLINE_TIMED_STEPS = {"gpu": 5000, "cpu": 1000}
ONLINE_START_STEPS = 1000


def equality(algorithm: str, members: int = 2) -> dict:
    """Eager and captured runs from the same seeds on the GPU: logs every 50 steps and final weights."""
    steps = EQUALITY_STEPS
    dataset = random_dataset(20_000)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        options = run_files(algorithm, dataset, Path(tmp))  # one made-up expert for both runs
        builds = {}
        for capture in ("off", "auto"):
            generators = [torch.Generator(device=DEVICE).manual_seed(s) for s in range(members)]
            algo = build(algorithm, OBS_DIM, ACT_DIM, generators, torch.device(DEVICE), options)
            builds[capture] = algo, generators, algo.per_transition(dataset) if hasattr(algo, "per_transition") else {}
    for capture, (algo, generators, extras) in builds.items():
        device = torch.device(DEVICE)
        if hasattr(algo, "plan"):
            algo.plan(steps)
        data = TensorData(dataset, device, algo.normalize_states, extras)
        run = TrainingSteps(algo, data, generators, BATCH, device, capture=capture)
        logs = []
        for step in range(1, steps + 1):
            run(step)
            if step % 50 == 0:
                logs.append({k: v.cpu().numpy() for k, v in run.means().items()})
        weights = {k: v.detach().cpu().numpy() for k, v in algo.actor.state_dict().items()}
        runs[capture] = (logs, weights, run.captured, len(run.graphs.graphs))
    (eager_logs, eager_w, _, _), (cap_logs, cap_w, captured, graphs) = runs["off"], runs["auto"]
    log_diff = max(
        (float(np.max(np.abs(a[k] - b[k]) / (np.abs(a[k]) + 1e-3))) for a, b in zip(eager_logs, cap_logs) for k in a),
        default=0.0,
    )
    weight_diff = max(float(np.max(np.abs(eager_w[k] - cap_w[k]))) for k in eager_w)
    same_keys = [sorted(a) for a in eager_logs] == [sorted(b) for b in cap_logs]
    ok = captured and same_keys and log_diff < 1e-3 and weight_diff < 1e-4
    return {
        "check": "equality",
        "algorithm": algorithm,
        "steps": steps,
        "captured": captured,
        "graphs": graphs,
        "max_rel_log_diff": log_diff,
        "max_abs_weight_diff": weight_diff,
        "ok": bool(ok),
    }


def resume_and_nan() -> list[dict]:
    """train() with capture on: a run stopped after its first checkpoint resumes to the straight run's numbers; a NaN
    stops it."""
    import offrl.train as train_module

    dataset = random_dataset(20_000)
    config = TrainConfig(
        algorithm="td3bc_pp",
        env="hopper",
        dataset="random",
        seeds=[0, 1],
        steps=RESUME_STEPS,
        eval_every=RESUME_STEPS // 4,
        log_every=RESUME_STEPS // 8,
        batch_size=BATCH,
        device=DEVICE,
        critic_snapshots=1,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train(dataset, config, tmp / "straight", progress=False)
        save = train_module._atomic_save

        def save_then_stop(obj, path):
            save(obj, path)
            if path == tmp / "ckpt.pt":
                raise KeyboardInterrupt  # as if killed right after the first checkpoint

        train_module._atomic_save = save_then_stop
        try:
            train(dataset, config, tmp / "resumed", checkpoint=tmp / "ckpt.pt", progress=False)
        except KeyboardInterrupt:
            pass
        finally:
            train_module._atomic_save = save
        record = train(dataset, config, tmp / "resumed", checkpoint=tmp / "ckpt.pt", progress=False)
        a = torch.load(tmp / "straight" / "snapshots.pt", weights_only=True)["actors"]
        b = torch.load(tmp / "resumed" / "snapshots.pt", weights_only=True)["actors"]
        diff = max(float((a[s][k] - b[s][k]).abs().max()) for s in a for k in a[s])
        results.append(
            {
                "check": "resume",
                "resumed_from_step": record["resumed_from_step"],
                "captured": record["captured"],
                "max_abs_weight_diff": diff,
                "ok": record["resumed_from_step"] == RESUME_STEPS // 4 and record["captured"] and diff < 1e-4,
            }
        )

        bad = random_dataset(20_000)
        bad.rewards[12_345] = (
            3e38  # one huge reward: (Q − y)² overflows at the first batch that draws it, tens of steps in (replayed)
        )
        steps = {}
        for capture in ("off", "auto"):
            try:
                train(
                    bad,
                    TrainConfig(
                        algorithm="td3bc",
                        env="hopper",
                        dataset="random",
                        seeds=[0],
                        steps=RESUME_STEPS,
                        eval_every=RESUME_STEPS,
                        log_every=RESUME_STEPS,
                        device=DEVICE,
                    ),
                    tmp / capture,
                    progress=False,
                    capture=capture,
                )
                steps[capture] = None
            except NonFiniteError as err:
                steps[capture] = str(err).split("at step ")[1].split(";")[0]
        # TD3+BC's two variants are captured at steps 7 and 8: a later step was a replay.
        results.append(
            {
                "check": "nan_stop",
                "eager_step": steps["off"],
                "captured_step": steps["auto"],
                "in_a_replay": steps["off"] is not None and int(steps["off"]) > 2 * (WARMUP + 1),
                "ok": steps["off"] is not None and steps["off"] == steps["auto"],
            }
        )
    return results


def online_run(device: str, capture: str, learning_steps: int, out: Path) -> dict:
    """``python -m offrl behaviour``'s run on Hopper, one evaluation of one episode at its end."""
    total = ONLINE_START_STEPS + learning_steps
    config = TD3Config(
        total_steps=total, start_steps=ONLINE_START_STEPS, eval_every=total, eval_episodes=1, checkpoint_every=0
    )
    return train_online("hopper", config, out, progress=False, device=device, capture=capture)


def online(quick: bool) -> list[dict]:
    """Online TD3: captured and eager runs agree on the GPU (expert weights); steps/s on the GPU and on one CPU thread.

    The timed runs include their 1000 random start steps and three evaluation episodes (under a
    second); the projection is the 975k learning steps of a 1M-step expert, without its 200
    evaluations (10 episodes each, on the CPU whatever trains).
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {
            capture: online_run(DEVICE, capture, ONLINE_EQUALITY_STEPS, tmp / capture) for capture in ("off", "auto")
        }
        weights = {
            capture: torch.load(tmp / capture / "expert.pt", weights_only=True)["state_dict"] for capture in runs
        }
        diff = max(float((weights["off"][k] - weights["auto"][k]).abs().max()) for k in weights["off"])
        captured = runs["auto"]["captured"]
        results.append(
            {
                "check": "online_equality",
                "device": runs["auto"]["device"],
                "captured": captured,
                "learning_steps": ONLINE_EQUALITY_STEPS,
                "max_abs_weight_diff": diff,
                "ok": bool((captured or DEVICE == "cpu") and diff < 1e-4),
            }
        )
        threads = torch.get_num_threads()
        for kind, device in (("gpu", DEVICE), ("cpu", "cpu")):
            steps = max(50, ONLINE_TIMED_STEPS[kind] // (2 if quick else 1) // (20 if DEVICE == "cpu" else 1))
            torch.set_num_threads(1 if kind == "cpu" else threads)
            started = time.perf_counter()
            manifest = online_run(device, "auto", steps, tmp / f"timed_{kind}")
            seconds = time.perf_counter() - started
            torch.set_num_threads(threads)
            rate = steps / seconds
            results.append(
                {
                    "check": "online_speed",
                    "device": manifest["device"],
                    "threads": 1 if kind == "cpu" else threads,
                    "captured": manifest["captured"],
                    "learning_steps": steps,
                    "steps_per_s": round(rate, 1),
                    "expert_1M_steps_min": round(975_000 / rate / 60, 1),
                    "ok": True,
                }
            )
    gpu, cpu = results[-2]["steps_per_s"], results[-1]["steps_per_s"]
    results[-1]["gpu_vs_cpu"] = round(gpu / cpu, 2)
    return results


def speeds(quick: bool, algorithms: list[str]) -> list[dict]:
    """Issue 15's figures: TD3+BC with 1, 5, 60 seeds; every other algorithm with 5; eager and captured, one process."""
    steps = 10 if DEVICE == "cpu" else 200 if quick else 500
    rows = []
    for members, target in TARGETS.items():
        result = bench("td3bc", steps, members, DEVICE, batch_size=BATCH, reference=members == 1)
        result["target_per_seed"] = target
        rows.append(result)
        print(json.dumps(result), flush=True)
    for algorithm in [a for a in algorithms if a != "td3bc"]:
        result = bench(
            algorithm,
            steps if algorithm in ("bc", "guided_td3bc", "td3bc_pp", "sac", "iql", "brac_p", "brac_v") else steps // 2,
            5,
            DEVICE,
            batch_size=BATCH,
            reference=False,
        )
        rows.append(result)
        print(json.dumps(result), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| algorithm | seeds | eager steps/s per seed | captured steps/s per seed | captured / eager | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        captured = r.get("captured_steps_per_s_per_member")
        target = f"≥ {r['target_per_seed']} per seed" if "target_per_seed" in r else f"≥ {OTHER_TARGET:g}× eager"
        met = (
            (captured or 0) >= r["target_per_seed"]
            if "target_per_seed" in r
            else (r.get("captured_vs_eager") or 0) >= OTHER_TARGET
        )
        lines.append(
            f"| {r['algorithm']} | {r['members']} | {r['steps_per_s_per_member']} | {captured} | "
            f"{r.get('captured_vs_eager')} | "
            f"{target}: {'met' if met else 'NOT met'} |"
        )
    return "\n".join(lines)


def online_table(rows: list[dict]) -> str:
    lines = [
        "| online TD3, Hopper | threads | steps/s | 1M-step expert, learning steps | GPU / CPU |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        where = f"{r['device']}, {'captured' if r['captured'] else 'eager'}"
        lines.append(
            f"| {where} | {r['threads']} | {r['steps_per_s']} | {r['expert_1M_steps_min']} min | "
            f"{r.get('gpu_vs_cpu', '')} |"
        )
    return "\n".join(lines)


def replay_graphs_on_the_cpu() -> None:
    """--dry-run: CUDA-graph semantics on the CPU (tests/graph_replay.py, the test suite's), so the checks run the
    captured path, graphs recorded and replayed, as on a GPU; bench still times eager steps only."""
    import pytest

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.graph_replay import replayed_graphs

    replayed_graphs(pytest.MonkeyPatch())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (a rerun that must fit the time left)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="on the CPU with a few steps and CUDA graphs replayed there: the script's code paths, no figures",
    )
    parser.add_argument(
        "--algorithms", nargs="+", default=ALGORITHMS, help="a subset (the speed table then lacks the others)"
    )
    args = parser.parse_args()
    global DEVICE, EQUALITY_STEPS, BATCH, RESUME_STEPS, TARGETS
    if args.dry_run:
        DEVICE, EQUALITY_STEPS, BATCH, RESUME_STEPS, TARGETS = "cpu", 60, 16, 40, {1: 0, 2: 0}
        torch.set_num_threads(1)
        replay_graphs_on_the_cpu()
    elif not torch.cuda.is_available():
        print("no GPU visible to torch: nothing to check", file=sys.stderr)
        return 2
    started = time.time()
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU dry run"
    print(f"# {name}, torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    failed = []
    for algorithm in args.algorithms:
        try:
            result = equality(algorithm)
        except Exception as err:  # noqa: BLE001  (one algorithm's failure to capture must not hide the others')
            result = {
                "check": "equality",
                "algorithm": algorithm,
                "ok": False,
                "error": f"{type(err).__name__}: {err}"[:500],
            }
        print(json.dumps(result), flush=True)
        failed += [] if result["ok"] else [f"equality {algorithm}"]
    for result in resume_and_nan():
        print(json.dumps(result), flush=True)
        failed += [] if result["ok"] else [result["check"]]
    online_results = online(args.quick)  # before the speed table: under a minute, and kept if the table overruns
    for result in online_results:
        print(json.dumps(result), flush=True)
        failed += [] if result["ok"] else [result["check"]]
    print(f"# checks done after {time.time() - started:.0f} s", flush=True)
    rows = speeds(args.quick, args.algorithms)
    print("\n" + table(rows))
    print("\n" + online_table([r for r in online_results if r["check"] == "online_speed"]))
    print(f"\n# {time.time() - started:.0f} s in all; failed checks: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
