"""Training-speed benchmark: gradient steps per second on random data of Hopper's sizes.

Measures the training loop's step (:class:`offrl.capture.TrainingSteps`: sampling, the
update, the log sums) of TD3+BC (or any preset) with K members, eager and, on a GPU,
captured as CUDA graphs, and a plain reference loop, timed in the same process one after
the other so machine noise hits all alike.
The reference is TD3+BC written as in sfujim/TD3_BC: ``nn.Linear`` layers, two separate
critic networks, one seed.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from offrl.capture import WARMUP, TrainingSteps, captures, check_capture_mode
from offrl.data import Dataset
from offrl.device import choose_device
from offrl.train import NonFiniteError, PackedData, TensorData

OBS_DIM, ACT_DIM = 11, 3  # Hopper


class _Actor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(OBS_DIM, 256), nn.Linear(256, 256), nn.Linear(256, ACT_DIM)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.l3(F.relu(self.l2(F.relu(self.l1(s))))))


class _Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q1 = nn.Sequential(
            nn.Linear(OBS_DIM + ACT_DIM, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)
        )
        self.q2 = copy.deepcopy(self.q1)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sa = torch.cat([s, a], 1)
        return self.q1(sa), self.q2(sa)


class ReferenceTD3BC:
    """The reference implementation's training step, for comparison only."""

    def __init__(self, device: torch.device) -> None:
        self.actor, self.critic = _Actor().to(device), _Critic().to(device)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=3e-4)
        self.it = 0

    def train(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        next_state: torch.Tensor,
        reward: torch.Tensor,
        not_done: torch.Tensor,
    ) -> None:
        self.it += 1
        with torch.no_grad():
            noise = (torch.randn_like(action) * 0.2).clamp(-0.5, 0.5)
            next_action = (self.actor_target(next_state) + noise).clamp(-1, 1)
            tq1, tq2 = self.critic_target(next_state, next_action)
            target_q = reward + not_done * 0.99 * torch.min(tq1, tq2)
        q1, q2 = self.critic(state, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        if self.it % 2 == 0:
            pi = self.actor(state)
            q = self.critic.q1(torch.cat([state, pi], 1))
            actor_loss = -2.5 / q.abs().mean().detach() * q.mean() + F.mse_loss(pi, action)
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.data.copy_(0.005 * p.data + 0.995 * tp.data)


def random_dataset(size: int = 100_000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    terminals = rng.random(size) < 0.001
    timeouts = np.zeros(size, bool)
    timeouts[-1] = not terminals[-1]
    ends = terminals | timeouts
    return Dataset(
        observations=rng.normal(size=(size, OBS_DIM)).astype(np.float32),
        actions=rng.uniform(-1, 1, (size, ACT_DIM)).astype(np.float32),
        rewards=rng.normal(size=size).astype(np.float32),
        next_observations=rng.normal(size=(size, OBS_DIM)).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
        episode_ids=np.concatenate([[0], np.cumsum(ends[:-1])]),
    )


def run_files(algorithm: str, dataset: Dataset, tmp: Path) -> dict[str, str]:
    """The files a preset needs from its run (Guided TD3+BC: a safety expert and an index), made up here."""
    from offrl.algos.presets import PRESETS
    from offrl.nets import DeterministicActor
    from offrl.policies import save_actor
    from offrl.simhash import SimHashIndex

    options: dict[str, str] = {}
    if algorithm in PRESETS and "guide_expert" in PRESETS[algorithm].required:
        save_actor(DeterministicActor(1, OBS_DIM, ACT_DIM, (256, 256)), tmp / "expert.pt")
        SimHashIndex.build(dataset.observations, k=50, seed=0).save(tmp / "index.npz")
        options = {"guide_expert": str(tmp / "expert.pt"), "guide_index": str(tmp / "index.npz")}
    return options


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps_per_s(
    algorithm: str,
    options: dict[str, Any],
    members: int,
    dev: torch.device,
    dataset: Dataset | list[Dataset],
    steps: int,
    batch_size: int,
    capture: str,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, bool]:
    """Steps per second of the training loop's step for a freshly built ``algorithm``, after untimed warm-up steps
    (which also capture every variant); and whether it ran captured. A list of datasets is a pack
    (:class:`offrl.train.PackedData`): the members split evenly over them. ``clock``: the wall clock, or the
    process's CPU clock (a busy machine's other jobs then do not count)."""
    from offrl.algos.presets import build

    datasets = dataset if isinstance(dataset, list) else [dataset]
    generators = [torch.Generator(device=dev).manual_seed(s) for s in range(members)]
    algo = build(algorithm, OBS_DIM, ACT_DIM, generators, dev, options)
    parts = [TensorData(d, dev, True, algo.per_transition(d)) for d in datasets]
    data = PackedData(parts, [len(chunk) for chunk in np.array_split(np.arange(members), len(datasets))])
    # Captured: enough for every variant's eager runs and capture (TD3BC++: four variants, the rarest every 10th step).
    warmup = max(10 * (WARMUP + 2) if captures(capture, dev) else 10, steps // 10)
    # Phases that are a share of the run (BEAR's warm-up, Fisher-BRC's and BRAC's behaviour
    # phase) fall within the untimed steps: the timed ones are the steady state.
    algo.plan(warmup)
    run = TrainingSteps(algo, data, generators, batch_size, dev, capture=capture)
    for step in range(1, warmup + 1):
        run(step)
    _sync(dev)
    start = clock()
    for step in range(warmup + 1, warmup + steps + 1):
        run(step)
    _sync(dev)
    seconds = clock() - start
    if run.first_bad_step() >= 0:
        raise NonFiniteError(f"bench {algorithm}: a loss became NaN or infinite at step {run.first_bad_step()}")
    return steps / seconds, run.captured


def bench(
    algorithm: str,
    steps: int,
    members: int,
    device: str = "auto",
    batch_size: int = 256,
    reference: bool = True,
    options: dict[str, Any] | None = None,
    capture: str = "auto",
    jobs_per_gpu: int = 1,
) -> dict[str, Any]:
    """Time ``steps`` gradient steps of preset ``algorithm`` (with ``options``: a variant) for ``members`` seeds at once
    (after a warm-up): eager, captured where ``capture`` is ``auto`` and the device a GPU, and the reference loop."""
    dev = choose_device(device, jobs_per_gpu)
    dataset = random_dataset()
    result: dict[str, Any] = {
        "algorithm": algorithm,
        "members": members,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "steps": steps,
    }
    with tempfile.TemporaryDirectory() as tmp:
        options = {**(options or {}), **run_files(algorithm, dataset, Path(tmp))}
        eager, _ = _steps_per_s(algorithm, options, members, dev, dataset, steps, batch_size, "off")
        result |= {"steps_per_s_per_member": round(eager, 1), "steps_per_s_total": round(members * eager, 1)}
        if check_capture_mode(capture) == "off":
            result["captured"] = "off (--capture off)"
        elif not captures(capture, dev):
            result["captured"] = f"unavailable on {dev.type}: CUDA graphs need a GPU"
        else:
            captured, _ = _steps_per_s(algorithm, options, members, dev, dataset, steps, batch_size, "auto")
            result |= {
                "captured_steps_per_s_per_member": round(captured, 1),
                "captured_steps_per_s_total": round(members * captured, 1),
                "captured_vs_eager": round(captured / eager, 2),
            }
    data = TensorData(dataset, dev, normalize=True)
    warmup = max(10, steps // 10)
    if reference and algorithm == "td3bc" and not options:
        ref = ReferenceTD3BC(dev)
        gen = torch.Generator(device=dev).manual_seed(0)

        def ref_step() -> None:
            idx = torch.randint(data.size, (batch_size,), generator=gen, device=dev)
            ref.train(
                data.obs[idx], data.actions[idx], data.next_obs[idx], data.rewards[idx, None], data.not_done[idx, None]
            )

        for _ in range(warmup):
            ref_step()
        _sync(dev)
        start = time.perf_counter()
        for _ in range(steps):
            ref_step()
        _sync(dev)
        result["reference_steps_per_s"] = round(steps / (time.perf_counter() - start), 1)
        result["speedup_per_member_vs_reference"] = round(
            result["steps_per_s_per_member"] / result["reference_steps_per_s"], 2
        )
        result["speedup_total_vs_reference"] = round(result["steps_per_s_total"] / result["reference_steps_per_s"], 2)
    return result


def packed_vs_separate(
    algorithm: str,
    members: int,
    datasets: int,
    steps: int,
    device: str = "cpu",
    batch_size: int = 256,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Member-steps/s of one process training a pack of ``members`` members over ``datasets`` datasets, and of the
    same members trained one at a time as separate one-member runs (what separate processes on one core each
    do), timed side by side in this process; ``packed_vs_separate`` > 1: a packed member costs less per step.
    On the CPU both are timed on the process's CPU clock, as benchmarks/cpu_costs.py times: a shared machine's
    other jobs do not tilt the comparison."""
    dev = choose_device(device)
    clock = time.process_time if dev.type == "cpu" else time.perf_counter
    pack = [random_dataset(seed=seed) for seed in range(datasets)]
    with tempfile.TemporaryDirectory() as tmp:
        options = {**(options or {}), **run_files(algorithm, pack[0], Path(tmp))}
        packed, _ = _steps_per_s(algorithm, options, members, dev, pack, steps, batch_size, "off", clock)
        seconds = sum(
            1 / _steps_per_s(algorithm, options, 1, dev, pack[m % datasets], steps, batch_size, "off", clock)[0]
            for m in range(members)
        )
    separate = members / seconds  # member-steps per second over all the separate runs' time
    return {
        "algorithm": algorithm,
        "members": members,
        "datasets": datasets,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "steps": steps,
        "clock": "process CPU time" if dev.type == "cpu" else "wall",
        "packed_member_steps_per_s": round(members * packed, 1),
        "separate_member_steps_per_s": round(separate, 1),
        "packed_vs_separate": round(members * packed / separate, 2),
    }
