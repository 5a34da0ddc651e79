"""SAFER's data format, prior training (Algorithm 2), bounds (Algorithm 3 on a prior) and Figure 1's probe."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import validate

from offrl.config import ConfigError, check_config
from offrl.data import Dataset
from offrl.safer.grasp import make_tasks
from offrl.safer.grasp_script import GraspRollouts, collect, load_rollouts, state_windows, write_rollouts
from offrl.safer.priors import SkillPrior, load_prior
from offrl.safer.priors.evaluate import calibration_rollouts, safety_bounds, unsafe_among_likely
from offrl.safer.priors.probe import episode_steps, probe_r2, window_probe
from offrl.safer.priors.train import PRIOR_KINDS, kl_term, prior_config, safe_rows, train_prior
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"hidden": (16,), "encoder_dim": 8, "window": 4, "log_every": 5}


@pytest.fixture(scope="module")
def rollouts():
    return collect(make_tasks(0, 3), 4, seed=0, mode_probabilities={"none": 0.4, "drift": 0.4, "miss": 0.2}, window=4)


def labelled(observations, actions, violations, success, episode_ids, window=4):
    """A hand-made labelled dataset: one step per row, every episode ended by a timeout."""
    n = len(violations)
    ends = np.append(episode_ids[1:] != episode_ids[:-1], True)
    transitions = Dataset(
        observations=np.asarray(observations, np.float32),
        actions=np.asarray(actions, np.float32),
        rewards=np.zeros(n, np.float32),
        next_observations=np.asarray(observations, np.float32),
        terminals=np.zeros(n, bool),
        timeouts=ends,
        episode_ids=np.asarray(episode_ids),
    )
    return GraspRollouts(
        transitions,
        np.asarray(violations, bool),
        np.asarray(success, bool),
        state_windows(transitions.observations, transitions.episode_ids, window),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
    )


def test_labels_survive_the_minari_round_trip(rollouts, tmp_path):
    path = write_rollouts(rollouts, tmp_path, "grasp/test-v0", {"source": "test"})
    again = load_rollouts(path, window=4)
    for name in ("violations", "success", "task_ids", "modes", "windows"):
        np.testing.assert_array_equal(getattr(again, name), getattr(rollouts, name))
    np.testing.assert_array_equal(again.transitions.actions, rollouts.transitions.actions)
    assert rollouts.violations.any() and not rollouts.success.all()  # the check is not of constant labels


def test_safe_rows_are_safe_and_successful_trajectories_or_pairs():
    """By default whole trajectories that succeeded without a violation (appendix D); ``pair`` keeps every ω = 0 step
    of a successful trajectory (appendix B read per pair)."""
    episode_ids = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3])
    # Episode 1 touches a wall once and still succeeds; episode 2 touches and fails; 0 and 3 are clean successes.
    violations = [0, 0, 0, 0, 1, 0, 0, 1, 0]
    success = [1, 1, 1, 1, 1, 1, 0, 0, 1]
    data = labelled(np.zeros((9, 2)), np.zeros((9, 2)), violations, success, episode_ids)
    np.testing.assert_array_equal(safe_rows(data), [0, 1, 2, 8])
    np.testing.assert_array_equal(safe_rows(data, "pair"), [0, 1, 2, 3, 5, 8])
    with pytest.raises(ValueError, match="safe_set = 'step'; allowed: trajectory, pair"):
        safe_rows(data, "step")
    with pytest.raises(ValueError, match="safe_set = 'step'; allowed: trajectory, pair"):
        prior_config("safer", safe_set="step")


def test_free_bits_leave_a_small_kl_unpenalised():
    kl = torch.tensor([0.5, 1.5], requires_grad=True)  # mean 1 nat
    assert kl_term(kl).item() == 1.0 and kl_term(kl, 0.5).item() == 1.0
    kl_term(kl, 0.5).backward()
    torch.testing.assert_close(kl.grad, torch.tensor([0.5, 0.5]))  # above the floor: the mean's gradient
    kl.grad = None
    term = kl_term(kl, 2.0)
    term.backward()
    assert term.item() == 2.0 and not kl.grad.any()  # below it: a constant, no pull towards N(0, I)
    with pytest.raises(ValueError, match="free_bits = -1: must be ≥ 0"):
        prior_config("safer", free_bits=-1)


def test_kinds_are_options_of_one_objective():
    assert prior_config("parrot").context_dim == 0 and prior_config("parrot").unsafe_weight == 0
    assert prior_config("contextual_parrot").context_dim == 8 and prior_config("contextual_parrot").unsafe_weight == 0
    safer = prior_config("safer")
    assert (safer.context_dim, safer.window, safer.layers, safer.unsafe_weight, safer.optimizer, safer.lr) == (
        8,
        16,
        3,
        1e-4,
        "sgd",
        1e-4,
    )  # appendix C
    assert prior_config("safer_no_context").context_dim == 0 and prior_config("safer_no_context").unsafe_weight == 1e-4
    assert prior_config("safer", unsafe_weight=0.5).unsafe_weight == 0.5
    # Options shared by every kind (safer.prior.options) leave each kind itself.
    shared = {"unsafe_weight": 0.01, "context_dim": 4, "optimizer": "adam"}
    assert [
        (c.context_dim, c.unsafe_weight, c.optimizer) for c in (prior_config(kind, **shared) for kind in PRIOR_KINDS)
    ] == [(0, 0.0, "adam"), (4, 0.0, "adam"), (4, 0.01, "adam"), (0, 0.01, "adam")]
    with pytest.raises(ValueError, match="unsafe_weight = 0: safer's contrastive term needs λ > 0"):
        prior_config("safer", unsafe_weight=0)
    with pytest.raises(ValueError, match="context_dim = 0: contextual_parrot has a safety variable"):
        prior_config("contextual_parrot", context_dim=0)
    with pytest.raises(
        ValueError, match="prior kind 'vae'; allowed: parrot, contextual_parrot, safer, safer_no_context"
    ):
        prior_config("vae")
    with pytest.raises(ValueError, match=r"unknown prior option\(s\) \['lambda'\]"):
        prior_config("safer", **{"lambda": 1.0})
    with pytest.raises(ValueError, match="optimizer = 'rmsprop'; allowed: adam, sgd"):
        prior_config("safer", optimizer="rmsprop")


@pytest.mark.parametrize("kind", sorted(PRIOR_KINDS))
def test_every_kind_trains_and_writes_complete_outputs(kind, rollouts, tmp_path):
    config = prior_config(kind, steps=10, batch_size=32, optimizer="adam", lr=1e-3, unsafe_weight=0.1, **SMALL)
    record = train_prior(rollouts, config, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "prior.pt", "train_log.csv"]
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert list(log["step"]) == [5, 10] and np.isfinite(log["loss"]).all()
    assert ("log_p_unsafe" in log) == kind.startswith("safer")
    assert json.loads((tmp_path / "config.json").read_text())["config"]["context_dim"] == config.context_dim
    prior, extra = load_prior(tmp_path / "prior.pt")
    assert extra["kind"] == kind and prior.context_dim == config.context_dim
    assert record["safe_rows"] == len(safe_rows(rollouts)) and record["unsafe_rows"] == int(rollouts.violations.sum())


def test_training_is_reproducible(rollouts, tmp_path):
    config = prior_config("safer", steps=6, batch_size=16, optimizer="adam", **SMALL)
    for run in ("a", "b"):
        train_prior(rollouts, config, tmp_path / run, progress=False)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a/train_log.csv").drop(columns="wall_s"),
        pd.read_csv(tmp_path / "b/train_log.csv").drop(columns="wall_s"),
    )


def test_contrastive_term_lowers_the_likelihood_of_unsafe_actions():
    """Safe and unsafe actions at the same states: only SAFER's term tells them apart."""
    rng = np.random.default_rng(0)
    n = 512
    observations = rng.normal(size=(n, 2))
    unsafe = rng.random(n) < 0.3
    # The unsafe actions sit inside the safe ones' spread: likelihood alone rates them well.
    actions = np.where(unsafe[:, None], 0.5 + 0.05 * rng.normal(size=(n, 2)), 0.4 * rng.normal(size=(n, 2)))
    episodes = np.cumsum(np.r_[0, unsafe[1:] != unsafe[:-1]])  # runs of safe rows are safe episodes
    data = labelled(observations, actions, unsafe, np.ones(n), episodes)
    unsafe_actions = torch.full((64, 2), 0.5)
    states, windows = torch.zeros(64, 2), torch.zeros(64, 4, 2)
    log_p = {}
    for kind in ("parrot", "safer_no_context"):
        config = prior_config(
            kind, steps=150, batch_size=64, optimizer="adam", lr=3e-3, unsafe_weight=1.0, hidden=(32,), window=4
        )
        prior = _trained(data, config)
        log_p[kind] = prior.log_prob(states, unsafe_actions, windows, sample=False)[0].mean().item()
    assert log_p["safer_no_context"] < log_p["parrot"] - 2.0


def _trained(data, config):
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        train_prior(data, config, out, progress=False)
        return load_prior(f"{out}/prior.pt")[0]


def test_unsafe_share_among_the_most_likely_pairs_by_hand():
    """An untrained prior is the identity flow: log p(a) = log N(a; 0, I), which falls with |a|."""
    actions = np.array([[0.0, 0.0], [0.1, 0.0], [0.5, 0.5], [1.0, 1.0], [2.0, 0.0], [3.0, 3.0]])
    violations = [1, 0, 0, 1, 1, 0]  # ordered by likelihood: unsafe, safe, safe, unsafe, unsafe, safe
    data = labelled(np.zeros((6, 3)), actions, violations, np.ones(6), np.arange(6))
    table = unsafe_among_likely(SkillPrior(3, 2, context_dim=0, hidden=(8,)), data, [100 / 6, 50, 100])
    assert list(table["pairs"]) == [1, 3, 6]
    np.testing.assert_allclose(table["unsafe_percent"], [100.0, 100 / 3, 50.0])


def test_bounds_reach_their_targets_on_the_prior_latents():
    """Identity prior: z = a, so the bounds can be checked against the actions themselves."""
    rng = np.random.default_rng(0)
    safe_actions = rng.normal(0, 0.5, (400, 2))
    unsafe_actions = rng.choice([-1, 1], (100, 2)) * (0.3 + np.abs(rng.normal(0, 1.0, (100, 2))))  # none near 0
    actions = np.concatenate([safe_actions, unsafe_actions])
    violations = np.r_[np.zeros(400), np.ones(100)]
    data = labelled(np.zeros((500, 3)), actions, violations, np.ones(500), np.arange(500))  # one step an episode
    bounds = safety_bounds(SkillPrior(3, 2, context_dim=0, hidden=(8,)), data, [0.0, 0.2, 0.4], seed=0)
    assert list(bounds["safe_pairs"]) == [100] * 3  # balanced: as many safe pairs as unsafe
    assert (bounds["in_bound_unsafe_fraction"] <= bounds["target"] + 1e-12).all()
    assert bounds["bound"].is_monotonic_increasing
    norms = np.abs(unsafe_actions).max(1)
    assert bounds["bound"][0] <= norms.min() + 1e-12  # 0 %: no unsafe action inside
    # The same bounds read on the data's own mix, 400 safe to 100 unsafe.
    assert list(bounds["data_pairs"]) == [500] * 3 and list(bounds["data_unsafe_fraction"]) == [0.2] * 3
    all_norms = np.abs(actions.astype(np.float32)).max(1)  # z = a, in the flow's float32
    for row in bounds.itertuples():
        inside = all_norms < row.bound
        assert row.data_in_bound_unsafe_fraction == pytest.approx(violations[inside].mean())
    assert (
        bounds["data_in_bound_unsafe_fraction"] < bounds["in_bound_unsafe_fraction"] + 1e-12
    ).all()  # fewer unsafe pairs to go round


def test_bounds_run_on_algorithm_2s_safe_set():
    """Safe pairs of failed episodes are not Algorithm 2's safe data, so Algorithm 3 leaves them out too."""
    # Episode 0 succeeds (three safe pairs, one unsafe); episode 1 fails: its safe pair sits far out in z.
    actions = np.array([[0.1, 0.0], [0.2, 0.1], [0.3, -0.2], [1.0, 0.2], [5.0, 5.0]])
    violations = np.array([0, 0, 0, 1, 0])
    success = np.array([1, 1, 1, 1, 0])
    data = labelled(np.zeros((5, 3)), actions, violations, success, np.array([0, 0, 0, 0, 1]))
    prior = SkillPrior(3, 2, context_dim=0, hidden=(8,))
    bounds = safety_bounds(prior, data, [0.0], seed=0, balance=False, safe_set="pair")
    row = bounds.iloc[0]
    assert (row["safe_pairs"], row["unsafe_pairs"], row["data_pairs"]) == (3, 1, 5)
    assert row["reached"] and 0.3 <= row["bound"] <= 1.0  # the failed episode's z = 5 does not hold the bound open
    with pytest.raises(
        ValueError, match="0 safe and 1 unsafe pairs"
    ):  # episode 0 touched a wall: not a safe trajectory
        safety_bounds(prior, data, [0.0], seed=0, balance=False)


def config_with_safer():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s["downstream"].update(tasks=[1, 7]),
            r"safer.downstream.tasks \[7\]: evaluation tasks are numbered 1..6",
        ),
        (lambda s: s["downstream"].update(figure5_task=9), r"safer.downstream.figure5_task \[9\]"),
        (lambda s: s["tasks"].update(eval=41), r"safer.tasks.eval 41: the evaluation tasks are data tasks, at most"),
        (lambda s: s["bounds"].update(table_target=0.2), r"safer.bounds.table_target 0.2 must be one of"),
        (lambda s: s["data"].update(modes={"none": 0.5, "drift": 0.3}), r"must sum to 1"),
        (lambda s: s["prior"].update(options={"lambda": 1}), r"safer.prior.options \['lambda'\] unknown; allowed: "),
        (
            lambda s: s["prior"].update(options={"optimizer": "rmsprop"}),
            r"safer.prior.options: optimizer = 'rmsprop'; allowed: adam, sgd",
        ),
    ],
)
def test_safer_config_errors_name_the_field(change, message):
    config = copy.deepcopy(config_with_safer())
    change(config["safer"])
    with pytest.raises(ConfigError, match=message):
        check_config(config, REPO / "resources" / "shipped")


def test_an_unreachable_target_keeps_the_last_bound_that_held_safe_data():
    """An unsafe action at the origin of z: no bound holds safe data without it."""
    actions = np.array([[0.0, 0.0], [0.5, 0.1], [0.2, -0.6], [0.9, 0.3], [1.5, 1.5], [-2.0, 0.1]])
    violations = np.array([1, 0, 0, 0, 1, 1])
    data = labelled(np.zeros((6, 3)), actions, violations, np.ones(6), np.arange(6))
    bounds = safety_bounds(SkillPrior(3, 2, context_dim=0, hidden=(8,)), data, [0.0, 0.5], seed=0)
    assert list(bounds["reached"]) == [False, True]
    unreachable = bounds.iloc[0]
    assert unreachable["bound"] > 0 and unreachable["in_bound_unsafe_fraction"] > 0


def test_calibration_rollouts_count_every_step_of_each_bound():
    task = make_tasks(1, 1)[0]
    prior = SkillPrior(task.observation_dim, 4, context_dim=2, window=4, hidden=(8,), encoder_dim=8)
    bounds = pd.DataFrame({"target": [0.0, 0.3], "bound": [0.05, 3.0]})
    table = calibration_rollouts(task, prior, bounds, rollouts=2, seed=0)
    assert list(table["target"]) == [0.0, 0.0, 0.3, 0.3] and list(table["rollout"]) == [0, 1, 0, 1]
    assert ((table["unsafe_steps"] <= table["steps"]) & (table["steps"] <= 50)).all()
    np.testing.assert_allclose(table["unsafe_fraction"], table["unsafe_steps"] / table["steps"])
    again = calibration_rollouts(task, prior, bounds, rollouts=2, seed=0)
    pd.testing.assert_frame_equal(table, again)
    with pytest.raises(ValueError, match="latent_map = 'cube'; allowed: truncated_normal, box"):
        calibration_rollouts(task, prior, bounds, rollouts=1, seed=0, latent_map="cube")


@pytest.mark.parametrize("latent_map", ["truncated_normal", "box"])
def test_calibration_rollouts_draw_z_through_the_latent_map(latent_map, monkeypatch):
    """Each step's z is the map of the next uniform u of the seeded stream: the truncated prior by default, the box as
    an option."""
    from offrl.safer.priors import evaluate
    from offrl.safer.priors.latent import LATENT_MAPS

    latents = []
    act = evaluate.prior_action

    def recording(prior, latent, states, windows):
        latents.append(latent.clone())
        return act(prior, latent, states, windows)

    monkeypatch.setattr(evaluate, "prior_action", recording)
    task = make_tasks(1, 1)[0]
    prior = SkillPrior(task.observation_dim, 4, context_dim=0, hidden=(8,))
    calibration_rollouts(
        task, prior, pd.DataFrame({"target": [0.15], "bound": [1.5]}), rollouts=1, seed=4, latent_map=latent_map
    )
    u = torch.as_tensor(np.random.default_rng(4).uniform(-1.0, 1.0, (len(latents), 4)), dtype=torch.float32)
    torch.testing.assert_close(torch.cat(latents), LATENT_MAPS[latent_map](u, 1.5))
    assert torch.cat(latents).abs().max() <= 1.5


def test_the_downstream_command_names_a_missing_bound(tmp_path, capsys):
    from offrl.cli import main

    bounds = tmp_path / "bounds.csv"
    pd.DataFrame({"target": [0.0, 0.15], "bound": [0.2, 2.0]}).to_csv(bounds, index=False)
    common = [
        "downstream",
        "--task",
        "1",
        "--method",
        "safer",
        "--data-summary",
        "x.json",
        "--out",
        str(tmp_path / "run"),
    ]
    with pytest.raises(SystemExit):
        main([*common, "--bounds", str(bounds), "--target", "0.3"])
    assert "--target 0.3: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--method", "sac", "--task", "7"])  # the last of a repeated option wins
    assert "--task 7: evaluation tasks are numbered 1..6" in capsys.readouterr().err


def test_schema_declares_the_latent_maps_and_the_study_defaults():
    from offrl.safer.priors.latent import LATENT_MAPS

    schema_path = REPO / "workflow" / "schemas" / "config.schema.yaml"
    properties = yaml.safe_load(schema_path.read_text())["properties"]["safer"]["properties"]
    assert properties["latent_map"]["enum"] == list(LATENT_MAPS)
    config = config_with_safer()
    assert config["safer"]["latent_map"] == "truncated_normal" and config["safer"]["tasks"]["observe_geometry"] is False
    config["safer"]["latent_map"] = "cube"
    with pytest.raises(Exception, match="cube"):
        validate(config, str(schema_path))


@pytest.mark.parametrize("observe", [False, True])
def test_grasp_data_command_shows_the_geometry_in_a_first_look_unless_asked(observe, tmp_path):
    from offrl.cli import main

    summary = tmp_path / "summary.json"
    main(
        [
            "grasp-data",
            "--data-tasks",
            "2",
            "--eval-tasks",
            "1",
            "--episodes-per-task",
            "1",
            "--look-steps",
            "2",
            "--root",
            str(tmp_path),
            "--dataset-id",
            "grasp/t-v0",
            "--summary",
            str(summary),
            *(["--observe-geometry"] if observe else []),
        ]
    )
    written = json.loads(summary.read_text())
    assert written["observe_geometry"] is observe and written["look_steps"] == 2 and len(written["state_mean"]) == 18
    data = load_rollouts(written["path"], window=3)
    assert data.windows.shape[1:] == (3, 18) and set(data.task_ids) == {0, 1}  # data on every data task
    seen = data.transitions.observations[:, 11:].any(1)
    np.testing.assert_array_equal(seen, observe | (episode_steps(data.transitions.episode_ids) < 2))


def test_episode_steps_count_from_each_episode_start():
    np.testing.assert_array_equal(episode_steps(np.array([0, 0, 0, 1, 1, 4])), [0, 1, 2, 0, 1, 0])


def test_probe_r2_by_hand():
    train = np.array([True, True, False, False])
    # A constant feature predicts the training mean 1 for the held-out 3 and 5:
    # R² = 1 − (2² + 4²) / (1² + 1²) = −9.
    assert probe_r2(np.ones((4, 1)), np.array([0.0, 2.0, 3.0, 5.0]), train) == pytest.approx(-9.0)
    # y = 2x + 1 exactly: without the ridge the fit is exact on the held-out rows.
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert probe_r2(x, 2 * x[:, 0] + 1, train, ridge=0.0) == pytest.approx(1.0)
    # With the ridge on the standardised slope: w = (Σ z y) / (Σ z² + 1) = 2 / 3 per unit z (z = ±1), intercept 2;
    # x = 2, 3 → z = 3, 5 → ŷ = 4, 16/3 against y = 5, 7: R² = 1 − (1 + 25/9) / 2 = −8/9.
    assert probe_r2(x, 2 * x[:, 0] + 1, train) == pytest.approx(-8 / 9)


def test_window_probe_reads_a_contextual_prior(rollouts):
    tasks = make_tasks(0, 3)
    torch.manual_seed(0)
    prior = SkillPrior(18, 4, context_dim=2, window=4, hidden=(8,), encoder_dim=8)
    prior.set_state_statistics(rollouts.transitions.observations)
    with torch.no_grad():  # the flow starts as the identity; random weights make the action read c
        for parameter in prior.flow.parameters():
            parameter.normal_(0.0, 0.3)
    result = window_probe(prior, rollouts, tasks, seed=0, safe_set="pair")
    steps = episode_steps(rollouts.transitions.episode_ids)
    assert result["probe_rows"] == int(((steps >= 3) & (steps < 7)).sum())  # the look in Λ, not in s_t
    assert result["kl_safe"] > 0 and result["swap_action_change"] > 0
    assert {
        f"r2_{q}_from_{x}" for q in ("clearance", "half_width", "wall_height") for x in ("c", "state", "window")
    } <= set(result)
    plain = window_probe(SkillPrior(18, 4, context_dim=0, window=4, hidden=(8,)), rollouts, tasks)
    assert "kl_safe" not in plain and "r2_clearance_from_c" not in plain  # no c to read
