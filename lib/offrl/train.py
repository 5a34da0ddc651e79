"""The one training loop every offline algorithm uses.

It samples minibatches (each seed its own, from its own generator), normalises states
where the algorithm asks, logs losses and Q statistics, keeps a policy snapshot every
``eval_every`` steps for the evaluation jobs, checkpoints so a killed run resumes where it
stopped, and stops at the first NaN or infinite loss with its step.

An algorithm is what :class:`offrl.algos.base.Algorithm` describes: ``update(batch)`` on a
:class:`~offrl.algos.base.Batch` per step, ``policy(obs)``, ``actor`` (what a snapshot keeps),
``state_dict``/``load_state_dict`` (:class:`~offrl.algos.base.Checkpointed`), and optionally
``per_transition``, ``plan`` and ``q_values``. An algorithm with a critic (``q_values``) has its
modules kept in ``critic_snapshots`` snapshots at most, for the slides' Q diagnostic at evaluation
(:mod:`offrl.qdiagnostic`). See ``offrl.algos``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from offrl.algos.base import Algorithm, Batch, has_q_values
from offrl.algos.presets import build, training_data
from offrl.capture import TrainingSteps
from offrl.data import Dataset
from offrl.device import choose_device
from offrl.files import UnreadableFileError, load_tensors, write_atomically, write_csv, write_text
from offrl.loop import NonFiniteError
from offrl.options import cli
from offrl.policies import policy_spec
from offrl.provenance import provenance
from offrl.qdiagnostic import critic_modules


class DivergenceProbe:
    """75th percentile of ‖π(s) − a‖² (summed over action dims) on expert and on contaminant dataset pairs.

    A fixed sample of at most ``size`` pairs of each part, drawn once from ``seed``, so every
    log row measures the same pairs.
    """

    def __init__(
        self,
        dataset: Dataset,
        contaminant_from: int,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        device: torch.device,
        size: int = 5000,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        parts = {"expert": np.arange(0, contaminant_from), "contaminant": np.arange(contaminant_from, len(dataset))}
        self.parts = {}
        for name, index in parts.items():
            if len(index) == 0:
                raise ValueError(
                    f"the dataset has no {name} transitions "
                    f"(contaminant_from={contaminant_from}, {len(dataset)} transitions)"
                )
            index = np.sort(rng.choice(index, size=min(size, len(index)), replace=False))
            obs = torch.as_tensor(
                (dataset.observations[index] - obs_mean) / obs_std, dtype=torch.float32, device=device
            )
            actions = torch.as_tensor(dataset.actions[index], dtype=torch.float32, device=device)
            self.parts[name] = (obs, actions)

    @torch.no_grad()
    def __call__(self, policy: Any, members: int) -> dict[str, torch.Tensor]:
        logs = {}
        for name, (obs, actions) in self.parts.items():
            error = (policy(obs.expand(members, -1, -1)) - actions).square().sum(dim=-1)  # (S, n)
            logs[f"divergence_{name}_p75"] = torch.quantile(error, 0.75, dim=1)
        return logs

    @torch.no_grad()
    def q_values(self, algo: Any, members: int) -> dict[str, torch.Tensor]:
        """Each part's Q(s, a) at the dataset's actions, (S, n) per part (TD3BC++ Figure 6)."""
        return {
            name: algo.q_values(obs.expand(members, -1, -1), actions.expand(members, -1, -1)).cpu()
            for name, (obs, actions) in self.parts.items()
        }


class TensorData:
    """A dataset on the training device, states normalised as the algorithm asks."""

    def __init__(
        self, dataset: Dataset, device: torch.device, normalize: bool, extras: dict[str, np.ndarray] | None = None
    ) -> None:
        obs = dataset.observations.astype(np.float32)
        if normalize:
            # TD3+BC: mean and std over the dataset's states, std + 1e-3.
            self.obs_mean = obs.mean(axis=0)
            self.obs_std = obs.std(axis=0) + 1e-3
        else:
            self.obs_mean = np.zeros(obs.shape[1], np.float32)
            self.obs_std = np.ones(obs.shape[1], np.float32)
        norm = lambda x: torch.as_tensor((x - self.obs_mean) / self.obs_std, dtype=torch.float32, device=device)  # noqa: E731
        self.obs = norm(dataset.observations)
        self.next_obs = norm(dataset.next_observations)
        self.actions = torch.as_tensor(dataset.actions, dtype=torch.float32, device=device)
        self.rewards = torch.as_tensor(dataset.rewards, dtype=torch.float32, device=device)
        self.not_done = torch.as_tensor(1.0 - dataset.terminals, dtype=torch.float32, device=device)
        self.extras = {k: torch.as_tensor(v, dtype=torch.float32, device=device) for k, v in (extras or {}).items()}
        self.size = len(dataset)

    def sample(self, generators: list[torch.Generator], batch_size: int) -> Batch:
        idx = torch.stack(
            [torch.randint(self.size, (batch_size,), generator=g, device=self.obs.device) for g in generators]
        )
        extras = {k: v[idx] for k, v in self.extras.items()}
        return Batch(
            self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.not_done[idx], extras
        )


@dataclass
class TrainConfig:
    """One offline run. Its fields are ``python -m offrl train``'s options (``offrl.options``), help below each."""

    algorithm: str = field(metadata=cli(hidden=True))
    """the preset (the command line's --algo, which may name a variant of one)"""
    env: str = field(metadata=cli(hidden=True))
    """the dataset's environment (the command line reads it from --dataset)"""
    dataset: str
    """<env>-<kind>, e.g. hopper-medium (with --dataset-dir: <env>-<any label>)"""
    seeds: list[int] = field(default_factory=lambda: [0])
    """seeds, trained at once as ensemble members"""
    steps: int = 1_000_000
    """gradient steps (the papers: 1M)"""
    batch_size: int = 256
    """minibatch per seed"""
    eval_every: int = 5000
    """policy snapshot interval; divides --steps"""
    log_every: int = 1000
    """train_log.csv row interval; divides --eval-every"""
    checkpoint_every: int = field(default=0, metadata=cli(hidden=True))
    """checkpoint interval; 0: at every snapshot"""
    device: str = field(default="auto", metadata=cli(hidden=True))
    """the global --device"""
    options: dict[str, Any] = field(default_factory=dict)
    """JSON object of algorithm options, e.g. '{"alpha": 2.5}'"""
    contaminant_from: int | None = field(default=None, metadata=cli(hidden=True))
    """contaminated datasets: transitions from this index on are the contaminant's; the log then follows the
    policy's divergence from the dataset's actions on each part (TD3BC++ Figure 4). Read from the dataset's
    provenance"""
    critic_snapshots: int = 20
    """the Q diagnostic: at most this many snapshots keep the critic (the last and every k-th before it)"""

    def __post_init__(self) -> None:
        if self.critic_snapshots < 1:
            raise ValueError(f"critic_snapshots must be at least 1, got {self.critic_snapshots}")
        if self.steps % self.eval_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of eval_every ({self.eval_every})")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if (self.checkpoint_every or self.eval_every) % self.log_every:
            # A checkpoint must fall on a log row, or a resumed run would lose the partial log interval.
            raise ValueError(
                f"log_every ({self.log_every}) must divide the checkpoint interval "
                f"({self.checkpoint_every or self.eval_every})"
            )


def critic_steps(config: TrainConfig) -> set[int]:
    """The snapshot steps that keep the critic: the last and every k-th before it,
    k = ⌈snapshots / critic_snapshots⌉."""
    snapshots = config.steps // config.eval_every
    stride = -(-snapshots // config.critic_snapshots)
    return {config.steps - i * stride * config.eval_every for i in range((snapshots - 1) // stride + 1)}


def _atomic_save(obj: Any, path: Path) -> None:
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


# Raise it whenever what a checkpoint holds changes meaning: checkpoints of another format are ignored.
# 3: snapshots of the critics (the Q diagnostic); 4: IQL's update count and actor rate on the device;
# 5: a pack's runs (train_pack): a list of configs, and logs, snapshots, critics and probe values per run.
CHECKPOINT_FORMAT = 5


def _tensor_shapes(state: dict[str, Any]) -> dict[str, dict[str, tuple[int, ...]]]:
    """The names and shapes of the networks in an algorithm's state (optimiser states carry no top-level tensors)."""
    return {
        part: {k: tuple(v.shape) for k, v in value.items() if isinstance(v, torch.Tensor)}
        for part, value in state.items()
        if isinstance(value, dict)
    }


def _resumable(
    checkpoint: Path, configs: list[TrainConfig], algo: Algorithm, device: torch.device
) -> dict[str, Any] | None:
    """The checkpoint's state if this run can resume from it; ``None``, with a message saying why, if not.

    A damaged checkpoint, or one carrying pickled objects, is an error: it never runs code
    (:func:`offrl.files.load_tensors`), and deleting it is the user's call.
    """
    try:
        state = load_tensors(checkpoint, "checkpoint", map_location=device)
    except UnreadableFileError as err:
        raise UnreadableFileError(f"{err}; delete it to start the run afresh") from err
    found = state.get("format") if isinstance(state, dict) else None
    if found != CHECKPOINT_FORMAT:
        reason = (
            f"was written by another version of offrl (checkpoint format {found}, this code writes {CHECKPOINT_FORMAT})"
        )
    elif state.get("config") != [asdict(config) for config in configs]:
        reason = "belongs to another configuration"
    elif _tensor_shapes(state["algorithm"]) != _tensor_shapes(algo.state_dict()):
        reason = f"holds other networks than {configs[0].algorithm} builds now"
    else:
        return state
    print(f"checkpoint {checkpoint} {reason}: ignoring it, starting afresh", file=sys.stderr)
    return None


@dataclass
class Run:
    """One run of a pack: its dataset, its config and the directory its outputs go to."""

    dataset: Dataset
    config: TrainConfig
    out_dir: Path


# What a pack's runs may differ in; every other TrainConfig field is one value for the whole pack.
PER_RUN_FIELDS = ("dataset", "seeds", "contaminant_from")


def check_pack(configs: list[TrainConfig]) -> None:
    """A pack's runs share every field but :data:`PER_RUN_FIELDS`; the error names the field and both runs."""
    first = asdict(configs[0])
    for config in configs[1:]:
        for name, value in asdict(config).items():
            if name not in PER_RUN_FIELDS and value != first[name]:
                raise ValueError(
                    f"a pack's runs must share {name}: {config.dataset} has {value!r}, {configs[0].dataset} has"
                    f" {first[name]!r} (runs may differ only in {', '.join(PER_RUN_FIELDS)})"
                )
    runs = [(c.dataset, seed) for c in configs for seed in c.seeds]
    if len(set(runs)) != len(runs):
        raise ValueError(f"a pack trains each (dataset, seed) once; got {runs}")


class PackedData:
    """Several datasets on the training device, member ``m`` sampling its run's dataset with its own generator.

    Each dataset keeps its own state normalisation and per-transition extras (:class:`TensorData`); a
    member's minibatch is the one a separate run of its dataset draws, and the pack's is their concatenation
    along the member dimension.
    """

    def __init__(self, parts: list[TensorData], members: list[int]) -> None:
        self.parts, self.members = parts, members

    def sample(self, generators: list[torch.Generator], batch_size: int) -> Batch:
        if len(self.parts) == 1:
            return self.parts[0].sample(generators, batch_size)
        bounds = np.cumsum([0, *self.members])
        batches = [part.sample(generators[a:b], batch_size) for part, a, b in zip(self.parts, bounds, bounds[1:])]
        cat = lambda name: torch.cat([getattr(b, name) for b in batches])  # noqa: E731
        extras = {k: torch.cat([b.extras[k] for b in batches]) for k in batches[0].extras}
        return Batch(cat("obs"), cat("actions"), cat("rewards"), cat("next_obs"), cat("not_done"), extras)


def member_states(state: dict[str, torch.Tensor], chosen: list[int], total: int) -> dict[str, torch.Tensor]:
    """CPU copies of a module state's tensors for the ``chosen`` of ``total`` members.

    A module of ``k·total`` members lays them out head-major (member ``h·total + m``: head h of member m, as
    twin critics are built), so a run's part is ``k·len(chosen)`` members, laid out the same way.
    """
    part = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if tensor.ndim and tensor.shape[0] % total == 0:
            heads = tensor.view(tensor.shape[0] // total, total, *tensor.shape[1:])
            tensor = heads[:, chosen].reshape(-1, *tensor.shape[1:])
        part[name] = tensor.clone()
    return part


def train(
    dataset: Dataset,
    config: TrainConfig,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    capture: str = "auto",
    jobs_per_gpu: int = 1,
) -> dict[str, Any]:
    """Train ``config.algorithm`` on ``dataset`` for every seed at once; write the run to ``out_dir``.

    Writes ``snapshots.pt`` (the actors every ``eval_every`` steps, with the state
    normalisation), ``train_log.csv`` and ``config.json``. ``checkpoint`` (outside the
    outputs, which Snakemake deletes before a job) is where the run saves and resumes.
    ``capture`` ``auto`` runs every step as a captured CUDA graph on a GPU, ``off`` eagerly
    (:mod:`offrl.capture`; the same numbers either way, so neither is part of the config);
    ``jobs_per_gpu`` jobs may share one GPU (:mod:`offrl.device`). A pack of one run
    (:func:`train_pack`).
    """
    run = Run(dataset, config, Path(out_dir))
    return train_pack([run], checkpoint, progress, capture, jobs_per_gpu)[0]


def train_pack(
    runs: list[Run],
    checkpoint: str | Path | None = None,
    progress: bool = True,
    capture: str = "auto",
    jobs_per_gpu: int = 1,
) -> list[dict[str, Any]]:
    """Train several runs of one algorithm in one process: every seed of every run is a member of one ensemble.

    The runs share every config field but the dataset, its seeds and its contaminant split
    (:func:`check_pack`); each writes what :func:`train` writes for it alone, the same numbers (each member
    samples its own dataset with its own generator, normalised by its dataset's statistics, with its
    dataset's per-transition values). A run whose member goes NaN or infinite is not written; the others
    train on (members share no arithmetic), are written, and then :class:`NonFiniteError` names the runs
    that failed, dataset and seed. Returns each run's config.json record.
    """
    configs = [run.config for run in runs]
    check_pack(configs)
    config = configs[0]  # the shared fields
    members = [len(c.seeds) for c in configs]
    bounds = np.cumsum([0, *members])
    chosen = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
    full_datasets = [run.dataset for run in runs]
    datasets = [training_data(config.algorithm, d) for d in full_datasets]
    device = choose_device(config.device, jobs_per_gpu)
    generators = [torch.Generator(device=device).manual_seed(seed) for c in configs for seed in c.seeds]
    obs_dim, act_dim = datasets[0].observations.shape[1], datasets[0].actions.shape[1]
    for run, d in zip(runs, datasets):
        if d.observations.shape[1] != obs_dim or d.actions.shape[1] != act_dim:
            raise ValueError(
                f"a pack's datasets must have one shape: {run.config.dataset} "
                f"has {d.observations.shape[1]}-d states and"
                f" {d.actions.shape[1]}-d actions, {config.dataset} {obs_dim} and {act_dim}"
            )
    algo = build(config.algorithm, obs_dim, act_dim, generators, device, config.options, env=config.env)
    algo.plan(config.steps)
    parts = [TensorData(d, device, algo.normalize_states, algo.per_transition(d)) for d in datasets]
    data = PackedData(parts, members)
    total = len(generators)
    critic_names = critic_modules(algo, obs_dim, act_dim, device)
    keep_critic = critic_steps(config) if critic_names else set()
    # Measured on the whole dataset, also for presets that train on part of it.
    probes = [
        DivergenceProbe(full, c.contaminant_from, part.obs_mean, part.obs_std, device)
        if c.contaminant_from is not None
        else None
        for full, c, part in zip(full_datasets, configs, parts)
    ]

    start = 0
    rows: list[list[dict]] = [[] for _ in runs]
    snapshots: list[dict] = [{} for _ in runs]
    critics: list[dict] = [{} for _ in runs]
    probe_q: list[dict] = [{} for _ in runs]
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.is_file():
        state = _resumable(checkpoint, configs, algo, device)
        if state is not None:
            algo.load_state_dict(state["algorithm"])
            for g, g_state in zip(generators, state["generators"]):
                g.set_state(g_state)
            start, rows, snapshots, critics, probe_q = (
                state["step"],
                state["log"],
                state["snapshots"],
                state["critics"],
                state["probe_q"],
            )

    checkpoint_every = config.checkpoint_every or config.eval_every
    steps = TrainingSteps(algo, data, generators, config.batch_size, device, capture=capture, start=start)
    started = time.time()
    names = ", ".join(c.dataset for c in configs)
    bar = tqdm(
        range(start + 1, config.steps + 1),
        initial=start,
        total=config.steps,
        disable=not progress,
        mininterval=5.0,
        desc=f"{config.algorithm} {names} seeds {sorted({s for c in configs for s in c.seeds})}",
    )
    failed: dict[int, str] = {}  # run index: what went wrong, each bad member by dataset, seed and step
    for step in bar:
        steps(step)  # sample, update, sum the logs, note a NaN: on the device, without waiting for it

        if step % config.log_every == 0 or step % checkpoint_every == 0 or step == config.steps:
            failed = _failed_runs(configs, chosen, steps.first_bad_steps())
            if len(failed) == len(runs):
                raise NonFiniteError(f"{'; '.join(failed.values())}; the run stops here (no result is written)")
        if step % config.log_every == 0 and steps.counts:
            means = {name: value.cpu().numpy() for name, value in steps.means().items()}
            for r, (c, index, probe) in enumerate(zip(configs, chosen, probes)):
                run_means = {k: v[index] for k, v in means.items()}
                if probe is not None:
                    run_means |= {k: v.cpu().numpy()[index] for k, v in probe(algo.policy, total).items()}
                rows[r] += [
                    {"step": step, "seed": seed, **{k: float(v[s]) for k, v in run_means.items()}}
                    for s, seed in enumerate(c.seeds)
                ]
            bar.set_postfix(
                {k: f"{v.mean():.3g}" for k, v in means.items() if k in ("critic_loss", "actor_loss", "q_mean")}
            )
        if step % config.eval_every == 0:
            actor = algo.actor.state_dict()
            critic_states = {name: getattr(algo, name).state_dict() for name in critic_names}
            for r, (index, probe) in enumerate(zip(chosen, probes)):
                snapshots[r][step] = member_states(actor, index, total)
                if step in keep_critic:
                    critics[r][step] = {name: member_states(st, index, total) for name, st in critic_states.items()}
                if probe is not None and has_q_values(algo):
                    probe_q[r][step] = {k: v[index] for k, v in probe.q_values(algo, total).items()}
        if checkpoint and step % checkpoint_every == 0 and step < config.steps:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": [asdict(c) for c in configs],
                    "step": step,
                    "algorithm": algo.state_dict(),
                    "generators": [g.get_state() for g in generators],
                    "log": rows,
                    "snapshots": snapshots,
                    "critics": critics,
                    "probe_q": probe_q,
                },
                checkpoint,
            )
    bar.close()

    records = []
    for r, (run, c, part) in enumerate(zip(runs, configs, parts)):
        if r in failed:
            continue
        records.append(
            _write_run(run, part, algo, snapshots[r], rows[r], critics[r], probe_q[r], device, started, start)
        )
        records[-1]["captured"] = steps.captured
        if len(runs) > 1:
            records[-1]["pack"] = {"datasets": [c.dataset for c in configs], "members": total}
        write_text(Path(run.out_dir) / "config.json", json.dumps(records[-1], indent=2) + "\n")
    if checkpoint and checkpoint.is_file():
        checkpoint.unlink()  # the pack is complete; its outputs replace the checkpoint
    if failed:
        raise NonFiniteError(
            f"{'; '.join(failed.values())}; those runs are not written, the pack's other {len(runs) - len(failed)} are"
        )
    return records


def _failed_runs(configs: list[TrainConfig], chosen: list[list[int]], first_bad: list[int]) -> dict[int, str]:
    """The runs with a member whose logs went NaN or infinite, each with its message (dataset, seed, step)."""
    failed = {}
    for r, (c, index) in enumerate(zip(configs, chosen)):
        bad = [
            f"{c.algorithm} on {c.dataset}, seed {seed}: "
            f"a loss or Q-value became NaN or infinite at step {first_bad[m]}"
            for seed, m in zip(c.seeds, index)
            if first_bad[m] >= 0
        ]
        if bad:
            failed[r] = "; ".join(bad)
    return failed


def _write_run(
    run: Run,
    data: TensorData,
    algo: Algorithm,
    snapshots: dict,
    rows: list[dict],
    critics: dict,
    probe_q: dict,
    device: torch.device,
    started: float,
    start: int,
) -> dict[str, Any]:
    """One run's snapshots.pt and train_log.csv; its config.json record (the caller writes it)."""
    config, full_dataset = run.config, run.dataset
    out_dir = Path(run.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_save(
        {
            "algorithm": config.algorithm,
            "env": config.env,
            "seeds": config.seeds,
            "obs_mean": torch.from_numpy(data.obs_mean),
            "obs_std": torch.from_numpy(data.obs_std),
            # The evaluation policy's kind and sizes (offrl.policies.snapshot_policy rebuilds it).
            "policy": policy_spec(algo.actor),
            "actors": snapshots,
            # The Q diagnostic (offrl.qdiagnostic): what rebuilds the algorithm, the state of the modules its
            # q_values reads at every snapshot (empty without a critic), and the dataset's initial states.
            "obs_dim": full_dataset.observations.shape[1],
            "act_dim": full_dataset.actions.shape[1],
            "options": config.options,
            "critics": critics,
            "initial_states": torch.as_tensor(
                full_dataset.observations[[s.start for s in full_dataset.episode_slices()]], dtype=torch.float32
            ),
            # Contaminated datasets: Q(s, a) on the probe's expert and contaminant pairs at every snapshot.
            "probe_q": probe_q,
        },
        out_dir / "snapshots.pt",
    )
    write_csv(pd.DataFrame(rows), out_dir / "train_log.csv", index=False)
    return {
        "config": asdict(config),
        "algorithm_config": asdict(algo.config),
        "device": str(device),
        **provenance(),
        "wall_time_s": round(time.time() - started, 1),
        "resumed_from_step": start,
    }
