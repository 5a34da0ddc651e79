"""Fisher-BRC: the mixture behaviour model, its fitting, and the critic and actor losses by hand."""

import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.behaviour import BehaviourCloning
from offrl.algos.fisher_brc import FisherBRC, FisherBRCConfig
from offrl.nets import TanhGaussianMixture


def log_normal(x, mean, log_std):
    return -0.5 * ((x - mean) / math.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)


def log_tanh_normal(a, mean, log_std):
    """log density of a = tanh(u), u ~ N(mean, e^{2·log_std})."""
    return log_normal(math.atanh(a), mean, log_std) - math.log(1 - a * a)


def constant(mlp, outputs):
    """Every member of ``mlp`` outputs ``outputs`` whatever its input."""
    with torch.no_grad():
        for layer in mlp.layers:
            layer.weight.zero_(), layer.bias.zero_()
        mlp.layers[-1].bias.copy_(torch.tensor(outputs).view(1, 1, -1).expand_as(mlp.layers[-1].bias))


# Two action dimensions, two components each: (logits, means, log σ) laid out as dimension·K + component.
LOGITS, MEANS, LOG_STDS = [0.0, 1.0, 0.5, -0.5], [0.1, -0.4, 0.3, 0.0], [-0.5, -1.0, 0.2, -2.0]


def mixture() -> TanhGaussianMixture:
    model = TanhGaussianMixture(1, 3, 2, components=2, hidden=(1,))
    constant(model.mlp, LOGITS + MEANS + LOG_STDS)
    return model


def mixture_log_prob_by_hand(action):
    total = 0.0
    for d, a in enumerate(action):
        logits = LOGITS[2 * d : 2 * d + 2]
        weights = [math.exp(x) / sum(math.exp(y) for y in logits) for x in logits]
        total += math.log(
            sum(w * math.exp(log_tanh_normal(a, MEANS[2 * d + k], LOG_STDS[2 * d + k])) for k, w in enumerate(weights))
        )
    return total


def test_mixture_log_prob_by_hand():
    actions = [[0.3, -0.7], [-0.95, 0.0]]
    value = mixture().log_prob(torch.zeros(1, 2, 3), torch.tensor([actions]))
    assert value.shape == (1, 2)
    assert value[0].tolist() == pytest.approx([mixture_log_prob_by_hand(a) for a in actions], rel=1e-5)
    # Actions on the box's edge are clipped to ±(1 − 1e-6): finite, as the reference.
    assert torch.isfinite(mixture().log_prob(torch.zeros(1, 1, 3), torch.tensor([[[1.0, -1.0]]]))).all()


def test_mixture_sample_picks_components_by_inverse_cdf():
    # Dimension 0's weights are softmax(0, 1) = (0.269, 0.731); dimension 1's softmax(0.5, −0.5) = (0.731, 0.269).
    uniform = torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])
    noise = torch.tensor([[[1.0, -1.0], [0.0, 2.0]]])
    sample = mixture().sample(torch.zeros(1, 2, 3), uniform, noise)
    pick = lambda d, k, e: math.tanh(MEANS[2 * d + k] + math.exp(LOG_STDS[2 * d + k]) * e)  # noqa: E731
    expected = [[pick(0, 0, 1.0), pick(1, 1, -1.0)], [pick(0, 1, 0.0), pick(1, 0, 2.0)]]
    torch.testing.assert_close(sample[0], torch.tensor(expected))


def test_behaviour_loss_by_hand_and_temperature_direction():
    generator = torch.Generator().manual_seed(3)
    fit = BehaviourCloning(mixture(), [generator], act_dim=2, lr=1e-3, clip=1e-6)
    obs, actions = torch.zeros(1, 2, 3), torch.tensor([[[0.3, -0.7], [-0.5, 0.2]]])
    state = generator.get_state()
    loss, entropy, logs = fit.loss(obs, actions)
    generator.set_state(state)
    uniform, noise = torch.rand((2, 2), generator=generator), torch.randn((2, 2), generator=generator)
    sampled = mixture().sample(obs, uniform[None], noise[None])[0].tolist()
    # α = 1: −mean[log μ(a) + Ĥ] with Ĥ = −log μ(ã).
    expected = (
        -sum(mixture_log_prob_by_hand(a) - mixture_log_prob_by_hand(s) for a, s in zip(actions[0].tolist(), sampled))
        / 2
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert entropy[0].tolist() == pytest.approx([-mixture_log_prob_by_hand(s) for s in sampled], rel=1e-5)
    # Entropy below the target −act_dim = −2 raises α; above lowers it.
    for value, rises in ((-5.0, True), (5.0, False)):
        fit.log_alpha.data.zero_()
        fit.alpha_opt.zero_grad()
        fit.temperature_loss(torch.full((1, 2), value)).backward()
        fit.alpha_opt.step()
        assert (fit.log_alpha.item() > 0) == rises


S, A, R, S2, ND = [0.5, -0.2], [0.3, -0.1], [1.0, 0.5], [0.1, 0.4], [1.0, 0.0]
ACTOR_MEAN, ACTOR_LOG_STD, MU_MEAN, MU_LOG_STD = 0.2, -1.0, 0.1, -0.5


@pytest.fixture
def fbrc_and_batch():
    """O(s, a) = 2a + 20 (∇ₐO = 2), π = tanh N(0.2, e^{-2}), μ = tanh N(0.1, e^{-1}) (one component), α = 1."""
    config = FisherBRCConfig(hidden=(1,), behaviour_hidden=(1,), components=1)
    algo = FisherBRC(1, 1, [torch.Generator().manual_seed(0)], config, torch.device("cpu"))
    with torch.no_grad():
        c0, c1 = algo.critic.mlp.layers
        c0.weight.copy_(torch.tensor([[0.0], [1.0]]).expand_as(c0.weight)), c0.bias.fill_(10.0)
        c1.weight.fill_(2.0), c1.bias.zero_()
    algo.critic_target.load_state_dict(algo.critic.state_dict())
    constant(algo.actor.mlp, [ACTOR_MEAN, ACTOR_LOG_STD])
    constant(algo.behaviour.model.mlp, [0.0, MU_MEAN, MU_LOG_STD])
    t = lambda x: torch.tensor(x).view(1, 2, 1)  # noqa: E731
    return algo, Batch(t(S), t(A), torch.tensor([R]), t(S2), torch.tensor([ND]))


def log_mu(a):
    return log_tanh_normal(a, MU_MEAN, MU_LOG_STD)


def test_critic_loss_by_hand(fbrc_and_batch):
    algo, batch = fbrc_and_batch
    generator = algo.generators[0]
    state = generator.get_state()
    loss, logs = algo.critic_loss(batch)
    generator.set_state(state)
    next_a = [math.tanh(ACTOR_MEAN + math.exp(ACTOR_LOG_STD) * e) for e in torch.randn(2, generator=generator).tolist()]
    target = [r + 5.0 + 0.99 * nd * (2 * a2 + 20 + log_mu(a2)) for r, nd, a2 in zip(R, ND, next_a)]
    q = [2 * a + 20 + log_mu(a) for a in A]
    # Both offsets: 2·mean_B (Q − y)², and f_reg·Σᵢ‖∇ₐOᵢ‖² = 0.1·(4 + 4).
    expected = 2 * sum((x - y) ** 2 for x, y in zip(q, target)) / 2 + 0.1 * 8.0
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert logs["gradient_penalty"].item() == pytest.approx(8.0, rel=1e-6)
    assert logs["q_mean"].item() == pytest.approx(sum(q) / 2, rel=1e-6)


def test_actor_loss_by_hand(fbrc_and_batch):
    algo, batch = fbrc_and_batch
    algo.behaviour.model.requires_grad_(False)
    generator = algo.generators[0]
    state = generator.get_state()
    loss, _, _ = algo.actor_loss(batch)
    generator.set_state(state)
    expected = 0.0
    for e in torch.randn(2, generator=generator).tolist():
        u = ACTOR_MEAN + math.exp(ACTOR_LOG_STD) * e
        log_pi = log_normal(u, ACTOR_MEAN, ACTOR_LOG_STD) - math.log(1 - math.tanh(u) ** 2)
        expected += (log_pi - (2 * math.tanh(u) + 20 + log_mu(math.tanh(u)))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_behaviour_phase_then_rl_phase_and_the_learning_rate_schedule(fbrc_and_batch):
    algo, batch = fbrc_and_batch
    algo.plan(20)
    assert algo.pretrain_steps == 10
    lrs = []
    for step in range(1, 11):
        actor = [p.clone() for p in algo.actor.parameters()]
        logs = algo.update(batch)
        lrs.append(algo.behaviour.opt.param_groups[0]["lr"])
        assert set(logs) == {"behaviour_loss", "behaviour_log_prob", "behaviour_entropy", "behaviour_alpha"}
        assert all(torch.equal(a, b) for a, b in zip(actor, algo.actor.parameters()))  # μ alone is fitted
    assert lrs == pytest.approx([1e-3] * 8 + [1e-4, 1e-5])  # ÷10 at 80%, ÷100 at 90% of the phase
    behaviour = [(p.clone(), p.grad.clone()) for p in algo.behaviour.model.parameters()]
    logs = algo.update(batch)
    assert {"critic_loss", "actor_loss", "alpha", "gradient_penalty"} <= set(logs)
    for (value, grad), p in zip(behaviour, algo.behaviour.model.parameters()):  # then frozen: no step, no new gradient
        assert torch.equal(value, p) and torch.equal(grad, p.grad) and not p.requires_grad


def test_pretrain_fraction_is_checked():
    with pytest.raises(ValueError, match=r"pretrain_fraction must be in \[0, 1\)"):
        FisherBRCConfig(pretrain_fraction=1.0)
