import numpy as np
import pytest
import torch

from offrl.nets import EnsembleLinear, EnsembleMLP, QEnsemble


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
