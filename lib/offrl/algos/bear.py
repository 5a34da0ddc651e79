"""BEAR-QL (Kumar et al. 2019, "Stabilizing Off-Policy Q-Learning via Bootstrapping Error Reduction") and BEAR++.

Reference version: the authors' code, aviralkumar2907/BEAR (``algos.py``, and its README's
MuJoCo commands): Laplacian kernel with σ = 10 (their Hopper value, the config's default;
Walker2d's command uses a Gaussian kernel with σ = 20), n = 5 sampled actions per state, ε = 0.05 (the threshold
hard-coded in ``algos.py``), log α clamped to [−5, 10] (``lagrange_thresh`` = 10), K = 2 Q-functions,
``version`` 0 (the actor ascends the minimum over the ensemble), 10 sampled next actions,
400×300 actor and critics, 750×750 VAE, learning rates 1e-3 (Adam's default there).

    VAE:    the behaviour model β, mean (D(s, z) − a)² + ½·KL (offrl.nets.EnsembleVAE)
    critic: Σₖ mean_B w·(Qₖ(s, a) − y)²,
            y = r + γ·(1 − done)·maxⱼ [λ·minₖ Q′ₖ(s′, a′ⱼ) + (1 − λ)·maxₖ Q′ₖ(s′, a′ⱼ)],
                a′ⱼ ~ π′(· | s′), j ≤ 10, λ = 0.75
    actor:  mean_B [−w·minₖ meanⱼ Qₖ(s, ãⱼ) + α·MMD(s)],  ãⱼ ~ π(· | s) with its noise clipped to ±0.5, j ≤ n
            (``actor_q="first"``: minₖ Qₖ(s, ã₀) at the first sample only);
            during the warm-up mean_B α·MMD(s) alone
            (w ≡ 1 here; UWAC, offrl.algos.uwac, overrides ``target_values`` and ``actor_value``
             to weigh by uncertainty)
    α:      log α ascends mean_B α·(MMD(s) − ε), then is clamped to [−5, 10]

    MMD(s) = √(mean k(x, x′) + mean k(y, y′) − 2·mean k(x, y) + 1e-6), x the actor's n pre-tanh
    samples at s, y the VAE's (pre-tanh too: tanh would flatten the gradient where it saturates);
    k(x, y) = exp(−‖x − y‖₁ / 2σ) (laplacian) or exp(−‖x − y‖² / 2σ) (gaussian; σ not squared, as there).

The preset ``bear`` takes the README's per-env kernels: Gaussian σ = 20 for Walker2d (its command),
Laplacian σ = 10 otherwise. The TD3BC++ paper ran rail-berkeley/d4rl_evaluations' BEAR instead
(preset ``bear_d4rl``, :mod:`offrl.algos.presets`): per-env kernels with σ = 20, policy lr 1e-4,
Q lr 3e-4, 256-wide networks, a 40k-step warm-up. With few sampled actions the sampled MMD has a
floor from its diagonal terms: for two 5-action draws of one distribution (N(0, 0.1²) in 3-D) its
mean is 0.080 with Laplacian σ = 10, 0.057 with Laplacian σ = 20, 0.023 with Gaussian σ = 20.
Above ε = 0.05 the multiplier climbs to its clamp and BEAR turns into MMD-matching BC: the
log's ``mmd_constraint_met`` is the share of steps whose batch-mean constraint was at most ε,
the criterion the multiplier descends on.

Left out of the reference: the bootstrap masks on the critic loss and the ensemble-std term
λ·√((1 − δ)/δ)·std Q of the actor loss; log α starts at 0 (the reference draws it from N(0, 1)).
The reference's warm-up is ``if self.epoch >= 20`` in ``algos.py::BEAR.train``, an epoch being one
``train(iterations=eval_freq)`` call: 20 × 1000 = 20k steps with the README's ``--eval_freq=1000``,
``warmup_fraction`` = 0.02 of the paper scale's 1M steps (kept as that share at any scale).
Evaluation is the reference's ``BEAR.select_action``: ``eval_samples`` = 10 actions from π, the
argmax of Q₁ (:class:`offrl.nets.SampledArgmaxPolicy`); ``eval_samples`` = 0 evaluates tanh(μ(s)),
deterministic and cheaper (the convention of TD3+BC's and d3rlpy's evaluations).

rail-berkeley/d4rl_evaluations' BEAR (``bear/rlkit/torch/sac/bear.py::BEARTrainer``, the TD3BC++
paper's BEAR-QL, preset ``bear_d4rl``) departs from the original where these options say:
``target_policy="current"`` (next actions from π itself, ``self.policy(state_rep)``, no target
actor), ``actor_q="first"`` (the actor ascends minₖ Qₖ(s, ã₀) at the first of its n samples,
``actor_samples[:, 0, :]``), ``noise_clip=None`` (rlkit's TanhGaussianPolicy does not clip its
noise), n = 4 (``num_samples_mmd_match``), VAE lr 3e-4, and evaluation by argmax-Q₁ over 100 samples
(``batch_rl_algorithm.py::policy_fn`` with ``--num_samples 100``).

BEAR++ (the TD3BC++ paper, eq. 11) is two options composed from offrl.algos.plugins, the
functions TD3BC++ uses: the gradient penalty on the critic ensemble every ``gp_every`` steps,
and the constraint MMD(s)·W(s, β(s)) with W from the mean critic Q at the VAE's actions.

Members: ``S`` actors and VAEs, ``K·S`` critics (member ``k·S + s`` is critic ``k`` of seed
``s``), one log α per seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from offrl.algos.base import Batch, OfflineAlgorithm
from offrl.algos.plugins import PluginOptions, heads_gradient_penalty, penalty_inputs, relaxation_weight
from offrl.nets import (
    EnsembleVAE,
    QEnsemble,
    SampledArgmaxPolicy,
    adam,
    clipped_latent,
    frozen,
    gradient_step,
    seeded_init,
    seeded_normal,
    soft_update,
)

KERNELS = ("laplacian", "gaussian")
TARGET_POLICIES = ("target", "current")  # next actions from a Polyak-averaged copy of π (original) or π (rlkit)
ACTOR_QS = ("mean", "first")  # the actor's value: the mean over its n samples (original) or the first (rlkit)


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "laplacian", sigma: float = 10.0) -> torch.Tensor:
    """Sampled MMD between the sets ``x`` and ``y``, each ``(..., n, d)``: one value per leading index."""

    def mean_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = a.unsqueeze(-2) - b.unsqueeze(-3)  # (..., n, n, d)
        distance = diff.abs().sum(-1) if kernel == "laplacian" else diff.square().sum(-1)
        return torch.exp(-distance / (2.0 * sigma)).mean(dim=(-2, -1))

    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return (mean_kernel(x, x) + mean_kernel(y, y) - 2.0 * mean_kernel(x, y) + 1e-6).sqrt()


@dataclass
class BEARConfig(PluginOptions):  # and the TD3BC++ plugins' options (off by default)
    discount: float = 0.99
    tau: float = 0.005
    num_qs: int = 2
    lmbda: float = 0.75  # weight of the minimum in the target's min/max mix
    target_samples: int = 10
    kernel: str = "laplacian"
    sigma: float = 10.0
    mmd_samples: int = 5
    epsilon: float = 0.05
    log_alpha_max: float = 10.0
    warmup_fraction: float = 0.02
    target_policy: str = "target"
    actor_q: str = "mean"
    noise_clip: float | None = 0.5  # the actor's MMD samples' noise clipped to ±noise_clip; None: unclipped
    eval_samples: int = 10  # evaluation: argmax Q₁ over this many actions from π; 0: tanh(μ(s))
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    vae_lr: float = 1e-3
    alpha_lr: float = 1e-3
    hidden: tuple[int, ...] = (400, 300)
    vae_hidden: tuple[int, ...] = (750, 750)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")
        if self.target_policy not in TARGET_POLICIES:
            raise ValueError(f"target_policy must be one of {TARGET_POLICIES}, got {self.target_policy!r}")
        if self.actor_q not in ACTOR_QS:
            raise ValueError(f"actor_q must be one of {ACTOR_QS}, got {self.actor_q!r}")
        if self.eval_samples < 0:
            raise ValueError(f"eval_samples must be at least 0 (0: tanh(μ(s))), got {self.eval_samples}")


class BEAR(OfflineAlgorithm):
    checkpointed = (
        "pi",
        "critic",
        "vae",
        "actor_target",
        "critic_target",
        "actor_opt",
        "critic_opt",
        "vae_opt",
        "alpha_opt",
    )
    checkpointed_values = ("log_alpha", "updates")
    normalize_states = False  # raw states, as the reference

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: BEARConfig, device: torch.device
    ) -> None:
        self.config = c = config
        self.seeds = seeds = len(generators)
        self.generators = generators
        self.act_dim, self.latent_dim = act_dim, 2 * act_dim
        # The evaluation policy holds π and the critics: a snapshot is the whole policy.
        self.actor = SampledArgmaxPolicy(
            seeds, obs_dim, act_dim, tuple(c.hidden), c.eval_samples, c.num_qs, **self.policy_options()
        ).to(device)
        self.pi, self.critic = self.actor.actor, self.actor.critic
        self.vae = EnsembleVAE(seeds, obs_dim, act_dim, self.latent_dim, tuple(c.vae_hidden)).to(device)
        seeded_init(generators, (self.pi, 1), (self.vae, 1), (self.critic, c.num_qs))
        self.actor_target = copy.deepcopy(self.pi).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(
            torch.zeros(seeds, device=device)
        )  # α = 1 at the start; the reference draws log α from N(0, 1)
        self.actor_opt = adam(self.pi.parameters(), c.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), c.critic_lr)
        self.vae_opt = adam(self.vae.parameters(), c.vae_lr)
        self.alpha_opt = adam([self.log_alpha], c.alpha_lr)
        self.updates = 0
        self.warmup_steps = 0

    def policy_options(self) -> dict:
        """The evaluation policy's critic options besides its sizes (UWAC's: spectral norm, dropout)."""
        return {}

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: the warm-up is its first ``warmup_fraction``."""
        self.warmup_steps = round(self.config.warmup_fraction * total_steps)

    def ensemble(self, critic: QEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(K, S, N): every Q-function of every seed at the pairs ``(S, N, ·)``."""
        return critic.heads(obs, actions, self.config.num_qs)

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        n, batch_size = c.target_samples, batch.obs.shape[1]
        with torch.no_grad():
            next_obs = batch.next_obs.repeat_interleave(n, dim=1)  # each next state n times in a row
            noise = seeded_normal(self.generators, (batch_size * n, self.act_dim), next_obs.device)
            proposer = self.pi if c.target_policy == "current" else self.actor_target
            next_action, _, _ = proposer.sample(next_obs, noise)
            next_q, next_weight = self.target_values(next_obs, next_action)
            mixed = c.lmbda * next_q.min(dim=0).values + (1.0 - c.lmbda) * next_q.max(dim=0).values
            target = (
                batch.rewards + c.discount * batch.not_done * mixed.view(self.seeds, batch_size, n).max(dim=2).values
            )
            weight = (
                next_weight.view(self.seeds, batch_size, n).min(dim=2).values
            )  # each transition: its least trusted next pair's
        q = self.ensemble(self.critic, batch.obs, batch.actions)
        per_seed = (weight * (q - target).square()).mean(dim=2).sum(dim=0)
        logs = {}
        if c.gradient_penalty > 0 and self.updates % c.gp_every == 0:
            obs, actions = penalty_inputs(
                batch.obs, batch.actions, c.gp_repeats, c.gp_actions, self.generators, self.pi
            )
            penalty = heads_gradient_penalty(self.critic, obs, actions, c.num_qs, c.gp_threshold)
            per_seed = per_seed + c.gradient_penalty * penalty
            logs["gradient_penalty"] = penalty.detach()
        return per_seed.sum(), {"critic_loss": per_seed.detach(), "q_mean": q[0].mean(dim=1).detach(), **logs}

    def target_values(self, next_obs: torch.Tensor, next_action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, S, N) the target critics at the sampled next pairs, and (S, N) each pair's weight in the critic loss
        (1: BEAR weighs none)."""
        return self.ensemble(self.critic_target, next_obs, next_action), torch.ones(
            next_obs.shape[:2], device=next_obs.device
        )

    def first_sample(self, x: torch.Tensor) -> torch.Tensor:
        """``(S, B, ·)``: the first of each state's n rows of ``(S, B·n, ·)``."""
        return x.view(self.seeds, -1, self.config.mmd_samples, x.shape[-1])[:, :, 0]

    def actor_value(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, B) the value the actor ascends from its n samples per state ``(S, B·n, ·)``, and its weight (1):
        minₖ meanⱼ Qₖ(s, ãⱼ), or minₖ Qₖ(s, ã₀) (``actor_q="first"``)."""
        c = self.config
        if c.actor_q == "first":
            q = self.ensemble(self.critic, self.first_sample(obs), self.first_sample(action)).min(dim=0).values
        else:
            q = self.ensemble(self.critic, obs, action).view(c.num_qs, self.seeds, -1, c.mmd_samples)
            q = q.mean(dim=3).min(dim=0).values
        return q, torch.ones_like(q)

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The loss, the constraint per state (S, B) for the multiplier, and logs."""
        c = self.config
        n, batch_size = c.mmd_samples, batch.obs.shape[1]
        obs = batch.obs.repeat_interleave(n, dim=1)  # (S, B·n, obs)
        with torch.no_grad():
            behaviour_raw = self.vae.decode_raw(
                obs, clipped_latent(self.generators, (batch_size * n, self.latent_dim), obs.device)
            )
        noise = seeded_normal(self.generators, (batch_size * n, self.act_dim), obs.device)
        if c.noise_clip is not None:
            noise = noise.clamp(-c.noise_clip, c.noise_clip)
        action, policy_raw, _ = self.pi.sample(obs, noise)
        distance = mmd(
            policy_raw.view(self.seeds, batch_size, n, -1),
            behaviour_raw.view(self.seeds, batch_size, n, -1),
            c.kernel,
            c.sigma,
        )
        logs = {"mmd": distance.mean(dim=1).detach()}
        constraint = distance
        if c.relaxation is not None:
            weight = self.relaxation_weight(obs, torch.tanh(behaviour_raw))
            constraint = weight * distance
            logs["relaxation_weight_mean"] = weight.mean(dim=1)
        logs["mmd_constraint_met"] = (
            constraint.detach().mean(dim=1) <= c.epsilon
        ).float()  # the multiplier falls this step
        alpha = self.log_alpha.exp().detach()[:, None]
        if self.updates <= self.warmup_steps:
            per_seed = (alpha * constraint).mean(dim=1)
        else:
            q, weight = self.actor_value(obs, action)
            per_seed = (-weight * q + alpha * constraint).mean(dim=1)
        return per_seed.sum(), constraint.detach(), {"actor_loss": per_seed.detach(), **logs}

    @torch.no_grad()
    def relaxation_weight(self, obs: torch.Tensor, behaviour_actions: torch.Tensor) -> torch.Tensor:
        """(S, B): W(s, β(s)) from the mean of the critics over the VAE's n actions at s; no gradient flows through
        it."""
        q = (
            self.ensemble(self.critic, obs, behaviour_actions)
            .mean(dim=0)
            .view(self.seeds, -1, self.config.mmd_samples)
            .mean(dim=2)
        )
        return relaxation_weight(q, self.config.relaxation)

    def lagrange_loss(self, constraint: torch.Tensor) -> torch.Tensor:
        """Descending it raises α where the constraint (S, B) exceeds ε on average, lowers it where below."""
        return -(self.log_alpha.exp()[:, None] * (constraint - self.config.epsilon)).mean(dim=1).sum()

    def capture_variant(self, update: int) -> tuple[bool, bool]:
        """The branches the ``update``-th update takes (offrl.capture): the actor's warm-up, the gradient penalty."""
        c = self.config
        return update <= self.warmup_steps, c.gradient_penalty > 0 and update % c.gp_every == 0

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        loss, logs = self.vae.training_loss(batch.obs, batch.actions, self.generators)
        gradient_step(self.vae_opt, loss)

        loss, critic_logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)

        with frozen(self.critic):  # the actor step needs ∂Q/∂a only
            loss, constraint, actor_logs = self.actor_loss(batch)
            gradient_step(self.actor_opt, loss)

        loss = self.lagrange_loss(constraint)
        gradient_step(self.alpha_opt, loss)
        with torch.no_grad():
            self.log_alpha.clamp_(-5.0, self.config.log_alpha_max)

        soft_update(self.critic_target, self.critic, self.config.tau)
        soft_update(self.actor_target, self.pi, self.config.tau)
        return logs | critic_logs | actor_logs | {"alpha": self.log_alpha.exp().detach()}

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs)

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, B): each seed's minimum over its K critics at (s, a), the value its actor maximises."""
        return self.ensemble(self.critic, obs, actions).min(dim=0).values
