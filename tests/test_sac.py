"""Naive offline SAC: the tanh-Gaussian log-probability by hand, the temperature, member independence."""

import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.sac import SAC, SACConfig
from offrl.nets import TanhGaussianActor, tanh_gaussian_log_prob


def test_tanh_gaussian_log_prob_by_hand():
    # u = 0.5 from N(0, 1): log N(0.5) − log(1 − tanh²(0.5)).
    expected = -0.5 * 0.25 - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(0.5) ** 2)
    assert expected == pytest.approx(-0.8037095, abs=1e-6)  # −0.125 − 0.9189385 + 0.2402290, by hand
    value = tanh_gaussian_log_prob(torch.tensor([0.5]), torch.tensor([0.0]), torch.tensor([0.0]))
    assert value.item() == pytest.approx(expected, abs=1e-6)
    # Two dimensions sum; σ = e^{-1}, mean 0.2, u = −0.3.
    z = (-0.3 - 0.2) / math.exp(-1.0)
    one = -0.5 * z * z + 1.0 - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(-0.3) ** 2)
    value = tanh_gaussian_log_prob(torch.tensor([0.5, -0.3]), torch.tensor([0.0, 0.2]), torch.tensor([0.0, -1.0]))
    assert value.item() == pytest.approx(expected + one, abs=1e-5)


def test_tanh_correction_is_finite_where_tanh_saturates():
    # tanh(20) rounds to 1 in float32, so log(1 − tanh²) would be −inf; the softplus form is exact.
    u = torch.tensor([20.0])
    value = tanh_gaussian_log_prob(u, torch.tensor([20.0]), torch.tensor([0.0]))
    expected = -0.5 * math.log(2 * math.pi) - 2 * (math.log(2) - 20.0 - math.log1p(math.exp(-40.0)))
    assert math.isfinite(value.item()) and value.item() == pytest.approx(expected, rel=1e-6)


def test_actor_evaluates_deterministically_and_samples_with_its_noise():
    torch.manual_seed(0)
    actor = TanhGaussianActor(2, 3, 2, (8,))
    obs = torch.randn(2, 5, 3)
    mean, log_std = actor.distribution(obs)
    torch.testing.assert_close(actor(obs), torch.tanh(mean))
    noise = torch.randn(2, 5, 2)
    action, pre_tanh, log_prob = actor.sample(obs, noise)
    torch.testing.assert_close(pre_tanh, mean + log_std.exp() * noise)
    torch.testing.assert_close(action, torch.tanh(pre_tanh))
    assert log_prob.shape == (2, 5)


def batch(seed: int, members: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(members, 16, 3, generator=g),
        torch.rand(members, 16, 2, generator=g) * 2 - 1,
        torch.randn(members, 16, generator=g),
        torch.randn(members, 16, 3, generator=g),
        torch.ones(members, 16),
    )


def test_temperature_rises_while_entropy_is_below_target():
    algo = SAC(3, 2, [torch.Generator().manual_seed(0)], SACConfig(hidden=(8,)), torch.device("cpu"))
    before = algo.log_alpha.item()
    loss = algo.temperature_loss(torch.full((1, 16), 5.0))  # log π = 5: entropy −5 < target −2
    algo.alpha_opt.zero_grad()
    loss.backward()
    algo.alpha_opt.step()
    assert algo.log_alpha.item() > before


def test_update_logs_q_mean_and_a_seed_does_not_depend_on_its_group():
    def run(generators):
        algo = SAC(3, 2, generators, SACConfig(hidden=(16, 16)), torch.device("cpu"))
        shared = batch(1)
        for _ in range(3):
            logs = algo.update(
                Batch(
                    *(
                        x.expand(len(generators), *x.shape[1:]).clone()
                        for x in (shared.obs, shared.actions, shared.rewards, shared.next_obs, shared.not_done)
                    )
                )
            )
        return algo, logs

    alone, logs = run([torch.Generator().manual_seed(5)])
    grouped, _ = run([torch.Generator().manual_seed(9), torch.Generator().manual_seed(5)])
    assert {"critic_loss", "q_mean", "actor_loss", "alpha", "entropy"} <= set(logs)
    for pa, pg in zip(alone.actor.parameters(), grouped.actor.parameters()):
        torch.testing.assert_close(pa[0], pg[1])
    torch.testing.assert_close(alone.log_alpha[0], grouped.log_alpha[1])
