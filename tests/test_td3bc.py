"""TD3+BC's losses against hand-computed values, and the member dimension's independence."""

import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.td3bc import TD3BC, TD3BCConfig


def hand_set(algo: TD3BC) -> None:
    """Q₁(s, a) = s + a, Q₂(s, a) = 2s + 2a, π(s) = tanh(s), through one ReLU unit kept positive."""
    with torch.no_grad():
        c0, c1 = algo.critic.mlp.layers
        c0.weight.copy_(torch.tensor([[[1.0], [1.0]], [[1.0], [1.0]]]))
        c0.bias.fill_(10.0)
        c1.weight.copy_(torch.tensor([[[1.0]], [[2.0]]]))
        c1.bias.copy_(torch.tensor([[[-10.0]], [[-20.0]]]))
        a0, a1 = algo.actor.mlp.layers
        a0.weight.fill_(1.0), a0.bias.fill_(10.0), a1.weight.fill_(1.0), a1.bias.fill_(-10.0)
    algo.actor_target.load_state_dict(algo.actor.state_dict())
    algo.critic_target.load_state_dict(algo.critic.state_dict())


S, A, R, S2, ND = [0.5, -0.2], [0.3, -0.1], [1.0, 0.5], [0.1, 0.4], [1.0, 0.0]


@pytest.fixture
def algo_and_batch():
    config = TD3BCConfig(hidden=(1,), policy_noise=0.0)
    algo = TD3BC(1, 1, [torch.Generator().manual_seed(0)], config, torch.device("cpu"))
    hand_set(algo)
    t = lambda x: torch.tensor(x).view(1, 2, 1)  # noqa: E731
    batch = Batch(t(S), t(A), torch.tensor([R]), t(S2), torch.tensor([ND]))
    return algo, batch


def test_critic_loss_by_hand(algo_and_batch):
    algo, batch = algo_and_batch
    next_a = [math.tanh(x) for x in S2]
    target = [r + 0.99 * nd * min(s2 + a2, 2 * s2 + 2 * a2) for r, nd, s2, a2 in zip(R, ND, S2, next_a)]
    q1 = [s + a for s, a in zip(S, A)]
    q2 = [2 * s + 2 * a for s, a in zip(S, A)]
    expected = sum((q - y) ** 2 for q, y in zip(q1, target)) / 2 + sum((q - y) ** 2 for q, y in zip(q2, target)) / 2
    loss, logs = algo.critic_loss(batch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.0850064, rel=1e-6)  # the numbers, once, by hand
    assert logs["q_mean"].item() == pytest.approx(sum(q1) / 2)


def test_actor_loss_by_hand(algo_and_batch):
    algo, batch = algo_and_batch
    pi = [math.tanh(s) for s in S]
    q = [s + p for s, p in zip(S, pi)]
    lmbda = 2.5 / (sum(abs(x) for x in q) / 2)
    bc = sum((p - a) ** 2 for p, a in zip(pi, A)) / 2
    expected = -lmbda * sum(q) / 2 + bc
    loss, logs = algo.actor_loss(batch)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert logs["lambda"].item() == pytest.approx(lmbda, rel=1e-6)
    assert logs["bc_mse"].item() == pytest.approx(bc, rel=1e-5)  # float32


def test_alpha_zero_is_pure_behaviour_cloning(algo_and_batch):
    algo, batch = algo_and_batch
    algo.config.alpha = 0.0
    loss, logs = algo.actor_loss(batch)
    assert loss.item() == pytest.approx(logs["bc_mse"].item())


def test_changing_one_members_data_changes_only_its_parameters():
    def run(member1_obs_shift: float) -> TD3BC:
        gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
        algo = TD3BC(3, 2, gens, TD3BCConfig(hidden=(16, 16)), torch.device("cpu"))
        data = torch.Generator().manual_seed(42)
        for _ in range(4):
            obs = torch.randn(2, 8, 3, generator=data)
            obs[1] += member1_obs_shift
            acts = torch.rand(2, 8, 2, generator=data) * 2 - 1
            algo.update(
                Batch(
                    obs, acts, torch.randn(2, 8, generator=data), torch.randn(2, 8, 3, generator=data), torch.ones(2, 8)
                )
            )
        return algo

    a, b = run(0.0), run(1.0)
    for net in ("actor", "critic"):
        seeds = 2
        for (name, pa), pb in zip(getattr(a, net).named_parameters(), getattr(b, net).parameters()):
            same = [0] if net == "actor" else [0, seeds]  # seed 0's actor; its two critics are members 0 and S
            other = [1] if net == "actor" else [1, seeds + 1]
            for m in same:
                assert torch.equal(pa[m], pb[m]), f"{net}.{name} member {m} changed"
            assert any(not torch.equal(pa[m], pb[m]) for m in other), f"{net}.{name} did not change"


def test_seed_initialisation_does_not_depend_on_group():
    alone = TD3BC(3, 2, [torch.Generator().manual_seed(5)], TD3BCConfig(hidden=(8,)), torch.device("cpu"))
    grouped = TD3BC(
        3,
        2,
        [torch.Generator().manual_seed(9), torch.Generator().manual_seed(5)],
        TD3BCConfig(hidden=(8,)),
        torch.device("cpu"),
    )
    for pa, pg in zip(alone.actor.parameters(), grouped.actor.parameters()):
        assert torch.equal(pa[0], pg[1])
    for pa, pg in zip(alone.critic.parameters(), grouped.critic.parameters()):
        assert torch.equal(pa[0], pg[1]) and torch.equal(pa[1], pg[3])


def guided_batch(conf, expert_action):
    t = lambda x: torch.tensor(x).view(1, 2, 1)  # noqa: E731
    return Batch(
        t(S),
        t(A),
        torch.tensor([R]),
        t(S2),
        torch.tensor([ND]),
        {"conf": torch.tensor([conf]), "expert_action": t(expert_action)},
    )


def test_guided_target_by_hand(algo_and_batch):
    algo, plain = algo_and_batch
    conf, expert = [0.25, 1.0], [0.9, 0.4]
    next_a = [math.tanh(x) for x in S2]
    target = [
        r + 0.99 * nd * min(s2 + a2, 2 * s2 + 2 * a2) - (1 - c) * (a - e) ** 2
        for r, nd, s2, a2, c, a, e in zip(R, ND, S2, next_a, conf, A, expert)
    ]
    assert target[0] == pytest.approx(1.197671 - 0.75 * 0.36, abs=1e-6)
    q1 = [s + a for s, a in zip(S, A)]
    q2 = [2 * s + 2 * a for s, a in zip(S, A)]
    expected = sum((q - y) ** 2 for q, y in zip(q1, target)) / 2 + sum((q - y) ** 2 for q, y in zip(q2, target)) / 2
    loss, _ = algo.critic_loss(guided_batch(conf, expert))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_guided_target_with_full_confidence_is_plain_td3bc(algo_and_batch):
    algo, plain = algo_and_batch
    guided, _ = algo.critic_loss(guided_batch([1.0, 1.0], [0.9, 0.4]))
    assert guided.item() == pytest.approx(algo.critic_loss(plain)[0].item(), rel=1e-7)


def test_actor_guidance_by_hand(algo_and_batch):
    """The actor-side reading: w·mean_B (1 − conf(s))·‖π(s) − π_T(s)‖² added to TD3+BC's actor loss."""
    algo, plain = algo_and_batch
    conf, expert = [0.25, 1.0], [0.9, 0.4]
    pi = [math.tanh(s) for s in S]
    q = [s + p for s, p in zip(S, pi)]
    lmbda = 2.5 / (sum(abs(x) for x in q) / 2)
    bc = sum((p - a) ** 2 for p, a in zip(pi, A)) / 2
    guidance = ((1 - conf[0]) * (pi[0] - expert[0]) ** 2 + (1 - conf[1]) * (pi[1] - expert[1]) ** 2) / 2
    assert guidance == pytest.approx(0.75 * (math.tanh(0.5) - 0.9) ** 2 / 2)  # the fully confident state adds 0
    off, _ = algo.actor_loss(guided_batch(conf, expert))
    assert off.item() == pytest.approx(-lmbda * sum(q) / 2 + bc, rel=1e-6)  # the default: eq. 2 alone
    algo.config.actor_guidance = 2.0
    loss, logs = algo.actor_loss(guided_batch(conf, expert))
    assert loss.item() == pytest.approx(-lmbda * sum(q) / 2 + bc + 2.0 * guidance, rel=1e-6)
    assert logs["actor_guidance"].item() == pytest.approx(guidance, rel=1e-5)


def test_actor_guidance_needs_the_guide():
    with pytest.raises(ValueError, match="actor_guidance needs"):
        TD3BCConfig(actor_guidance=1.0)
    with pytest.raises(ValueError, match="actor_guidance must be"):
        TD3BCConfig(actor_guidance=-1.0, guide_expert="e.pt", guide_index="i.npz")


def test_guidance_needs_both_files():
    with pytest.raises(ValueError, match="needs both guide_expert and guide_index"):
        TD3BCConfig(guide_expert="expert.pt")


def test_without_behaviour_cloning_the_actor_ascends_q1(algo_and_batch):
    # TD3 itself (the online learner): actor loss = −mean_B Q₁(s, π(s)).
    algo, batch = algo_and_batch
    algo.config.behavior_cloning = False
    loss, _ = algo.actor_loss(batch)
    assert loss.item() == pytest.approx(-sum(s + math.tanh(s) for s in S) / 2, rel=1e-6)


def test_guided_preset_asks_for_its_files():
    from offrl.algos.presets import build

    with pytest.raises(ValueError, match=r"'guided_td3bc' needs option\(s\) \['guide_expert', 'guide_index'\]"):
        build("guided_td3bc", 11, 3, [torch.Generator().manual_seed(0)], torch.device("cpu"))


@pytest.mark.parametrize("threshold, expected", [(2.0, 0.0), (1.0, 1.0), (0.5, 0.25 + 2.25)])
def test_gradient_penalty_by_hand(algo_and_batch, threshold, expected):
    # ∇ₐQ₁ = 1 and ∇ₐQ₂ = 2 at every (s, a): Σᵢ ReLU(‖∇ₐQᵢ‖ − k)² = ReLU(1 − k)² + ReLU(2 − k)².
    algo, batch = algo_and_batch
    algo.config.gp_threshold = threshold
    for actions in ("uniform", "dataset", "policy"):
        algo.config.gp_actions = actions
        assert algo.gradient_penalty(batch).item() == pytest.approx(expected, abs=1e-6)


def test_gradient_penalty_joins_the_critic_loss_every_n_steps(algo_and_batch):
    algo, batch = algo_and_batch
    plain, _ = algo.critic_loss(batch)
    algo.config.gradient_penalty = 0.5
    algo.updates = 4  # not a multiple of gp_every = 5: no penalty this step
    assert algo.critic_loss(batch)[0].item() == pytest.approx(plain.item())
    algo.updates = 5
    loss, logs = algo.critic_loss(batch)
    assert loss.item() == pytest.approx(plain.item() + 0.5 * 1.0, rel=1e-6)
    assert logs["gradient_penalty"].item() == pytest.approx(1.0)
    algo.critic.zero_grad()
    algo.gradient_penalty(batch).sum().backward()  # the penalty trains the critic
    assert algo.critic.mlp.layers[1].weight.grad.abs().sum() > 0


def test_relaxation_weight_by_hand_and_detached(algo_and_batch):
    # Mean of the critics = 1.5·(s + a): 1.2 and −0.45 on the batch, so W = [1, 0] by min-max.
    algo, batch = algo_and_batch
    algo.config.relaxation = "minmax"
    algo.config.alpha = 0.0
    weight = algo.relaxation_weight(batch)
    assert weight.tolist() == [[1.0, 0.0]] and not weight.requires_grad
    pi = [math.tanh(s) for s in S]
    loss, logs = algo.actor_loss(batch)
    assert loss.item() == pytest.approx((pi[0] - A[0]) ** 2 / 2, rel=1e-6)
    algo.critic.zero_grad()
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in algo.critic.parameters())
    algo.config.relaxation = "raw_q"
    assert algo.relaxation_weight(batch).view(-1).tolist() == pytest.approx([1.2, -0.45])


def test_relaxation_weight_is_in_the_unit_interval():
    config = TD3BCConfig(relaxation="minmax")
    algo = TD3BC(3, 2, [torch.Generator().manual_seed(s) for s in range(2)], config, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randn(2, 64, 3, generator=g),
        torch.rand(2, 64, 2, generator=g) * 2 - 1,
        torch.zeros(2, 64),
        torch.randn(2, 64, 3, generator=g),
        torch.ones(2, 64),
    )
    weight = algo.relaxation_weight(batch)
    assert (
        weight.shape == (2, 64)
        and weight.min(dim=1).values.tolist() == [0.0, 0.0]
        and weight.max(dim=1).values.tolist() == [1.0, 1.0]
    )


def test_plugin_options_are_checked():
    with pytest.raises(ValueError, match=r"gp_actions must be one of \('uniform', 'dataset', 'policy'\)"):
        TD3BCConfig(gp_actions="random")
    with pytest.raises(ValueError, match="relaxation must be one of"):
        TD3BCConfig(relaxation="softmax")
