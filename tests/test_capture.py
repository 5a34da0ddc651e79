"""Captured training steps (offrl.capture), tested where the CPU can test them.

The step function a CUDA graph captures runs eagerly here: it must give the plain loop's
numbers, and every step of one variant must launch the same operations with the same plain
arguments (else a replayed graph would run another step than the eager one). Then the graphs
themselves, with tests/graph_replay.py's CUDA-graph semantics on the CPU: every algorithm
captured and replayed gives eager mode's numbers bit for bit, makes no host sync between
logs, and notes a NaN in a replayed step.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from offrl.algos.presets import ALGORITHMS, PRESETS, build
from offrl.capture import (
    CapturedUpdate,
    GraphVariants,
    TrainingSteps,
    check_capture_mode,
    optimizers_of,
    variant_of,
)
from offrl.data.generate import rollout
from offrl.nets import DeterministicActor
from offrl.policies import save_actor
from offrl.simhash import SimHashIndex
from offrl.train import TensorData
from tests.graph_replay import HOST_SYNCS, assert_replayed_like_eager, assert_same_state, replayed_graphs

SMALL = {"hidden": [16, 16]}
VAE = {"vae_hidden": [16, 16]}
# Every offline algorithm, small, with the options that make its update branch.
CASES = {
    "bc": ("bc", SMALL),
    "td3bc": ("td3bc", SMALL),
    "td3bc_pp": ("td3bc", {**SMALL, "gradient_penalty": 1.0, "relaxation": "minmax", "gp_repeats": 2}),
    "td3bc_raw_q_policy_gp": (
        "td3bc",
        {**SMALL, "gradient_penalty": 1.0, "relaxation": "raw_q", "gp_actions": "policy", "gp_repeats": 2},
    ),
    "sac": ("sac", SMALL),
    "bear_pp": (
        "bear",
        {**SMALL, **VAE, "gradient_penalty": 1.0, "relaxation": "minmax", "gp_repeats": 2, "warmup_fraction": 0.3},
    ),
    "bcq": ("bcq", {**SMALL, **VAE}),
    "cql": ("cql", SMALL),
    "cql_rho_lagrange": ("cql", {**SMALL, "regularizer": "rho", "lagrange_gap": 5.0}),
    "iql": ("iql", SMALL),
    "iql_deterministic": ("iql", {**SMALL, "actor": "deterministic"}),
    "brac_v": (
        "brac_v",
        {
            "actor_hidden": [16, 16],
            "critic_hidden": [16, 16],
            "behaviour_hidden": [16, 16],
            "pretrain_fraction": 0.3,
            "warmup_fraction": 0.2,
        },
    ),
    "fisher_brc": ("fisher_brc", {**SMALL, "behaviour_hidden": [16, 16], "components": 2, "pretrain_fraction": 0.5}),
    "uwac": ("uwac", {**SMALL, **VAE, "dropout_samples": 3, "warmup_fraction": 0.3}),
    # The guided target and the actor's guidance (the safety expert's files come from the guide fixture).
    "guided_td3bc": ("guided_td3bc", {**SMALL, "actor_guidance": 1.0}),
}
STEPS = 40


@pytest.fixture(scope="module")
def dataset():
    return rollout("hopper", None, 400, seed=0)


@pytest.fixture(scope="module")
def guide(dataset, tmp_path_factory):
    """A safety expert and a SimHash index of the dataset: the files Guided TD3+BC's options name."""
    folder = tmp_path_factory.mktemp("guide")
    save_actor(DeterministicActor(1, 11, 3, hidden=(16, 16)), folder / "expert.pt")
    SimHashIndex.build(dataset.observations, k=4, seed=0).save(folder / "index.npz")
    return {"guide_expert": str(folder / "expert.pt"), "guide_index": str(folder / "index.npz")}


def setup(case, dataset, steps=STEPS, seeds=(0, 1), guide=None):
    preset, options = CASES[case]
    if PRESETS[preset].required:
        options = {**options, **guide}
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    algo = build(
        preset,
        dataset.observations.shape[1],
        dataset.actions.shape[1],
        generators,
        torch.device("cpu"),
        options,
        env="hopper",
    )
    if hasattr(algo, "plan"):
        algo.plan(steps)
    extras = algo.per_transition(dataset) if hasattr(algo, "per_transition") else {}
    return algo, TensorData(dataset, torch.device("cpu"), algo.normalize_states, extras), generators


class OperationLog(TorchDispatchMode):
    """Every operation dispatched, with its arguments that are not tensors (what a captured graph bakes in)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if str(func).startswith("profiler."):  # the optimiser's record_function markers
            return func(*args, **kwargs)
        plain = [
            a.initial_seed() if isinstance(a, torch.Generator) else a
            for a in torch.utils._pytree.tree_leaves((args, kwargs))
            if not isinstance(a, torch.Tensor)
        ]
        self.calls.append((str(func), repr(plain)))
        return func(*args, **kwargs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_steps_of_one_variant_launch_the_same_operations(case, dataset, guide, one_thread):
    algo, data, generators = setup(case, dataset, guide=guide)
    seen, occurrences = {}, {}
    for step in range(1, STEPS + 1):
        key = variant_of(algo, step)
        with OperationLog() as log:
            algo.update(data.sample(generators, 8))
        occurrences[key] = occurrences.get(key, 0) + 1
        # The first run of a variant creates optimiser state (a warm-up run, never captured); the second is the
        # reference.
        if occurrences[key] == 2:
            seen[key] = (step, log.calls)
        elif occurrences[key] > 2:
            first_step, calls = seen[key]
            assert log.calls == calls, f"{case}: step {step} differs from step {first_step} of the same variant {key!r}"
    expected = {
        "td3bc": 2,
        "td3bc_pp": 4,
        "td3bc_raw_q_policy_gp": 4,
        "guided_td3bc": 2,
        "bear_pp": 4,
        "uwac": 2,
        "brac_v": 3,
        "fisher_brc": 4,
    }
    assert len(occurrences) == expected.get(case, 1), sorted(occurrences, key=repr)


def reference_loop(algo, data, generators, steps, log_every, batch_size=8):
    """The training loop's step as it was before capture: sample, update, sum the logs, note the first NaN."""
    rows, sums, counts, first_bad = [], {}, {}, torch.tensor(-1)
    for step in range(1, steps + 1):
        logs = algo.update(data.sample(generators, batch_size))
        bad = ~torch.isfinite(torch.stack([v.sum() for v in logs.values()]).sum())
        first_bad = torch.where(bad & (first_bad < 0), torch.tensor(step), first_bad)
        for name, value in logs.items():
            sums[name] = sums.get(name, 0) + value
            counts[name] = counts.get(name, 0) + 1
        if step % log_every == 0:
            rows.append({name: (total / counts[name]).numpy() for name, total in sums.items()})
            sums, counts = {}, {}
    return rows, int(first_bad)


@pytest.mark.parametrize("case", ["bc", "td3bc_pp", "bear_pp", "sac", "brac_v", "iql"])
def test_the_step_function_gives_the_plain_loops_numbers(case, dataset, one_thread):
    steps, log_every = 60, 20
    algo, data, generators = setup(case, dataset, steps)
    expected, expected_bad = reference_loop(algo, data, generators, steps, log_every)
    expected_state = algo.state_dict()

    algo, data, generators = setup(case, dataset, steps)
    run = TrainingSteps(algo, data, generators, 8, torch.device("cpu"), capture="auto")
    assert not run.captured  # the CPU runs the step function eagerly
    rows = []
    for step in range(1, steps + 1):
        run(step)
        if step % log_every == 0:
            rows.append({name: value.numpy() for name, value in run.means().items()})
    assert run.first_bad_step() == expected_bad == -1
    assert [sorted(r) for r in rows] == [sorted(r) for r in expected]
    for got, want in zip(rows, expected):
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-7, err_msg=name)
    state = algo.state_dict()
    for part in ("actor", "critic"):
        if part in state:
            for name, tensor in state[part].items():
                torch.testing.assert_close(tensor, expected_state[part][name], rtol=1e-6, atol=1e-7)
    if hasattr(algo, "updates"):
        assert algo.updates == steps


@pytest.mark.parametrize("replayed", [False, True])
def test_the_step_function_notes_the_first_non_finite_step(replayed, dataset, one_thread, monkeypatch):
    """Eagerly and with replayed graphs: a NaN at a step that replays a captured graph is noted with its step."""
    graphs = replayed_graphs(monkeypatch) if replayed else []
    algo, data, generators = setup("td3bc", dataset)
    data.rewards = data.rewards.clone()  # its own memory (the fixture's array is shared), changed in place below
    run = TrainingSteps(algo, data, generators, 8, torch.device("cpu"))
    for step in range(1, 11):
        run(step)
    assert run.first_bad_step() == -1
    data.rewards.fill_(float("inf"))  # in place: a captured graph reads the tensor it was captured with
    run(11)
    run(12)
    assert run.first_bad_step() == 11
    assert all(graph.replays for graph in graphs) and len(graphs) == (2 if replayed else 0)


def test_every_optimiser_is_found_and_the_mode_is_checked(dataset):
    algo, _, _ = setup("fisher_brc", dataset)
    assert {id(o) for o in optimizers_of(algo)} == {
        id(o) for o in (algo.actor_opt, algo.critic_opt, algo.alpha_opt, algo.behaviour.opt, algo.behaviour.alpha_opt)
    }
    with pytest.raises(ValueError, match="capture must be one of auto, off, got 'on'"):
        check_capture_mode("on")


def test_captured_update_copies_host_batches_into_fixed_buffers(dataset, one_thread, monkeypatch):
    """Online TD3's path, its graphs replayed: every batch goes through the same buffers, the counter follows."""
    plain, data, _ = setup("td3bc", dataset)
    batches = [data.sample([torch.Generator().manual_seed(s) for s in (7, 8)], 8) for _ in range(16)]
    expected = [{name: value.clone() for name, value in plain.update(batch).items()} for batch in batches]

    graphs = replayed_graphs(monkeypatch)
    algo, _, generators = setup("td3bc", dataset)
    update = CapturedUpdate(algo, generators)
    assert update.captured
    buffers = None
    for step, (batch, want) in enumerate(zip(batches, expected), start=1):
        got = update(batch)
        buffers = buffers or update.batch
        assert update.batch is buffers and algo.updates == step
        assert sorted(got) == sorted(want)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
    assert len(graphs) == 2 and all(graph.replays > 0 for graph in graphs)  # critic-only and critic+actor
    assert_same_state(algo.state_dict(), plain.state_dict())


@pytest.mark.parametrize("case", sorted(CASES))
def test_replayed_graphs_give_the_eager_numbers(case, dataset, guide, one_thread, monkeypatch):
    """Every algorithm's update, captured once per variant and replayed, gives eager mode's numbers bit for bit.

    The graphs are :mod:`tests.graph_replay`'s: CUDA-graph semantics on the CPU (what a capture
    records is what every replay runs), so a step whose Python matters is caught without a GPU.
    """
    assert_replayed_like_eager(lambda steps: setup(case, dataset, steps, guide=guide), monkeypatch)


def test_a_replay_runs_what_the_capture_recorded_not_the_python(monkeypatch):
    """What makes the test above able to fail: a graph keeps the numbers and tensors its capture saw."""
    graphs = replayed_graphs(monkeypatch)
    total, calls, source = torch.zeros(()), [0], {"x": torch.ones(())}

    def step():
        calls[0] += 1
        total.add_(calls[0])  # a Python number: baked in at the capture
        total.add_(source["x"])  # a tensor: the graph reads the one it was captured with
        return ()

    run = GraphVariants(step, [], enabled=True)
    for _ in range(4):  # three eager warm-up runs (1 + 2 + 3, each + 1), then the capture and its first replay (4 + 1)
        run(None)
    assert total.item() == 1 + 2 + 3 + 4 + 4 * 1 and len(graphs) == 1 and graphs[0].replays == 1
    source["x"] = torch.full((), 100.0)  # eager mode would add 100 from now on and count on
    run(None)
    run(None)
    assert total.item() == 14 + 2 * (4 + 1) and calls[0] == 4


def test_a_capture_refuses_to_wait_for_the_device(monkeypatch):
    replayed_graphs(monkeypatch)
    value = torch.ones(3)
    run = GraphVariants(lambda: (float(value.sum()),), [], enabled=True)
    for _ in range(3):
        run(None)
    with pytest.raises(RuntimeError, match="_local_scalar_dense waits for the device"):
        run(None)


def test_every_algorithm_is_checked_with_replayed_graphs():
    """An algorithm added to offrl.algos joins CASES, so the tests above check that its update captures."""
    assert set(ALGORITHMS) <= {PRESETS[preset].algorithm for preset, _ in CASES.values()}


class HostSyncs(TorchDispatchMode):
    """The operations that wait for the device (what a logging interval must not do)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func.overloadpacket) in HOST_SYNCS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", ["td3bc_pp", "bear_pp", "iql", "cql_rho_lagrange"])
def test_captured_steps_never_wait_for_the_device_between_logs(case, dataset, one_thread, monkeypatch):
    """Once every variant is captured, a logging interval's steps make no host sync: the GPU runs ahead."""
    replayed_graphs(monkeypatch)
    algo, data, generators = setup(case, dataset, steps=80)
    run = TrainingSteps(algo, data, generators, 8, torch.device("cpu"))
    for step in range(1, 51):  # TD3BC++'s rarest variant (actor and penalty) comes every 10th step: captured at 40
        run(step)
    assert len(run.graphs.graphs) == len({variant_of(algo, step) for step in range(1, 81)})
    with HostSyncs() as syncs:
        for step in range(51, 81):
            run(step)
    assert syncs.seen == []
    with HostSyncs() as syncs:
        run.means(), run.first_bad_step()
    assert syncs.seen  # the logging point itself reads the device: the mode sees a sync where there is one
