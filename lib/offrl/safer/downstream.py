"""Downstream RL on an evaluation grasp task: SAC over a fixed skill prior's abstract action (Algorithm 1).

SAC's actor outputs u ∈ [−1, 1]^4 (tanh-squashed). How u becomes the executed action a:

- ``sac``: a = u, no prior (appendix D's baseline and ablation).
- ``csc``: a = u, no prior; SAC constrained by Conservative Safety Critics (``offrl.algos.csc``),
  whose u is the first of K draws from π its cost critic deems safe.
- ``parrot``, ``contextual_parrot``: z = Φ⁻¹((u + 1)/2), a = f_φ(z; s[, E[c | Λ]]).
- ``safer``, ``safer_no_context``: z inside the safety bound's box (−η, η), a = f_φ(z; s[, E[c | Λ]]),
  through ``latent_map`` (``offrl.safer.priors.latent``): by default the same Φ⁻¹ map into the prior's
  N(0, I), truncated to the box, so SAFER and PARROT differ in the prior and the bound only;
  ``box`` takes z = η·u instead.
- ``prior_explore``: SAC on raw actions; with probability δ (``explore_probability``, 0.9 after
  Singh et al.) the prior's own action a = f_φ(z; s, E[c | Λ]) with z ~ N(0, I) is executed
  instead, from the first step on (the uniform start steps included). SAC is off-policy, so
  the replay buffer stores the executed action.

Every other method stores u, the action SAC chose (the paper's (s_k, z_k, s_{k+1}, r_k), with
u the bijective pre-image of z). Λ is the rolling window of the ``prior.window`` states before
s_k in its episode, oldest first, zero rows before the start: exactly
``offrl.safer.grasp_script.state_windows`` of the rollout, the windows the prior trained on.

All seeds run in one process: S environments stepped in lockstep, one batched prior and actor
call per step, one member-stacked replay buffer and one SAC update (``offrl.algos.sac``, S
members) per environment step once ``start_steps`` uniform-random steps have been collected.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from offrl.algos.base import Batch
from offrl.algos.csc import CSC, CSCConfig
from offrl.algos.sac import SAC, SACConfig
from offrl.files import write_atomically
from offrl.loop import NonFiniteWatch, progress_bar
from offrl.options import cli
from offrl.provenance import provenance
from offrl.safer.grasp import MAX_EPISODE_STEPS, GraspTask, SafeGraspEnv
from offrl.safer.priors.latent import bounded_map, gaussian_latent
from offrl.safer.priors.model import RollingWindow, SkillPrior, prior_action

METHODS = ("sac", "parrot", "contextual_parrot", "prior_explore", "safer", "safer_no_context", "csc")
RAW_METHODS = ("sac", "csc")  # no prior: u is the executed action
BOUNDED_METHODS = ("safer", "safer_no_context")  # z inside (−η, η): these need the bound η
GAUSSIAN_METHODS = ("parrot", "contextual_parrot")  # z = Φ⁻¹((u + 1)/2)
# Which prior each method is meant for; a mismatch would silently run a different experiment.
NEEDS_CONTEXT = ("contextual_parrot", "safer")
NEEDS_NO_CONTEXT = ("parrot", "safer_no_context")
ACT_DIM = 4
LOG_COLUMNS = ("seed", "step", "episodes", "successes", "violations", "return_mean")
SUMMARY_FRACTION = 0.2  # the success rate is over episodes ending in this last fraction of steps


def _downstream_sac() -> SACConfig:
    return SACConfig(initial_alpha=0.1)


@dataclass
class DownstreamConfig:
    """One downstream run. Its fields are ``python -m offrl downstream``'s options (``offrl.options``), help below each."""

    method: str = field(metadata=cli(choices=METHODS))
    total_steps: int = field(default=50_000, metadata=cli("--steps"))
    start_steps: int = 1000
    """uniform u ~ U[−1, 1]^4 before learning starts"""
    batch_size: int = 256
    log_every: int = 1000
    explore_probability: float = field(default=0.9, metadata=cli(hidden=True))
    """δ of Prior-Explore"""
    bound: float | None = field(default=None, metadata=cli(hidden=True))
    """η of safer and safer_no_context; None for every other method (the command line reads it from --bounds and --target)"""
    latent_map: str = "truncated_normal"
    """safer, safer_no_context: u → z, truncated_normal (the prior's N(0, I) truncated to the bound) or box (z = η·u)
    (offrl.safer.priors.latent.LATENT_MAPS)"""
    sac: SACConfig = field(default_factory=_downstream_sac, metadata=cli(hidden=True))
    """SAC, at initial temperature 0.1 (its --hidden and --initial-alpha are the command line's)"""
    csc: CSCConfig = field(default_factory=CSCConfig, metadata=cli(hidden=True))
    """read by method csc only"""
    max_episode_steps: int = field(default=MAX_EPISODE_STEPS, metadata=cli(hidden=True))

    def __post_init__(self) -> None:
        if isinstance(self.sac, dict):  # as read back from config.json
            self.sac = SACConfig(**{**self.sac, "hidden": tuple(self.sac.get("hidden", SACConfig.hidden))})
        if isinstance(self.csc, dict):
            self.csc = CSCConfig(**self.csc)
        if self.method not in METHODS:
            raise ValueError(f"method = {self.method!r}; allowed: {', '.join(METHODS)}")
        bounded_map(self.latent_map)  # a name it does not know raises
        if self.method in BOUNDED_METHODS:
            if self.bound is None or not self.bound > 0:
                raise ValueError(f"bound = {self.bound}: method {self.method!r} needs the safety bound η, a number > 0")
        elif self.bound is not None:
            raise ValueError(
                f"bound = {self.bound}: only {', '.join(BOUNDED_METHODS)} use η; for method {self.method!r} it must be None"
            )
        for name in ("total_steps", "batch_size", "log_every", "max_episode_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if not 0 <= self.start_steps <= self.total_steps:
            raise ValueError(f"start_steps = {self.start_steps}: must be in [0, total_steps = {self.total_steps}]")
        if self.total_steps % self.log_every:
            raise ValueError(
                f"log_every = {self.log_every}: must divide total_steps = {self.total_steps}, so every log window has the same length"
            )
        if not 0 <= self.explore_probability <= 1:
            raise ValueError(f"explore_probability = {self.explore_probability}: must be in [0, 1]")


def check_prior(method: str, prior: SkillPrior | None, obs_dim: int) -> None:
    """Raise ValueError where ``prior`` does not fit ``method`` (sac and csc take none; the others need one) or the task's ``obs_dim``."""
    if method in RAW_METHODS:
        if prior is not None:
            raise ValueError(f"method {method!r} acts on raw actions: prior must be None")
        return
    if prior is None:
        raise ValueError(f"method {method!r} needs a skill prior; only {', '.join(RAW_METHODS)} run without one")
    if prior.flow.action_dim != ACT_DIM or prior.spec["state_dim"] != obs_dim:
        raise ValueError(
            f"the prior maps {prior.flow.action_dim}-D actions of {prior.spec['state_dim']}-D states; the grasp task has {ACT_DIM} and {obs_dim}"
            " (is the task's geometry observed in one and hidden in the other? safer.tasks.observe_geometry)"
        )
    if method in NEEDS_CONTEXT and not prior.context_dim:
        raise ValueError(f"method {method!r} needs a prior with a safety variable (context_dim > 0); this one has none")
    if method in NEEDS_NO_CONTEXT and prior.context_dim:
        raise ValueError(
            f"method {method!r} needs a prior without a safety variable (context_dim = 0); this one has {prior.context_dim}"
        )


def policy_action(
    config: DownstreamConfig,
    prior: SkillPrior | None,
    u: torch.Tensor,
    states: torch.Tensor,
    windows: torch.Tensor | None,
) -> torch.Tensor:
    """The executed action for SAC's output ``u`` ``(S, 4)`` at raw ``states`` ``(S, obs_dim)``.

    For prior_explore this is u itself; the prior's substitution happens in :func:`run_downstream`.
    """
    if config.method in (*RAW_METHODS, "prior_explore"):
        return u
    assert prior is not None  # check_prior
    latent = bounded_map(config.latent_map)(u, config.bound) if config.method in BOUNDED_METHODS else gaussian_latent(u)
    return prior_action(prior, latent, states, windows)


class MemberReplay:
    """One replay buffer per seed, stacked: every array is ``(S, capacity, ...)``, all seeds filled in lockstep."""

    def __init__(self, seeds: int, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.obs = np.zeros((seeds, capacity, obs_dim), np.float32)
        self.actions = np.zeros((seeds, capacity, act_dim), np.float32)
        self.rewards = np.zeros((seeds, capacity), np.float32)
        self.next_obs = np.zeros((seeds, capacity, obs_dim), np.float32)
        self.not_done = np.zeros((seeds, capacity), np.float32)
        self.costs = np.zeros((seeds, capacity), np.float32)  # ω of the step
        self.size = 0

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        not_done: np.ndarray,
        costs: np.ndarray,
    ) -> None:
        i = self.size
        self.obs[:, i], self.actions[:, i], self.rewards[:, i], self.next_obs[:, i], self.not_done[:, i] = (
            obs,
            actions,
            rewards,
            next_obs,
            not_done,
        )
        self.costs[:, i] = costs
        self.size += 1

    def sample(self, rngs: list[np.random.Generator], batch_size: int) -> Batch:
        """``batch_size`` transitions per seed, each seed's indices from its own generator; the costs ω in ``extras``."""
        idx = np.stack([rng.integers(0, self.size, batch_size) for rng in rngs])
        member = np.arange(len(rngs))[:, None]
        return Batch(
            *(
                torch.from_numpy(a[member, idx])
                for a in (self.obs, self.actions, self.rewards, self.next_obs, self.not_done)
            ),
            extras={"costs": torch.from_numpy(self.costs[member, idx])},
        )


def _seed_streams(seed: int) -> tuple[int, torch.Generator, np.random.Generator]:
    """Independent streams from one seed: the environment's resets, SAC's generator, exploration and sampling."""
    env_seq, torch_seq, rng_seq = np.random.SeedSequence(seed).spawn(3)
    generator = torch.Generator().manual_seed(int(torch_seq.generate_state(1)[0]))
    return int(env_seq.generate_state(1)[0]), generator, np.random.default_rng(rng_seq)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(LOG_COLUMNS)]
    lines += [",".join(str(row[c]) for c in LOG_COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def run_downstream(
    task: GraspTask,
    config: DownstreamConfig,
    prior: SkillPrior | None,
    seeds: list[int],
    state_statistics: tuple[np.ndarray, np.ndarray] | None,
    out_dir: str | Path,
    progress: bool = True,
    command: str = "",
) -> dict[int, dict[str, Any]]:
    """Train SAC on ``task`` with ``config.method`` for every seed at once; write ``config.json`` and ``log.csv``.

    ``state_statistics`` (mean, std) normalise SAC's states; with a prior they must be None or
    equal to the prior's own, so every method's SAC sees the same inputs. ``log.csv`` has one
    row per seed and window of ``log_every`` steps (columns ``LOG_COLUMNS``). Returns, keyed by
    seed, the total violations and the success rate (NaN if none ended) over the episodes that
    ended in the last 20% of steps, with their number.
    """
    c = config
    obs_dim = task.observation_dim
    check_prior(c.method, prior, obs_dim)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds = {seeds}: must be a non-empty list of distinct seeds")
    if prior is not None:
        prior_statistics = (prior.state_mean.numpy(), prior.state_std.numpy())
        if state_statistics is not None and not all(
            np.allclose(a, b) for a, b in zip(state_statistics, prior_statistics)
        ):
            raise ValueError(
                "state_statistics differ from the prior's state_mean/state_std; pass None to use the prior's"
            )
        state_statistics = prior_statistics
        prior.eval()
    elif state_statistics is None:
        raise ValueError(
            f"method {c.method!r} has no prior to take state statistics from: pass state_statistics = (mean, std)"
        )
    mean, std = (np.asarray(x, np.float32) for x in state_statistics)
    if mean.shape != (obs_dim,) or std.shape != (obs_dim,):
        raise ValueError(
            f"state_statistics have shapes {mean.shape}, {std.shape}; the task observes ({obs_dim},) (safer.tasks.observe_geometry)"
        )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    S = len(seeds)
    streams = [_seed_streams(seed) for seed in seeds]
    rngs = [rng for _, _, rng in streams]
    generators = [generator for _, generator, _ in streams]
    cpu = torch.device("cpu")
    agent = (
        CSC(obs_dim, ACT_DIM, generators, c.sac, c.csc, cpu)
        if c.method == "csc"
        else SAC(obs_dim, ACT_DIM, generators, c.sac, cpu)
    )
    buffer = MemberReplay(S, c.total_steps, obs_dim, ACT_DIM)
    envs = [SafeGraspEnv(task, c.max_episode_steps) for _ in seeds]
    obs = np.stack([env.reset(seed=env_seed)[0] for env, (env_seed, _, _) in zip(envs, streams)])
    # Only a prior with a safety variable reads Λ.
    window = RollingWindow(S, prior.window, obs_dim) if prior is not None and prior.context_dim else None

    rows: list[dict[str, Any]] = []
    episodes, successes, violations = np.zeros(S, int), np.zeros(S, int), np.zeros(S, int)
    returns_sum, episode_return = np.zeros(S), np.zeros(S)
    total_violations = np.zeros(S, int)
    late_episodes, late_successes = np.zeros(S, int), np.zeros(S, int)
    late_from = c.total_steps - int(SUMMARY_FRACTION * c.total_steps)

    watch = NonFiniteWatch()
    bar = progress_bar(0, c.total_steps, f"downstream {c.method}", progress)
    for step in bar:
        normalised = (obs - mean) / std
        states = torch.from_numpy(obs)
        windows = torch.from_numpy(window.states) if window is not None else None
        if step <= c.start_steps:
            u = torch.from_numpy(np.stack([rng.uniform(-1.0, 1.0, ACT_DIM) for rng in rngs]).astype(np.float32))
        else:
            with torch.no_grad():
                batch_obs = torch.from_numpy(normalised)[:, None]
                u = agent.explore(batch_obs)[:, 0]
        action = policy_action(c, prior, u, states, windows)
        stored = u
        if c.method == "prior_explore":
            assert prior is not None
            # Both draws every step, whatever the coin says: a seed's stream never depends on its luck.
            explore = np.array([rng.random() < c.explore_probability for rng in rngs])
            latent = torch.from_numpy(np.stack([rng.standard_normal(ACT_DIM) for rng in rngs]).astype(np.float32))
            action = torch.where(torch.from_numpy(explore)[:, None], prior_action(prior, latent, states, windows), u)
            stored = action
        action_np = action.numpy()

        next_obs, following = np.empty_like(obs), np.empty_like(obs)
        rewards, not_done = np.empty(S, np.float32), np.empty(S, np.float32)
        costs, ended = np.empty(S, np.float32), np.zeros(S, bool)
        if window is not None:
            window.push(obs)
        for s, env in enumerate(envs):
            next_obs[s], rewards[s], terminated, truncated, info = env.step(action_np[s])
            not_done[s] = 0.0 if terminated else 1.0  # truncation at the time limit bootstraps
            costs[s] = info["violation"]
            violations[s] += info["violation"]
            episode_return[s] += rewards[s]
            following[s] = next_obs[s]
            if terminated or truncated:
                ended[s] = True
                episodes[s] += 1
                successes[s] += info["success"]
                returns_sum[s] += episode_return[s]
                if step > late_from:
                    late_episodes[s] += 1
                    late_successes[s] += info["success"]
                episode_return[s] = 0.0
                following[s] = env.reset()[0]
                if window is not None:
                    window.clear(s)
        buffer.add(normalised, stored.numpy(), rewards, (next_obs - mean) / std, not_done, costs)
        if isinstance(agent, CSC):
            agent.observe(costs, ended)
        obs = following

        if step >= c.start_steps:
            watch.update(step, agent.update(buffer.sample(rngs, c.batch_size)))

        if step % c.log_every == 0:
            watch.check(f"downstream {c.method}, seeds {seeds}")
            for s, seed in enumerate(seeds):
                return_mean = returns_sum[s] / episodes[s] if episodes[s] else math.nan
                rows.append(
                    {
                        "seed": seed,
                        "step": step,
                        "episodes": int(episodes[s]),
                        "successes": int(successes[s]),
                        "violations": int(violations[s]),
                        "return_mean": float(return_mean),
                    }
                )
            total_violations += violations
            bar.set_postfix(success=f"{successes.sum()}/{episodes.sum()}", violations=int(violations.sum()))
            episodes[:], successes[:], violations[:], returns_sum[:] = 0, 0, 0, 0.0
    bar.close()

    summary = {
        seed: {
            "violations": int(total_violations[s]),
            "late_episodes": int(late_episodes[s]),
            "success_rate": float(late_successes[s] / late_episodes[s]) if late_episodes[s] else math.nan,
        }
        for s, seed in enumerate(seeds)
    }
    record = {
        "config": asdict(c),
        "task": asdict(task),
        "seeds": list(seeds),
        "command": command,
        **provenance(),
        "wall_time_s": round(time.time() - started, 1),
    }
    write_atomically(out_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    write_atomically(
        out_dir / "log.csv", lambda tmp: tmp.write_text(_csv_text(rows))
    )  # last: its presence means the run finished
    return summary
