"""BEAR-QL and BEAR++: the MMD by hand, the Lagrange multiplier, the warm-up, the plugins reused."""

import math

import pytest
import torch

import offrl.algos.bear as bear_module
from offrl.algos.base import Batch
from offrl.algos.bear import BEAR, BEARConfig, mmd

SMALL = {"hidden": (16, 16), "vae_hidden": (16, 16)}


def test_mmd_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    for kernel in ("laplacian", "gaussian"):
        same = mmd(x, x, kernel, sigma=1.0)
        assert same.shape == (4,) and torch.allclose(same, torch.full((4,), 1e-3))  # √1e-6, the estimate's guard
        near, far = mmd(x, x + 0.5, kernel, sigma=1.0), mmd(x, x + 2.0, kernel, sigma=1.0)
        assert (same < near).all() and (near < far).all()


@pytest.mark.parametrize("kernel, expected", [("laplacian", 0.6232463), ("gaussian", 0.7031689)])
def test_mmd_of_two_tiny_sets_by_hand(kernel, expected):
    # x = {0, 1}, y = {1, 3}, σ = 1; k(d) = exp(−|d|/2) or exp(−d²/2):
    # laplacian: mean k(x, x′) = (2 + 2e^{-1/2})/4, mean k(y, y′) = (2 + 2e^{-1})/4,
    #            mean k(x, y) = (e^{-1/2} + e^{-3/2} + 1 + e^{-1})/4;  MMD² = 0.3884349 (+1e-6)
    k = (lambda d: math.exp(-abs(d) / 2)) if kernel == "laplacian" else (lambda d: math.exp(-d * d / 2))
    mean_k = lambda a, b: sum(k(i - j) for i in a for j in b) / 4  # noqa: E731
    by_hand = math.sqrt(mean_k([0, 1], [0, 1]) + mean_k([1, 3], [1, 3]) - 2 * mean_k([0, 1], [1, 3]) + 1e-6)
    assert by_hand == pytest.approx(expected, abs=1e-6)
    value = mmd(torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [3.0]]), kernel, sigma=1.0)
    assert value.item() == pytest.approx(expected, abs=1e-6)


def test_unknown_kernel_is_named():
    with pytest.raises(ValueError, match="kernel must be one of"):
        BEARConfig(kernel="rbf")


def algo(seeds=(0,), **options) -> BEAR:
    return BEAR(
        3, 2, [torch.Generator().manual_seed(s) for s in seeds], BEARConfig(**{**SMALL, **options}), torch.device("cpu")
    )


def batch(members: int = 1, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs, actions = torch.randn(1, 16, 3, generator=g), torch.rand(1, 16, 2, generator=g) * 2 - 1
    rewards, next_obs = torch.randn(1, 16, generator=g), torch.randn(1, 16, 3, generator=g)
    grow = lambda x: x.expand(members, *x.shape[1:]).clone()  # noqa: E731
    return Batch(grow(obs), grow(actions), grow(rewards), grow(next_obs), torch.ones(members, 16))


@pytest.mark.parametrize("constraint, rises", [(1.0, True), (0.0, False)])
def test_lagrange_multiplier_rises_when_the_constraint_is_violated(constraint, rises):
    bear = algo(epsilon=0.05)
    before = bear.log_alpha.item()
    loss = bear.lagrange_loss(torch.full((1, 16), constraint))
    bear.alpha_opt.zero_grad()
    loss.backward()
    bear.alpha_opt.step()
    assert (bear.log_alpha.item() > before) == rises


def test_multiplier_stays_within_its_clamp():
    bear = algo(log_alpha_max=0.0, epsilon=-1.0)  # every MMD exceeds ε: α wants to rise, the clamp holds it at e⁰
    for _ in range(3):
        logs = bear.update(batch())
    assert bear.log_alpha.item() == 0.0 and logs["alpha"].item() == 1.0


def test_warmup_minimises_the_constraint_alone_then_adds_q():
    bear = algo(warmup_fraction=0.5)
    bear.plan(4)
    assert bear.warmup_steps == 2
    bear.updates = 2  # the warm-up's last step
    loss, constraint, _ = bear.actor_loss(batch())
    assert loss.item() == pytest.approx((bear.log_alpha.exp() * constraint).mean().item(), rel=1e-6)
    bear.updates = 3
    loss, constraint, _ = bear.actor_loss(batch())
    assert loss.item() != pytest.approx((bear.log_alpha.exp() * constraint).mean().item(), rel=1e-3)


def test_bear_pp_composes_the_td3bc_plugins(monkeypatch):
    calls = []

    def spy(name):
        original = getattr(bear_module, name)

        def wrapped(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(bear_module, name, wrapped)

    for name in ("penalty_inputs", "heads_gradient_penalty", "relaxation_weight"):
        spy(name)
    bear = algo(gradient_penalty=1.0, gp_every=1, relaxation="minmax")
    logs = bear.update(batch())
    assert calls.count("penalty_inputs") == calls.count("heads_gradient_penalty") == 1
    assert calls.count("relaxation_weight") == 1
    assert {"gradient_penalty", "relaxation_weight_mean", "mmd"} <= set(logs)
    obs = batch().obs.repeat_interleave(bear.config.mmd_samples, dim=1)
    weight = bear.relaxation_weight(obs, torch.zeros(1, obs.shape[1], 2))
    assert weight.shape == (1, 16) and not weight.requires_grad  # W(s, β(s)) carries no gradient
    assert ((weight >= 0) & (weight <= 1)).all()


def test_a_seed_does_not_depend_on_its_group():
    def run(seeds):
        bear = algo(seeds)
        bear.plan(4)
        for _ in range(4):
            logs = bear.update(batch(len(seeds)))
        return bear, logs

    alone, logs = run((5,))
    grouped, _ = run((9, 5))
    assert {"vae_loss", "critic_loss", "q_mean", "actor_loss", "mmd", "alpha"} <= set(logs)
    for net in ("pi", "vae"):
        for pa, pg in zip(getattr(alone, net).parameters(), getattr(grouped, net).parameters()):
            torch.testing.assert_close(pa[0], pg[1])
    for pa, pg in zip(alone.critic.parameters(), grouped.critic.parameters()):
        torch.testing.assert_close(pa[[0, 1]], pg[[1, 3]])  # critic k of seed s is member k·S + s


def test_mmd_constraint_met_is_logged_per_step():
    never = algo(epsilon=-1.0)  # no MMD is below ε
    assert never.actor_loss(batch())[2]["mmd_constraint_met"].tolist() == [0.0]
    always = algo(epsilon=100.0)
    assert always.actor_loss(batch())[2]["mmd_constraint_met"].tolist() == [1.0]
    assert "mmd_constraint_met" in always.update(batch())


def test_bear_presets_take_their_references_per_env_kernels():
    from offrl.algos.presets import build, preset_options

    assert preset_options("bear", "hopper") == {}  # the config's defaults: Laplacian σ = 10
    assert preset_options("bear", "walker2d") == {"kernel": "gaussian", "sigma": 20.0}
    d4rl = preset_options("bear_d4rl", "hopper")
    assert (d4rl["kernel"], d4rl["sigma"], d4rl["actor_lr"], d4rl["critic_lr"], d4rl["warmup_fraction"]) == (
        "laplacian",
        20.0,
        1e-4,
        3e-4,
        0.04,
    )
    assert preset_options("bear_d4rl", "halfcheetah")["kernel"] == "gaussian"
    assert preset_options("bear_pp_d4rl", "halfcheetah", {"sigma": 5.0})["sigma"] == 5.0  # a run's options win
    built = build(
        "bear_pp_d4rl",
        3,
        2,
        [torch.Generator().manual_seed(0)],
        torch.device("cpu"),
        {"vae_hidden": (8,)},
        env="walker2d",
    )
    assert (built.config.kernel, built.config.sigma, built.config.gradient_penalty, built.config.hidden) == (
        "laplacian",
        20.0,
        1.0,
        (256, 256),
    )
    built.plan(1_000_000)
    assert built.warmup_steps == 40_000  # d4rl_evaluations' 40 epochs of 1000 steps
    d4rl = preset_options("bear_d4rl", "hopper")
    assert {
        k: d4rl[k] for k in ("mmd_samples", "vae_lr", "target_policy", "actor_q", "noise_clip", "eval_samples")
    } == {
        "mmd_samples": 4,  # BEARTrainer's num_samples_mmd_match
        "vae_lr": 3e-4,
        "target_policy": "current",
        "actor_q": "first",
        "noise_clip": None,
        "eval_samples": 100,  # rlkit's policy_fn with --num_samples 100
    }
    original = algo()
    original.plan(1_000_000)
    assert original.warmup_steps == 20_000  # 20 epochs of the README's eval_freq = 1000
    assert original.actor.spec["samples"] == 10  # algos.py::BEAR.select_action


def test_target_actions_come_from_the_target_actor_or_from_pi():
    seen = {}
    for proposer in ("target", "current"):
        bear = algo(target_policy=proposer)
        with torch.no_grad():  # make π and its Polyak copy differ
            for p in bear.pi.parameters():
                p.add_(1.0)
        for name, module in (("pi", bear.pi), ("actor_target", bear.actor_target)):
            original = module.sample
            module.sample = lambda *a, _name=name, _original=original: (
                seen.setdefault(proposer, _name),
                _original(*a),
            )[1]
        bear.critic_loss(batch())
    assert seen == {"target": "actor_target", "current": "pi"}


def test_actor_value_is_the_mean_over_samples_or_the_first_sample():
    # Q₁ = [1, 2, 3 | 4, 5, 6], Q₂ = Q₁ + 1 for two states of 3 samples each: min over critics is Q₁.
    q = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], [[2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]])
    obs = torch.arange(6.0).view(1, 6, 1)
    mean = algo(mmd_samples=3)
    mean.ensemble = lambda critic, o, a: q
    assert mean.actor_value(obs, obs)[0].tolist() == [[2.0, 5.0]]
    first = algo(mmd_samples=3, actor_q="first")
    seen = {}

    def at_first(critic, o, a):
        seen["obs"] = o.flatten().tolist()
        return torch.tensor([[[1.0, 4.0]], [[2.0, 5.0]]])

    first.ensemble = at_first
    assert first.actor_value(obs, obs)[0].tolist() == [[1.0, 4.0]] and seen["obs"] == [0.0, 3.0]


@pytest.mark.parametrize("noise_clip, bound", [(0.5, 0.5), (None, math.inf)])
def test_actor_noise_is_clipped_or_not(noise_clip, bound, monkeypatch):
    bear = algo(noise_clip=noise_clip)
    drawn = {}
    original = bear.pi.sample

    def sample(obs, noise):
        drawn["noise"] = noise
        return original(obs, noise)

    bear.pi.sample = sample
    monkeypatch.setattr(bear_module, "seeded_normal", lambda g, shape, device: torch.full((1, *shape), 3.0))
    bear.actor_loss(batch())
    assert drawn["noise"].max().item() == min(3.0, bound)


def test_options_name_their_allowed_values():
    for option, value in (("target_policy", "old"), ("actor_q", "max"), ("eval_samples", -1)):
        with pytest.raises(ValueError, match=option):
            BEARConfig(**{option: value})
