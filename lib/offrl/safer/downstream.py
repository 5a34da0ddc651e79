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

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import torch

from offrl.algos.base import Batch
from offrl.algos.csc import CSC, CSCConfig
from offrl.algos.sac import SAC, SACConfig
from offrl.files import write_atomically
from offrl.loop import TrainingRun
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
CHECKPOINTS = 10  # checkpoints a run saves, at log rows: a kill loses a tenth of the run at most


def _downstream_sac() -> SACConfig:
    return SACConfig(initial_alpha=0.1)


@dataclass
class DownstreamConfig:
    """One downstream run. Its fields are ``python -m offrl downstream``'s options (``offrl.options``), help below
    each."""

    method: str = field(metadata=cli(choices=METHODS))
    total_steps: int = field(default=50_000, metadata=cli("--steps"))
    start_steps: int = 1000
    """uniform u ~ U[−1, 1]^4 before learning starts"""
    batch_size: int = 256
    log_every: int = 1000
    explore_probability: float = field(default=0.9, metadata=cli(hidden=True))
    """δ of Prior-Explore"""
    bound: float | None = field(default=None, metadata=cli(hidden=True))
    """η of safer and safer_no_context; None for every other method (the command line reads it from --bounds
    and --target)"""
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
                f"bound = {self.bound}: only {', '.join(BOUNDED_METHODS)} use η; "
                f"for method {self.method!r} it must be None"
            )
        for name in ("total_steps", "batch_size", "log_every", "max_episode_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if not 0 <= self.start_steps <= self.total_steps:
            raise ValueError(f"start_steps = {self.start_steps}: must be in [0, total_steps = {self.total_steps}]")
        if self.total_steps % self.log_every:
            raise ValueError(
                f"log_every = {self.log_every}: must divide total_steps = {self.total_steps}, "
                "so every log window has the same length"
            )
        if not 0 <= self.explore_probability <= 1:
            raise ValueError(f"explore_probability = {self.explore_probability}: must be in [0, 1]")


def check_prior(method: str, prior: SkillPrior | None, obs_dim: int) -> None:
    """Raise ValueError where ``prior`` does not fit ``method`` (sac and csc take none; the others need one) or the
    task's ``obs_dim``."""
    if method in RAW_METHODS:
        if prior is not None:
            raise ValueError(f"method {method!r} acts on raw actions: prior must be None")
        return
    if prior is None:
        raise ValueError(f"method {method!r} needs a skill prior; only {', '.join(RAW_METHODS)} run without one")
    if prior.flow.action_dim != ACT_DIM or prior.spec["state_dim"] != obs_dim:
        raise ValueError(
            f"the prior maps {prior.flow.action_dim}-D actions of {prior.spec['state_dim']}-D states; "
            f"the grasp task has {ACT_DIM} and {obs_dim}"
            " (is the task's geometry observed in one and hidden in the other? safer.tasks.observe_geometry)"
        )
    if method in NEEDS_CONTEXT and not prior.context_dim:
        raise ValueError(f"method {method!r} needs a prior with a safety variable (context_dim > 0); this one has none")
    if method in NEEDS_NO_CONTEXT and prior.context_dim:
        raise ValueError(
            f"method {method!r} needs a prior without a safety variable (context_dim = 0); "
            f"this one has {prior.context_dim}"
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

    FIELDS = ("obs", "actions", "rewards", "next_obs", "not_done", "costs")

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
        """``batch_size`` transitions per seed, each seed's indices from its own generator; the costs ω in
        ``extras``."""
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


def _state_statistics(
    method: str,
    prior: SkillPrior | None,
    seeds: list[int],
    state_statistics: tuple[np.ndarray, np.ndarray] | None,
    obs_dim: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The (mean, std) that normalise SAC's states: the prior's, else the given ones; ValueError where they do not
    fit (:func:`run_downstream`)."""
    check_prior(method, prior, obs_dim)
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
    elif state_statistics is None:
        raise ValueError(
            f"method {method!r} has no prior to take state statistics from: pass state_statistics = (mean, std)"
        )
    mean, std = (np.asarray(x, np.float32) for x in state_statistics)
    if mean.shape != (obs_dim,) or std.shape != (obs_dim,):
        raise ValueError(
            f"state_statistics have shapes {mean.shape}, {std.shape}; the task observes ({obs_dim},)"
            " (safer.tasks.observe_geometry)"
        )
    return mean, std


class _Tally:
    """Each seed's episodes, successes, violations and returns: of the current log window, of the last
    ``SUMMARY_FRACTION`` of steps, and of the whole run."""

    NAMES = (
        "episodes",
        "successes",
        "violations",
        "returns_sum",
        "episode_return",
        "total_violations",
        "late_episodes",
        "late_successes",
    )

    def __init__(self, seeds: int) -> None:
        for name in self.NAMES:
            setattr(self, name, np.zeros(seeds, float if "return" in name else int))

    def end_episode(self, s: int, success: bool, late: bool) -> None:
        self.episodes[s] += 1
        self.successes[s] += success
        self.returns_sum[s] += self.episode_return[s]
        if late:
            self.late_episodes[s] += 1
            self.late_successes[s] += success
        self.episode_return[s] = 0.0

    def window_rows(self, step: int, seeds: list[int]) -> list[dict[str, Any]]:
        """The log rows of the window ending at ``step``, one per seed; the window's counts start again."""
        rows = [
            {
                "seed": seed,
                "step": step,
                "episodes": int(self.episodes[s]),
                "successes": int(self.successes[s]),
                "violations": int(self.violations[s]),
                "return_mean": float(self.returns_sum[s] / self.episodes[s]) if self.episodes[s] else math.nan,
            }
            for s, seed in enumerate(seeds)
        ]
        self.total_violations += self.violations
        self.episodes[:], self.successes[:], self.violations[:], self.returns_sum[:] = 0, 0, 0, 0.0
        return rows

    def summary(self, seeds: list[int]) -> dict[int, dict[str, Any]]:
        late = self.late_episodes
        return {
            seed: {
                "violations": int(self.total_violations[s]),
                "late_episodes": int(late[s]),
                "success_rate": float(self.late_successes[s] / late[s]) if late[s] else math.nan,
            }
            for s, seed in enumerate(seeds)
        }

    def state(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(getattr(self, name).copy()) for name in self.NAMES}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        for name in self.NAMES:
            getattr(self, name)[:] = state[name].numpy()


def _env_state(env: SafeGraspEnv) -> dict[str, Any]:
    """What continues an episode exactly: MuJoCo's integration state (warm start included), the step count, the RNG."""
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    physics = np.empty(mujoco.mj_stateSize(env.model, spec))
    mujoco.mj_getState(env.model, env.data, physics, spec)
    return {"physics": torch.from_numpy(physics), "steps": env._steps, "np_random": env.np_random.bit_generator.state}


def _restore_env(env: SafeGraspEnv, state: dict[str, Any]) -> None:
    mujoco.mj_setState(env.model, env.data, state["physics"].numpy(), mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(env.model, env.data)
    env._steps = state["steps"]
    env.np_random.bit_generator.state = state["np_random"]


class _Downstream:
    """What a downstream run carries from step to step: S environments in lockstep and their last states, Λ, the
    agent and each seed's streams, the replay buffer and the tally."""

    def __init__(
        self,
        task: GraspTask,
        c: DownstreamConfig,
        prior: SkillPrior | None,
        seeds: list[int],
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        self.c, self.prior, self.seeds, self.mean, self.std = c, prior, seeds, mean, std
        obs_dim, S = task.observation_dim, len(seeds)
        streams = [_seed_streams(seed) for seed in seeds]
        self.rngs = [rng for _, _, rng in streams]
        self.generators = [generator for _, generator, _ in streams]
        cpu = torch.device("cpu")
        self.agent = (
            CSC(obs_dim, ACT_DIM, self.generators, c.sac, c.csc, cpu)
            if c.method == "csc"
            else SAC(obs_dim, ACT_DIM, self.generators, c.sac, cpu)
        )
        self.buffer = MemberReplay(S, c.total_steps, obs_dim, ACT_DIM)
        self.envs = [SafeGraspEnv(task, c.max_episode_steps) for _ in seeds]
        self.obs = np.stack([env.reset(seed=env_seed)[0] for env, (env_seed, _, _) in zip(self.envs, streams)])
        # Only a prior with a safety variable reads Λ.
        self.window = RollingWindow(S, prior.window, obs_dim) if prior is not None and prior.context_dim else None
        self.tally = _Tally(S)
        self.late_from = c.total_steps - int(SUMMARY_FRACTION * c.total_steps)
        if prior is not None:
            prior.eval()

    def act(self, step: int, normalised: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """The executed actions ``(S, 4)`` at the current states, and what the replay buffer stores."""
        c, prior, rngs = self.c, self.prior, self.rngs
        states = torch.from_numpy(self.obs)
        windows = torch.from_numpy(self.window.states) if self.window is not None else None
        if step <= c.start_steps:
            u = torch.from_numpy(np.stack([rng.uniform(-1.0, 1.0, ACT_DIM) for rng in rngs]).astype(np.float32))
        else:
            with torch.no_grad():
                u = self.agent.explore(torch.from_numpy(normalised)[:, None])[:, 0]
        action, stored = policy_action(c, prior, u, states, windows), u
        if c.method == "prior_explore":
            assert prior is not None
            # Both draws every step, whatever the coin says: a seed's stream never depends on its luck.
            explore = np.array([rng.random() < c.explore_probability for rng in rngs])
            latent = torch.from_numpy(np.stack([rng.standard_normal(ACT_DIM) for rng in rngs]).astype(np.float32))
            action = torch.where(torch.from_numpy(explore)[:, None], prior_action(prior, latent, states, windows), u)
            stored = action
        return action.numpy(), stored

    def step(self, step: int) -> None:
        """Act in every environment, store the transitions, count the episodes that end (and reset them)."""
        normalised = (self.obs - self.mean) / self.std
        action, stored = self.act(step, normalised)
        S, tally = len(self.envs), self.tally
        next_obs, following = np.empty_like(self.obs), np.empty_like(self.obs)
        rewards, not_done = np.empty(S, np.float32), np.empty(S, np.float32)
        costs, ended = np.empty(S, np.float32), np.zeros(S, bool)
        if self.window is not None:
            self.window.push(self.obs)
        for s, env in enumerate(self.envs):
            next_obs[s], rewards[s], terminated, truncated, info = env.step(action[s])
            not_done[s] = 0.0 if terminated else 1.0  # truncation at the time limit bootstraps
            costs[s] = info["violation"]
            tally.violations[s] += info["violation"]
            tally.episode_return[s] += rewards[s]
            following[s] = next_obs[s]
            if terminated or truncated:
                ended[s] = True
                tally.end_episode(s, info["success"], step > self.late_from)
                following[s] = env.reset()[0]
                if self.window is not None:
                    self.window.clear(s)
        self.buffer.add(normalised, stored.numpy(), rewards, (next_obs - self.mean) / self.std, not_done, costs)
        if isinstance(self.agent, CSC):
            self.agent.observe(costs, ended)
        self.obs = following

    def state(self) -> dict[str, Any]:
        b, n = self.buffer, self.buffer.size
        state = {
            "agent": self.agent.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "rngs": [rng.bit_generator.state for rng in self.rngs],
            "buffer": {k: torch.from_numpy(getattr(b, k)[:, :n].copy()) for k in MemberReplay.FIELDS},
            "envs": [_env_state(env) for env in self.envs],
            "obs": torch.from_numpy(self.obs.copy()),
            "tally": self.tally.state(),
        }
        if self.window is not None:
            state["window"] = torch.from_numpy(self.window.states.copy())
        if isinstance(self.agent, CSC):  # the episodes its cost estimate V̂_C averages
            state["episode_failures"] = [list(failures) for failures in self.agent.episode_failures]
            state["failing"] = torch.from_numpy(self.agent.failing.copy())
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        for generator, saved in zip(self.generators, state["generators"]):
            generator.set_state(saved)
        for rng, saved in zip(self.rngs, state["rngs"]):
            rng.bit_generator.state = saved
        self.buffer.size = len(state["buffer"]["rewards"][0])
        for k in MemberReplay.FIELDS:
            getattr(self.buffer, k)[:, : self.buffer.size] = state["buffer"][k].numpy()
        for env, saved in zip(self.envs, state["envs"]):
            _restore_env(env, saved)
        self.obs = state["obs"].numpy()
        self.tally.restore(state["tally"])
        if self.window is not None:
            self.window.states[:] = state["window"].numpy()
        if isinstance(self.agent, CSC):
            for failures, saved in zip(self.agent.episode_failures, state["episode_failures"]):
                failures.extend(saved)
            self.agent.failing[:] = state["failing"].numpy()


def _identity(c: DownstreamConfig, task: GraspTask, prior: SkillPrior | None, seeds: list[int], mean, std) -> dict:
    """What a checkpoint must match to resume: the configuration, task, seeds, state statistics and prior weights."""
    weights = b"" if prior is None else b"".join(t.numpy().tobytes() for t in prior.state_dict().values())
    return {
        "config": asdict(c),
        "task": asdict(task),
        "seeds": list(seeds),
        "statistics": [mean.tolist(), std.tolist()],
        "prior": hashlib.sha256(weights).hexdigest(),
    }


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

    ``out_dir/checkpoint.pt`` is saved at ``CHECKPOINTS`` log rows spread over the run and resumed from, so a
    killed run resumes to an uninterrupted one's numbers (:class:`offrl.loop.TrainingRun`).
    """
    c = config
    mean, std = _state_statistics(c.method, prior, seeds, state_statistics, task.observation_dim)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name, members = f"downstream {c.method}, seeds {seeds}", [f"seed {seed}" for seed in seeds]
    identity = _identity(c, task, prior, seeds, mean, std)
    run = TrainingRun(name, c.total_steps, members, out_dir / "checkpoint.pt", identity, progress=progress)
    learner = _Downstream(task, c, prior, seeds, mean, std)
    state = run.resume()
    rows: list[dict[str, Any]] = []
    if state is not None:
        learner.restore(state["learner"])
        rows = state["rows"]
    checkpoint_every = c.log_every * max(1, c.total_steps // c.log_every // CHECKPOINTS)
    for step in run.steps():
        learner.step(step)
        if step >= c.start_steps:
            run.watch.update(step, learner.agent.update(learner.buffer.sample(learner.rngs, c.batch_size)))
        if step % c.log_every == 0:
            run.check()
            tally = learner.tally
            run.show(success=f"{tally.successes.sum()}/{tally.episodes.sum()}", violations=int(tally.violations.sum()))
            rows += tally.window_rows(step, seeds)
        if step % checkpoint_every == 0 and step < c.total_steps:
            run.save(step, {"learner": learner.state(), "rows": rows})
    record = {
        "config": asdict(c),
        "task": asdict(task),
        "seeds": list(seeds),
        "command": command,
        **provenance(),
        "wall_time_s": round(run.elapsed(), 1),
    }
    write_atomically(out_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    # Last: its presence means the run finished.
    write_atomically(out_dir / "log.csv", lambda tmp: tmp.write_text(_csv_text(rows)))
    run.finish()
    return learner.tally.summary(seeds)
