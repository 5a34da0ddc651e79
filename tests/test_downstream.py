import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from offrl.algos.sac import SACConfig
from offrl.safer import downstream
from offrl.safer.downstream import METHODS, RAW_METHODS, DownstreamConfig, policy_action, run_downstream
from offrl.safer.grasp import SafeGraspEnv, make_tasks
from offrl.safer.grasp_script import state_windows
from offrl.safer.priors.model import SkillPrior
from tests.conftest import REPO, resume_after_kill

TASK = make_tasks(0, 1)[0]
OBS_DIM = TASK.observation_dim  # the geometry zeros after the first look, as in the study
WINDOW = 4
TINY = SACConfig(hidden=(32, 32))


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: extra threads only fight over the cores


def tiny_prior(context_dim: int = 8) -> SkillPrior:
    """Untrained, so its flow is the identity: a = clip(z)."""
    torch.manual_seed(0)
    return SkillPrior(OBS_DIM, 4, context_dim=context_dim, hidden=(16,), encoder_dim=8, window=WINDOW)


def config(method: str, **overrides) -> DownstreamConfig:
    defaults = dict(
        total_steps=60,
        start_steps=30,
        batch_size=32,
        log_every=20,
        sac=TINY,
        max_episode_steps=50,
        bound=2.0 if method.startswith("safer") else None,
    )
    return DownstreamConfig(method, **{**defaults, **overrides})


class RecordingPrior(SkillPrior):
    """A real (identity-flow) prior that remembers what it was asked and what it answered."""

    calls: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]

    def action(self, latent, states, windows):
        out = super().action(latent, states, windows)
        self.calls.append((states.clone(), None if windows is None else windows.clone(), out.clone()))
        return out


def recording_prior() -> RecordingPrior:
    torch.manual_seed(0)
    prior = RecordingPrior(OBS_DIM, 4, hidden=(16,), encoder_dim=8, window=WINDOW)
    prior.calls = []
    return prior


@pytest.fixture
def recorded_envs(monkeypatch):
    """Every environment run_downstream builds, each logging its episode index and executed action per step."""
    made = []

    class RecordingEnv(SafeGraspEnv):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.episode, self.episode_ids, self.actions = -1, [], []
            made.append(self)

        def reset(self, **kwargs):
            self.episode += 1
            return super().reset(**kwargs)

        def step(self, action):
            self.episode_ids.append(self.episode)
            self.actions.append(np.array(action))
            return super().step(action)

    monkeypatch.setattr(downstream, "SafeGraspEnv", RecordingEnv)
    return made


def test_acting_windows_are_the_training_windows(recorded_envs, tmp_path):
    # Short episodes, so windows cross several resets; no learning needed, so start_steps = total_steps.
    prior = recording_prior()
    run_downstream(
        TASK,
        config("safer", total_steps=14, start_steps=14, log_every=14, max_episode_steps=5),
        prior,
        [0, 1],
        None,
        tmp_path,
        progress=False,
    )
    states = torch.stack([call[0] for call in prior.calls]).numpy()  # (steps, S, obs_dim)
    windows = torch.stack([call[1] for call in prior.calls]).numpy()  # (steps, S, window, obs_dim)
    for s, env in enumerate(recorded_envs):
        assert max(env.episode_ids) >= 2
        expected = state_windows(states[:, s], np.array(env.episode_ids), WINDOW)
        np.testing.assert_array_equal(windows[:, s], expected)


@pytest.mark.parametrize("latent_map", ["truncated_normal", "box"])
@pytest.mark.parametrize("method", METHODS)
def test_each_method_maps_u_as_specified(method, latent_map):
    torch.manual_seed(1)
    u = torch.rand(3, 4) * 2 - 1
    u[0] = torch.tensor([0.9, -0.9, 0.999, -0.2])  # η·u and erfinv leave the box here: the clip matters
    states = torch.randn(3, OBS_DIM)
    windows = torch.randn(3, WINDOW, OBS_DIM)
    prior = None if method in RAW_METHODS else tiny_prior(0 if method in ("parrot", "safer_no_context") else 8)
    bound = 2.0 if method.startswith("safer") else None
    action = policy_action(config(method, bound=bound, latent_map=latent_map), prior, u, states, windows)
    if method in (*RAW_METHODS, "prior_explore"):
        expected = u
    elif method.startswith("safer") and latent_map == "box":
        expected = (2.0 * u).clamp(-1, 1)
    elif method.startswith("safer"):  # Φ⁻¹(Φ(−2) + (u + 1)/2·(Φ(2) − Φ(−2))), Φ(2) = 0.977250
        p = 0.022750 + (u.double() + 1) / 2 * 0.954500
        expected = (math.sqrt(2) * torch.erfinv(2 * p - 1)).float().clamp(-1, 1)
    else:
        expected = (math.sqrt(2) * torch.erfinv(u)).clamp(-1, 1)
    torch.testing.assert_close(action, expected, atol=1e-5, rtol=1e-5)


def test_safer_and_parrot_differ_only_in_the_bound_by_default():
    """With one prior and a huge η, SAFER's default map acts exactly as PARROT's; the box map does not."""
    u = torch.rand(5, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    states, prior = torch.randn(5, OBS_DIM), tiny_prior(0)
    parrot = policy_action(config("parrot"), prior, u, states, None)
    torch.testing.assert_close(policy_action(config("safer_no_context", bound=1e3), prior, u, states, None), parrot)
    assert not torch.allclose(
        policy_action(config("safer_no_context", bound=1e3, latent_map="box"), prior, u, states, None), parrot
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            dict(method="reinforce"),
            "method = 'reinforce'; allowed: sac, parrot, contextual_parrot, prior_explore, safer, safer_no_context",
        ),
        (dict(method="safer", bound=None), "bound = None: method 'safer' needs the safety bound η, a number > 0"),
        (dict(method="safer_no_context", bound=0.0), "bound = 0.0"),
        (dict(method="parrot", bound=2.0), "only safer, safer_no_context use η"),
        (dict(method="sac", log_every=7), "log_every = 7: must divide total_steps"),
        (dict(method="sac", start_steps=61), "start_steps = 61"),
        (dict(method="prior_explore", explore_probability=1.5), "explore_probability = 1.5"),
        (dict(method="sac", total_steps=0), "total_steps = 0"),
        (dict(method="safer", bound=1.0, latent_map="cube"), "latent_map = 'cube'; allowed: truncated_normal, box"),
    ],
)
def test_bad_config_names_the_field_and_allowed_values(overrides, message):
    args = dict(method="sac", total_steps=60, log_every=20, start_steps=10) | overrides
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DownstreamConfig(**args)


def test_prior_must_fit_the_method(tmp_path):
    with pytest.raises(ValueError, match="context_dim = 0"):
        run_downstream(TASK, config("parrot"), tiny_prior(8), [0], None, tmp_path, progress=False)
    with pytest.raises(ValueError, match="safety variable"):
        run_downstream(TASK, config("safer"), tiny_prior(0), [0], None, tmp_path, progress=False)
    with pytest.raises(ValueError, match="needs a skill prior"):
        run_downstream(TASK, config("safer"), None, [0], None, tmp_path, progress=False)
    with pytest.raises(ValueError, match="pass state_statistics"):
        run_downstream(TASK, config("sac"), None, [0], None, tmp_path, progress=False)
    with pytest.raises(ValueError, match="the grasp task has 4 and 18"):  # a prior of another state layout
        run_downstream(
            TASK, config("parrot"), SkillPrior(11, 4, context_dim=0, hidden=(16,)), [0], None, tmp_path, progress=False
        )
    with pytest.raises(ValueError, match=r"state_statistics have shapes \(11,\)"):
        run_downstream(TASK, config("sac"), None, [0], (np.zeros(11), np.ones(11)), tmp_path, progress=False)
    assert not (tmp_path / "log.csv").exists()


def test_same_seeds_same_log_and_consistent_counts(tmp_path):
    c = config("safer", total_steps=150, start_steps=50, log_every=50, max_episode_steps=20)
    summaries = [
        run_downstream(TASK, c, tiny_prior(), [3, 4], None, tmp_path / run, progress=False) for run in ("a", "b")
    ]
    first, second = ((tmp_path / run / "log.csv").read_text() for run in ("a", "b"))
    assert first == second and summaries[0] == summaries[1]

    log = pd.read_csv(tmp_path / "a" / "log.csv")
    assert list(log.columns) == ["seed", "step", "episodes", "successes", "violations", "return_mean"]
    assert sorted(zip(log.seed, log.step)) == [(seed, step) for seed in (3, 4) for step in (50, 100, 150)]
    assert (log.violations.between(0, c.log_every)).all() and (log.successes <= log.episodes).all()
    assert (log.episodes >= 2).all()  # 20-step episodes: at least 2 end in every 50 steps
    assert (log.return_mean.between(-c.max_episode_steps, 1)).all()
    assert log.groupby("seed").violations.sum().to_dict() == {seed: s["violations"] for seed, s in summaries[0].items()}

    record = json.loads((tmp_path / "a" / "config.json").read_text())
    assert DownstreamConfig(**record["config"]) == c
    assert record["seeds"] == [3, 4] and record["task"]["wall_height"] == TASK.wall_height


@pytest.fixture
def stored(monkeypatch):
    """Every transition run_downstream adds to its replay buffer: (obs, actions, rewards, next_obs, not_done, costs)."""
    added = []
    add = downstream.MemberReplay.add

    def recording_add(self, *transition):
        added.append(tuple(np.copy(x) for x in transition))
        add(self, *transition)

    monkeypatch.setattr(downstream.MemberReplay, "add", recording_add)
    return added


def test_sac_sees_states_normalised_by_the_given_statistics(stored, tmp_path):
    mean, std = np.full(OBS_DIM, 0.05, np.float32), np.full(OBS_DIM, 0.1, np.float32)
    run_downstream(TASK, config("sac"), None, [0], (mean, std), tmp_path, progress=False)
    first_state = SafeGraspEnv(TASK).reset(seed=downstream._seed_streams(0)[0])[0]
    np.testing.assert_allclose(stored[0][0][0], (first_state - mean) / std, rtol=1e-6)
    # Within an episode (50 steps: no reset among the first 49), each next state is the following state.
    for (_, _, _, next_obs, *_), (obs, *_) in zip(stored[:48], stored[1:49]):
        np.testing.assert_array_equal(next_obs, obs)
    with pytest.raises(ValueError, match="state_statistics differ"):
        run_downstream(TASK, config("safer"), tiny_prior(), [0], (mean, std), tmp_path, progress=False)


def test_prior_explore_executes_and_stores_the_priors_actions(recorded_envs, stored, tmp_path):
    prior = recording_prior()
    run_downstream(
        TASK, config("prior_explore", explore_probability=1.0), prior, [0, 1], None, tmp_path, progress=False
    )
    prior_actions = torch.stack([call[2] for call in prior.calls]).numpy()  # one call per step, learning or not
    executed = np.stack([np.stack(env.actions) for env in recorded_envs], axis=1)
    assert prior_actions.shape == executed.shape == (60, 2, 4)
    np.testing.assert_array_equal(executed, prior_actions)
    np.testing.assert_array_equal(np.stack([actions for _, actions, *_ in stored]), prior_actions)


def test_success_ends_without_bootstrap_and_truncation_bootstraps(stored, monkeypatch, tmp_path):
    class EverySecondEpisodeSucceeds(SafeGraspEnv):
        """Episodes 1, 3, … end in success at their third step; the others run to the time limit."""

        episode = -1

        def reset(self, **kwargs):
            self.episode, self.steps = self.episode + 1, 0
            return super().reset(**kwargs)

        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            self.steps += 1
            if self.episode % 2 and self.steps == 3:
                return obs, 1.0, True, False, info | {"success": True}
            return obs, reward, terminated, truncated, info

    monkeypatch.setattr(downstream, "SafeGraspEnv", EverySecondEpisodeSucceeds)
    mean, std = np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32)
    c = config("sac", total_steps=25, start_steps=25, log_every=25, max_episode_steps=5)
    summary = run_downstream(TASK, c, None, [0], (mean, std), tmp_path, progress=False)
    not_done = np.array([transition[4][0] for transition in stored])
    ends = [4, 7, 12, 15, 20, 23]  # 5 + 3 + 5 + 3 + 5 + 3 steps, then 1 of a seventh episode
    np.testing.assert_array_equal(np.flatnonzero(not_done == 0), [7, 15, 23])
    for end in ends:  # every episode's last next state is not the following transition's state: a reset came between
        assert not np.array_equal(stored[end][3], stored[end + 1][0])
    log = pd.read_csv(tmp_path / "log.csv")
    assert log[["episodes", "successes", "return_mean"]].values.tolist() == [[6, 3, -3.0]]
    # The last 20%, steps 21-25: episodes end at steps 21 (time limit) and 24 (success).
    assert summary[0]["late_episodes"] == 2 and summary[0]["success_rate"] == 0.5


def test_csc_executes_and_stores_its_raw_actions_with_their_violations(recorded_envs, stored, tmp_path):
    mean, std = np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32)
    with pytest.raises(ValueError, match="method 'csc' acts on raw actions"):
        run_downstream(TASK, config("csc"), tiny_prior(), [0], None, tmp_path, progress=False)
    summary = run_downstream(
        TASK, config("csc", max_episode_steps=10), None, [0, 1], (mean, std), tmp_path, progress=False
    )
    executed = np.stack([np.stack(env.actions) for env in recorded_envs], axis=1)
    np.testing.assert_array_equal(np.stack([actions for _, actions, *_ in stored]), executed)
    costs = np.stack([transition[5] for transition in stored])  # the buffer's ω, what the cost critic learns from
    assert costs.sum(axis=0).tolist() == [summary[0]["violations"], summary[1]["violations"]]
    record = json.loads((tmp_path / "config.json").read_text())
    assert DownstreamConfig(**record["config"]) == config("csc", max_episode_steps=10)


# A downstream run in its own process, so a test can kill it: python -c KILLABLE METHOD OUT REPO.
KILLABLE = """
import sys
sys.path.insert(0, sys.argv[3])
import numpy as np
import torch
from tests.test_downstream import OBS_DIM, TASK, config, tiny_prior
from offrl.safer.downstream import run_downstream

torch.set_num_threads(1)
method, out = sys.argv[1], sys.argv[2]
prior = None if method == "csc" else tiny_prior()
statistics = (np.zeros(OBS_DIM, np.float32), np.ones(OBS_DIM, np.float32)) if prior is None else None
c = config(method, total_steps=300, start_steps=50, log_every=30, max_episode_steps=20)
run_downstream(TASK, c, prior, [3, 4], statistics, out, progress=False)
"""


@pytest.mark.slow  # three runs in their own processes: minutes on a loaded machine
@pytest.mark.parametrize("method", ["safer", "csc"])  # Λ and the prior; CSC's episode counts
def test_killed_run_resumes_to_the_same_numbers(method, tmp_path):
    """kill -9 after a checkpoint, then the same command again: an uninterrupted run's log."""
    command = lambda out: [sys.executable, "-c", KILLABLE, method, str(tmp_path / out), str(REPO)]  # noqa: E731
    subprocess.run(command("whole"), check=True, timeout=600)
    assert not (tmp_path / "whole" / "checkpoint.pt").exists()
    kept = resume_after_kill(command("resumed"), tmp_path / "resumed" / "checkpoint.pt", 300)
    assert kept % 30 == 0  # at a log row
    assert (tmp_path / "whole" / "log.csv").read_text() == (tmp_path / "resumed" / "log.csv").read_text()
