"""IQL: the expectile, weight and Gaussian losses by hand, each loss of the algorithm on a tiny batch,
the cosine schedule, the reward scale, member independence and resume equality."""

import io
import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.iql import IQL, IQLConfig, advantage_weight, expectile_loss, gaussian_log_prob, reward_scale
from offrl.algos.presets import build


def test_expectile_loss_by_hand():
    # τ = 0.7: u = −2 weighs 0.3·4 = 1.2, u = 1 weighs 0.7·1 = 0.7, u = 0 is 0.
    torch.testing.assert_close(expectile_loss(torch.tensor([-2.0, 1.0, 0.0]), 0.7), torch.tensor([1.2, 0.7, 0.0]))


def test_advantage_weight_by_hand():
    # β = 3: exp(0) = 1, exp(3) = 20.085537, exp(30) clipped to 100.
    torch.testing.assert_close(
        advantage_weight(torch.tensor([0.0, 1.0, 10.0]), 3.0, 100.0), torch.tensor([1.0, 20.085537, 100.0])
    )


def test_gaussian_log_prob_by_hand():
    # a = 0.5 under N(0, 1): −0.125 − ½·ln 2π = −1.0439385; a second dimension a = −0.3 under N(0.2, e^{-2}):
    # z = −0.5·e, −½z² + 1 − ½·ln 2π = −0.9236320 + 1 − 0.9189385 = −0.8425705
    value = gaussian_log_prob(torch.tensor([0.5, -0.3]), torch.tensor([0.0, 0.2]), torch.tensor([0.0, -1.0]))
    assert value.item() == pytest.approx(-1.0439385 - 0.8425705, abs=1e-6)


def test_reward_scale_from_episode_returns(tiny_dataset):
    # Rewards 0..6; episode 0 returns 0 + 1 + 2 = 3, episode 1 returns 3 + 4 + 5 + 6 = 18: 1000 / 15.
    assert reward_scale(tiny_dataset) == pytest.approx(1000.0 / 15.0)
    iql = algo(obs_dim=11, act_dim=3)
    torch.testing.assert_close(
        torch.as_tensor(iql.per_transition(tiny_dataset)["scaled_reward"]), torch.arange(7.0) * 1000.0 / 15.0
    )
    assert algo(obs_dim=11, act_dim=3, normalize_rewards=False).per_transition(tiny_dataset) == {}


def test_config_names_bad_options():
    with pytest.raises(ValueError, match="actor must be one of"):
        IQLConfig(actor="tanh")
    with pytest.raises(ValueError, match="expectile must be in"):
        IQLConfig(expectile=1.0)


def algo(seeds=(0,), obs_dim=3, act_dim=2, **options) -> IQL:
    config = IQLConfig(**{"hidden": (16, 16), **options})
    return IQL(obs_dim, act_dim, [torch.Generator().manual_seed(s) for s in seeds], config, torch.device("cpu"))


def batch(members: int = 1, seed: int = 1, size: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs, actions = torch.randn(1, size, 3, generator=g), torch.rand(1, size, 2, generator=g) * 2 - 1
    rewards, next_obs = torch.randn(1, size, generator=g), torch.randn(1, size, 3, generator=g)
    not_done = (torch.rand(1, size, generator=g) > 0.3).float()
    grow = lambda x: x.expand(members, *x.shape[1:]).clone()  # noqa: E731
    return Batch(
        grow(obs), grow(actions), grow(rewards), grow(next_obs), grow(not_done), {"scaled_reward": grow(2.0 * rewards)}
    )


def constant_value(iql: IQL, value: float) -> None:
    """V(s) = value everywhere: the last layer's weights zero, its bias the constant."""
    with torch.no_grad():
        iql.value.layers[-1].weight.zero_()
        iql.value.layers[-1].bias.fill_(value)


def test_value_loss_is_the_expectile_of_target_q_minus_v():
    iql = algo()
    constant_value(iql, 0.25)
    target_q = torch.tensor([[1.0, -1.0, 0.25, 0.0, 2.0, -3.0, 0.5, 0.75]])
    loss, _ = iql.value_loss(batch(), target_q)
    u = [q - 0.25 for q in target_q[0].tolist()]
    by_hand = sum((0.7 if x > 0 else 0.3) * x * x for x in u) / 8
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_critic_regresses_on_scaled_reward_plus_discounted_next_value():
    iql = algo(discount=0.9)
    constant_value(iql, 2.0)
    b = batch()
    loss, _ = iql.critic_loss(b)
    target = b.extras["scaled_reward"] + 0.9 * b.not_done * 2.0
    q = iql.critic(b.obs.repeat(2, 1, 1), b.actions.repeat(2, 1, 1))
    assert loss.item() == pytest.approx(((q - target) ** 2).mean(dim=1).sum().item(), rel=1e-6)


@pytest.mark.parametrize("actor", ["gaussian", "deterministic"])
def test_actor_loss_is_advantage_weighted_behaviour_cloning(actor):
    iql = algo(actor=actor, beta=2.0, max_weight=5.0)
    constant_value(iql, 0.5)
    b = batch()
    target_q = torch.linspace(-1.0, 2.0, 8)[None]
    loss, logs = iql.actor_loss(b, target_q)
    weight = torch.exp(2.0 * (target_q - 0.5)).clamp(max=5.0)
    mean = iql.actor(b.obs)
    if actor == "gaussian":  # log σ = 0 at the start: ℓ = ½‖a − μ‖² + ½·A·ln 2π
        per_sample = 0.5 * ((b.actions - mean) ** 2).sum(-1) + math.log(2 * math.pi)
    else:
        per_sample = ((b.actions - mean) ** 2).sum(-1)
    assert loss.item() == pytest.approx((weight * per_sample).mean().item(), rel=1e-5)
    assert logs["weight_mean"].item() == pytest.approx(weight.mean().item(), rel=1e-6)


def test_cosine_schedule_of_the_actor_rate():
    iql = algo(actor_lr=1.0)
    assert iql.actor_lr().item() == 1.0  # no plan: constant
    iql.plan(4)
    rates = []
    for updates in (1, 2, 3, 5):
        iql.updates.fill_(updates)
        rates.append(iql.actor_lr().item())
    assert rates == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.0])
    iql.update(batch())  # the optimiser runs at the scheduled rate
    assert iql.actor_opt.param_groups[0]["lr"].item() == 0.0  # update 6 of a 4-step plan: past the end, 0
    assert algo(actor_lr=1.0, cosine_actor_lr=False).actor_lr().item() == 1.0


def test_presets_and_config_defaults():
    iql = build("iql", 3, 2, [torch.Generator().manual_seed(0)], torch.device("cpu"))
    c = iql.config  # the reference's MuJoCo configuration
    assert (c.expectile, c.beta, c.max_weight, c.actor, c.tau, c.actor_lr) == (0.7, 3.0, 100.0, "gaussian", 0.005, 3e-4)
    assert iql.normalize_states and any(p is iql.log_std for p in iql.actor_opt.param_groups[0]["params"])


def test_a_seed_does_not_depend_on_its_group():
    def run(seeds):
        iql = algo(seeds)
        iql.plan(10)
        for _ in range(3):
            logs = iql.update(batch(len(seeds)))
        return iql, logs

    alone, logs = run((5,))
    grouped, _ = run((9, 5))
    assert {"value_loss", "actor_loss", "critic_loss", "q_mean", "advantage_mean", "weight_mean"} <= set(logs)
    for net in ("actor", "value"):
        for pa, pg in zip(getattr(alone, net).parameters(), getattr(grouped, net).parameters()):
            torch.testing.assert_close(pa[0], pg[1])
    for pa, pg in zip(alone.critic.parameters(), grouped.critic.parameters()):
        torch.testing.assert_close(pa[[0, 1]], pg[[1, 3]])  # critic q of seed s is member q·S + s
    torch.testing.assert_close(alone.log_std[0], grouped.log_std[1])


def test_resumed_from_a_checkpoint_equals_uninterrupted():
    straight = algo((3,))
    straight.plan(4)
    for step in range(4):
        straight.update(batch(seed=step))
    first = algo((3,))
    first.plan(4)
    for step in range(2):
        first.update(batch(seed=step))
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    saved.seek(0)
    resumed = algo((99,))  # other initial weights: everything must come from the checkpoint
    resumed.plan(4)  # the training loop plans before it loads
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    for step in range(2, 4):
        resumed.update(batch(seed=step))
    for name in ("actor", "value", "critic", "critic_target"):
        for pa, pb in zip(getattr(straight, name).parameters(), getattr(resumed, name).parameters()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    torch.testing.assert_close(straight.log_std, resumed.log_std, rtol=0, atol=0)
