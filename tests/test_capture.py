"""Captured training steps (offrl.capture), tested where the CPU can test them.

The step function a CUDA graph captures runs eagerly here: it must give the plain loop's
numbers, and every step of one variant must launch the same operations with the same plain
arguments (else a replayed graph would run another step than the eager one).
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from offrl.algos.presets import build
from offrl.capture import (
    CapturedUpdate,
    TrainingSteps,
    check_capture_mode,
    optimizers_of,
    variant_of,
)
from offrl.data.generate import rollout
from offrl.train import TensorData

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
}
STEPS = 40


@pytest.fixture(scope="module")
def dataset():
    return rollout("hopper", None, 400, seed=0)


def setup(case, dataset, steps=STEPS, seeds=(0, 1)):
    preset, options = CASES[case]
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
def test_steps_of_one_variant_launch_the_same_operations(case, dataset, one_thread):
    algo, data, generators = setup(case, dataset)
    seen, occurrences = {}, {}
    for step in range(1, STEPS + 1):
        key = variant_of(algo, step)
        with OperationLog() as log:
            algo.update(data.sample(generators, 8))
        occurrences[key] = occurrences.get(key, 0) + 1
        # The first run of a variant creates optimiser state (a warm-up run, never captured); the second is the reference.
        if occurrences[key] == 2:
            seen[key] = (step, log.calls)
        elif occurrences[key] > 2:
            first_step, calls = seen[key]
            assert log.calls == calls, f"{case}: step {step} differs from step {first_step} of the same variant {key!r}"
    expected = {
        "td3bc": 2,
        "td3bc_pp": 4,
        "td3bc_raw_q_policy_gp": 4,
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


def test_the_step_function_notes_the_first_non_finite_step(dataset, one_thread):
    algo, data, generators = setup("td3bc", dataset)
    run = TrainingSteps(algo, data, generators, 8, torch.device("cpu"))
    run(1)
    assert run.first_bad_step() == -1
    data.rewards = torch.full_like(data.rewards, float("inf"))  # not in place: the tensor shares the fixture's array
    run(2)
    run(3)
    assert run.first_bad_step() == 2


def test_every_optimiser_is_found_and_the_mode_is_checked(dataset):
    algo, _, _ = setup("fisher_brc", dataset)
    assert {id(o) for o in optimizers_of(algo)} == {
        id(o) for o in (algo.actor_opt, algo.critic_opt, algo.alpha_opt, algo.behaviour.opt, algo.behaviour.alpha_opt)
    }
    with pytest.raises(ValueError, match="capture must be one of auto, off, got 'on'"):
        check_capture_mode("on")


def test_captured_update_copies_host_batches_into_fixed_buffers(dataset, one_thread):
    """Online TD3's path, its graphs run eagerly: every batch goes through the same buffers, the counter follows."""
    plain, data, generators = setup("td3bc", dataset)
    expected = [plain.update(data.sample(generators, 8)) for _ in range(6)]

    algo, data, generators = setup("td3bc", dataset)
    update = CapturedUpdate(algo, generators)
    assert not update.captured
    update.captured = True  # the GPU path, with its graphs' steps run eagerly (GraphVariants disabled on the CPU)
    buffers = None
    for step, want in enumerate(expected, start=1):
        got = update(data.sample(generators, 8))
        buffers = buffers or update.batch
        assert update.batch is buffers and algo.updates == step
        assert sorted(got) == sorted(want)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
