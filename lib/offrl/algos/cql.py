"""Conservative Q-Learning (Kumar, Zhou, Tucker, Levine 2020, "Conservative Q-Learning for Offline RL"): CQL(H) and
CQL(ρ).

SAC (:mod:`offrl.algos.sac`, its actor, temperature and target updates unchanged) whose critics are
pushed down at actions the policy or chance proposes and up at the dataset's (the paper's eq. 3 with
a regulariser R(μ)):

    critic:  Σᵢ [ mean_B (Qᵢ(s, a) − y)² + w·gapᵢ ],   y = r + γ·(1 − done)·min(Q₁′, Q₂′)(s′, a′),  a′ ~ π(· | s′)
             gapᵢ = mean_B [ T·logsumexpⱼ((Qᵢ(s, aⱼ) − cⱼ) / T) − Qᵢ(s, a) ]

over 3N sampled actions per state (N = 10): N uniform in [−1, 1]^A, N from π(· | s) and N from
π(· | s′), all evaluated at s and without gradient into π, as the authors' code does:

    CQL(H) (``regularizer="H"``, R = entropy, eq. 4): log Σₐ exp Q(s, a), estimated by importance
             sampling: cⱼ = log 0.5^A for the uniform draws and log π(aⱼ | ·) for the policy's
             (the authors' ``min_q_version=3``);
    CQL(ρ) (``regularizer="rho"``, R = −KL(μ ‖ ρ), ρ the previous policy): log E_ρ exp Q(s, a),
             the same logsumexp without the densities (cⱼ = 0) and with the dataset's action among
             the samples (the authors' ``min_q_version=2``, "CQL(rho)" in their launcher).

Lagrange variant (``lagrange_gap`` τ set, the paper's "CQL-Lagrange"): the critic's term becomes α′·(w·gapᵢ − τ)
with α′ = exp(log α′) clamped to [0, 10⁶]; log α′ ascends α′·(w·mean_i gapᵢ − τ) (Adam, the critic's
learning rate), so α′ grows while the gap exceeds τ.

Behaviour-cloning warm-up (``bc_warmup_fraction`` > 0, the authors' ``policy_eval_start``): for the
first share of the run the actor's loss is mean_B [α·log π(ã | s) − log π(a | s)] (a the dataset's
action), as ``d4rl/rlkit/torch/sac/cql.py::CQLTrainer.train_from_torch`` does for 40k steps.

The config's defaults are CORL's D4RL MuJoCo configurations (tinkoff-ai/CORL,
``configs/offline/cql/*/*.yaml``): w (``cql_min_q_weight``) = 10, N = 10, T = 1, no Lagrange,
importance sampling on, no entropy in the backup (``backup_entropy: false``; the authors'
``deterministic_backup``), policy and temperature learning rate 3e-5, critic 3e-4, τ = 0.005, batch
256, three hidden layers of 256, states normalised by the dataset's mean and std.

The preset ``cql`` is the CQL the TD3BC++ paper ran, young-geng/CQL (``SimpleSAC/conservative_sac.py``,
``conservative_sac_main.py``, ``model.py``): policy, temperature and critic learning rates 3e-4, two
hidden layers of 256, raw states, log σ = m·x + o with learnable m = 1, o = −1 clamped to [−20, 2]
(``log_std="affine"``, ``model.py::TanhGaussianPolicy``), w = 5 (``cql_min_q_weight``; the paper's
Table 5 sets it per env, config/paper.yaml), N = 10, T = 1, importance sampling, no Lagrange, no
entropy in the backup, no BC warm-up (``bc_epochs=0``). The authors' own launcher
(aviralkumar2907/CQL, ``d4rl/examples/cql_mujoco_new.py``) differs: policy lr 1e-4, three layers of
256, w = 5 or 10, and the 40k-step BC warm-up (``bc_warmup_fraction`` = 0.04 of 1M steps).

Departures: SAC's update order, the critic's step before the actor's (young-geng and the authors
take both from the networks before the step); nn.Linear's initialisation (young-geng: a
xavier-uniform last layer with gain 1e-2; CORL: orthogonal); the dataset's actions are not clipped
to ±0.999 (young-geng's ``clip_action``).

Members: ``S`` actors, ``2S`` critics (member ``q·S + s`` is critic ``q`` of seed ``s``), one
temperature and one α′ per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from offrl.algos.base import Batch
from offrl.algos.sac import SAC, SACConfig
from offrl.nets import adam, gradient_step, seeded_uniform

REGULARIZERS = ("H", "rho")
BC_CLIP = 1e-6  # the dataset's actions clipped to ±(1 − BC_CLIP) for atanh in the warm-up's log π(a | s)


@dataclass
class CQLConfig(SACConfig):
    actor_lr: float = 3e-5
    alpha_lr: float = 3e-5
    hidden: tuple[int, ...] = (256, 256, 256)
    backup_entropy: bool = False
    regularizer: str = "H"
    min_q_weight: float = 10.0  # w
    samples: int = 10  # N actions from each of the three proposals
    temperature: float = 1.0  # T of the logsumexp
    lagrange_gap: float | None = None  # τ: None keeps w fixed
    # The first share of the run trains the actor by behaviour cloning (aviralkumar2907/CQL: 40k steps).
    bc_warmup_fraction: float = 0.0
    normalize_states: bool = True  # CORL's normalize: true; young-geng and the authors train on raw states

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.bc_warmup_fraction <= 1.0:
            raise ValueError(f"bc_warmup_fraction must be in [0, 1], got {self.bc_warmup_fraction}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")


def conservative_gap(
    q_sampled: torch.Tensor,
    log_density: torch.Tensor,
    q_data: torch.Tensor,
    regularizer: str = "H",
    temperature: float = 1.0,
) -> torch.Tensor:
    """gap = mean_B [T·logsumexpⱼ((Q(s, aⱼ) − cⱼ)/T) − Q(s, a)], one value per leading index.

    ``q_sampled`` ``(..., B, K)`` at the sampled actions, ``log_density`` their log-densities
    (broadcastable; used by CQL(H) only), ``q_data`` ``(..., B)`` at the dataset's actions.
    """
    if regularizer == "H":
        logits = q_sampled - log_density
    elif regularizer == "rho":
        logits = torch.cat([q_sampled, q_data.unsqueeze(-1)], dim=-1)
    else:
        raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
    pushed_down = temperature * torch.logsumexp(logits / temperature, dim=-1)
    return (pushed_down - q_data).mean(dim=-1)


class CQL(SAC):
    checkpointed = (*SAC.checkpointed, "alpha_prime_opt")
    checkpointed_values = (*SAC.checkpointed_values, "log_alpha_prime", "updates")

    def __init__(
        self, obs_dim: int, act_dim: int, generators: list[torch.Generator], config: CQLConfig, device: torch.device
    ) -> None:
        super().__init__(obs_dim, act_dim, generators, config, device)
        self.normalize_states = config.normalize_states
        self.updates = 0
        self.bc_warmup_steps = 0
        self.log_alpha_prime = nn.Parameter(
            torch.zeros(self.seeds, device=device)
        )  # α′ = 1 at the start, as the authors
        self.alpha_prime_opt = adam([self.log_alpha_prime], config.critic_lr)

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: the BC warm-up is its first ``bc_warmup_fraction``."""
        self.bc_warmup_steps = round(self.config.bc_warmup_fraction * total_steps)

    def capture_variant(self, update: int) -> bool:
        """The branch the ``update``-th update takes (offrl.capture): the actor's BC warm-up or not."""
        return update <= self.bc_warmup_steps

    def actor_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """SAC's, or during the BC warm-up mean_B [α·log π(ã | s) − log π(a | s)] with a the dataset's action."""
        if self.updates > self.bc_warmup_steps:
            return super().actor_loss(batch)
        alpha = self.log_alpha.exp().detach()[:, None]
        _, _, log_prob = self.actor.sample(batch.obs, self.noise(batch.obs))
        log_likelihood = self.actor.log_prob(batch.obs, batch.actions, BC_CLIP)
        per_seed = (alpha * log_prob - log_likelihood).mean(dim=1)
        return (
            per_seed.sum(),
            log_prob.detach(),
            {"actor_loss": per_seed.detach(), "entropy": -log_prob.mean(dim=1).detach()},
        )

    def sampled_actions(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The 3N proposals per state, ``(S, 3, B, N, A)``: uniform, π(· | s), π(· | s′); and their log-densities
        ``(S, 3, B, N)``."""
        n, (seeds, batch_size, act_dim) = self.config.samples, batch.actions.shape
        with torch.no_grad():
            uniform = seeded_uniform(self.generators, (batch_size * n, act_dim), batch.actions.device) * 2.0 - 1.0
            proposals, log_densities = (
                [uniform],
                [torch.full((seeds, batch_size * n), act_dim * math.log(0.5), device=uniform.device)],
            )
            for obs in (batch.obs, batch.next_obs):
                repeated = obs.repeat_interleave(n, dim=1)  # each state n times in a row
                action, _, log_prob = self.actor.sample(repeated, self.noise(repeated))
                proposals.append(action)
                log_densities.append(log_prob)
        actions = torch.stack(proposals, dim=1).view(seeds, 3, batch_size, n, act_dim)
        return actions, torch.stack(log_densities, dim=1).view(seeds, 3, batch_size, n)

    def alpha_prime(self) -> torch.Tensor:
        return self.log_alpha_prime.exp().clamp(0.0, 1e6)

    def critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        td, q_data = self.td_loss(batch)  # (S,), (2, S, B)
        actions, log_density = self.sampled_actions(batch)
        seeds, _, batch_size, n, act_dim = actions.shape
        obs = batch.obs.repeat_interleave(n, dim=1).repeat(1, 3, 1)  # matches actions' (3, B, N) layout
        q_sampled = self.critic.heads(obs, actions.reshape(seeds, -1, act_dim), 2)
        q_sampled = (
            q_sampled.view(2, seeds, 3, batch_size, n).permute(0, 1, 3, 2, 4).reshape(2, seeds, batch_size, 3 * n)
        )
        log_density = log_density.permute(0, 2, 1, 3).reshape(seeds, batch_size, 3 * n)
        gap = conservative_gap(q_sampled, log_density, q_data, c.regularizer, c.temperature)  # (2, S)
        if c.lagrange_gap is None:
            conservative = c.min_q_weight * gap
        else:
            conservative = self.alpha_prime().detach() * (c.min_q_weight * gap - c.lagrange_gap)
        per_seed = td + conservative.sum(dim=0)
        return per_seed.sum(), {
            "critic_loss": per_seed.detach(),
            "td_loss": td.detach(),
            "q_mean": q_data[0].mean(dim=1).detach(),
            "cql_gap": gap.mean(dim=0).detach(),
        }

    def lagrange_loss(self, gap: torch.Tensor) -> torch.Tensor:
        """Descending it raises α′ where w·gap (S,) exceeds τ, lowers it where below."""
        c = self.config
        return -(self.alpha_prime() * (c.min_q_weight * gap - c.lagrange_gap)).sum()

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        self.updates += 1
        loss, logs = self.critic_loss(batch)
        gradient_step(self.critic_opt, loss)
        if self.config.lagrange_gap is not None:
            gradient_step(self.alpha_prime_opt, self.lagrange_loss(logs["cql_gap"]))
            logs["alpha_prime"] = self.alpha_prime().detach()
        return logs | self.actor_update(batch)
