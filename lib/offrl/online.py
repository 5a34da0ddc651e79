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
import time
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
from offrl.loop import NonFiniteWatch, progress_bar, save_checkpoint
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
    """Train TD3 online and write the behaviour-policy artefacts to ``out_dir``.

    Writes ``expert.pt``, ``medium.pt``, ``replay_medium.npz`` (every transition up to the
    medium checkpoint), ``evaluations.csv`` and ``manifest.json``; returns the manifest.
    With ``expert_only`` (safety experts) the medium actor and the replay buffer are skipped.
    The expert's score in the manifest comes from a fresh evaluation on seeds used nowhere
    else, not from the evaluation that selected it.

    ``checkpoint`` (default ``out_dir/checkpoint.pt``) is saved every ``checkpoint_every`` steps
    and resumed from when it matches the configuration except ``total_steps``: a resumed run
    gives the same numbers as an uninterrupted one, and rerunning with a smaller ``total_steps``
    (no less than the checkpoint's step) finalises a run that was stopped early. A finished run
    removes its checkpoint unless ``keep_checkpoint``: then it saves one at ``total_steps`` too, and
    a rerun with a larger ``total_steps`` extends the run to the numbers of a run that long.

    ``device``, ``capture`` and ``jobs_per_gpu`` are offline training's (:func:`offrl.train.train`):
    ``auto`` trains on a free GPU if there is one (the CPU's numbers differ from a GPU's, so the
    seed's numbers are those of its device). A checkpoint resumes on another device too: it is
    read into host memory first; the target-noise generator, whose state does not carry across
    devices, then restarts from the seed and the step.
    """
    c = config
    device = choose_device(device, jobs_per_gpu)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(checkpoint) if checkpoint else out_dir / "checkpoint.pt"
    started, wall_before = time.time(), 0.0
    torch.manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    env_kwargs = dict(c.env_kwargs)
    if c.ctrl_cost_weight is not None:
        env_kwargs["ctrl_cost_weight"] = c.ctrl_cost_weight
    train_env = make_env(env, **env_kwargs)
    obs_dim = train_env.observation_space.shape[0]
    act_dim = train_env.action_space.shape[0]
    generator = torch.Generator(device=device).manual_seed(c.seed)
    agent = TD3BC(obs_dim, act_dim, [generator], c.agent, device)

    evaluations: list[dict[str, float]] = []
    snapshots: list[dict[str, torch.Tensor]] = []  # the actor at every evaluation, to pick expert and medium after
    obs, _ = train_env.reset(seed=c.seed)
    train_env.action_space.seed(c.seed)
    start = 0
    state = (
        torch.load(checkpoint, weights_only=True, map_location="cpu")
        if c.checkpoint_every and checkpoint.is_file()
        else None
    )
    if state is not None and state["config"] != _resumable_config(c):
        print(f"checkpoint {checkpoint} belongs to another configuration; starting afresh")
        state = None
    elif state is not None and state["step"] > c.total_steps:
        raise ValueError(
            f"checkpoint {checkpoint} is at step {state['step']}, past total_steps ({c.total_steps}): raise --total-steps"
        )
    buffer = ReplayBuffer(c.total_steps, obs_dim, act_dim)
    if state is not None:
        start, evaluations, snapshots, wall_before = (
            state["step"],
            state["evaluations"],
            state["snapshots"],
            state["wall_s"],
        )
        agent.load_state_dict(state["agent"])
        written_on = state.get("device", "cpu")  # checkpoints from before GPU training were all the CPU's
        if written_on == device.type:
            generator.set_state(state["generator"])
        else:
            generator.manual_seed(c.seed + start)
            print(
                f"checkpoint written on {written_on}, resumed on {device}: the target noise restarts from seed + step"
            )
        rng.bit_generator.state = state["rng"]
        buffer.restore(state["buffer"])
        _restore_env(train_env, state["env"])
        obs = state["obs"].numpy()
        print(f"resumed from {checkpoint} at step {start}")
    policy = NumpyActor(agent.actor)
    watch = NonFiniteWatch(device)
    update = CapturedUpdate(agent, [generator], capture)  # a captured CUDA graph where the agent is on a GPU
    sample = (
        partial(buffer.sample, batch_size=c.batch_size)
        if device.type == "cpu"
        else DeviceSampler(buffer, c.batch_size, device)
    )
    bar = progress_bar(start, c.total_steps, f"TD3 {env}", progress)
    for step in bar:
        if step <= c.start_steps:
            action = train_env.action_space.sample()
        else:
            action = (policy(obs) + rng.normal(0.0, c.expl_noise, size=act_dim)).clip(-1.0, 1.0)
        next_obs, reward, terminated, truncated, _ = train_env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = train_env.reset()

        if step >= c.start_steps:
            watch.update(step, update(sample(rng)))
            if step % c.agent.policy_freq == 0:
                policy = NumpyActor(agent.actor)

        at_checkpoint = c.checkpoint_every and step % c.checkpoint_every == 0
        save = (at_checkpoint and step < c.total_steps) or (keep_checkpoint and step == c.total_steps)
        if step % c.eval_every == 0 or save:
            watch.check(f"TD3 on {env}, seed {c.seed}")  # neither an evaluation nor a checkpoint of a diverged learner
        if step % c.eval_every == 0:
            # Evaluation seeds (10_000 + step) never coincide with the training env's seed.
            scores = evaluate_policy(
                NumpyActor(agent.actor), env, c.eval_episodes, seed=10_000 + step, env_kwargs=env_kwargs
            )
            row = {
                "step": step,
                "return_mean": float(scores["return"].mean()),
                "return_std": float(scores["return"].std(ddof=0)),
                "normalized_score": float(scores["normalized_score"].mean()),
                "sum_sq_action_per_step": float(scores["sum_sq_action"].sum() / scores["length"].sum()),
                "wall_s": round(wall_before + time.time() - started, 1),
            }
            evaluations.append(row)
            snapshots.append({k: v.to("cpu", copy=True) for k, v in agent.actor.state_dict().items()})
            bar.set_postfix(ret=f"{row['return_mean']:.0f}", norm=f"{row['normalized_score']:.1f}")
        if save:
            state = {
                "config": _resumable_config(c),
                "step": step,
                "device": device.type,
                "agent": agent.state_dict(),
                "generator": generator.get_state(),
                "rng": rng.bit_generator.state,
                "buffer": buffer.state(),
                "env": _env_state(train_env),
                "obs": torch.from_numpy(np.asarray(obs).copy()),
                "evaluations": evaluations,
                "snapshots": snapshots,
                "wall_s": wall_before + time.time() - started,
            }
            save_checkpoint(state, checkpoint)
    bar.close()

    write_atomically(out_dir / "evaluations.csv", lambda tmp: pd.DataFrame(evaluations).to_csv(tmp, index=False))

    expert_idx, medium_idx, medium_target = select_checkpoints(
        [e["normalized_score"] for e in evaluations], c.expert_checkpoint, c.medium_fraction
    )

    def finalise(idx: int, name: str) -> dict[str, Any]:
        agent.actor.load_state_dict(snapshots[idx])
        # On the unmodified task (no extra control cost), so a safety expert's score compares with a plain one's.
        scores = evaluate_policy(
            NumpyActor(agent.actor), env, c.eval_episodes, seed=1_000_000 + c.seed, env_kwargs=c.env_kwargs
        )
        save_actor(agent.actor, out_dir / f"{name}.pt", env=env, step=evaluations[idx]["step"])
        return {
            "step": evaluations[idx]["step"],
            "selection_eval_return": evaluations[idx]["return_mean"],
            "eval_episodes": c.eval_episodes,
            "eval_return_mean": float(scores["return"].mean()),
            "eval_return_std": float(scores["return"].std(ddof=0)),
            "normalized_score": float(normalized_score(env, scores["return"].mean())),
            "sum_sq_action_per_step": float(scores["sum_sq_action"].sum() / scores["length"].sum()),
        }

    manifest = {
        "env": env,
        "algorithm": "TD3",
        "command": command,
        "seed": c.seed,
        "config": asdict(c),
        "expert": finalise(expert_idx, "expert"),
    }
    if not c.expert_only:
        medium_step = evaluations[medium_idx]["step"]
        buffer.save(out_dir / "replay_medium.npz", end=medium_step)
        manifest["medium"] = {**finalise(medium_idx, "medium"), "target_normalized_score": medium_target}
        manifest["replay_medium_transitions"] = medium_step
    manifest["wall_time_s"] = round(wall_before + time.time() - started, 1)
    manifest["device"], manifest["captured"] = str(device), update.captured
    manifest.update(provenance())
    write_atomically(out_dir / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    if not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return manifest
