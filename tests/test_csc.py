"""Conservative Safety Critics: the cost critic's loss by hand, the rejection rule, the dual step, member
independence."""

import numpy as np
import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.csc import CSC, CSCConfig, acceptance_threshold, conservative_cost_loss, dual_step, first_safe
from offrl.algos.sac import SAC, SACConfig
from offrl.nets import gradient_step, soft_update

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = SACConfig(hidden=(16, 16))


def csc(generators: list[torch.Generator], **options) -> CSC:
    return CSC(3, 2, generators, TINY, CSCConfig(**options), torch.device("cpu"))


def batch(seed: int, members: int = 1, size: int = 16) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(members, size, 3, generator=g),
        torch.rand(members, size, 2, generator=g) * 2 - 1,
        torch.randn(members, size, generator=g),
        torch.randn(members, size, 3, generator=g),
        torch.ones(members, size),
        extras={"costs": (torch.rand(members, size, generator=g) < 0.3).float()},
    )


def test_conservative_cost_loss_by_hand():
    # Seed 0: a safe step that bootstraps and a violation, whose target is its cost alone (absorbing).
    # Seed 1: an end without bootstrap (done) and a bootstrapped step; Q_C equal at data and policy actions.
    q_data = torch.tensor([[0.2, 0.6], [0.3, 0.1]])
    q_policy = torch.tensor([[0.5, 0.9], [0.3, 0.1]])
    costs = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    not_done = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    next_cost = torch.tensor([[0.4, 0.8], [0.5, 0.5]])
    loss = conservative_cost_loss(q_data, q_policy, costs, not_done, next_cost, discount=0.9, weight=0.5)
    # Seed 0: targets 0.9·0.4 = 0.36 and 1; 0.5·(0.4 − 0.7) + ½·((0.2 − 0.36)² + (0.6 − 1)²)/2 = −0.15 + 0.0464.
    # Seed 1: targets 0 and 0.45; 0 + ½·(0.3² + (0.1 − 0.45)²)/2 = ½·(0.09 + 0.1225)/2.
    torch.testing.assert_close(loss, torch.tensor([-0.1036, 0.053125]))


def test_conservative_term_raises_the_cost_at_policy_actions():
    q_data, q_policy = torch.zeros(1, 4, requires_grad=True), torch.zeros(1, 4, requires_grad=True)
    zeros = torch.zeros(1, 4)
    conservative_cost_loss(q_data, q_policy, zeros, zeros, zeros, 0.99, weight=2.0).sum().backward()
    # Gradient descent moves Q_C against its gradient: up at the policy's actions, down at the replayed ones.
    torch.testing.assert_close(q_policy.grad, torch.full((1, 4), -0.5))
    torch.testing.assert_close(q_data.grad, torch.full((1, 4), 0.5))


def test_trained_cost_critic_over_estimates_at_the_policys_actions():
    # No violation anywhere and every replayed action in one corner, away from π's: the true Q_C is 0 at every
    # action; the conservative term lifts it at π's actions and lowers it at the replayed ones.
    algo = csc([torch.Generator().manual_seed(0)], cql_weight=0.1)
    data = batch(2, size=64)
    data.extras["costs"].zero_()
    data.actions.fill_(-0.9)
    for _ in range(300):
        loss, logs = algo.cost_critic_loss(data)
        gradient_step(algo.cost_opt, loss)
        soft_update(algo.cost_target, algo.cost_critic, algo.config.tau)
    assert logs["cost_q_policy"].item() > 0.2 and logs["cost_q_data"].item() < 0.0


@pytest.mark.parametrize(
    ("costs", "threshold", "expected"),
    [
        ([0.5, 0.05, 0.01], 0.1, 1),  # the first that passes, not the cheapest
        ([0.5, 0.3, 0.2], 0.1, 2),  # none passes: the least-cost one
        ([0.1, 0.0], 0.1, 0),  # at the threshold passes
        ([0.3, 0.2, 0.2], 0.1, 1),  # tied least costs: the first of them
    ],
)
def test_first_safe_candidate_else_the_least_costly(costs, threshold, expected):
    assert first_safe(torch.tensor([[costs]]), threshold).item() == expected


def test_explore_executes_the_first_safe_draw_of_each_state():
    # Q_C(s, a) = a₀ + 1: a draw passes χ = 0.5 when its first coordinate is at most −0.5.
    algo = csc(
        [torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)],
        threshold=0.5,
        candidates=4,
        acceptance="chi",
    )
    algo.cost_critic = lambda obs, actions: actions[..., 0] + 1.0
    obs = torch.randn(2, 6, 3)
    torch.manual_seed(0)
    executed = algo.explore(obs)

    replay = csc([torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)])  # the same draws, read by hand
    draws = SAC.explore(replay, obs.repeat_interleave(4, dim=1)).view(2, 6, 4, 2)
    fallbacks = 0
    for s in range(2):
        for b in range(6):
            first = draws[s, b, :, 0]
            passing = [k for k in range(4) if first[k] + 1.0 <= 0.5]
            fallbacks += not passing
            torch.testing.assert_close(executed[s, b], draws[s, b, passing[0] if passing else int(first.argmin())])
    assert 0 < fallbacks < 12  # both branches ran


def test_acceptance_threshold_by_hand():
    # χ = 0.1, γ = 0.99: (1 − γ)(χ − V̂_C) = 0.01·0.05 = 5e-4 at V̂_C = 0.05, −0.01·0.2 = −2e-3 at V̂_C = 0.3.
    episode_cost = torch.tensor([0.05, 0.3])
    tightened = acceptance_threshold(0.1, episode_cost, 0.99, "tightened")
    torch.testing.assert_close(tightened, torch.tensor([5e-4, -2e-3]))
    torch.testing.assert_close(acceptance_threshold(0.1, episode_cost, 0.99, "chi"), torch.tensor([0.1, 0.1]))
    costs = torch.tensor([[[0.01, 0.0004, 0.0]], [[0.01, 0.0004, 0.0]]])  # the same draws' Q_C for both seeds
    # Seed 0: the first at most 5e-4 is the second draw; seed 1: none at most −2e-3, the least-cost one.
    assert first_safe(costs, tightened[:, None, None]).flatten().tolist() == [1, 2]
    assert CSCConfig().acceptance == "tightened" and CSCConfig().dual == "episodes"


def test_advantage_dual_adds_the_cost_advantage_over_one_minus_gamma():
    # V̂_C = χ = 0.1 (no episode ended), Q_C(s, ã) − Q_C(s, a) = d: λ moves by η·d/(1 − γ).
    algo = csc([torch.Generator().manual_seed(0)], dual="advantage", dual_lr=0.01, initial_lambda=1.0)
    logs = algo.update(batch(1))
    advantage = logs["cost_q_policy"] - logs["cost_q_data"]
    torch.testing.assert_close(logs["lambda"], (1.0 + 0.01 * advantage / (1 - 0.99)).clamp(min=0.0))
    plain = csc([torch.Generator().manual_seed(0)], dual_lr=0.01, initial_lambda=1.0)
    torch.testing.assert_close(plain.update(batch(1))["lambda"], torch.tensor([1.0]))  # V̂_C − χ = 0: λ stays


def test_dual_variable_rises_above_the_threshold_and_falls_below():
    lagrange = torch.tensor([0.5, 0.5, 0.001])
    after = dual_step(lagrange, torch.tensor([0.3, 0.0, 0.0]), threshold=0.1, lr=0.01)
    torch.testing.assert_close(after, torch.tensor([0.502, 0.499, 0.0]))  # 0.5 ± 0.01·0.2 or 0.1; never below 0


def test_episode_cost_is_the_share_of_recent_episodes_with_a_violation():
    algo = csc([torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)], threshold=0.2, cost_episodes=2)
    torch.testing.assert_close(algo.episode_cost(), torch.tensor([0.2, 0.2]))  # χ before any episode ended: λ stays
    algo.observe(np.array([1.0, 0.0]), np.array([False, True]))  # seed 0 violates mid-episode; seed 1 ends safe
    algo.observe(np.array([0.0, 0.0]), np.array([True, False]))  # seed 0's episode ends: it failed
    torch.testing.assert_close(algo.episode_cost(), torch.tensor([1.0, 0.0]))
    algo.observe(np.array([0.0, 1.0]), np.array([True, True]))  # seed 0 safe, seed 1 fails at its last step
    algo.observe(np.array([0.0, 0.0]), np.array([True, True]))  # both safe; a window of M = 2 forgets the oldest
    torch.testing.assert_close(algo.episode_cost(), torch.tensor([0.0, 0.5]))


def test_actor_maximises_q_minus_the_weighted_cost():
    algo = csc([torch.Generator().manual_seed(0)])
    algo.lagrange = torch.tensor([0.02])
    data = batch(1)
    expected = algo.twin_min(algo.critic, data.obs, data.actions) - 0.02 / (1 - 0.99) * algo.cost_critic(
        data.obs, data.actions
    )
    torch.testing.assert_close(algo.action_value(data.obs, data.actions), expected)


def test_update_and_explore_of_a_seed_do_not_depend_on_its_group():
    def run(generators, seed_column):
        algo = csc(generators, dual_lr=0.01)
        shared = batch(1)
        members = len(generators)
        costs = np.zeros(members)
        for step in range(3):
            costs[seed_column] = step == 0  # the seed's episode fails once, then ends
            algo.observe(costs.copy(), np.full(members, step == 1))
            data = Batch(
                *(
                    x.expand(members, *x.shape[1:]).clone()
                    for x in (shared.obs, shared.actions, shared.rewards, shared.next_obs, shared.not_done)
                ),
                extras={"costs": shared.extras["costs"].expand(members, -1).clone()},
            )
            logs = algo.update(data)
        with torch.no_grad():
            actions = algo.explore(shared.obs.expand(members, -1, -1))
        return algo, logs, actions

    alone, logs, actions_alone = run([torch.Generator().manual_seed(5)], 0)
    grouped, _, actions_grouped = run([torch.Generator().manual_seed(9), torch.Generator().manual_seed(5)], 1)
    assert {"cost_loss", "cost_q_data", "cost_q_policy", "lambda", "episode_cost", "critic_loss", "actor_loss"} <= set(
        logs
    )
    assert alone.lagrange.item() > 0  # the failed episode moved λ
    for module in ("actor", "cost_critic"):
        for pa, pg in zip(getattr(alone, module).parameters(), getattr(grouped, module).parameters()):
            torch.testing.assert_close(pa[0], pg[1])
    torch.testing.assert_close(alone.lagrange[0], grouped.lagrange[1])
    torch.testing.assert_close(actions_alone[0], actions_grouped[1])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (dict(threshold=0.0), "csc.threshold = 0.0"),
        (dict(candidates=0), "csc.candidates = 0"),
        (dict(dual_lr=-1.0), "csc.dual_lr = -1.0"),
        (dict(acceptance="chi2"), "csc.acceptance = 'chi2': must be one of"),
        (dict(dual="kkt"), "csc.dual = 'kkt': must be one of"),
    ],
)
def test_bad_options_name_the_field(option, message):
    with pytest.raises(ValueError, match=message):
        CSCConfig(**option)
