"""Networks whose every layer carries a leading member dimension.

A member is one independent network: twin critics are 2 members, S seeds trained
together are S actors and S×2 critics. Inputs are shaped ``(members, batch, features)``;
one batched matmul (``torch.baddbmm``) runs all members at once, so training several
seeds in one process is a size, not a rewrite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps, each initialised as ``nn.Linear`` would be."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default: kaiming_uniform(a=√5) on weights, U(±1/√fan_in) on biases.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[members], x, self.weight[members])

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


class EnsembleMLP(nn.Module):
    """ReLU MLP of ensemble linear layers: ``(M, B, in) -> (M, B, out)``."""

    def __init__(self, members: int, in_features: int, out_features: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        sizes = (in_features, *hidden, out_features)
        self.layers = nn.ModuleList(EnsembleLinear(members, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.members = members

    def forward(self, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        """``members`` runs only those members (e.g. ``slice(0, 1)`` for TD3's Q1)."""
        for layer in self.layers[:-1]:
            x = layer(x, members).relu_()  # in place: baddbmm's backward does not need its output
        return self.layers[-1](x, members)


class DeterministicActor(nn.Module):
    """TD3's actor: ``max_action · tanh(MLP(s))`` for every member."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256), max_action: float = 1.0) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim, act_dim, hidden)
        self.max_action = max_action

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.mlp(obs))


class QEnsemble(nn.Module):
    """Q(s, a) for every member: ``(M, B, obs), (M, B, act) -> (M, B)``."""

    def __init__(self, members: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim + act_dim, 1, hidden)

    def forward(self, obs: torch.Tensor, act: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        return self.mlp(torch.cat([obs, act], dim=-1), members).squeeze(-1)

    def action_gradient(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """∇ₐQ(s, a) of every member, ``(M, B, act_dim)``, differentiable with respect to the weights.

        For a ReLU MLP the input gradient is the chain Wₐ·D₁·W₂·D₂·w₃ (weights transposed),
        Dₗ the 0/1 masks of the active hidden units. The masks are piecewise constant in the
        weights, so they come from a forward pass without a graph and only the chain of
        weights is differentiated: a gradient penalty then needs one backward pass, not
        autograd's double backward through the whole forward graph (about 1.6× cheaper).
        """
        layers = self.mlp.layers
        with torch.no_grad():
            x, masks = torch.cat([obs, act], dim=-1), []
            for layer in layers[:-1]:
                x = layer(x).relu_()
                masks.append(x > 0)
        grad = masks[-1] * layers[-1].weight.transpose(1, 2)  # (M, B, H): ∂Q/∂(last hidden pre-activation)
        for layer, mask in zip(reversed(layers[1:-1]), reversed(masks[:-1])):
            grad = torch.bmm(grad, layer.weight.transpose(1, 2)) * mask
        return torch.bmm(grad, layers[0].weight[:, obs.shape[-1]:].transpose(1, 2))


def reinit_member(module: nn.Module, member: int, generator: torch.Generator) -> None:
    """Re-draw member ``member`` of every ensemble layer in ``module`` from ``generator``.

    Each training seed initialises its own members from its own generator, so a seed's
    starting weights do not depend on which other seeds share the ensemble.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, EnsembleLinear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight[member].uniform_(-bound, bound, generator=generator)
                layer.bias[member].uniform_(-bound, bound, generator=generator)


def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all tensors; ~1.1× faster steps on CPU)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging, target ← (1 − τ)·target + τ·source, in one fused op per tensor list."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
