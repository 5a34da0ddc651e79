"""UWAC: dropout masks, the dropout moments and the uncertainty weights by hand, composed with BEAR's losses."""

import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.uwac import UWAC, UWACConfig
from offrl.nets import EnsembleMLP

SMALL = {"hidden": (1,), "vae_hidden": (8, 8)}


def algo(seeds=(0,), **options) -> UWAC:
    return UWAC(
        1, 1, [torch.Generator().manual_seed(s) for s in seeds], UWACConfig(**{**SMALL, **options}), torch.device("cpu")
    )


def test_dropout_masks_are_scaled_and_drawn_per_seed():
    mlp = EnsembleMLP(4, 3, 1, (16, 8))
    masks = mlp.dropout_masks(
        [torch.Generator().manual_seed(s) for s in (9, 5)], heads=2, rows=3000, rate=0.25, device=torch.device("cpu")
    )
    assert [m.shape for m in masks] == [(4, 3000, 16), (4, 3000, 8)]
    values = torch.cat([m.flatten() for m in masks])
    assert values.unique().tolist() == pytest.approx([0.0, 4.0 / 3.0])  # kept units scaled by 1/(1 − p)
    assert (values == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    alone = mlp.dropout_masks(
        [torch.Generator().manual_seed(5)], heads=2, rows=3000, rate=0.25, device=torch.device("cpu")
    )
    for grouped, single in zip(masks, alone):
        torch.testing.assert_close(grouped[[1, 3]], single)  # head h of seed s is member h·S + s


@pytest.mark.parametrize(
    "weighting, expected",
    [("inverse", [1.0, 1.0, 0.5, 0.125]), ("exp", [1.0, math.exp(-0.125), math.exp(-0.5), math.exp(-2.0)])],
)
def test_uncertainty_weight_by_hand(weighting, expected):
    # β = 0.5: β/v is ∞, 2, 0.5, 0.125, clipped to [0, 1]; exp(−β·v).
    weight = algo(weighting=weighting).uncertainty_weight(torch.tensor([[0.0, 0.25, 1.0, 4.0]]))
    assert weight[0].tolist() == pytest.approx(expected, rel=1e-6)


def test_dropout_moments_by_hand():
    # One hidden unit fixed at 1, Q = mask: each pass gives 0 or 1/(1 − p) = 2 by its mask.
    uwac = algo(dropout=0.5, dropout_samples=5, spectral_norm=False)  # a zero weight has no spectral norm
    with torch.no_grad():
        first, last = uwac.critic.mlp.layers
        first.weight.zero_(), first.bias.fill_(1.0), last.weight.fill_(1.0), last.bias.zero_()
    obs, actions = torch.zeros(1, 3, 1), torch.zeros(1, 3, 1)
    generator = uwac.generators[0]
    state = generator.get_state()
    mean, variance = uwac.dropout_moments(uwac.critic, obs, actions)
    generator.set_state(state)
    kept = (torch.rand((2, 15, 1), generator=generator) >= 0.5).view(2, 5, 3).float() * 2.0  # (critic, pass, pair)
    by_hand_mean = [[sum(kept[k, :, i].tolist()) / 5 for i in range(3)] for k in range(2)]
    by_hand_var = [
        sum(sum((x - by_hand_mean[k][i]) ** 2 for x in kept[k, :, i].tolist()) / 4 for k in range(2)) for i in range(3)
    ]
    assert mean.shape == (2, 1, 3) and variance.shape == (1, 3)
    for k in range(2):
        assert mean[k, 0].tolist() == pytest.approx(by_hand_mean[k])
    assert variance[0].tolist() == pytest.approx(by_hand_var)


def batch(members: int = 1) -> Batch:
    g = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(1, 2, 1, generator=g), torch.rand(1, 2, 1, generator=g) * 2 - 1
    grow = lambda x: x.expand(members, *x.shape[1:]).clone()  # noqa: E731
    return Batch(
        grow(obs),
        grow(actions),
        grow(torch.tensor([[1.0, 0.5]])),
        grow(torch.randn(1, 2, 1, generator=g)),
        grow(torch.tensor([[1.0, 0.0]])),
    )


def test_critic_loss_weighs_each_transition_by_its_least_certain_next_pair():
    uwac = algo(target_samples=2)
    # Target critics at the 2 next pairs of each of the 2 transitions (K=2, S=1, B·n=4), and the pairs' weights.
    next_q = torch.tensor([[[1.0, 3.0, 2.0, 0.0]], [[2.0, 1.0, 4.0, 1.0]]])
    next_w = torch.tensor([[0.9, 0.4, 1.0, 0.7]])
    q = torch.tensor([[[0.5, -1.0]], [[1.5, 2.0]]])
    uwac.target_values = lambda next_obs, next_action: (next_q, next_w)
    uwac.ensemble = lambda critic, obs, actions: q
    loss, _ = uwac.critic_loss(batch())
    # mixed = 0.75·min_k + 0.25·max_k per pair: [1.25, 1.5, 2.5, 0.25]; max over each transition's pairs: 1.5, 2.5.
    target = [1.0 + 0.99 * 1.0 * 1.5, 0.5 + 0.99 * 0.0 * 2.5]
    weight = [0.4, 0.7]
    expected = sum(sum(w * (q[k, 0, b].item() - target[b]) ** 2 for b, w in enumerate(weight)) / 2 for k in range(2))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_actor_ascends_the_weighted_value_of_the_first_sample():
    uwac = algo(mmd_samples=3, weighting="inverse")
    seen = {}

    def moments(critic, obs, actions):
        seen["obs"], seen["actions"] = obs, actions
        return torch.tensor([[[2.0, -1.0]], [[1.0, 0.5]]]), torch.tensor([[0.25, 2.0]])

    uwac.dropout_moments = moments
    obs = torch.arange(6.0).view(1, 6, 1)  # states 0, 1 (each 3 times in a row) as in BEAR's actor loss
    value, weight = uwac.actor_value(obs, -obs)
    assert seen["obs"].flatten().tolist() == [0.0, 3.0] and seen["actions"].flatten().tolist() == [0.0, -3.0]
    assert value.tolist() == [[1.0, -1.0]] and weight.tolist() == [[1.0, 0.25]]  # min over critics; clip(0.5/v, 0, 1)
    uwac.updates = 1  # past the warm-up
    uwac.actor_value = lambda obs, action: (torch.tensor([[1.0, -1.0]]), torch.tensor([[1.0, 0.25]]))
    loss, constraint, _ = uwac.actor_loss(batch())
    expected = -(1.0 * 1.0 + 0.25 * -1.0) / 2 + (uwac.log_alpha.exp() * constraint).mean().item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_reference_weight_is_clamped_exp_and_squared_on_the_critic_error():
    # The released defaults: w = clamp(exp(−0.5·Var), 0, 1), and (w·(Q − y))², i.e. w² on the squared error.
    assert (UWACConfig().weighting, UWACConfig().critic_weighting) == ("exp", "error")
    variance = torch.tensor([[0.0, 1.0, 2.0, 6.0]])
    uwac = algo()
    uwac.dropout_moments = lambda critic, obs, actions: (torch.zeros(2, 1, 4), variance)
    _, on_error = uwac.target_values(None, None)
    w = [1.0, math.exp(-0.5), math.exp(-1.0), math.exp(-3.0)]
    assert on_error[0].tolist() == pytest.approx([x * x for x in w], rel=1e-6)
    paper = algo(critic_weighting="squared_error")
    paper.dropout_moments = uwac.dropout_moments
    assert paper.target_values(None, None)[1][0].tolist() == pytest.approx(w, rel=1e-6)
    # In the loss: one transition, Q − y = 2 for both critics, w = e^{-0.5}: Σₖ (w·2)² = 2·4·e^{-1}.
    uwac = algo(target_samples=1)
    uwac.target_values = lambda next_obs, next_action: (torch.zeros(2, 1, 2), torch.full((1, 2), w[1] ** 2))
    uwac.ensemble = lambda critic, obs, actions: torch.tensor([[[2.0 + 1.0, 2.0 + 0.5]], [[3.0, 2.5]]])
    loss, _ = uwac.critic_loss(batch())  # y = r = 1.0, 0.5 (next Q = 0)
    assert loss.item() == pytest.approx(2 * 4 * math.exp(-1.0), rel=1e-6)


def test_reference_defaults_and_evaluation_policy():
    c = UWACConfig()
    assert (c.spectral_norm, c.warmup_fraction, c.target_policy, c.actor_q, c.noise_clip, c.eval_samples) == (
        True,
        0.04,  # the reference's 40k steps of 1M
        "current",
        "first",
        None,
        100,
    )
    uwac = algo(eval_dropout_samples=3)
    assert all(layer.spectral_norm for layer in uwac.critic.mlp.layers)
    assert all(layer.spectral_norm for layer in uwac.critic_target.mlp.layers)
    spec = uwac.actor.spec
    assert (spec["samples"], spec["dropout"], spec["dropout_samples"], spec["spectral_norm"]) == (100, 0.1, 3, True)
    assert algo(eval_dropout_samples=0).actor.spec["dropout"] == 0.0  # Q₁ without dropout at evaluation


def test_options_are_checked():
    with pytest.raises(ValueError, match="weighting must be one of"):
        UWACConfig(weighting="linear")
    with pytest.raises(ValueError, match="critic_weighting must be one of"):
        UWACConfig(critic_weighting="w")
    with pytest.raises(ValueError, match="dropout_samples must be at least 2"):
        UWACConfig(dropout_samples=1)
