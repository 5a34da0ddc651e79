"""TD3 (Fujimoto, van Hoof & Meger 2018), online, for behaviour policies and safety experts.

Hyperparameters are those of the reference implementation (sfujim/TD3): 25k uniformly
random start steps, Gaussian exploration noise 0.1, batch 256, γ = 0.99, τ = 0.005,
target smoothing N(0, 0.2) clipped to ±0.5, actor updated every 2 critic updates, Adam 3e-4,
256-256 networks. ``ctrl_cost_weight`` (the Guided TD3+BC safety expert) is passed to the
environment, whose reward then charges ``ctrl_cost_weight · Σa²`` per step.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from offrl.envs import make_env, normalized_score
from offrl.evaluate import evaluate_policy
from offrl.nets import DeterministicActor, QEnsemble, adam, soft_update
from offrl.policies import NumpyActor, save_actor


@dataclass
class TD3Config:
    total_steps: int = 1_000_000
    start_steps: int = 25_000
    expl_noise: float = 0.1
    batch_size: int = 256
    discount: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    lr: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    eval_every: int = 5000
    eval_episodes: int = 10
    # Medium policy: the first evaluation reaching this fraction of the expert's normalised score.
    medium_fraction: float = 1.0 / 3.0
    # Expert policy: the evaluation checkpoint with the best mean return ("best") or the last one.
    expert_checkpoint: str = "best"
    ctrl_cost_weight: float | None = None
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if self.expert_checkpoint not in ("best", "last"):
            raise ValueError(f"expert_checkpoint must be 'best' or 'last', got {self.expert_checkpoint!r}")
        if self.total_steps < self.eval_every:
            raise ValueError(f"total_steps ({self.total_steps}) must be at least eval_every ({self.eval_every})")


class TD3:
    """The learner: one actor and twin critics (a 2-member Q ensemble), with target copies."""

    def __init__(self, obs_dim: int, act_dim: int, config: TD3Config) -> None:
        self.config = config
        self.actor = DeterministicActor(1, obs_dim, act_dim, config.hidden)
        self.critic = QEnsemble(2, obs_dim, act_dim, config.hidden)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), config.lr)
        self.critic_opt = adam(self.critic.parameters(), config.lr)
        self.updates = 0

    def update(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, next_obs: torch.Tensor, not_done: torch.Tensor) -> torch.Tensor:
        """One critic step (and an actor step every ``policy_freq``); returns the critic loss."""
        c = self.config
        with torch.no_grad():
            noise = (torch.randn_like(act) * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
            next_act = (self.actor_target(next_obs[None])[0] + noise).clamp(-1.0, 1.0)
            target_q = self.critic_target(next_obs.expand(2, -1, -1), next_act.expand(2, -1, -1)).min(dim=0).values
            target = rew + c.discount * not_done * target_q

        q = self.critic(obs.expand(2, -1, -1), act.expand(2, -1, -1))
        critic_loss = F.mse_loss(q, target.expand(2, -1), reduction="none").mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.updates += 1
        if self.updates % c.policy_freq == 0:
            # TD3 ascends Q1 only (the ensemble's first member); the critic's own weights need no gradient here.
            self.critic.requires_grad_(False)
            actor_loss = -self.critic(obs[None], self.actor(obs[None]), members=slice(0, 1)).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self.critic.requires_grad_(True)
            soft_update(self.critic_target, self.critic, c.tau)
            soft_update(self.actor_target, self.actor, c.tau)
        return critic_loss.detach()


class ReplayBuffer:
    """Every transition of the online run, in order, so the medium-replay dataset can be cut from it."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminals = np.zeros(capacity, dtype=bool)
        self.timeouts = np.zeros(capacity, dtype=bool)
        self.size = 0

    def add(self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, terminal: bool, timeout: bool) -> None:
        i = self.size
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i] = obs, act, rew, next_obs
        self.terminals[i], self.timeouts[i] = terminal, timeout
        self.size += 1

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, size=batch_size)
        return (
            torch.from_numpy(self.obs[idx]),
            torch.from_numpy(self.actions[idx]),
            torch.from_numpy(self.rewards[idx]),
            torch.from_numpy(self.next_obs[idx]),
            torch.from_numpy(1.0 - self.terminals[idx].astype(np.float32)),
        )

    def save(self, path: Path, end: int) -> None:
        """Write transitions ``[0, end)``; the last one becomes a timeout if it cut an episode."""
        timeouts = self.timeouts[:end].copy()
        if end > 0 and not (self.terminals[end - 1] or timeouts[end - 1]):
            timeouts[end - 1] = True
        np.savez_compressed(
            path,
            observations=self.obs[:end],
            actions=self.actions[:end],
            rewards=self.rewards[:end],
            next_observations=self.next_obs[:end],
            terminals=self.terminals[:end],
            timeouts=timeouts,
        )


def select_checkpoints(scores: list[float], expert_checkpoint: str, medium_fraction: float) -> tuple[int, int, float]:
    """Indices of the expert and medium evaluations, and the medium target score.

    The expert is the best (or last) evaluation; the medium policy is the first evaluation
    whose normalised score reaches ``medium_fraction`` of the expert's (D4RL's "medium").
    """
    expert = int(np.argmax(scores)) if expert_checkpoint == "best" else len(scores) - 1
    target = medium_fraction * scores[expert]
    medium = next(i for i, score in enumerate(scores) if score >= target)
    return expert, medium, target


def train_online(env: str, config: TD3Config, out_dir: str | Path, progress: bool = True, command: str = "") -> dict[str, Any]:
    """Train TD3 online and write the behaviour-policy artefacts to ``out_dir``.

    Writes ``expert.pt``, ``medium.pt``, ``replay_medium.npz`` (every transition up to the
    medium checkpoint), ``evaluations.csv`` and ``manifest.json``; returns the manifest.
    The expert's score in the manifest comes from a fresh evaluation on seeds used nowhere
    else, not from the evaluation that selected it.
    """
    c = config
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    torch.manual_seed(c.seed)
    rng = np.random.default_rng(c.seed)
    env_kwargs = dict(c.env_kwargs)
    if c.ctrl_cost_weight is not None:
        env_kwargs["ctrl_cost_weight"] = c.ctrl_cost_weight
    train_env = make_env(env, **env_kwargs)
    obs_dim = train_env.observation_space.shape[0]
    act_dim = train_env.action_space.shape[0]
    agent = TD3(obs_dim, act_dim, c)
    buffer = ReplayBuffer(c.total_steps, obs_dim, act_dim)

    evaluations: list[dict[str, float]] = []
    snapshots: list[dict[str, torch.Tensor]] = []  # the actor at every evaluation, to pick expert and medium after
    obs, _ = train_env.reset(seed=c.seed)
    train_env.action_space.seed(c.seed)
    policy = NumpyActor(agent.actor)
    bar = tqdm(range(1, c.total_steps + 1), desc=f"TD3 {env}", disable=not progress, mininterval=5.0)
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
            agent.update(*buffer.sample(rng, c.batch_size))
            if step % c.policy_freq == 0:
                policy = NumpyActor(agent.actor)

        if step % c.eval_every == 0:
            # Evaluation seeds (10_000 + step) never coincide with the training env's seed.
            scores = evaluate_policy(NumpyActor(agent.actor), env, c.eval_episodes, seed=10_000 + step, env_kwargs=env_kwargs)
            row = {
                "step": step,
                "return_mean": float(scores["return"].mean()),
                "return_std": float(scores["return"].std(ddof=0)),
                "normalized_score": float(scores["normalized_score"].mean()),
                "sum_sq_action_per_step": float(scores["sum_sq_action"].sum() / scores["length"].sum()),
                "wall_s": round(time.time() - started, 1),
            }
            evaluations.append(row)
            snapshots.append({k: v.clone() for k, v in agent.actor.state_dict().items()})
            bar.set_postfix(ret=f"{row['return_mean']:.0f}", norm=f"{row['normalized_score']:.1f}")
    bar.close()

    with open(out_dir / "evaluations.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(evaluations[0]))
        writer.writeheader()
        writer.writerows(evaluations)

    expert_idx, medium_idx, medium_target = select_checkpoints([e["normalized_score"] for e in evaluations], c.expert_checkpoint, c.medium_fraction)

    def finalise(idx: int, name: str) -> dict[str, Any]:
        agent.actor.load_state_dict(snapshots[idx])
        scores = evaluate_policy(NumpyActor(agent.actor), env, c.eval_episodes, seed=1_000_000 + c.seed, env_kwargs=env_kwargs)
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

    medium_step = evaluations[medium_idx]["step"]
    buffer.save(out_dir / "replay_medium.npz", end=medium_step)
    manifest = {
        "env": env,
        "algorithm": "TD3",
        "command": command,
        "seed": c.seed,
        "config": asdict(c),
        "expert": finalise(expert_idx, "expert"),
        "medium": {**finalise(medium_idx, "medium"), "target_normalized_score": medium_target},
        "replay_medium_transitions": medium_step,
        "wall_time_s": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
