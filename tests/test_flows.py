import math

import numpy as np
import pytest
import torch

from offrl.safer.priors import (
    ConditionalRealNVP,
    SafetyContextEncoder,
    bounded_latent,
    bounded_map,
    gaussian_latent,
    kl_to_standard_normal,
    safety_bound,
    sample_context,
    standard_normal_log_prob,
    truncated_gaussian_latent,
    unsafe_fraction_within,
)


def random_flow(dtype: torch.dtype = torch.float64, weight_std: float = 0.5) -> ConditionalRealNVP:
    """A flow away from its identity start: every weight redrawn, so every coupling moves its half."""
    torch.manual_seed(0)
    flow = ConditionalRealNVP(4, 3, layers=3, hidden=(16, 16)).to(dtype)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.normal_(0, weight_std)
    return flow


@pytest.mark.parametrize("dtype, weight_std", [(torch.float64, 0.5), (torch.float32, 0.3)])
def test_flow_is_invertible_both_ways(dtype, weight_std):
    flow = random_flow(dtype, weight_std)
    condition = torch.randn(256, 3, dtype=dtype)
    a = 2 * torch.rand(256, 4, dtype=dtype) - 1  # actions live in [-1, 1]
    z, inverse_log_det = flow.inverse(a, condition)
    a_again, forward_log_det = flow(z, condition)
    torch.testing.assert_close(a_again, a, atol=1e-5, rtol=0)
    torch.testing.assert_close(forward_log_det, -inverse_log_det)
    assert (z - a).abs().max() > 1.0  # the check is not of an identity map


def test_log_determinant_matches_autograd_jacobian():
    flow = random_flow()
    for row in range(3):
        condition, a = torch.randn(3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda x: flow.inverse(x[None], condition[None])[0][0], a)
        _, log_det = flow.inverse(a[None], condition[None])
        assert log_det.item() == pytest.approx(torch.linalg.slogdet(jacobian).logabsdet.item(), abs=1e-8)


def test_log_prob_of_an_untrained_flow_is_the_standard_normal():
    flow = ConditionalRealNVP(4, 3, hidden=(8,))  # last layers start at zero: the identity map
    a, condition = torch.randn(10, 4), torch.randn(10, 3)
    torch.testing.assert_close(flow.log_prob(a, condition), torch.distributions.Normal(0.0, 1.0).log_prob(a).sum(-1))
    torch.testing.assert_close(
        flow.sample(condition, torch.Generator().manual_seed(1)),
        torch.randn(10, 4, generator=torch.Generator().manual_seed(1)),
    )


def test_flow_training_raises_likelihood_of_its_data(one_thread):
    torch.manual_seed(0)
    flow = ConditionalRealNVP(2, 1, layers=4, hidden=(32,))
    condition = torch.randint(0, 2, (512, 1)).float()
    actions = torch.where(condition > 0, 0.8, -0.8) + 0.1 * torch.randn(512, 2)  # the condition picks the mode
    optimiser = torch.optim.Adam(flow.parameters(), lr=1e-2)
    before = flow.log_prob(actions, condition).mean().item()
    for _ in range(150):
        optimiser.zero_grad()
        (-flow.log_prob(actions, condition).mean()).backward()
        optimiser.step()
    assert flow.log_prob(actions, condition).mean().item() > before + 2.0
    samples = flow.sample(torch.ones(256, 1))
    assert samples.mean().item() == pytest.approx(0.8, abs=0.15)


def test_gaussian_kl_against_the_closed_form_by_hand():
    mean, log_var = torch.tensor([[0.0, 0.0], [1.0, -2.0]]), torch.tensor([[0.0, 0.0], [math.log(4.0), math.log(0.25)]])
    # ½ Σ (σ² + μ² − 1 − log σ²): row 2 = ½[(4 + 1 − 1 − log 4) + (¼ + 4 − 1 − log ¼)]
    expected = torch.tensor([0.0, 0.5 * ((4 + 1 - 1 - math.log(4)) + (0.25 + 4 - 1 - math.log(0.25)))])
    torch.testing.assert_close(kl_to_standard_normal(mean, log_var), expected)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, (0.5 * log_var).exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mean, log_var), reference)


def test_context_encoder_shapes_and_reparameterised_gradient():
    torch.manual_seed(0)
    encoder = SafetyContextEncoder(state_dim=18, context_dim=8, window=16, model_dim=32, heads=4, layers=1)
    mean, log_var = encoder(torch.randn(5, 16, 18))
    assert mean.shape == log_var.shape == (5, 8)
    c = sample_context(mean, log_var, torch.Generator().manual_seed(0))
    (c.sum() + kl_to_standard_normal(mean, log_var).sum()).backward()
    assert encoder.embed.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="window = 16"):
        encoder(torch.randn(5, 8, 18))


def test_sample_context_uses_mean_and_standard_deviation():
    mean, log_var = torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(9.0))
    c = sample_context(mean, log_var, torch.Generator().manual_seed(0))
    assert c.mean().item() == pytest.approx(2.0, abs=0.1) and c.std().item() == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("target", [0.0, 0.05, 0.15, 0.3])
def test_safety_bound_reaches_its_target_fraction(target):
    rng = np.random.default_rng(0)
    z_safe, z_unsafe = rng.normal(0, 0.7, (4000, 4)), rng.normal(0, 1.5, (2000, 4))  # unsafe sits farther out
    bound = safety_bound(z_safe, z_unsafe, target, np.random.default_rng(1))
    fraction = unsafe_fraction_within(z_safe, z_unsafe, bound)
    assert fraction <= target and fraction >= target - 0.01  # at the target, not far inside it
    assert bound == safety_bound(z_safe, z_unsafe, target, np.random.default_rng(1))  # same seed, same η


def test_safety_bound_on_separated_data_keeps_every_safe_action():
    rng = np.random.default_rng(0)
    z_safe = rng.uniform(-1, 1, (500, 3))
    z_unsafe = rng.uniform(2, 3, (100, 3)) * rng.choice([-1, 1], (100, 3))
    bound = safety_bound(z_safe, z_unsafe, 0.0, np.random.default_rng(0), initial_bound=10.0)
    assert 0.9 < bound <= np.abs(z_safe).max() and unsafe_fraction_within(z_safe, z_unsafe, bound) == 0.0


def test_policy_actions_map_to_the_latent_space():
    u = 2 * torch.rand(100_000, 1, generator=torch.Generator().manual_seed(0)) - 1
    z = gaussian_latent(u)  # PARROT: uniform actions become the flow's N(0, 1) base
    assert z.mean().item() == pytest.approx(0.0, abs=0.02) and z.std().item() == pytest.approx(1.0, abs=0.02)
    assert torch.isfinite(gaussian_latent(torch.tensor([-1.0, 1.0]))).all()
    assert gaussian_latent(torch.tensor([0.6827])).item() == pytest.approx(1.0, abs=1e-3)  # P(|z| < 1) = 0.6827
    torch.testing.assert_close(
        bounded_latent(torch.tensor([-1.0, 0.5]), 2.0), torch.tensor([-2.0, 1.0])
    )  # SAFER: the box (−η, η)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2)))


@pytest.mark.parametrize("bound", [0.5, 1.0, 2.5])
def test_truncated_normal_map_of_uniform_u_is_the_truncated_prior(bound):
    """SAFER's default map: for u ~ U[−1, 1], z ~ N(0, 1) truncated to (−η, η), by histogram, CDF and variance."""
    u = 2 * torch.rand(400_000, 1, generator=torch.Generator().manual_seed(0)) - 1
    z = truncated_gaussian_latent(u, bound).numpy().ravel()
    assert np.abs(z).max() <= bound
    edges = np.linspace(-bound, bound, 21)
    mass = np.diff(_normal_cdf(edges)) / (
        _normal_cdf(bound) - _normal_cdf(-bound)
    )  # each bin's truncated-normal probability
    np.testing.assert_allclose(np.histogram(z, edges)[0] / len(z), mass, atol=0.003)
    # Var of N(0, 1) truncated to (−η, η): 1 − 2ηφ(η)/(Φ(η) − Φ(−η)).
    density = math.exp(-(bound**2) / 2) / math.sqrt(2 * math.pi)
    variance = 1 - 2 * bound * density / (_normal_cdf(bound) - _normal_cdf(-bound))
    assert z.var() == pytest.approx(variance, rel=0.01)
    box = bounded_latent(u, bound).numpy().ravel()  # the box map: uniform, its variance η²/3, more at the edges
    assert box.var() == pytest.approx(bound**2 / 3, rel=0.01) and box.var() > z.var()


def test_truncated_normal_map_by_hand_and_as_the_bound_grows():
    # η = 1, u = 0.5: p = Φ(−1) + 0.75·(Φ(1) − Φ(−1)) = 0.158655 + 0.75·0.682689 = 0.670672; Φ⁻¹(0.670672) = 0.44185.
    assert truncated_gaussian_latent(torch.tensor([0.5]), 1.0).item() == pytest.approx(0.44185, abs=1e-4)
    assert truncated_gaussian_latent(torch.tensor([0.0]), 1.0).item() == pytest.approx(0.0, abs=1e-7)
    assert truncated_gaussian_latent(torch.tensor([1.0, -1.0]), 1.0).tolist() == pytest.approx(
        [1.0, -1.0], abs=1e-5
    )  # the box's faces
    u = torch.linspace(-1, 1, 101)
    torch.testing.assert_close(
        truncated_gaussian_latent(u, math.inf), gaussian_latent(u), atol=1e-6, rtol=0.0
    )  # η → ∞: PARROT's map (float32 rounding apart)
    torch.testing.assert_close(truncated_gaussian_latent(u, 8.0), gaussian_latent(u), atol=1e-5, rtol=0.0)
    assert (
        truncated_gaussian_latent(u, 0.1) - bounded_latent(u, 0.1)
    ).abs().max() < 2e-4  # a tiny box: the density is flat, both maps agree


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="latent_map = 'cube'; allowed: truncated_normal, box"):
        bounded_map("cube")
    with pytest.raises(ValueError, match="bound = -1"):
        truncated_gaussian_latent(torch.zeros(1), -1)
    with pytest.raises(ValueError, match="max_unsafe_fraction = 1.5"):
        safety_bound(np.zeros((2, 2)), np.zeros((2, 2)), 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="bound = 0"):
        bounded_latent(torch.zeros(1), 0)
    with pytest.raises(ValueError, match="action_dim = 1"):
        ConditionalRealNVP(1, 3)
    assert standard_normal_log_prob(torch.zeros(1, 2)).item() == pytest.approx(-math.log(2 * math.pi))
