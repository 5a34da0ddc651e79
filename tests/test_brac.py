"""BRAC-p and BRAC-v: the sampled KL, the value penalty, the actor's warm-up, by hand."""

import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.brac import BRAC, BRACConfig
from offrl.nets import TanhGaussianActor

S, A, R, S2, ND = [0.5, -0.2], [0.3, -0.1], [1.0, 0.5], [0.1, 0.4], [1.0, 0.0]
PI_MEAN, PI_LOG_STD, MU_MEAN, MU_LOG_STD = 0.2, -1.0, 0.1, -0.5
ALPHA, N = 0.1, 2


def log_tanh_normal_at(u, mean, log_std):
    """log density of a = tanh(u), u ~ N(mean, e^{2·log_std}), at the pre-tanh value u."""
    gaussian = -0.5 * ((u - mean) / math.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    return gaussian - math.log(1 - math.tanh(u) ** 2)


def log_mu(a):
    a = min(max(a, -1 + 1e-3), 1 - 1e-3)  # the reference's clip_by_eps
    return log_tanh_normal_at(math.atanh(a), MU_MEAN, MU_LOG_STD)


def pre_tanh(noise):
    return [PI_MEAN + math.exp(PI_LOG_STD) * e for e in noise]


def kl_by_hand(noise):
    """D̂ per state from its n noise draws (each state's draws in a row)."""
    us = pre_tanh(noise)
    terms = [log_tanh_normal_at(u, PI_MEAN, PI_LOG_STD) - log_mu(math.tanh(u)) for u in us]
    return [sum(terms[i : i + N]) / N for i in range(0, len(terms), N)]


def constant(mlp, outputs):
    with torch.no_grad():
        for layer in mlp.layers:
            layer.weight.zero_(), layer.bias.zero_()
        mlp.layers[-1].bias.copy_(torch.tensor(outputs).view(1, 1, -1).expand_as(mlp.layers[-1].bias))


def make(value_penalty: bool) -> tuple[BRAC, Batch]:
    """Q(s, a) = 2a + 20 for both critics, π = tanh N(0.2, e^{-2}), μ = tanh N(0.1, e^{-1})."""
    config = BRACConfig(
        value_penalty=value_penalty,
        alpha=ALPHA,
        kl_samples=N,
        actor_hidden=(1,),
        critic_hidden=(1,),
        behaviour_hidden=(1,),
        log_std="clamp",  # log σ = the raw outputs below, as by hand
    )
    algo = BRAC(1, 1, [torch.Generator().manual_seed(0)], config, torch.device("cpu"))
    with torch.no_grad():
        c0, c1 = algo.critic.mlp.layers
        c0.weight.copy_(torch.tensor([[0.0], [1.0]]).expand_as(c0.weight)), c0.bias.fill_(10.0)
        c1.weight.fill_(2.0), c1.bias.zero_()
    algo.critic_target.load_state_dict(algo.critic.state_dict())
    constant(algo.actor.mlp, [PI_MEAN, PI_LOG_STD])
    constant(algo.behaviour.model.mlp, [MU_MEAN, MU_LOG_STD])
    t = lambda x: torch.tensor(x).view(1, 2, 1)  # noqa: E731
    return algo, Batch(t(S), t(A), torch.tensor([R]), t(S2), torch.tensor([ND]))


def replay(algo, call):
    """Run ``call`` and return its result with the generator's draws it made, replayed as a function of sizes."""
    generator = algo.generators[0]
    state = generator.get_state()
    result = call()
    generator.set_state(state)
    return result, lambda size: torch.randn((size, 1), generator=generator).view(-1).tolist()


@pytest.mark.parametrize("value_penalty", [True, False])
def test_critic_loss_by_hand(value_penalty):
    algo, batch = make(value_penalty)
    (loss, logs), draw = replay(algo, lambda: algo.critic_loss(batch))
    next_a = [math.tanh(u) for u in pre_tanh(draw(2))]
    penalty = [ALPHA * d for d in kl_by_hand(draw(2 * N))] if value_penalty else [0.0, 0.0]
    target = [r + 0.99 * nd * (2 * a2 + 20 - p) for r, nd, a2, p in zip(R, ND, next_a, penalty)]
    expected = 2 * sum((2 * a + 20 - y) ** 2 for a, y in zip(A, target)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert ("value_penalty" in logs) == value_penalty
    if value_penalty:
        assert logs["value_penalty"].item() == pytest.approx(sum(penalty) / 2, rel=1e-5)


@pytest.mark.parametrize("warm", [True, False])
def test_actor_loss_by_hand(warm):
    algo, batch = make(True)
    algo.behaviour.model.requires_grad_(False)
    algo.warmup_steps, algo.updates = 5, (5 if warm else 6)  # the warm-up's last step, or the first after it
    (loss, logs), draw = replay(algo, lambda: algo.actor_loss(batch))
    kl = kl_by_hand(draw(2 * N))
    expected = sum(ALPHA * d for d in kl) / 2
    if not warm:
        expected -= sum(2 * math.tanh(u) + 20 for u in pre_tanh(draw(2))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert logs["kl"].item() == pytest.approx(sum(kl) / 2, rel=1e-5)


def test_log_prob_of_given_actions_matches_the_samples():
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, 3, 2, (8,))
    obs, noise = torch.randn(2, 5, 3), 0.5 * torch.randn(2, 5, 2)
    action, _, log_prob = actor.sample(obs, noise)
    torch.testing.assert_close(actor.log_prob(obs, action, clip=1e-6), log_prob, rtol=1e-4, atol=1e-4)
    edge = actor.log_prob(obs, torch.ones(2, 5, 2), clip=1e-3)  # clipped to 1 − 1e-3: finite
    assert torch.isfinite(edge).all()


def test_plan_splits_the_run_into_behaviour_warmup_and_rl():
    algo, batch = make(False)
    algo.config.pretrain_fraction, algo.config.warmup_fraction = 0.375, 0.2
    algo.plan(16)
    assert (algo.pretrain_steps, algo.warmup_steps) == (6, 2)
    for _ in range(6):
        assert "behaviour_loss" in algo.update(batch)
    assert {"critic_loss", "actor_loss", "kl", "q_mean"} <= set(algo.update(batch))
    assert not any(p.requires_grad for p in algo.behaviour.model.parameters())


def test_presets_differ_only_by_the_value_penalty():
    from offrl.algos.presets import PRESETS

    assert PRESETS["brac_p"].options == {"value_penalty": False} and PRESETS["brac_v"].options == {
        "value_penalty": True
    }
    with pytest.raises(ValueError, match=r"warmup_fraction must be in \[0, 1\]"):
        BRACConfig(warmup_fraction=2.0)


def test_log_std_of_pi_and_mu_is_tanh_squashed_into_minus5_0():
    small = {"actor_hidden": (4,), "critic_hidden": (4,), "behaviour_hidden": (4,)}
    brac = BRAC(3, 2, [torch.Generator().manual_seed(0)], BRACConfig(**small), torch.device("cpu"))
    for actor in (brac.actor, brac.behaviour.model):
        assert actor.log_std_mode == "tanh"
        with torch.no_grad():
            last = actor.mlp.layers[-1]
            last.weight.zero_()
            last.bias.copy_(torch.tensor([[[0.0, 0.0, 0.0, math.atanh(0.6)]]]))
        _, log_std = actor.distribution(torch.zeros(1, 1, 3))
        # −5 + 2.5·(tanh(x) + 1): x = 0 → −2.5, tanh(x) = 0.6 → −1
        assert log_std.flatten().tolist() == pytest.approx([-2.5, -1.0])
    with pytest.raises(ValueError, match="log_std must be one of"):
        BRACConfig(log_std="softplus")
