import math

import numpy as np
import pytest
import torch

from offrl.nets import EnsembleLinear, EnsembleMLP, QEnsemble, SampledArgmaxPolicy, squashed_log_std, twin_min


def test_ensemble_linear_is_one_affine_map_per_member():
    layer = EnsembleLinear(3, 4, 2)
    x = torch.randn(3, 5, 4)
    y = layer(x)
    for m in range(3):
        torch.testing.assert_close(y[m], x[m] @ layer.weight[m] + layer.bias[m])


def test_member_slice_runs_only_those_members():
    q = QEnsemble(2, 11, 3)
    obs, act = torch.randn(2, 8, 11), torch.randn(2, 8, 3)
    torch.testing.assert_close(q(obs[:1], act[:1], members=slice(0, 1)), q(obs, act)[:1])


def test_members_are_independent():
    mlp = EnsembleMLP(2, 4, 1)
    x = torch.randn(2, 6, 4)
    mlp(x)[1].sum().backward()
    for layer in mlp.layers:
        assert torch.all(layer.weight.grad[0] == 0) and layer.weight.grad[1].abs().sum() > 0


def test_exported_snapshot_acts_on_raw_states_as_the_run_did_on_normalised_ones(tmp_path):
    from offrl.nets import DeterministicActor
    from offrl.policies import NumpyActor, export_snapshot, load_actor

    torch.manual_seed(0)
    actor = DeterministicActor(2, 3, 2, (8,))
    mean, std = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 3.0])
    run = {
        "seeds": [4, 7],
        "obs_dim": 3,
        "act_dim": 2,
        "hidden": [8],
        "obs_mean": mean,
        "obs_std": std,
        "actors": {10: {k: v.clone() for k, v in actor.state_dict().items()}},
    }
    torch.save(run, tmp_path / "snapshots.pt")
    export_snapshot(tmp_path / "snapshots.pt", tmp_path / "cloned.pt", member=1)
    raw = torch.randn(5, 3) * 3
    expected = actor(((raw - mean) / std).expand(2, -1, -1)).detach()[1].numpy()  # member 1 on normalised states
    exported = NumpyActor(load_actor(tmp_path / "cloned.pt"))
    np.testing.assert_allclose(exported(raw.numpy()), expected, atol=1e-5)


@pytest.mark.parametrize("hidden", [(5,), (7, 6), (4, 5, 3)])
def test_action_gradient_equals_autograds_double_backward(hidden):
    # Values and the weights' gradients of a penalty on ∇ₐQ, against autograd's create_graph route.
    torch.manual_seed(0)
    critic = QEnsemble(3, 4, 2, hidden)
    obs, act = torch.randn(3, 32, 4), torch.rand(3, 32, 2) * 2 - 1

    act_leaf = act.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(critic(obs, act_leaf).sum(), act_leaf, create_graph=True)
    reference_grads = torch.autograd.grad(
        reference.norm(dim=-1).square().sum(), list(critic.parameters()), allow_unused=True
    )

    grad = critic.action_gradient(obs, act)
    grads = torch.autograd.grad(grad.norm(dim=-1).square().sum(), list(critic.parameters()), allow_unused=True)
    assert torch.allclose(grad, reference, atol=1e-6)
    for ours, theirs in zip(grads, reference_grads):
        # Biases of the last layer do not enter ∇ₐQ: both give no gradient (or zeros) there.
        ours = torch.zeros(1) if ours is None else ours
        theirs = torch.zeros(1) if theirs is None else theirs
        assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.slow  # trains for tens of seconds on a loaded 2-core machine (--durations)
def test_vae_reconstruction_loss_falls_on_a_toy_dataset():
    from offrl.nets import EnsembleVAE, adam, seeded_normal

    g = torch.Generator().manual_seed(0)
    obs = torch.randn(1, 256, 3, generator=g)
    actions = torch.tanh(obs[..., :2] - 0.5 * obs[..., 2:])  # a deterministic behaviour policy
    torch.manual_seed(0)
    vae = EnsembleVAE(1, 3, 2, latent_dim=4, hidden=(32, 32))
    opt = adam(vae.parameters(), 3e-3)
    losses = []
    for _ in range(200):
        loss, recon = vae.loss(obs, actions, seeded_normal([g], (256, 4), obs.device))
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        losses.append(recon.item())
    assert losses[-1] < 0.25 * losses[0]


def test_clipped_latent_stays_within_half():
    from offrl.nets import clipped_latent

    z = clipped_latent([torch.Generator().manual_seed(0)] * 2, (1000, 3), torch.device("cpu"))
    assert z.shape == (2, 1000, 3) and z.abs().max() == 0.5


def test_heads_view_a_repeated_batch_as_k_critics_and_twin_min_takes_their_minimum():
    torch.manual_seed(0)
    critic = QEnsemble(6, 3, 2, (8,))  # 3 critics × 2 seeds, member k·S + s
    obs, act = torch.randn(2, 5, 3), torch.randn(2, 5, 2)
    heads = critic.heads(obs, act, 3)
    for k in range(3):
        for s in range(2):
            expected = critic(obs[s : s + 1], act[s : s + 1], members=slice(2 * k + s, 2 * k + s + 1))[0]
            torch.testing.assert_close(heads[k, s], expected)
    twin = QEnsemble(4, 3, 2, (8,))
    torch.testing.assert_close(twin_min(twin, obs, act), twin.heads(obs, act, 2).min(dim=0).values)


def test_spectral_norm_divides_each_member_by_its_largest_singular_value():
    layer = EnsembleLinear(2, 2, 2, spectral_norm=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[3.0, 0.0], [0.0, 1.0]], [[0.0, 0.5], [2.0, 0.0]]]))  # σ = 3 and 2
        layer.bias.zero_()
    for _ in range(30):
        layer.power_iteration()
    u = layer.u.clone()
    y = layer(torch.eye(2).expand(2, -1, -1))
    torch.testing.assert_close(y[0], torch.tensor([[1.0, 0.0], [0.0, 1.0 / 3.0]]))
    torch.testing.assert_close(y[1], torch.tensor([[0.0, 0.25], [1.0, 0.0]]))
    assert torch.equal(layer.u, u)  # a forward leaves the estimate alone


def test_spectral_norm_matches_torchs_on_one_forward():
    torch.manual_seed(0)
    ours = EnsembleLinear(1, 4, 3, spectral_norm=True)
    reference = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3))
    with torch.no_grad():
        reference.weight_orig.copy_(ours.weight[0].T)
        reference.bias.copy_(ours.bias[0, 0])
        reference.weight_u.copy_(ours.u[0])
        reference.weight_v.copy_(ours.v[0])
    x = torch.randn(5, 4)
    ours.power_iteration()  # torch's steps at each training forward
    torch.testing.assert_close(ours(x[None])[0], reference(x))


@pytest.mark.parametrize(
    "mode, raw, expected",
    [
        ("clamp", [-9.0, 0.0, 3.0], [-5.0, 0.0, 2.0]),
        # BRAC: −5 + 2.5·(tanh(x) + 1): x = 0 → −2.5; x = atanh(0.6) → −5 + 2.5·1.6 = −1; large → 0, −5
        ("tanh", [0.0, math.atanh(0.6), 30.0, -30.0], [-2.5, -1.0, 0.0, -5.0]),
        # young-geng: clamp(1·x − 1, −20, 2)
        ("affine", [0.5, 5.0, -30.0], [-0.5, 2.0, -20.0]),
    ],
)
def test_log_std_modes_by_hand(mode, raw, expected):
    scale, offset = torch.ones(1), torch.full((1,), -1.0)
    value = squashed_log_std(torch.tensor(raw), mode, scale, offset)
    assert value.tolist() == pytest.approx(expected, abs=1e-6)


def test_sampled_argmax_policy_picks_the_best_of_its_samples_by_q1():
    torch.manual_seed(0)
    policy = SampledArgmaxPolicy(2, 3, 2, (8,), samples=10, heads=2)
    obs = torch.randn(2, 6, 3)
    policy.reseed(7)
    chosen = policy(obs)
    g = torch.Generator().manual_seed(7)
    repeated = obs.repeat_interleave(10, dim=1)
    candidates = policy.actor.sample(repeated, torch.randn((2, 60, 2), generator=g))[0]
    q1 = policy.critic(repeated, candidates, members=slice(0, 2)).view(2, 6, 10)
    best = candidates.view(2, 6, 10, 2)[torch.arange(2)[:, None], torch.arange(6)[None, :], q1.argmax(dim=2)]
    torch.testing.assert_close(chosen, best)
    assert not torch.equal(chosen, candidates.view(2, 6, 10, 2)[:, :, 0])
    policy.reseed(7)
    torch.testing.assert_close(policy(obs), chosen)
    deterministic = SampledArgmaxPolicy(2, 3, 2, (8,), samples=0)
    torch.testing.assert_close(deterministic(obs), deterministic.actor(obs))  # 0 samples: tanh(μ(s))


def test_sampled_argmax_policy_in_chunks_equals_one_chunk_per_state():
    torch.manual_seed(0)
    policy = SampledArgmaxPolicy(2, 3, 2, (8,), samples=4, dropout=0.1, dropout_samples=3)
    obs = torch.randn(2, 5, 3)
    policy.MAX_ROWS = 2 * 4 * 3  # one state per chunk
    policy.reseed(1)
    chunked = policy(obs)
    policy.reseed(1)
    by_state = torch.cat([policy.best_of_samples(obs[:, b : b + 1]) for b in range(5)], dim=1)
    torch.testing.assert_close(chunked, by_state)


def test_sampled_argmax_policy_with_dropout_averages_q1_over_passes():
    # One hidden unit fixed at 1 and Q = its dropout mask: Q₁'s mean over 4 passes is 2·(kept share).
    policy = SampledArgmaxPolicy(1, 1, 1, (1,), samples=3, heads=2, dropout=0.5, dropout_samples=4)
    with torch.no_grad():
        first, last = policy.critic.mlp.layers
        first.weight.zero_(), first.bias.fill_(1.0), last.weight.fill_(1.0), last.bias.zero_()
    policy.reseed(3)
    q = policy.q1(torch.zeros(1, 3, 1), torch.zeros(1, 3, 1))
    g = torch.Generator().manual_seed(3)
    kept = (torch.rand((1, 12, 1), generator=g) >= 0.5).float().view(4, 3) * 2.0
    torch.testing.assert_close(q[0], kept.mean(dim=0))
