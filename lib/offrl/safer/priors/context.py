"""The safety variable's posterior q_ρ(c | Λ): a diagonal Gaussian from a window of states.

SAFER (section 3.2) encodes the window Λ of previous states with a transformer and reads a
mean and a log-variance off it; c is drawn by reparameterisation and pulled towards the
prior N(0, I) by a closed-form KL term. The paper encodes 48×48 images with a CNN first; our
states are vectors, so a linear projection takes its place.
"""

from __future__ import annotations

import torch
from torch import nn


class SafetyContextEncoder(nn.Module):
    """``(B, window, state_dim)`` windows → mean and log-variance of c, each ``(B, context_dim)``.

    Defaults follow appendix C where it gives them (8 components, a window of 16); the
    transformer's width and depth are ours, as the paper does not state them: one layer of
    width 32 trains about 5× faster on a CPU core than two of width 64 (a batch of 512
    windows: ~45 against ~9 updates a second), and the encoder, not the flow, sets the pace.
    """

    def __init__(
        self,
        state_dim: int,
        context_dim: int = 8,
        window: int = 16,
        model_dim: int = 32,
        heads: int = 4,
        layers: int = 1,
    ) -> None:
        super().__init__()
        if model_dim % heads:
            raise ValueError(f"model_dim = {model_dim}: must be a multiple of heads = {heads}")
        self.window, self.context_dim = window, context_dim
        self.embed = nn.Linear(state_dim, model_dim)
        # Learned positions: the zero-padded start of an episode must look different from its end.
        self.position_embedding = nn.Parameter(0.02 * torch.randn(window, model_dim))
        block = nn.TransformerEncoderLayer(
            model_dim, heads, dim_feedforward=2 * model_dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(model_dim), enable_nested_tensor=False)
        self.head = nn.Linear(model_dim, 2 * context_dim)

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if windows.shape[-2] != self.window:
            raise ValueError(f"windows have {windows.shape[-2]} states; this encoder takes window = {self.window}")
        tokens = self.encoder(self.embed(windows) + self.position_embedding)
        mean, log_var = self.head(tokens.mean(dim=-2)).chunk(2, dim=-1)
        return mean, log_var


def sample_context(mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """c = μ + σ·ε with ε ~ N(0, I): differentiable in μ and log σ² (the reparameterisation trick)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + (0.5 * log_var).exp() * noise


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per row: ½ Σ (σ² + μ² − 1 − log σ²)."""
    return 0.5 * (log_var.exp() + mean.square() - 1 - log_var).sum(-1)
