"""Networks whose every layer carries a leading member dimension.

A member is one independent network: twin critics are 2 members, S seeds trained
together are S actors and S×2 critics. Inputs are shaped ``(members, batch, features)``;
one batched matmul (``torch.baddbmm``) runs all members at once, so training several
seeds in one process is a size, not a rewrite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# log σ of the tanh-Gaussian actor is clamped here, as CORL's SAC-N and CleanRL's SAC do.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
# How a tanh-Gaussian actor maps its network's raw output x to log σ (TanhGaussianActor's ``log_std``):
#   "clamp":  clamp(x, −5, 2) (rlkit's TanhGaussianPolicy, CORL, CleanRL);
#   "tanh":   −5 + 2.5·(tanh(x) + 1), in [−5, 0] (BRAC, google-research ``brac/networks.py::ActorNetwork``);
#   "affine": clamp(m·x + o, −20, 2) with learnable scalars m = 1, o = −1 at the start
#             (young-geng/CQL ``SimpleSAC/model.py::TanhGaussianPolicy``).
LOG_STD_MODES = ("clamp", "tanh", "affine")


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps, each initialised as ``nn.Linear`` would be.

    ``spectral_norm``: each member's weight is divided by its largest singular value σ, estimated
    as ``torch.nn.utils.spectral_norm`` does (vectors u and v kept as buffers, σ = uᵀWv with u, v
    held constant in the backward pass); the owner advances the power iteration with
    :meth:`power_iteration` (torch does one step per forward in training mode: here a forward has no
    side effect, so a probe of Q or an evaluation does not change training).
    """

    def __init__(self, members: int, in_features: int, out_features: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features))
        self.spectral_norm = spectral_norm
        if spectral_norm:
            self.register_buffer("u", F.normalize(torch.randn(members, out_features), dim=-1))
            self.register_buffer("v", F.normalize(torch.randn(members, in_features), dim=-1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default: kaiming_uniform(a=√5) on weights, U(±1/√fan_in) on biases.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    @torch.no_grad()
    def power_iteration(self) -> None:
        """One step of the power iteration that estimates each member's σ, in place (u, v are buffers)."""
        w = self.weight  # (M, in, out): member m maps x ↦ x·W[m], i.e. the matrix W[m]ᵀ of nn.Linear
        self.v.copy_(F.normalize(torch.bmm(w, self.u.unsqueeze(-1)).squeeze(-1), dim=-1, eps=1e-12))
        self.u.copy_(F.normalize(torch.bmm(self.v.unsqueeze(1), w).squeeze(1), dim=-1, eps=1e-12))

    def normalized_weight(self) -> torch.Tensor:
        """The weight each member applies: W, or W/σ(W) with spectral norm, σ = uᵀWv (u, v constant)."""
        if not self.spectral_norm:
            return self.weight
        sigma = torch.bmm(torch.bmm(self.v.unsqueeze(1), self.weight), self.u.unsqueeze(-1))  # (M, 1, 1)
        return self.weight / sigma

    def forward(self, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        weight = self.normalized_weight()
        if members is None:
            return torch.baddbmm(self.bias, x, weight)
        return torch.baddbmm(self.bias[members], x, weight[members])

    def extra_repr(self) -> str:
        norm = ", spectral_norm=True" if self.spectral_norm else ""
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}{norm}"


class EnsembleMLP(nn.Module):
    """ReLU MLP of ensemble linear layers: ``(M, B, in) -> (M, B, out)``."""

    def __init__(
        self,
        members: int,
        in_features: int,
        out_features: int,
        hidden: tuple[int, ...] = (256, 256),
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        sizes = (in_features, *hidden, out_features)
        self.layers = nn.ModuleList(EnsembleLinear(members, i, o, spectral_norm) for i, o in zip(sizes[:-1], sizes[1:]))
        self.members = members

    def power_iteration(self) -> None:
        """One power-iteration step of every spectral-normalised layer (see :class:`EnsembleLinear`)."""
        for layer in self.layers:
            if layer.spectral_norm:
                layer.power_iteration()

    def forward(
        self, x: torch.Tensor, members: slice | None = None, masks: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``members`` runs only those members (e.g. ``slice(0, 1)`` for TD3's Q1); ``masks``, one per
        hidden layer, multiply its activations (dropout with masks the caller draws, see :func:`dropout_masks`)."""
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x, members).relu_()  # in place: baddbmm's backward does not need its output
            if masks is not None:
                x = x * masks[i]
        return self.layers[-1](x, members)

    def dropout_masks(
        self, generators: list[torch.Generator], heads: int, rows: int, rate: float, device: torch.device
    ) -> list[torch.Tensor]:
        """Inverted-dropout masks (kept units scaled by 1/(1 − rate)), one per hidden layer, ``(heads·S, rows, width)``.

        Member ``h·S + s`` (head h of seed s) draws from ``generators[s]``, so a seed's masks do
        not depend on which other seeds share the ensemble.
        """
        masks = []
        for layer in self.layers[:-1]:
            # Drawn in place (no stacked copy, no bool-to-float conversion): these tensors are the
            # largest of a UWAC step, rows = 100 passes × 2560 next pairs.
            mask = torch.empty((heads, len(generators), rows, layer.out_features), device=device)
            for s, generator in enumerate(generators):
                mask[:, s].uniform_(generator=generator)  # the values torch.rand((heads, rows, width), generator) draws
            masks.append(mask.ge_(rate).mul_(1.0 / (1.0 - rate)).view(-1, rows, layer.out_features))
        return masks


def seeded_uniform(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``(S, *shape)`` uniform noise in [0, 1), member ``s`` drawn from ``generators[s]`` (as :func:`seeded_normal`)."""
    return torch.stack([torch.rand(shape, generator=g, device=device) for g in generators])


def seeded_normal(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``(S, *shape)`` standard normal noise, member ``s`` drawn from ``generators[s]``.

    A seed's noise then does not depend on which other seeds share its ensemble.
    """
    return torch.stack([torch.randn(shape, generator=g, device=device) for g in generators])


class DeterministicActor(nn.Module):
    """TD3's actor: ``max_action · tanh(MLP(s))`` for every member."""

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256), max_action: float = 1.0
    ) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim, act_dim, hidden)
        self.max_action = max_action
        # The constructor's arguments besides ``members``: enough to rebuild it for evaluation (offrl.policies).
        self.spec = {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": list(hidden), "max_action": max_action}

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.max_action * torch.tanh(self.mlp(obs))


def tanh_gaussian_log_density(pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Elementwise log density of a = tanh(u), u ~ N(mean, exp(log_std)²), at u = ``pre_tanh``.

    The change of variables subtracts log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)): the
    same value, without the log of a number that rounds to 0 when |u| is large.
    """
    gaussian = -0.5 * ((pre_tanh - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)
    return gaussian - 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))


def tanh_gaussian_log_prob(pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log π(a | s) of a = tanh(u), u ~ N(mean, exp(log_std)²), summed over the last (action) dimension."""
    return tanh_gaussian_log_density(pre_tanh, mean, log_std).sum(dim=-1)


def squashed_log_std(
    raw: torch.Tensor, mode: str = "clamp", scale: torch.Tensor | None = None, offset: torch.Tensor | None = None
) -> torch.Tensor:
    """log σ from the network's raw output by ``mode`` (see ``LOG_STD_MODES``); ``scale``, ``offset`` for "affine"."""
    if mode == "clamp":
        return raw.clamp(LOG_STD_MIN, LOG_STD_MAX)
    if mode == "tanh":
        return LOG_STD_MIN + 0.5 * (0.0 - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
    if mode == "affine":
        return (scale * raw + offset).clamp(-20.0, LOG_STD_MAX)
    raise ValueError(f"log_std must be one of {LOG_STD_MODES}, got {mode!r}")


class TanhGaussianActor(nn.Module):
    """SAC's and BEAR's actor: a = tanh(u), u ~ N(μ(s), σ(s)²), for every member.

    ``forward`` is the deterministic policy tanh(μ(s)) used for evaluation (the convention of
    TD3+BC's and d3rlpy's evaluations of stochastic actors); ``sample`` is the stochastic one.
    ``log_std`` maps the network's output to log σ (``LOG_STD_MODES``).
    """

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (256, 256), log_std: str = "clamp"
    ) -> None:
        super().__init__()
        if log_std not in LOG_STD_MODES:
            raise ValueError(f"log_std must be one of {LOG_STD_MODES}, got {log_std!r}")
        self.mlp = EnsembleMLP(members, obs_dim, 2 * act_dim, hidden)
        self.log_std_mode = log_std
        if log_std == "affine":  # one learnable scale and offset per member
            self.log_std_scale = nn.Parameter(torch.ones(members, 1, 1))
            self.log_std_offset = nn.Parameter(torch.full((members, 1, 1), -1.0))
        self.spec = {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": list(hidden)}
        if log_std != "clamp":  # snapshots written before the option rebuild with the default
            self.spec["log_std"] = log_std

    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ(s) and log σ(s), each ``(M, B, act_dim)``."""
        mean, raw = self.mlp(obs).chunk(2, dim=-1)
        if self.log_std_mode == "affine":
            return mean, squashed_log_std(raw, "affine", self.log_std_scale, self.log_std_offset)
        return mean, squashed_log_std(raw, self.log_std_mode)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.distribution(obs)[0])

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised a = tanh(μ + σ·noise): the action, its pre-tanh value u, and log π(a | s) ``(M, B)``."""
        mean, log_std = self.distribution(obs)
        pre_tanh = mean + log_std.exp() * noise
        return torch.tanh(pre_tanh), pre_tanh, tanh_gaussian_log_prob(pre_tanh, mean, log_std)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor, clip: float) -> torch.Tensor:
        """log π(a | s) ``(M, B)`` of given actions, clipped to ±(1 − ``clip``) so that atanh stays finite."""
        mean, log_std = self.distribution(obs)
        return tanh_gaussian_log_prob(torch.atanh(actions.clamp(clip - 1.0, 1.0 - clip)), mean, log_std)

    def entropy_estimate(self, obs: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """−log π(ã | s) ``(M, B)`` for one reparameterised ã ~ π(· | s) per state, member s's noise from
        ``generators[s]``."""
        return -self.sample(obs, seeded_normal(generators, (obs.shape[1], self.spec["act_dim"]), obs.device))[2]


class TanhGaussianMixture(nn.Module):
    """Fisher-BRC's behaviour model: per action dimension a mixture of ``components`` tanh-Gaussians.

    As google-research ``fisher_brc`` (``MixtureGuassianPolicy``): the network outputs logits,
    means and log σ (clamped to [−20, 2]) for every (dimension, component); each dimension
    is its own mixture (tfp's ``MixtureSameFamily`` over a batch of dimensions, then
    ``Independent``), so log μ(a | s) = Σ_d log Σ_k softmax(logits_d)_k · tanhN(a_d; m_dk, σ_dk).
    """

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, components: int = 5, hidden: tuple[int, ...] = (256, 256)
    ) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim, 3 * act_dim * components, hidden)
        self.act_dim, self.components = act_dim, components

    def components_at(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, means and clamped log σ, each ``(M, B, act_dim, components)``."""
        shape = (*obs.shape[:2], self.act_dim, self.components)
        logits, mean, log_std = (x.reshape(shape) for x in self.mlp(obs).chunk(3, dim=-1))
        return logits, mean, log_std.clamp(-20.0, LOG_STD_MAX)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor, clip: float = 1e-6) -> torch.Tensor:
        """log μ(a | s) ``(M, B)``, the actions clipped to ±(1 − ``clip``) as the reference does."""
        logits, mean, log_std = self.components_at(obs)
        pre_tanh = torch.atanh(actions.clamp(clip - 1.0, 1.0 - clip)).unsqueeze(-1)  # (M, B, act_dim, 1)
        per_dimension = torch.logsumexp(
            logits.log_softmax(dim=-1) + tanh_gaussian_log_density(pre_tanh, mean, log_std), dim=-1
        )
        return per_dimension.sum(dim=-1)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, uniform: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Actions ``(M, B, act_dim)``: each dimension's component chosen by ``uniform`` (inverse CDF), then
        tanh(m + σ·noise).

        Not reparameterised (tfp's mixture sample is not either), hence no gradient.
        """
        logits, mean, log_std = self.components_at(obs)
        below = (logits.softmax(dim=-1).cumsum(dim=-1) < uniform.unsqueeze(-1)).sum(dim=-1, keepdim=True)
        component = below.clamp_max(self.components - 1)  # rounding may leave the last cumulative sum just under 1
        pick = lambda x: x.gather(-1, component).squeeze(-1)  # noqa: E731
        return torch.tanh(pick(mean) + pick(log_std).exp() * noise)

    def entropy_estimate(
        self, obs: torch.Tensor, generators: list[torch.Generator], clip: float = 1e-6
    ) -> torch.Tensor:
        """−log μ(ã | s) ``(M, B)`` for one ã ~ μ(· | s) per state (the sample carries no gradient, as the
        reference's)."""
        shape = (obs.shape[1], self.act_dim)
        uniform = seeded_uniform(generators, shape, obs.device)
        return -self.log_prob(obs, self.sample(obs, uniform, seeded_normal(generators, shape, obs.device)), clip)


class EnsembleVAE(nn.Module):
    """The conditional VAE of BCQ and BEAR, a model of the behaviour policy, for every member.

    Encoder q(z | s, a) = N(μ, σ²) with log σ clamped to [−4, 15], decoder a = tanh(D(s, z));
    loss: mean (D(s, z) − a)² + ½·KL(q ‖ N(0, I)), both as sfujim/BCQ and aviralkumar2907/BEAR.
    """

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, latent_dim: int, hidden: tuple[int, ...] = (750, 750)
    ) -> None:
        super().__init__()
        self.encoder = EnsembleMLP(members, obs_dim + act_dim, 2 * latent_dim, hidden)
        self.decoder = EnsembleMLP(members, obs_dim + latent_dim, act_dim, hidden)
        self.latent_dim = latent_dim

    def loss(self, obs: torch.Tensor, act: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M,)`` each: the VAE loss and its reconstruction part; ``noise`` is z's standard normal draw."""
        mean, log_std = self.encoder(torch.cat([obs, act], dim=-1)).chunk(2, dim=-1)
        log_std = log_std.clamp(-4.0, 15.0)
        recon = self.decode(obs, mean + log_std.exp() * noise)
        recon_loss = (recon - act).square().mean(dim=(1, 2))
        kl = -0.5 * (1.0 + 2.0 * log_std - mean.square() - (2.0 * log_std).exp()).mean(dim=(1, 2))
        return recon_loss + 0.5 * kl, recon_loss

    def training_loss(
        self, obs: torch.Tensor, act: torch.Tensor, generators: list[torch.Generator]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss summed over members, each member's z drawn from its own generator, and its logs."""
        noise = seeded_normal(generators, (obs.shape[1], self.latent_dim), obs.device)
        per_member, recon = self.loss(obs, act, noise)
        return per_member.sum(), {"vae_loss": per_member.detach(), "vae_recon": recon.detach()}

    def decode_raw(self, obs: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """The decoder's output before tanh (BEAR measures the MMD there, where tanh does not saturate)."""
        return self.decoder(torch.cat([obs, latent], dim=-1))

    def decode(self, obs: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decode_raw(obs, latent))


def clipped_latent(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Latent draws for sampling from the VAE: N(0, I) clipped to ±0.5, as BCQ and BEAR decode."""
    return seeded_normal(generators, shape, device).clamp(-0.5, 0.5)


class Perturbation(nn.Module):
    """BCQ's perturbation model ξ: a + Φ·tanh(MLP(s, a)), clipped to the action box."""

    def __init__(
        self, members: int, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (400, 300), phi: float = 0.05
    ) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim + act_dim, act_dim, hidden)
        self.phi = phi

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return (act + self.phi * torch.tanh(self.mlp(torch.cat([obs, act], dim=-1)))).clamp(-1.0, 1.0)


class QEnsemble(nn.Module):
    """Q(s, a) for every member: ``(M, B, obs), (M, B, act) -> (M, B)``.

    An algorithm's K critics per seed are K·S members, member ``k·S + s`` critic ``k`` of seed ``s``:
    :meth:`heads` evaluates them all at each seed's pairs.
    """

    def __init__(
        self,
        members: int,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...] = (256, 256),
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.mlp = EnsembleMLP(members, obs_dim + act_dim, 1, hidden, spectral_norm)

    def forward(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        members: slice | None = None,
        masks: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        return self.mlp(torch.cat([obs, act], dim=-1), members, masks).squeeze(-1)

    def heads(
        self, obs: torch.Tensor, act: torch.Tensor, heads: int, masks: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """(K, S, N): every one of the ``heads`` = K critics of every seed at the seeds' pairs ``(S, N, ·)``.

        The batch is repeated K times, one copy per critic, and the output viewed as K critics.
        """
        seeds = obs.shape[0]
        return self(obs.repeat(heads, 1, 1), act.repeat(heads, 1, 1), masks=masks).view(heads, seeds, -1)

    def action_gradient(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """∇ₐQ(s, a) of every member, ``(M, B, act_dim)``, differentiable with respect to the weights.

        For a ReLU MLP the input gradient is the chain Wₐ·D₁·W₂·D₂·w₃ (weights transposed),
        Dₗ the 0/1 masks of the active hidden units. The masks are piecewise constant in the
        weights, so they come from a forward pass without a graph and only the chain of
        weights is differentiated: a gradient penalty then needs one backward pass, not
        autograd's double backward through the whole forward graph (about 1.6× cheaper).
        """
        layers = self.mlp.layers
        if layers[0].spectral_norm:
            raise ValueError(
                "action_gradient: spectral-normalised critics are not supported (gradient_penalty with spectral_norm)"
            )
        with torch.no_grad():
            x, masks = torch.cat([obs, act], dim=-1), []
            for layer in layers[:-1]:
                x = layer(x).relu_()
                masks.append(x > 0)
        grad = masks[-1] * layers[-1].weight.transpose(1, 2)  # (M, B, H): ∂Q/∂(last hidden pre-activation)
        for layer, mask in zip(reversed(layers[1:-1]), reversed(masks[:-1])):
            grad = torch.bmm(grad, layer.weight.transpose(1, 2)) * mask
        return torch.bmm(grad, layers[0].weight[:, obs.shape[-1] :].transpose(1, 2))


class BCQPolicy(nn.Module):
    """BCQ's policy (Fujimoto et al. 2019): among ``samples`` VAE actions, each perturbed by ξ, the argmax of Q₁.

    Holds the VAE, the perturbation model and both critics (members ``q·M + m``), so one
    state dict is the whole policy. The latent draws come from ``generator``, which
    :meth:`reseed` restarts: an evaluation of a snapshot is then reproducible.
    """

    def __init__(
        self,
        members: int,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...] = (400, 300),
        vae_hidden: tuple[int, ...] = (750, 750),
        latent_dim: int = 2,
        phi: float = 0.05,
        samples: int = 10,
    ) -> None:
        super().__init__()
        self.vae = EnsembleVAE(members, obs_dim, act_dim, latent_dim, tuple(vae_hidden))
        self.perturbation = Perturbation(members, obs_dim, act_dim, tuple(hidden), phi)
        self.critic = QEnsemble(2 * members, obs_dim, act_dim, tuple(hidden))
        self.members, self.samples = members, samples
        self.spec = {
            "obs_dim": obs_dim,
            "act_dim": act_dim,
            "hidden": list(hidden),
            "vae_hidden": list(vae_hidden),
            "latent_dim": latent_dim,
            "phi": phi,
            "samples": samples,
        }
        self.generator: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        self.generator = torch.Generator(device=self.critic.mlp.layers[0].weight.device).manual_seed(seed)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            self.reseed(0)
        members, batch, n = obs.shape[0], obs.shape[1], self.samples
        repeated = obs.repeat_interleave(n, dim=1)  # (M, B·n, obs): each state n times in a row
        latent = torch.randn(
            (members, batch * n, self.vae.latent_dim), generator=self.generator, device=obs.device
        ).clamp(-0.5, 0.5)
        actions = self.perturbation(repeated, self.vae.decode(repeated, latent))
        q1 = self.critic(repeated, actions, members=slice(0, members)).view(members, batch, n)
        best = q1.argmax(dim=2)[..., None, None].expand(-1, -1, 1, actions.shape[-1])
        return actions.view(members, batch, n, -1).gather(2, best).squeeze(2)


def twin_min(critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """(S, B): min(Q₁, Q₂) of each seed, for twin critics stored as 2·S members (Q₁ of every seed, then Q₂)."""
    return critic.heads(obs, actions, 2).min(dim=0).values


class SampledArgmaxPolicy(nn.Module):
    """A tanh-Gaussian actor evaluated as its authors' rlkit code does: among ``samples`` actions
    drawn from π(· | s), the one with the highest Q₁ (rlkit ``batch_rl_algorithm.py::policy_fn``, used by
    BEAR's d4rl_evaluations and UWAC; the original BEAR's ``select_action`` takes 10).

    Holds the actor and the critics (``heads`` per member, members ``k·M + m``), so one state dict is
    the whole policy. With ``dropout`` > 0 (UWAC's MC-dropout critics, dropout on at evaluation as
    there) Q₁ is the mean of ``dropout_samples`` passes. Draws come from ``generator``, which
    :meth:`reseed` restarts, as :class:`BCQPolicy`'s. ``samples`` = 0: the deterministic tanh(μ(s)).
    """

    def __init__(
        self,
        members: int,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...] = (256, 256),
        samples: int = 10,
        heads: int = 2,
        log_std: str = "clamp",
        spectral_norm: bool = False,
        dropout: float = 0.0,
        dropout_samples: int = 1,
    ) -> None:
        super().__init__()
        self.actor = TanhGaussianActor(members, obs_dim, act_dim, tuple(hidden), log_std)
        self.critic = QEnsemble(heads * members, obs_dim, act_dim, tuple(hidden), spectral_norm)
        self.members, self.samples, self.dropout, self.dropout_samples = members, samples, dropout, dropout_samples
        self.spec = {
            "obs_dim": obs_dim,
            "act_dim": act_dim,
            "hidden": list(hidden),
            "samples": samples,
            "heads": heads,
            "log_std": log_std,
            "spectral_norm": spectral_norm,
            "dropout": dropout,
            "dropout_samples": dropout_samples,
        }
        self.generator: torch.Generator | None = None

    MAX_ROWS = 2**20

    def reseed(self, seed: int) -> None:
        self.generator = torch.Generator(device=self.critic.mlp.layers[0].weight.device).manual_seed(seed)

    def q1(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(M, N) Q₁ of every member at its pairs; with dropout, the mean over ``dropout_samples`` passes."""
        if self.dropout == 0.0:
            return self.critic(obs, actions, members=slice(0, self.members))
        passes, rows = self.dropout_samples, obs.shape[1]
        masks = [
            torch.rand((self.members, passes * rows, layer.out_features), generator=self.generator, device=obs.device)
            .ge_(self.dropout)
            .mul_(1.0 / (1.0 - self.dropout))
            for layer in self.critic.mlp.layers[:-1]
        ]
        q = self.critic(obs.repeat(1, passes, 1), actions.repeat(1, passes, 1), slice(0, self.members), masks)
        return q.view(self.members, passes, rows).mean(dim=1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.samples == 0:
            return self.actor(obs)  # tanh(μ(s))
        if self.generator is None:
            self.reseed(0)
        # States in chunks of at most MAX_ROWS critic rows: UWAC's 100 samples × 100 passes are 10⁴ rows per
        # state, and the training loop's divergence probe asks about 10⁴ states at once.
        chunk = max(1, self.MAX_ROWS // (obs.shape[0] * self.samples * self.dropout_samples))
        return torch.cat([self.best_of_samples(part) for part in obs.split(chunk, dim=1)], dim=1)

    def best_of_samples(self, obs: torch.Tensor) -> torch.Tensor:
        """(M, B, act_dim): the argmax of Q₁ among ``samples`` actions from π at each state."""
        members, batch, n = obs.shape[0], obs.shape[1], self.samples
        repeated = obs.repeat_interleave(n, dim=1)  # (M, B·n, obs): each state n times in a row
        noise = torch.randn(
            (members, batch * n, self.actor.spec["act_dim"]), generator=self.generator, device=obs.device
        )
        actions = self.actor.sample(repeated, noise)[0]
        best = self.q1(repeated, actions).view(members, batch, n).argmax(dim=2)[..., None, None]
        return actions.view(members, batch, n, -1).gather(2, best.expand(-1, -1, 1, actions.shape[-1])).squeeze(2)


def seeded_init(generators: list[torch.Generator], *modules: tuple[nn.Module, int]) -> None:
    """Initialise each seed's members from its own generator: for seed s, in order, members ``k·S + s``
    (k < heads) of every ``(module, heads)`` (twin critics: heads 2), each by :func:`reinit_member`."""
    seeds = len(generators)
    for s, generator in enumerate(generators):
        for module, heads in modules:
            for k in range(heads):
                reinit_member(module, k * seeds + s, generator)


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
                if layer.spectral_norm:  # the power iteration's start vectors, drawn as spectral_norm's
                    for vector in (layer.u, layer.v):
                        vector[member] = F.normalize(
                            torch.randn(vector.shape[1:], generator=generator, device=vector.device), dim=-1
                        )


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module``'s parameters take no gradient inside the block: an actor's step needs ∂Q/∂a only."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def adam(params: Iterable[nn.Parameter], lr: float | torch.Tensor) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all tensors; ~1.1× faster steps on CPU)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss``: clear the gradients, backpropagate, update."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging, target ← (1 − τ)·target + τ·source, in one fused op per tensor list."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
