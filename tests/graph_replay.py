"""CUDA-graph semantics on the CPU: a capture records every operation, a replay reruns them on the same tensors.

A captured CUDA graph replays the kernels it recorded, with the arguments they had then, on
the memory they used then: the Python of the step does not run again. :class:`ReplayGraph`
keeps that contract where no GPU is: capturing runs the step under a dispatch mode that
records each operation with its tensors and plain arguments, then puts back every tensor and
generator the step changed (a capture runs no kernel); :meth:`ReplayGraph.replay` reruns the
recorded operations on the very tensors recorded and writes each result into the tensor the
capture produced. An update that reads a Python number which changes from step to step, a
tensor an attribute no longer points to, or the wrong fixed buffer gives other numbers than
eager mode here, as it would on a GPU; an operation that waits for the device (``.item()``,
``nonzero``), which a capture refuses, is refused here too.

``replayed_graphs(monkeypatch)`` puts this in place of ``torch.cuda``'s graphs and streams
and lets :mod:`offrl.capture` capture on the CPU, so ``GraphVariants`` runs its real path:
warm-up runs, one capture per variant, replays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import keystr, tree_flatten_with_path, tree_leaves

import offrl.capture
from offrl.capture import TrainingSteps, variant_of

# Operations a CUDA graph capture refuses: they copy a value to the host or size their output by the data.
HOST_SYNCS = {"aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.item", "aten.is_nonzero"}


def _written(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors ``func`` writes into (in-place ``self``, ``out=``, foreach lists)."""
    bound = dict(zip((a.name for a in func._schema.arguments), args)) | kwargs
    written = []
    for argument in func._schema.arguments:
        if argument.alias_info is not None and argument.alias_info.is_write and argument.name in bound:
            written += [t for t in tree_leaves(bound[argument.name]) if isinstance(t, torch.Tensor)]
    return written


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


class _Recorder(TorchDispatchMode):
    def __init__(self, graph: ReplayGraph) -> None:
        super().__init__()
        self.graph = graph
        self.created: set[int] = set()  # storages the capture allocated (a graph's own pool)
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []  # what the capture overwrote, put back after it
        self.saved_keys: set[tuple] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if name.startswith("profiler."):  # the optimiser's record_function markers
            return func(*args, **kwargs)
        if name in HOST_SYNCS:
            raise RuntimeError(f"{name} waits for the device: a CUDA graph capture refuses it")
        for tensor in _written(func, args, kwargs):
            key = (_storage(tensor), tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
            if _storage(tensor) not in self.created and key not in self.saved_keys:
                self.saved_keys.add(key)
                self.saved.append((tensor, tensor.detach().clone()))
        out = func(*args, **kwargs)
        if any(isinstance(leaf, (bool, int, float, complex)) for leaf in tree_leaves(out)):
            raise RuntimeError(f"{name} returns a host value: a CUDA graph capture refuses it")
        inputs = {_storage(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        self.created |= {_storage(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)} - inputs  # not views
        self.graph.operations.append((func, args, kwargs, out))
        return out


class ReplayGraph:
    """``torch.cuda.CUDAGraph``'s contract, kept on the CPU (see the module's docstring)."""

    def __init__(self) -> None:
        self.operations: list[tuple[Any, tuple, dict, Any]] = []
        self.generators: list[torch.Generator] = []
        self.replays = 0

    def register_generator_state(self, generator: torch.Generator) -> None:
        self.generators.append(generator)

    def replay(self) -> None:
        self.replays += 1
        with torch.no_grad():  # the recorded operations, the backward pass's among them, run as they are
            for func, args, kwargs, out in self.operations:
                result = func(*args, **kwargs)
                # A fresh output is written into the tensor the capture produced; a view or an in-place result is it.
                for ret, recorded, value in zip(func._schema.returns, tree_leaves(out), tree_leaves(result)):
                    if ret.alias_info is None and isinstance(recorded, torch.Tensor):
                        recorded.copy_(value)


@contextlib.contextmanager
def capture(graph: ReplayGraph, stream: Any = None):
    """``torch.cuda.graph``: runs the step to record it, then undoes what it did (a capture runs no kernel)."""
    states = [g.get_state() for g in graph.generators]
    default_state = torch.get_rng_state()
    recorder = _Recorder(graph)
    try:
        with recorder:
            yield
    finally:
        with torch.no_grad():
            for tensor, before in reversed(recorder.saved):
                tensor.copy_(before)
        for g, state in zip(graph.generators, states):
            g.set_state(state)
        torch.set_rng_state(default_state)


class _Stream:
    def wait_stream(self, other: Any) -> None:
        pass


def replayed_graphs(monkeypatch: Any) -> list[ReplayGraph]:
    """Graphs and streams of ``torch.cuda`` replaced by the CPU's; :mod:`offrl.capture` captures on the CPU too.

    Returns the list every graph captured from now on is appended to.
    """
    graphs: list[ReplayGraph] = []

    def new_graph() -> ReplayGraph:
        graphs.append(ReplayGraph())
        return graphs[-1]

    monkeypatch.setattr(torch.cuda, "CUDAGraph", new_graph)
    monkeypatch.setattr(torch.cuda, "graph", capture)
    monkeypatch.setattr(torch.cuda, "Stream", _Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", _Stream)
    monkeypatch.setattr(offrl.capture, "CAPTURING_DEVICES", ("cuda", "cpu"))
    return graphs


def assert_same_state(got: Any, want: Any) -> None:
    """Two nests of tensors (logs, state dicts) equal to the bit; an optimiser's ``capturable`` flag aside."""
    got, want = tree_flatten_with_path(got)[0], tree_flatten_with_path(want)[0]
    assert [path for path, _ in got] == [path for path, _ in want]
    for (path, a), (_, b) in zip(got, want):
        if keystr(path).endswith("['capturable']"):  # set for the capture, the optimiser's only other difference
            continue
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m, path=path: f"{keystr(path)}: {m}")
        else:
            assert a == b, keystr(path)


def assert_replayed_like_eager(
    make: Callable[[int], tuple], monkeypatch: Any, steps: int = 80, log_every: int = 20
) -> None:
    """The training loop's steps of ``make(steps)``'s (algorithm, data, generators), captured once per variant and
    replayed, give the logs and final state of eager mode, bit for bit; every variant's graph replays."""

    def run(captured: bool) -> tuple[list, Any, Any]:
        algo, data, generators = make(steps)
        training = TrainingSteps(algo, data, generators, 8, torch.device("cpu"), capture="auto" if captured else "off")
        assert training.captured == captured
        rows = []
        for step in range(1, steps + 1):
            training(step)
            if step % log_every == 0:
                rows.append({name: value.clone() for name, value in training.means().items()})
        assert training.first_bad_step() == -1
        return rows, algo.state_dict(), algo

    eager_rows, eager_state, _ = run(captured=False)
    graphs = replayed_graphs(monkeypatch)
    rows, state, algo = run(captured=True)
    assert graphs and all(graph.replays > 0 for graph in graphs), [graph.replays for graph in graphs]
    assert len(graphs) == len({variant_of(algo, step) for step in range(1, steps + 1)})
    assert_same_state(rows, eager_rows)
    assert_same_state(state, eager_state)
