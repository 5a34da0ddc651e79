"""Training steps captured as CUDA graphs: the GPU runs a whole update from one launch.

A training step of these algorithms is a few hundred small kernels; eager PyTorch spends
more time in Python and kernel launches than the GPU spends computing (issue 15: TD3+BC
ran ~240 steps/s on an H200 in eager mode; the same update captured ran ~10× faster).

Mechanism: :class:`torch.cuda.CUDAGraph` with capturable optimisers (Adam's fused kernel,
its ``capturable`` flag set; its step count already lives on the device). Chosen over

- ``torch.compile(mode="reduce-overhead")``: minutes of compilation per algorithm and per
  variant, a recompile or graph break wherever the update branches or draws from a
  ``torch.Generator`` (each seed draws from its own), and Inductor's fused kernels change
  the numbers, so eager and captured would no longer agree to float tolerance;
- tensordict's ``CudaGraphModule`` (LeanRL's choice): the same ``torch.cuda.graph`` beneath,
  a new dependency, and it captures one function of tensor inputs, where our updates keep
  their state in the algorithm's modules and branch on a step counter.

The captured graph replays exactly the kernels eager mode launches, so captured and eager
agree to float tolerance on the same device (``benchmarks/gpu_check.py`` checks it).

What varies per step (the actor every ``policy_freq``-th update, the gradient penalty every
``gp_every``-th, BEAR's warm-up, Fisher-BRC's behaviour phase) is a *variant*: an algorithm
with branches names the variant of its ``update``-th update, ``capture_variant(update) ->
hashable`` (none: one variant). Each variant is captured once, after ``WARMUP`` eager runs
of it (which are real training steps: CUDA graphs need the lazily created optimiser state,
cuBLAS workspaces and autograd streams to exist before capture), then replayed whenever it
comes round. The Python side of an update is not replayed, so its counter ``updates``, the
only plain number an update changes, is set to the step after each step.

A step draws its minibatch inside the graph, each seed from its own generator (registered
with every graph, so replays advance it as eager draws would: a seed's numbers do not depend
on the seeds sharing its job), adds its logs to sums on the device and remembers the first
step with a NaN or infinite value, so a logging interval runs without a host sync.

On the CPU, or with capture ``off``, the very same step function runs eagerly: the tests run
it there against the plain loop, and through ``tests/graph_replay.py``, which keeps a CUDA
graph's contract on the CPU (a capture records, a replay reruns the recorded operations on
the same tensors without the step's Python), captured against eager for every algorithm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

import torch

CAPTURE_MODES = ("auto", "off")  # auto: captured on CUDA, eager elsewhere; off: always eager (for debugging)
WARMUP = 3  # eager runs of a variant before it is captured
CAPTURING_DEVICES = ("cuda",)  # where steps capture (tests/graph_replay.py adds the CPU, its graphs replayed there)


def check_capture_mode(mode: str) -> str:
    if mode not in CAPTURE_MODES:
        raise ValueError(f"capture must be one of {', '.join(CAPTURE_MODES)}, got {mode!r}")
    return mode


def captures(mode: str, device: torch.device) -> bool:
    """Whether training steps on ``device`` run as captured graphs under capture ``mode``: on CUDA with ``auto``."""
    return check_capture_mode(mode) == "auto" and device.type in CAPTURING_DEVICES


def variant_of(algo: Any, update: int) -> Hashable:
    """The variant of ``algo``'s ``update``-th update (counted from 1): which of its branches it takes."""
    return algo.capture_variant(update)


def optimizers_of(algo: Any) -> list[torch.optim.Optimizer]:
    """Every optimiser an algorithm holds, directly or in a part (a behaviour model's)."""
    found: dict[int, torch.optim.Optimizer] = {}

    def visit(obj: Any, depth: int) -> None:
        for value in vars(obj).values():
            if isinstance(value, torch.optim.Optimizer):
                found[id(value)] = value
            elif (
                depth < 2
                and hasattr(value, "__dict__")
                and not isinstance(value, (torch.nn.Module, torch.Tensor, type))
            ):
                visit(value, depth + 1)

    visit(algo, 0)
    return list(found.values())


def make_capturable(algo: Any) -> None:
    """Set every optimiser's ``capturable`` flag (fused Adam keeps its step count on the device already)."""
    for optimizer in optimizers_of(algo):
        for group in optimizer.param_groups:
            if not group.get("fused"):
                raise ValueError(
                    f"{type(algo).__name__}: capture needs fused Adam (offrl.nets.adam), "
                    f"found {type(optimizer).__name__} without it"
                )
            group["capturable"] = True
        optimizer._warned_capturable_if_run_uncaptured = True  # eager warm-up runs are intended


class GraphVariants:
    """Runs ``step()`` eagerly, or, when ``enabled`` (CUDA only), as one captured CUDA graph per variant key.

    ``step`` returns a value (the names of the logs it wrote) that is recorded at the eager
    runs and returned again at every replay of the variant.
    """

    def __init__(self, step: Callable[[], Any], generators: list[torch.Generator], enabled: bool) -> None:
        self.step = step
        self.generators = generators
        self.enabled = enabled
        self.graphs: dict[Hashable, torch.cuda.CUDAGraph] = {}
        self.results: dict[Hashable, Any] = {}
        self.eager_runs: dict[Hashable, int] = {}
        self.stream = torch.cuda.Stream() if enabled else None

    def __call__(self, key: Hashable) -> Any:
        if not self.enabled:
            return self.step()
        graph = self.graphs.get(key)
        if graph is not None:
            graph.replay()
            return self.results[key]
        if self.eager_runs.get(key, 0) < WARMUP:
            self.eager_runs[key] = self.eager_runs.get(key, 0) + 1
            # Warm-up on a side stream, as torch.cuda.graph's documentation asks before a capture.
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                self.results[key] = self.step()
            torch.cuda.current_stream().wait_stream(self.stream)
            return self.results[key]
        graph = torch.cuda.CUDAGraph()
        for generator in self.generators:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, stream=self.stream):  # records the kernels, runs none of them
            result = self.step()
        if result != self.results[key]:
            raise RuntimeError(
                f"variant {key!r} wrote other logs when captured ({result}) than eagerly ({self.results[key]}): "
                "its capture_variant misses a branch"
            )
        self.graphs[key] = graph
        graph.replay()  # the step itself
        return result


class TrainingSteps:
    """The training loop's step, written once for eager and captured runs.

    Each call samples a minibatch per seed, updates ``algo``, adds every log to a sum on the
    device and keeps the first step whose logs hold a NaN or infinity; nothing waits on the
    device until :meth:`means` or :meth:`first_bad_step`, which the loop calls at logging
    intervals.
    """

    def __init__(
        self,
        algo: Any,
        data: Any,
        generators: list[torch.Generator],
        batch_size: int,
        device: torch.device,
        capture: str = "auto",
        start: int = 0,
    ) -> None:
        self.algo, self.data, self.generators, self.batch_size = algo, data, generators, batch_size
        self.captured = captures(capture, device)
        if self.captured:
            make_capturable(algo)
        self.step_number = torch.tensor(start, device=device)  # the device's copy, read by the NaN check inside graphs
        # Per member: a pack's member that goes NaN is named, and the others train on (offrl.train.train_pack).
        self.first_bad = torch.full((len(generators),), -1, device=device)
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.graphs = GraphVariants(self._step, generators, self.captured)

    def _step(self) -> tuple[str, ...]:
        logs = self.algo.update(self.data.sample(self.generators, self.batch_size))
        self.step_number += 1
        members = len(self.generators)
        bad = ~torch.isfinite(torch.stack([v.reshape(members, -1).sum(dim=1) for v in logs.values()]).sum(dim=0))
        self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), self.step_number, self.first_bad))
        for name, value in logs.items():
            if name not in self.sums:  # only ever on an eager run: a variant is captured after its eager runs
                self.sums[name] = torch.zeros_like(value)
            self.sums[name].add_(value)
        return tuple(logs)

    def __call__(self, step: int) -> None:
        """Run training step ``step`` (counted from 1)."""
        names = self.graphs(variant_of(self.algo, step))
        if isinstance(getattr(self.algo, "updates", None), int):
            self.algo.updates = step  # a replay does not run the update's Python, which counts
        for name in names:
            self.counts[name] = self.counts.get(name, 0) + 1

    def first_bad_step(self) -> int:
        """The first step with a NaN or infinite log, −1 if none (a host sync)."""
        bad = [step for step in self.first_bad_steps() if step >= 0]
        return min(bad, default=-1)

    def first_bad_steps(self) -> list[int]:
        """Each member's first step with a NaN or infinite log, −1 if none (one host sync: the copy to the CPU)."""
        return [int(step) for step in self.first_bad.cpu()]

    def means(self) -> dict[str, torch.Tensor]:
        """Each log's mean over the steps since the last call, ``(S,)`` on the device; the sums start again."""
        means = {name: total / self.counts[name] for name, total in self.sums.items() if self.counts.get(name)}
        for total in self.sums.values():
            total.zero_()
        self.counts = {}
        return means


class CapturedUpdate:
    """``algo.update(batch)`` for minibatches drawn outside the graph (online TD3's replay buffer on the host).

    On a GPU with capture ``auto``, each batch is copied into fixed device buffers and the
    variant's graph replays; the logs it returns are overwritten by the next call. Elsewhere
    it calls ``algo.update`` itself.
    """

    def __init__(self, algo: Any, generators: list[torch.Generator], capture: str = "auto") -> None:
        self.algo = algo
        self.captured = captures(capture, generators[0].device)
        if self.captured:
            make_capturable(algo)
        self.batch: Any = None
        self.logs: dict[Hashable, dict[str, torch.Tensor]] = {}
        self.key: Hashable = None
        self.calls = 0  # updates done, counted on the host
        self.graphs = GraphVariants(self._step, generators, self.captured)

    def _step(self) -> tuple[str, ...]:
        self.logs[self.key] = self.algo.update(self.batch)
        return tuple(self.logs[self.key])

    def __call__(self, batch: Any) -> dict[str, torch.Tensor]:
        if not self.captured:
            return self.algo.update(batch)
        device = self.graphs.generators[0].device
        if self.batch is None:  # the fixed buffers every graph reads
            self.batch = dataclasses.replace(
                batch, **{f.name: _to(getattr(batch, f.name), device) for f in dataclasses.fields(batch)}
            )
            self.calls = self.algo.updates if isinstance(getattr(self.algo, "updates", None), int) else 0
        else:
            for f in dataclasses.fields(batch):
                _copy_into(getattr(self.batch, f.name), getattr(batch, f.name))
        self.calls += 1
        self.key = variant_of(self.algo, self.calls)
        self.graphs(self.key)
        if isinstance(getattr(self.algo, "updates", None), int):
            self.algo.updates = self.calls  # a replay does not run the update's Python, which counts
        return self.logs[self.key]


def _to(value: Any, device: torch.device) -> Any:
    """A copy of a tensor, or of a dict of tensors, on ``device``."""
    if isinstance(value, dict):
        return {name: v.to(device, copy=True) for name, v in value.items()}
    return value.to(device, copy=True)


def _copy_into(buffer: Any, value: Any) -> None:
    if isinstance(buffer, dict):
        for name, v in value.items():
            buffer[name].copy_(v)
    else:
        buffer.copy_(value)
