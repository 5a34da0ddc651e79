"""CQL(H) and CQL(ρ): the regulariser by hand, its plumbing over the 3N proposals, the Lagrange
multiplier, the deterministic backup, member independence and resume equality."""

import io
import math

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.cql import CQL, CQLConfig, conservative_gap
from offrl.algos.presets import build
from offrl.algos.sac import SAC


def test_cql_h_gap_by_hand():
    # One state, two sampled actions with Q = 1, 2 and log-densities 0, ln 2; Q(s, a) = 0.5 at the data:
    # gap = ln(e¹ + e²/2) − 0.5 = ln(2.7182818 + 3.6945280) − 0.5 = 1.3582975
    q_sampled, log_density, q_data = (
        torch.tensor([[1.0, 2.0]]),
        torch.tensor([[0.0, math.log(2.0)]]),
        torch.tensor([0.5]),
    )
    assert conservative_gap(q_sampled, log_density, q_data, "H").item() == pytest.approx(1.3582975, abs=1e-6)
    # T = 2: 2·ln(e^{1/2} + e^{(2 − ln 2)/2}) − 0.5 = 2·ln(1.6487213 + 1.9221155) − 0.5 = 2.0455999
    assert conservative_gap(q_sampled, log_density, q_data, "H", temperature=2.0).item() == pytest.approx(
        2.0455999, abs=1e-6
    )


def test_cql_rho_gap_by_hand():
    # No densities; the data's Q joins the samples: ln(e¹ + e² + e^{0.5}) − 0.5 = ln(11.7560592) − 0.5 = 1.9643688
    q_sampled, log_density, q_data = torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0, 7.0]]), torch.tensor([0.5])
    assert conservative_gap(q_sampled, log_density, q_data, "rho").item() == pytest.approx(1.9643688, abs=1e-6)


def test_gap_is_a_batch_mean_per_leading_index():
    q_sampled = torch.zeros(2, 3, 4)  # (members, B, K): every logit 0, so logsumexp = ln 4
    q_data = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    gap = conservative_gap(q_sampled, torch.zeros(()), q_data, "H")
    torch.testing.assert_close(gap, torch.tensor([math.log(4) - 1.0, math.log(4)]))


def test_unknown_regularizer_is_named():
    with pytest.raises(ValueError, match="regularizer must be one of"):
        CQLConfig(regularizer="kl")


def algo(seeds=(0,), **options) -> CQL:
    config = CQLConfig(**{"hidden": (16, 16), **options})
    return CQL(3, 2, [torch.Generator().manual_seed(s) for s in seeds], config, torch.device("cpu"))


def batch(members: int = 1, seed: int = 1, size: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs, actions = torch.randn(1, size, 3, generator=g), torch.rand(1, size, 2, generator=g) * 2 - 1
    rewards, next_obs = torch.randn(1, size, generator=g), torch.randn(1, size, 3, generator=g)
    grow = lambda x: x.expand(members, *x.shape[1:]).clone()  # noqa: E731
    return Batch(grow(obs), grow(actions), grow(rewards), grow(next_obs), torch.ones(members, size))


def test_proposals_uniform_and_policy_with_their_densities():
    cql = algo(samples=4)
    b = batch()
    actions, log_density = cql.sampled_actions(b)
    assert actions.shape == (1, 3, 8, 4, 2) and log_density.shape == (1, 3, 8, 4)
    assert ((actions[:, 0] >= -1) & (actions[:, 0] <= 1)).all()
    torch.testing.assert_close(log_density[:, 0], torch.full((1, 8, 4), 2 * math.log(0.5)))
    assert not actions.requires_grad and not log_density.requires_grad  # no gradient into π from the critic's loss


@pytest.mark.parametrize(
    "regularizer, options, expected",
    [
        ("H", {}, lambda w, n: 2 * w * math.log(3 * n)),  # every logit Q(s, a): gap = ln 3N for each critic
        ("rho", {}, lambda w, n: 2 * w * math.log(3 * n + 1)),  # the data's own Q joins: ln(3N + 1)
        ("H", {"lagrange_gap": 1.0}, lambda w, n: 2 * (w * math.log(3 * n) - 1.0)),  # α′ = 1 at the start
    ],
)
def test_critic_loss_adds_w_times_each_critics_gap(monkeypatch, regularizer, options, expected):
    # Every proposal is the dataset's own action with log-density 0, so each gap is known whatever the network.
    cql = algo(regularizer=regularizer, min_q_weight=5.0, samples=3, **options)
    b = batch()
    same = b.actions[:, None, :, None, :].expand(1, 3, 8, 3, 2)
    monkeypatch.setattr(cql, "sampled_actions", lambda _: (same, torch.zeros(1, 3, 8, 3)))
    loss, logs = cql.critic_loss(b)
    assert (loss - logs["td_loss"].sum()).item() == pytest.approx(expected(5.0, 3), rel=1e-5)


@pytest.mark.parametrize("gap, rises", [(3.0, True), (0.1, False)])
def test_lagrange_multiplier_rises_while_the_gap_exceeds_its_target(gap, rises):
    cql = algo(min_q_weight=1.0, lagrange_gap=1.0)
    before = cql.log_alpha_prime.item()
    cql.alpha_prime_opt.zero_grad()
    cql.lagrange_loss(torch.tensor([gap])).backward()
    cql.alpha_prime_opt.step()
    assert (cql.log_alpha_prime.item() > before) == rises


@pytest.mark.parametrize("backup_entropy", [False, True])
def test_deterministic_backup_leaves_the_temperature_out_of_the_target(backup_entropy):
    losses = []
    for log_alpha in (0.0, 3.0):
        cql = algo(backup_entropy=backup_entropy)
        with torch.no_grad():
            cql.log_alpha.fill_(log_alpha)
        losses.append(cql.td_loss(batch())[0].item())
    assert (losses[0] == losses[1]) != backup_entropy


def test_presets_and_config_defaults():
    gens = [torch.Generator().manual_seed(0)]
    h, rho = build("cql", 3, 2, gens, torch.device("cpu")), build("cql_rho", 3, 2, gens, torch.device("cpu"))
    assert (h.config.regularizer, rho.config.regularizer) == ("H", "rho")
    c = h.config  # young-geng/CQL's SimpleSAC, the TD3BC++ paper's CQL
    assert (c.min_q_weight, c.samples, c.actor_lr, c.alpha_lr, c.critic_lr, c.backup_entropy, c.lagrange_gap) == (
        5.0,
        10,
        3e-4,
        3e-4,
        3e-4,
        False,
        None,
    )
    assert (c.log_std, c.bc_warmup_fraction) == ("affine", 0.0)
    assert len(h.critic.mlp.layers) == 3 and len(h.actor.mlp.layers) == 3 and not h.normalize_states
    assert h.actor.log_std_offset.item() == -1.0 and h.actor.log_std_offset.requires_grad
    corl = CQLConfig()  # the config's defaults: CORL's MuJoCo configuration
    assert (corl.min_q_weight, corl.actor_lr, corl.hidden, corl.normalize_states) == (10.0, 3e-5, (256, 256, 256), True)


def test_bc_warmup_loss_by_hand_then_sacs():
    # One state, one action dim: μ = 0.3, log σ = log 0.5 (a bias-only actor), the dataset's action tanh(0.2),
    # the sampled pre-tanh action 0.3 + 0.5·ε. Loss = α·log π(ã | s) − log π(a | s).
    cql = CQL(
        3, 1, [torch.Generator().manual_seed(0)], CQLConfig(bc_warmup_fraction=0.5, hidden=()), torch.device("cpu")
    )
    cql.plan(4)
    assert cql.bc_warmup_steps == 2 and cql.capture_variant(2) and not cql.capture_variant(3)
    with torch.no_grad():
        layer = cql.actor.mlp.layers[0]
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([[[0.3, math.log(0.5)]]]))
        cql.log_alpha.fill_(math.log(0.2))
    obs, action = torch.zeros(1, 1, 3), torch.tanh(torch.tensor([[[0.2]]]))
    data = Batch(obs, action, torch.zeros(1, 1), obs, torch.ones(1, 1))

    def log_pi(u):  # tanh-Gaussian log density by hand
        gauss = -0.5 * ((u - 0.3) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
        return gauss - math.log(1 - math.tanh(u) ** 2)

    state = cql.generators[0].get_state()
    eps = torch.randn((1, 1), generator=cql.generators[0]).item()
    cql.generators[0].set_state(state)
    cql.updates = 1
    loss, _, _ = cql.actor_loss(data)
    assert loss.item() == pytest.approx(0.2 * log_pi(0.3 + 0.5 * eps) - log_pi(0.2), rel=1e-5)
    cql.updates = 3  # past the warm-up: SAC's loss
    cql.generators[0].set_state(state)
    sac_loss = SAC.actor_loss(cql, data)[0]
    cql.generators[0].set_state(state)
    assert cql.actor_loss(data)[0].item() == sac_loss.item()


@pytest.mark.parametrize("options", [{}, {"regularizer": "rho", "lagrange_gap": 1.0}])
def test_a_seed_does_not_depend_on_its_group(options):
    def run(seeds):
        cql = algo(seeds, **options)
        for _ in range(3):
            logs = cql.update(batch(len(seeds)))
        return cql, logs

    alone, logs = run((5,))
    grouped, _ = run((9, 5))
    assert {"critic_loss", "td_loss", "cql_gap", "q_mean", "actor_loss", "alpha"} <= set(logs)
    for pa, pg in zip(alone.actor.parameters(), grouped.actor.parameters()):
        torch.testing.assert_close(pa[0], pg[1])
    for pa, pg in zip(alone.critic.parameters(), grouped.critic.parameters()):
        torch.testing.assert_close(pa[[0, 1]], pg[[1, 3]])  # critic q of seed s is member q·S + s
    torch.testing.assert_close(alone.log_alpha_prime[0], grouped.log_alpha_prime[1])


def test_resumed_from_a_checkpoint_equals_uninterrupted():
    options = {"lagrange_gap": 1.0}
    straight = algo((3,), **options)
    for step in range(4):
        straight.update(batch(seed=step))
    first = algo((3,), **options)
    for step in range(2):
        first.update(batch(seed=step))
    saved = io.BytesIO()
    torch.save({"algorithm": first.state_dict(), "generators": [g.get_state() for g in first.generators]}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=False)
    resumed = algo((99,), **options)  # other initial weights and noise: everything must come from the checkpoint
    resumed.load_state_dict(state["algorithm"])
    for g, g_state in zip(resumed.generators, state["generators"]):
        g.set_state(g_state)
    for step in range(2, 4):
        resumed.update(batch(seed=step))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    for name in ("actor", "critic", "critic_target"):
        for pa, pb in zip(getattr(straight, name).parameters(), getattr(resumed, name).parameters()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)
