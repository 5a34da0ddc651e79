"""Online training: TD3 (Fujimoto, van Hoof & Meger 2018) for the behaviour policies and safety experts.

The learner is TD3+BC's (``offrl.algos.td3bc``) with the behaviour-cloning term off, one member;
this file holds the online loop: exploration, replay buffer, evaluations, the artefacts. It sits
above ``offrl.algos`` (it drives an environment and the evaluation, which no algorithm does) and
beside the offline loop ``offrl.train``; its name says "online" rather than "behaviour" because
``offrl.algos.behaviour`` is already the behaviour *model* BRAC and Fisher-BRC fit to the data.

Hyperparameters are those of the reference implementation (sfujim/TD3): 25k uniformly
random start steps, Gaussian exploration noise 0.1, batch 256, γ = 0.99, τ = 0.005,
target smoothing N(0, 0.2) clipped to ±0.5, actor updated every 2 critic updates, Adam 3e-4,
256-256 networks. ``ctrl_cost_weight`` (the Guided TD3+BC safety expert) is passed to the
environment, whose reward then charges ``ctrl_cost_weight · Σa²`` per step; evaluations during
training (and so the checkpoint selection) use that reward, while the manifest's final scores
are measured on the unmodified task, comparable with a plain expert's.

On a GPU (``device``, as offline training's: :mod:`offrl.device` claims one) the learner lives
there and each update runs as a captured CUDA graph (:class:`offrl.capture.CapturedUpdate`).
The replay buffer stays in host memory, where the environment writes it: its minibatch is
gathered on the host with the CPU path's draws and copied in one transfer (:class:`DeviceSampler`),
and the acting policy is copied back to the host every ``policy_freq`` updates, as on the CPU.
Host memory because a host buffer is what the CPU path already has, so the CPU keeps its
code and numbers exactly; on a GPU the transfer (256 transitions, ~28 kB) is small beside the
wait acting needs anyway: the next action waits for the actor of the last update.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from offrl.algos.base import Batch
from offrl.algos.td3bc import TD3BC, TD3BCConfig
from offrl.capture import CapturedUpdate
from offrl.device import choose_device
from offrl.envs import make_env, normalized_score
from offrl.evaluate import evaluate_policy
from offrl.files import write_atomically
from offrl.loop import TrainingRun
from offrl.options import cli
from offrl.policies import NumpyActor, save_actor
from offrl.provenance import provenance


def _td3_learner() -> TD3BCConfig:
    return TD3BCConfig(behavior_cloning=False)


@dataclass
class TD3Config:
    """One online run. Its fields are ``python -m offrl behaviour``'s options (``offrl.options``), help below each."""

    total_steps: int = 1_000_000
    start_steps: int = 25_000
    expl_noise: float = field(default=0.1, metadata=cli(hidden=True))
    batch_size: int = field(default=256, metadata=cli(hidden=True))
    agent: TD3BCConfig = field(default_factory=_td3_learner, metadata=cli(hidden=True))
    """the learner: TD3+BC's networks and losses with the BC term off, i.e. TD3"""
    eval_every: int = 5000
    eval_episodes: int = 10
    medium_fraction: float = field(default=1.0 / 3.0, metadata=cli(hidden=True))
    """medium policy: the first evaluation reaching this fraction of the expert's normalised score"""
    expert_checkpoint: Literal["best", "last"] = "best"
    """expert policy: the evaluation checkpoint with the best mean return, or the last one"""
    ctrl_cost_weight: float | None = None
    """the env's control-cost weight (safety expert)"""
    expert_only: bool = False
    """write only the expert actor (safety expert): no medium actor, no replay buffer"""
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata=cli(hidden=True))
    checkpoint_every: int = 50_000
    """save OUT/checkpoint.pt every this many steps and resume from it (0: never); a rerun with a smaller
    --total-steps finalises a run stopped early"""

    def __post_init__(self) -> None:
        if self.agent.behavior_cloning:
            raise ValueError("the online learner is TD3: agent.behavior_cloning must be False")
        if self.expert_checkpoint not in ("best", "last"):
            raise ValueError(f"expert_checkpoint must be 'best' or 'last', got {self.expert_checkpoint!r}")
        if self.total_steps < self.eval_every:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least eval_every ({self.eval_every})")


class ReplayBuffer:
    """Every transition of the online run, in order, so the medium-replay dataset can be cut from it."""

    FIELDS = ("obs", "next_obs", "actions", "rewards", "terminals", "timeouts")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminals = np.zeros(capacity, dtype=bool)
        self.timeouts = np.zeros(capacity, dtype=bool)
        self.size = 0

    def add(
        self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, terminal: bool, timeout: bool
    ) -> None:
        i = self.size
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i] = obs, act, rew, next_obs
        self.terminals[i], self.timeouts[i] = terminal, timeout
        self.size += 1

    def state(self) -> dict[str, Any]:
        """The filled part as tensors (loadable with ``torch.load(weights_only=True)``)."""
        n = self.size
        return {name: torch.from_numpy(getattr(self, name)[:n].copy()) for name in self.FIELDS}

    def restore(self, state: dict[str, Any]) -> None:
        n = len(state["rewards"])
        if n > len(self.rewards):
            raise ValueError(f"the checkpoint holds {n} transitions, more than total_steps ({len(self.rewards)})")
        for name in self.FIELDS:
            getattr(self, name)[:n] = state[name].numpy()
        self.size = n

    def sample(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """A minibatch for a single-member learner: every tensor gets a leading member axis of 1."""
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(
            torch.from_numpy(self.obs[idx])[None],
            torch.from_numpy(self.actions[idx])[None],
            torch.from_numpy(self.rewards[idx])[None],
            torch.from_numpy(self.next_obs[idx])[None],
            torch.from_numpy(1.0 - self.terminals[idx].astype(np.float32))[None],
        )

    def save(self, path: Path, end: int) -> None:
        """Write transitions ``[0, end)``; the last one becomes a timeout if it cut an episode."""
        timeouts = self.timeouts[:end].copy()
        if end > 0 and not (self.terminals[end - 1] or timeouts[end - 1]):
            timeouts[end - 1] = True
        arrays = {
            "observations": self.obs[:end],
            "actions": self.actions[:end],
            "rewards": self.rewards[:end],
            "next_observations": self.next_obs[:end],
            "terminals": self.terminals[:end],
            "timeouts": timeouts,
        }
        write_atomically(path, lambda tmp: np.savez_compressed(tmp, **arrays))


class DeviceSampler:
    """Minibatches of a host :class:`ReplayBuffer` on ``device``, in one host-to-device copy per step.

    Each field is gathered straight into its slice of one (on CUDA pinned) host array, copied
    whole into its twin on the device; the :class:`Batch` returned holds views of the twin and is
    overwritten by the next call. The indices are drawn as :meth:`ReplayBuffer.sample` draws them.
    """

    def __init__(self, buffer: ReplayBuffer, batch_size: int, device: torch.device) -> None:
        self.buffer, self.batch_size = buffer, batch_size
        obs_dim, act_dim = buffer.obs.shape[1], buffer.actions.shape[1]
        shapes = {
            "obs": (batch_size, obs_dim),
            "actions": (batch_size, act_dim),
            "rewards": (batch_size,),
            "next_obs": (batch_size, obs_dim),
            "not_done": (batch_size,),
        }
        sizes = [int(np.prod(shape)) for shape in shapes.values()]
        self.host = torch.empty(sum(sizes), dtype=torch.float32, pin_memory=device.type == "cuda")
        self.on_device = torch.empty(sum(sizes), dtype=torch.float32, device=device)
        self.host_fields = {
            name: part.view(shape).numpy() for (name, shape), part in zip(shapes.items(), self.host.split(sizes))
        }
        self.batch = Batch(
            **{name: part.view(shape)[None] for (name, shape), part in zip(shapes.items(), self.on_device.split(sizes))}
        )
        # The host array is rewritten only once the last copy has read it (the copy runs asynchronously).
        self.copied = torch.cuda.Event() if device.type == "cuda" else None

    def __call__(self, rng: np.random.Generator) -> Batch:
        b, fields = self.buffer, self.host_fields
        idx = rng.integers(0, b.size, size=self.batch_size)
        if self.copied is not None:
            self.copied.synchronize()
        np.take(b.obs, idx, axis=0, out=fields["obs"])
        np.take(b.actions, idx, axis=0, out=fields["actions"])
        np.take(b.rewards, idx, out=fields["rewards"])
        np.take(b.next_obs, idx, axis=0, out=fields["next_obs"])
        np.subtract(1.0, b.terminals[idx], out=fields["not_done"])
        self.on_device.copy_(self.host, non_blocking=self.copied is not None)
        if self.copied is not None:
            self.copied.record()
        return self.batch


def select_checkpoints(scores: list[float], expert_checkpoint: str, medium_fraction: float) -> tuple[int, int, float]:
    """Indices of the expert and medium evaluations, and the medium target score.

    The expert is the best (or last) evaluation; the medium policy is the first evaluation
    whose normalised score reaches ``medium_fraction`` of the expert's (D4RL's "medium").
    """
    expert = int(np.argmax(scores)) if expert_checkpoint == "best" else len(scores) - 1
    target = medium_fraction * scores[expert]
    medium = next(i for i, score in enumerate(scores) if score >= target)
    return expert, medium, target


def _env_state(env: Any) -> dict[str, Any]:
    """What continues an episode exactly: MuJoCo's qpos/qvel, the time limit's clock and the env's RNGs."""
    base = env.unwrapped
    return {
        "qpos": torch.from_numpy(base.data.qpos.copy()),
        "qvel": torch.from_numpy(base.data.qvel.copy()),
        "elapsed_steps": _time_limit(env)._elapsed_steps,
        "np_random": base.np_random.bit_generator.state,
        "action_space": env.action_space.np_random.bit_generator.state,
    }


def _restore_env(env: Any, state: dict[str, Any]) -> None:
    base = env.unwrapped
    base.set_state(state["qpos"].numpy(), state["qvel"].numpy())
    _time_limit(env)._elapsed_steps = state["elapsed_steps"]
    base.np_random.bit_generator.state = state["np_random"]
    env.action_space.np_random.bit_generator.state = state["action_space"]


def _time_limit(env: Any) -> gym.wrappers.TimeLimit:
    while not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env


def _resumable_config(config: TD3Config) -> dict[str, Any]:
    """The configuration a checkpoint must match: all but ``total_steps``, so a run can be stopped early or extended."""
    return {k: v for k, v in asdict(config).items() if k != "total_steps"}


class _Learner:
    """What an online run carries from step to step: the environment and its last state, the agent and its
    generator, the exploration generator, the replay buffer, and the evaluations with their actors."""

    def __init__(self, env: str, c: TD3Config, device: torch.device) -> None:
        self.env, self.c, self.device = env, c, device
        torch.manual_seed(c.seed)
        self.rng = np.random.default_rng(c.seed)
        self.env_kwargs = dict(c.env_kwargs)
        if c.ctrl_cost_weight is not None:
            self.env_kwargs["ctrl_cost_weight"] = c.ctrl_cost_weight
        self.train_env = make_env(env, **self.env_kwargs)
        obs_dim, self.act_dim = self.train_env.observation_space.shape[0], self.train_env.action_space.shape[0]
        self.generator = torch.Generator(device=device).manual_seed(c.seed)
        self.agent = TD3BC(obs_dim, self.act_dim, [self.generator], c.agent, device)
        self.buffer = ReplayBuffer(c.total_steps, obs_dim, self.act_dim)
        self.evaluations: list[dict[str, float]] = []
        self.snapshots: list[dict[str, torch.Tensor]] = []  # the actor at every evaluation, to pick expert and medium
        self.obs, _ = self.train_env.reset(seed=c.seed)
        self.train_env.action_space.seed(c.seed)
        self.policy = NumpyActor(self.agent.actor)

    def state(self) -> dict[str, Any]:
        return {
            "device": self.device.type,
            "agent": self.agent.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "buffer": self.buffer.state(),
            "env": _env_state(self.train_env),
            "obs": torch.from_numpy(np.asarray(self.obs).copy()),
            "evaluations": self.evaluations,
            "snapshots": self.snapshots,
        }

    def restore(self, state: dict[str, Any], step: int) -> None:
        """A checkpoint's state; one written on another device restarts the target noise from seed + step (a
        generator's state does not carry across devices)."""
        self.evaluations, self.snapshots = state["evaluations"], state["snapshots"]
        self.agent.load_state_dict(state["agent"])
        if state["device"] == self.device.type:
            self.generator.set_state(state["generator"])
        else:
            self.generator.manual_seed(self.c.seed + step)
            print(
                f"checkpoint written on {state['device']}, resumed on {self.device}:"
                " the target noise restarts from seed + step"
            )
        self.rng.bit_generator.state = state["rng"]
        self.buffer.restore(state["buffer"])
        _restore_env(self.train_env, state["env"])
        self.obs = state["obs"].numpy()
        self.policy = NumpyActor(self.agent.actor)

    def act(self, step: int) -> None:
        """One environment step: uniform actions for ``start_steps``, then the policy with Gaussian noise."""
        c = self.c
        if step <= c.start_steps:
            action = self.train_env.action_space.sample()
        else:
            action = (self.policy(self.obs) + self.rng.normal(0.0, c.expl_noise, size=self.act_dim)).clip(-1.0, 1.0)
        next_obs, reward, terminated, truncated, _ = self.train_env.step(action)
        self.buffer.add(self.obs, action, reward, next_obs, terminated, truncated)
        self.obs = next_obs
        if terminated or truncated:
            self.obs, _ = self.train_env.reset()

    def evaluate(self, step: int, wall_s: float) -> dict[str, float]:
        """An evaluation row, its actor kept; seeds 10_000 + step never coincide with the training env's."""
        c = self.c
        scores = evaluate_policy(
            NumpyActor(self.agent.actor), self.env, c.eval_episodes, seed=10_000 + step, env_kwargs=self.env_kwargs
        )
        row = {
            "step": step,
            "return_mean": float(scores["return"].mean()),
            "return_std": float(scores["return"].std(ddof=0)),
            "normalized_score": float(scores["normalized_score"].mean()),
            "sum_sq_action_per_step": float(scores["sum_sq_action"].sum() / scores["length"].sum()),
            "wall_s": round(wall_s, 1),
        }
        self.evaluations.append(row)
        self.snapshots.append({k: v.to("cpu", copy=True) for k, v in self.agent.actor.state_dict().items()})
        return row

    def finalise(self, idx: int, name: str, out_dir: Path) -> dict[str, Any]:
        """Write evaluation ``idx``'s actor as ``name``.pt; its score on seeds used nowhere else."""
        c, evaluation = self.c, self.evaluations[idx]
        self.agent.actor.load_state_dict(self.snapshots[idx])
        # On the unmodified task (no extra control cost), so a safety expert's score compares with a plain one's.
        scores = evaluate_policy(
            NumpyActor(self.agent.actor), self.env, c.eval_episodes, seed=1_000_000 + c.seed, env_kwargs=c.env_kwargs
        )
        save_actor(self.agent.actor, out_dir / f"{name}.pt", env=self.env, step=evaluation["step"])
        return {
            "step": evaluation["step"],
            "selection_eval_return": evaluation["return_mean"],
            "eval_episodes": c.eval_episodes,
            "eval_return_mean": float(scores["return"].mean()),
            "eval_return_std": float(scores["return"].std(ddof=0)),
            "normalized_score": float(normalized_score(self.env, scores["return"].mean())),
            "sum_sq_action_per_step": float(scores["sum_sq_action"].sum() / scores["length"].sum()),
        }

    def write(self, out_dir: Path, command: str) -> dict[str, Any]:
        """``evaluations.csv``, the expert (and medium actor and replay cut), and the manifest, which it returns."""
        c, evaluations = self.c, self.evaluations
        write_atomically(out_dir / "evaluations.csv", lambda tmp: pd.DataFrame(evaluations).to_csv(tmp, index=False))
        expert, medium, medium_target = select_checkpoints(
            [e["normalized_score"] for e in evaluations], c.expert_checkpoint, c.medium_fraction
        )
        manifest = {"env": self.env, "algorithm": "TD3", "command": command, "seed": c.seed, "config": asdict(c)}
        manifest["expert"] = self.finalise(expert, "expert", out_dir)
        if not c.expert_only:
            medium_step = evaluations[medium]["step"]
            self.buffer.save(out_dir / "replay_medium.npz", end=medium_step)
            manifest["medium"] = {**self.finalise(medium, "medium", out_dir), "target_normalized_score": medium_target}
            manifest["replay_medium_transitions"] = medium_step
        return manifest


def train_online(
    env: str,
    config: TD3Config,
    out_dir: str | Path,
    progress: bool = True,
    command: str = "",
    checkpoint: str | Path | None = None,
    device: str = "auto",
    capture: str = "auto",
    jobs_per_gpu: int = 1,
    keep_checkpoint: bool = False,
) -> dict[str, Any]:
    """Train TD3 online and write the behaviour-policy artefacts to ``out_dir``; return the manifest.

    Writes ``expert.pt``, ``medium.pt``, ``replay_medium.npz`` (every transition up to the medium checkpoint),
    ``evaluations.csv`` and ``manifest.json``; with ``expert_only`` (safety experts) no medium actor and no
    replay cut. The expert's score in the manifest is a fresh evaluation on seeds used nowhere else.

    ``checkpoint`` (default ``out_dir/checkpoint.pt``) is saved every ``checkpoint_every`` steps and resumed when
    it matches the configuration but ``total_steps``: a resumed run gives an uninterrupted one's numbers, a rerun
    with fewer ``total_steps`` (no less than the checkpoint's step) finalises a run stopped early, and with
    ``keep_checkpoint`` (a checkpoint at ``total_steps`` too, kept) a rerun with more extends it. ``device``,
    ``capture`` and ``jobs_per_gpu`` are offline training's (:func:`offrl.train.train`); a checkpoint resumes on
    another device too (:meth:`_Learner.restore`).
    """
    c = config
    device = choose_device(device, jobs_per_gpu)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = (checkpoint or out_dir / "checkpoint.pt") if c.checkpoint_every else None
    run = TrainingRun(
        f"TD3 on {env}", c.total_steps, [f"seed {c.seed}"], checkpoint, _resumable_config(c), device, progress
    )
    learner = _Learner(env, c, device)
    state = run.resume()
    if state is not None:
        learner.restore(state, run.start)
    update = CapturedUpdate(learner.agent, [learner.generator], capture)  # a CUDA graph where the agent is on a GPU
    buffer, size = learner.buffer, c.batch_size
    sample = partial(buffer.sample, batch_size=size) if device.type == "cpu" else DeviceSampler(buffer, size, device)
    for step in run.steps():
        learner.act(step)
        if step >= c.start_steps:
            run.watch.update(step, update(sample(learner.rng)))
            if step % c.agent.policy_freq == 0:
                learner.policy = NumpyActor(learner.agent.actor)
        if step % c.eval_every == 0:
            run.check()  # no evaluation of a diverged learner
            row = learner.evaluate(step, run.elapsed())
            run.show(ret=f"{row['return_mean']:.0f}", norm=f"{row['normalized_score']:.1f}")
        at_checkpoint = c.checkpoint_every and step % c.checkpoint_every == 0
        if (at_checkpoint and step < c.total_steps) or (keep_checkpoint and step == c.total_steps):
            run.save(step, learner.state())
    manifest = learner.write(out_dir, command)
    manifest["wall_time_s"] = round(run.elapsed(), 1)
    manifest["device"], manifest["captured"] = str(device), update.captured
    manifest.update(provenance())
    write_atomically(out_dir / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    run.finish(keep_checkpoint)  # last: until the manifest is written, a rerun resumes
    return manifest
