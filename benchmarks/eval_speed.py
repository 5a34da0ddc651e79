"""Evaluation's cost per counted environment step against the simulator's own, side by side, one core.

    PYTHONPATH=lib python benchmarks/eval_speed.py [--reps 5] [--members 5] [--episodes 10]

For each env, a real 256-256 policy (the shipped ``medium`` behaviour policy, every member of an
ensemble of ``--members`` as an evaluation run's snapshot holds it) plays ``members × episodes``
episodes at once, as one snapshot's evaluation does, and these are timed on the same episodes:

- raw: ``mj_step`` × frame_skip on one ``MjData`` per episode, replaying the evaluation's actions
  (the simulator alone: no observation, reward or policy);
- gymnasium: Gymnasium's ``env.step``, replaying the same actions, one env per episode;
- eval new: ``evaluate_policy(..., stepper="mujoco")``, the default (policy, simulator, metrics), and
  "policy", the part of it spent in the policy's calls;
- eval old: ``evaluate_policy(..., stepper="gymnasium")``, the reference path;
- job new / job old: a whole snapshot's evaluation as ``offrl evaluate`` runs it (``SnapshotEvaluator``:
  the run's actor, the metrics and the slides' Q diagnostic with its critic), each stepper: a TD3+BC run
  of ``--members`` seeds on made-up data of the env's sizes, its snapshot's actors replaced by the
  shipped policy (so the episodes are those above) — the figure ``benchmarks/costs.yaml``'s
  ``evaluate_run`` stands for.

Each is CPU seconds of this process (``time.process_time``: a core shared with other jobs counts
only this process's time) per counted env-step (the sum of the episodes' lengths), one torch and
one MuJoCo thread. The four run interleaved, ``--reps`` times per env; the medians are printed, and
new/raw, the issue's ratio (target ≤ 1.3), is the median over repetitions of each one's ratio.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import datetime
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import torch

from offrl.data.dataset import Dataset
from offrl.envs import make_env
from offrl.evaluate import EvalConfig, SnapshotEvaluator, eval_env_seeds, evaluate_policy
from offrl.files import load_tensors
from offrl.nets import DeterministicActor
from offrl.qdiagnostic import Rollouts
from offrl.train import TrainConfig, train

ENVS = ("halfcheetah", "hopper", "walker2d")


def shipped_members(env: str, members: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """The shipped medium policy's checkpoint, and its weights as every member of a ``members``-member actor."""
    payload = load_tensors(f"resources/shipped/behaviour/{env}/medium.pt", "actor checkpoint")
    return payload, {k: v.expand(members, *v.shape[1:]).clone() for k, v in payload["state_dict"].items()}


def ensemble_policy(env: str, members: int) -> Callable[[np.ndarray], np.ndarray]:
    """The shipped medium policy as every member of a ``members``-member actor, called as a snapshot's actor is."""
    payload, state = shipped_members(env, members)
    actor = DeterministicActor(
        members, payload["obs_dim"], payload["act_dim"], tuple(payload["hidden"]), payload["max_action"]
    )
    actor.load_state_dict(state)
    actor.eval()

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(obs, dtype=torch.float32)
            return actor(x.view(members, -1, x.shape[-1])).reshape(len(obs), -1).numpy()

    return policy


def timed(fn) -> tuple[float, object]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def replay_raw(env: str, seeds: list[int], actions: list[np.ndarray]) -> Callable[[], None]:
    """Each episode's actions on a bare MjData from its reset state: mj_step × frame_skip per action."""
    task = make_env(env).unwrapped
    model, frame_skip = task.model, task.frame_skip
    starts = []
    for seed in seeds:
        task.reset(seed=seed)
        starts.append((task.data.qpos.copy(), task.data.qvel.copy()))
    data = mujoco.MjData(model)

    def run() -> None:
        for (qpos, qvel), episode in zip(starts, actions, strict=True):
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = qpos, qvel
            mujoco.mj_forward(model, data)
            for action in episode:
                data.ctrl[:] = action
                mujoco.mj_step(model, data, nstep=frame_skip)

    return run


def replay_gymnasium(env: str, seeds: list[int], actions: list[np.ndarray]) -> Callable[[], None]:
    envs = [make_env(env) for _ in seeds]

    def run() -> None:
        for sim, seed, episode in zip(envs, seeds, actions, strict=True):
            sim.reset(seed=seed)
            for action in episode:
                sim.step(action)

    return run


def snapshot_run(env: str, members: int, root: Path) -> Path:
    """A TD3+BC run of ``members`` seeds whose one snapshot acts as the shipped policy on raw states."""
    payload, state = shipped_members(env, members)
    rng = np.random.default_rng(0)
    size, obs_dim, act_dim = 64, payload["obs_dim"], payload["act_dim"]
    dataset = Dataset(
        observations=rng.normal(size=(size, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (size, act_dim)).astype(np.float32),
        rewards=rng.normal(size=size).astype(np.float32),
        next_observations=rng.normal(size=(size, obs_dim)).astype(np.float32),
        terminals=np.zeros(size, bool),
        timeouts=np.arange(size) == size - 1,
        episode_ids=np.zeros(size, np.int64),
    )
    config = TrainConfig(
        algorithm="td3bc",
        env=env,
        dataset="made-up",
        seeds=list(range(members)),
        steps=1,
        eval_every=1,
        log_every=1,
        device="cpu",
    )
    train(dataset, config, root / env, progress=False)
    path = root / env / "snapshots.pt"
    run = torch.load(path, weights_only=True)
    run["actors"] = {1: state}
    run["obs_mean"], run["obs_std"] = torch.zeros(obs_dim), torch.ones(obs_dim)
    torch.save(run, path)
    return path


def measure(env: str, members: int, episodes: int, reps: int, root: Path) -> dict[str, float]:
    policy = ensemble_policy(env, members)
    n = members * episodes
    seeds = [s for member in range(members) for s in eval_env_seeds(member, episodes)]  # a run's, as its job's
    rollouts = Rollouts()
    scores = evaluate_policy(policy, env, n, seed=seeds, observer=rollouts, members=members)
    actions = [rollouts.episode(i)[1] for i in range(n)]
    counted = int(scores["length"].sum())
    policy_seconds = [0.0]

    def timed_policy(obs: np.ndarray) -> np.ndarray:
        start = time.process_time()
        actions = policy(obs)
        policy_seconds[0] += time.process_time() - start
        return actions

    runs = {
        "raw": replay_raw(env, seeds, actions),
        "gymnasium": replay_gymnasium(env, seeds, actions),
        "eval new": lambda: evaluate_policy(timed_policy, env, n, seed=seeds, members=members, stepper="mujoco"),
        "eval old": lambda: evaluate_policy(policy, env, n, seed=seeds, members=members, stepper="gymnasium"),
    }
    path = snapshot_run(env, members, root)
    for name, stepper in (("job new", "mujoco"), ("job old", "gymnasium")):
        job = SnapshotEvaluator(path, episodes, quiet=True, config=EvalConfig(stepper=stepper))
        runs[name] = lambda job=job: job(1)[0]
    times: dict[str, list[float]] = {name: [] for name in runs}
    times["policy"] = []
    for _ in range(reps):
        for name, run in runs.items():
            policy_seconds[0] = 0.0
            seconds, result = timed(run)
            if name == "eval new":
                times["policy"].append(policy_seconds[0] / counted)
            if name.startswith(("eval", "job")):
                assert result["length"].sum() == counted  # the same episodes every time
            times[name].append(seconds / counted)
    ratios = np.array(times["eval new"]) / np.array(times["raw"])
    row = {name: float(np.median(values)) for name, values in times.items()}
    row["new/raw"] = float(np.median(ratios))
    row["old/new"] = row["eval old"] / row["eval new"]
    row["counted"] = counted
    row["mean length"] = counted / n
    return row


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    return f"{model}, {os.cpu_count()} cores, {platform.node()}, load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions per env (medians printed)")
    parser.add_argument("--members", type=int, default=5, help="seeds of the run (ensemble members)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per seed")
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print(f"# {args.members} members x {args.episodes} episodes, {args.reps} reps; µs of CPU per counted env-step")
    columns = ("raw", "gymnasium", "eval new", "policy", "eval old", "job new", "job old")
    print(f"{'env':<12}" + "".join(f" {c:>9}" for c in (*columns, "new/raw", "old/new")) + "  counted (mean length)")
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            row = measure(env, args.members, args.episodes, args.reps, Path(tmp))
            print(
                f"{env:<12}"
                + "".join(f" {1e6 * row[c]:9.1f}" for c in columns)
                + f" {row['new/raw']:9.2f} {row['old/new']:9.2f}  {row['counted']} ({row['mean length']:.0f})",
                flush=True,
            )
    print(f"# load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
