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
