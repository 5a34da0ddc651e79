"""Conservative Safety Critics (Bharadhwaj et al., ICLR 2021) on SAC: safe exploration online.

The problem (the paper's Eq. 1; the lecture slides' "CSC"): max_π V_R^π(μ) subject to
V_C^π(μ) ≤ χ, with the cost c = ω, the step's safety violation, and V_C^π the discounted
probability of a failure. CSC learns a cost critic Q_C that over-estimates that probability,
executes only actions it deems safe, and trades reward against cost with a dual variable λ:

    cost critic:  α_C·(mean_B Q_C(s, a) − mean_B Q_C(s, ã)) + ½·mean_B (Q_C(s, a) − y_C)²,   ã ~ π(· | s)
                  y_C = c + γ·(1 − c)·(1 − done)·Q̄_C(s′, a′),   a′ ~ π(· | s′)
                  (Eq. 2: CQL's regulariser with its sign turned, so Q_C is pushed up at the
                  policy's actions and down at the replayed ones: an over-estimate)
    acting:       a₁ … a_K ~ π(· | s); execute the first a_k with Q_C(s, a_k) ≤ ε, or, when
                  none passes, argmin_k Q_C(s, a_k);  ε = (1 − γ)·(χ − V̂_C) (``acceptance="tightened"``)
                  or ε = χ (``"chi"``)
    actor:        SAC's loss + λ/(1 − γ)·mean_B Q_C(s, ã): the surrogate E[A_R] − λ/(1 − γ)·E[A_C]
                  with Q-values in place of advantages (a baseline V(s) leaves the gradient alone)
    dual:         λ ← max(0, λ + η_λ·(V̂_C − χ)),   V̂_C the share of the seed's last M ended
                  episodes that had a violation (χ before any has ended) (``dual="episodes"``);
                  ``"advantage"``: λ ← max(0, λ + η_λ·(V̂_C + mean_B [Q_C(s, ã) − Q_C(s, a)]/(1 − γ) − χ)),
                  the new policy's estimated cost (V̂_C plus its cost advantage, Q-values for advantages)
    critic, temperature: SAC's (offrl.algos.sac); Q̄_C is Q_C's Polyak-averaged target (τ).

The paper's text was not at hand here and its authors released no code (../shared/BASELINES.md §7): this
follows the slides (the constrained problem, "use the CQL update rule to guarantee that the probability
of an accident is overestimated", shown there with CQL(H)'s log-sum-exp) and the paper's Eq. 2 and
Algorithm 1 as we recall them, with the regulariser's expectation over π (CQL's first form) rather than
the slides' log-sum-exp. A third-party port (an OmniSafe-based CSC, ``csc.py::_update``,
``csc_actor_critic.py::CSCActorCritic.step``) reads Algorithm 1 as we recall it on the acting rule,
ε = (1 − γ)·(χ − V̂_C): the default. On the multiplier the two readings differ (our recollection: the
episodes' failures; the port: the cost advantage, with its step's sign turned): ``dual`` offers both,
the default the episodes' (plain dual ascent on V_C ≤ χ).

Departures from the paper, and why:

- The task learner is SAC (off-policy, one update per environment step, entropy with a learned
  temperature), so CSC runs in the same loop as the other downstream methods; the paper uses an
  on-policy natural policy gradient with a KL trust region δ and advantage estimates.
- The grasp task goes on after a violation (SAFER counts every violating step); the paper's
  episodes end at a failure. Only the cost critic treats a violation as absorbing, the (1 − c)
  in y_C, so Q_C stays the discounted probability of the next violation, in [0, 1] but for
  the conservative term.
- ``acceptance="chi"`` (an option, the project's earlier rule) rejects at χ itself: executing only
  actions whose over-estimated Q_C is at most χ bounds the estimated probability of a violation
  from every visited state by χ, a per-state form of the constraint. The tightened threshold is
  below 0 once V̂_C > χ: every draw is rejected and the least-cost one runs.
- The paper resamples until an action passes; here at most K candidates, drawn at once (the
  first that passes is the one sequential resampling would have stopped at), and the
  least-cost one when none passes.
- λ moves after every gradient step with the gap V̂_C − χ of a rolling window of M episodes,
  where the paper steps it with each epoch's average episodic failures.
- The first uniform-random steps of the downstream loop are not filtered: Q_C has not been
  trained yet (every method collects the same start).

Members: SAC's (``S`` actors, ``2S`` reward critics, one temperature per seed) and one cost
critic, one λ and one window of episodes per seed. CSC acts on the raw actions, as SAC: it
has no skill prior.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from offrl.algos.base import Batch
from offrl.algos.sac import SAC, SACConfig
from offrl.nets import QEnsemble, adam, frozen, gradient_step, seeded_init, soft_update

ACCEPTANCES = ("tightened", "chi")
DUALS = ("episodes", "advantage")


@dataclass
class CSCConfig:
    threshold: float = 0.1  # χ: the tolerated (discounted) probability of a violation
    cql_weight: float = 0.05  # α_C; small, as Q_C lies in [0, 1] where CQL's α of 5-10 meets returns in the hundreds
    candidates: int = 10  # K
    dual_lr: float = 1e-4  # η_λ per gradient step: at the widest gap λ/(1 − γ) grows by about 9 per 1000 steps
    initial_lambda: float = 0.0
    cost_episodes: int = 10  # M: ended episodes behind V̂_C (500 steps of 50-step episodes)
    acceptance: str = "tightened"  # ε = (1 − γ)(χ − V̂_C) (Algorithm 1), or "chi": ε = χ
    dual: str = "episodes"  # λ's step by V̂_C − χ, or "advantage": by V̂_C + E[A_C]/(1 − γ) − χ

    def __post_init__(self) -> None:
        if self.acceptance not in ACCEPTANCES:
            raise ValueError(f"csc.acceptance = {self.acceptance!r}: must be one of {ACCEPTANCES}")
        if self.dual not in DUALS:
            raise ValueError(f"csc.dual = {self.dual!r}: must be one of {DUALS}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"csc.threshold = {self.threshold}: χ is a probability, must be in (0, 1]")
        for name in ("cql_weight", "dual_lr", "initial_lambda"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"csc.{name} = {getattr(self, name)}: must be ≥ 0")
        for name in ("candidates", "cost_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"csc.{name} = {getattr(self, name)}: must be at least 1")


def conservative_cost_loss(
    q_data: torch.Tensor,
    q_policy: torch.Tensor,
    costs: torch.Tensor,
    not_done: torch.Tensor,
    next_cost: torch.Tensor,
    discount: float,
    weight: float,
) -> torch.Tensor:
    """Each seed's cost-critic loss ``(S,)`` from ``(S, B)`` tensors: Q_C at the replayed and at policy actions, c, 1 −
    done, Q̄_C(s′, a′)."""
    target = costs + discount * (1.0 - costs) * not_done * next_cost
    return weight * (q_data.mean(dim=1) - q_policy.mean(dim=1)) + 0.5 * (q_data - target.detach()).square().mean(dim=1)


def acceptance_threshold(threshold: float, episode_cost: torch.Tensor, discount: float, rule: str) -> torch.Tensor:
    """ε per seed ``(S,)``: (1 − γ)·(χ − V̂_C) (``"tightened"``, Algorithm 1) or χ (``"chi"``)."""
    if rule == "tightened":
        return (1.0 - discount) * (threshold - episode_cost)
    return torch.full_like(episode_cost, threshold)


def first_safe(costs: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Index along the last dimension: the first candidate with cost ≤ ``threshold`` (a number, or one per
    leading index, broadcast), else the least-cost one."""
    safe = costs <= threshold
    return torch.where(safe.any(dim=-1), safe.to(torch.uint8).argmax(dim=-1), costs.argmin(dim=-1))


def dual_step(lagrange: torch.Tensor, cost_estimate: torch.Tensor, threshold: float, lr: float) -> torch.Tensor:
    """λ after one projected gradient step: up while the estimated cost exceeds χ, down (to 0 at least) while below."""
    return (lagrange + lr * (cost_estimate - threshold)).clamp(min=0.0)


class CSC(SAC):
    # The window of recent episodes is not state: a restored run starts it afresh.
    checkpointed = SAC.checkpointed + ("cost_critic", "cost_target", "cost_opt")
    checkpointed_values = SAC.checkpointed_values + ("lagrange",)

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        generators: list[torch.Generator],
        config: SACConfig,
        csc: CSCConfig,
        device: torch.device,
    ) -> None:
        super().__init__(obs_dim, act_dim, generators, config, device)
        self.csc = csc
        self.cost_critic = QEnsemble(self.seeds, obs_dim, act_dim, tuple(config.hidden)).to(device)
        seeded_init(generators, (self.cost_critic, 1))
        self.cost_target = copy.deepcopy(self.cost_critic).requires_grad_(False)
        self.cost_opt = adam(self.cost_critic.parameters(), config.critic_lr)
        self.lagrange = torch.full((self.seeds,), csc.initial_lambda, device=device)
        self.episode_failures = [deque(maxlen=csc.cost_episodes) for _ in range(self.seeds)]
        self.failing = np.zeros(self.seeds, bool)  # the current episode of each seed has had a violation

    def observe(self, costs: np.ndarray, ended: np.ndarray) -> None:
        """Each environment's last step: its violation (S,) and whether its episode ended (S,)."""
        self.failing |= costs > 0
        for s in np.flatnonzero(ended):
            self.episode_failures[s].append(float(self.failing[s]))
            self.failing[s] = False

    def episode_cost(self) -> torch.Tensor:
        """V̂_C of each seed: the share of its last M ended episodes with a violation; χ before any ended."""
        return torch.tensor(
            [np.mean(f) if f else self.csc.threshold for f in self.episode_failures],
            dtype=torch.float32,
            device=self.lagrange.device,
        )

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """The executed actions ``(S, B, act_dim)``: of K draws from π, the first that Q_C deems safe, else the least
        costly."""
        seeds, batch, k = obs.shape[0], obs.shape[1], self.csc.candidates
        repeated = obs.repeat_interleave(k, dim=1)  # each state K times in a row
        actions = super().explore(repeated)
        costs = self.cost_critic(repeated, actions).view(seeds, batch, k)
        c = self.csc
        threshold = acceptance_threshold(c.threshold, self.episode_cost(), self.config.discount, c.acceptance)
        pick = first_safe(costs, threshold[:, None, None])[..., None, None].expand(-1, -1, 1, actions.shape[-1])
        return actions.view(seeds, batch, k, -1).gather(2, pick).squeeze(2)

    def action_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        penalty = self.lagrange[:, None] / (1.0 - self.config.discount) * self.cost_critic(obs, actions)
        return super().action_value(obs, actions) - penalty

    def cost_critic_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            next_action = self.actor.sample(batch.next_obs, self.noise(batch.next_obs))[0]
            next_cost = self.cost_target(batch.next_obs, next_action)
            policy_action = self.actor.sample(batch.obs, self.noise(batch.obs))[0]
        q_data = self.cost_critic(batch.obs, batch.actions)
        q_policy = self.cost_critic(batch.obs, policy_action)
        costs = batch.extras["costs"]
        per_seed = conservative_cost_loss(
            q_data, q_policy, costs, batch.not_done, next_cost, self.config.discount, self.csc.cql_weight
        )
        return per_seed.sum(), {
            "cost_loss": per_seed.detach(),
            "cost_q_data": q_data.mean(dim=1).detach(),
            "cost_q_policy": q_policy.mean(dim=1).detach(),
        }

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Algorithm 1's updates in its order: policy (with SAC's critic and temperature), cost critic, λ."""
        with frozen(self.cost_critic):  # the actor's penalty needs ∂Q_C/∂a only
            logs = super().update(batch)

        loss, cost_logs = self.cost_critic_loss(batch)
        gradient_step(self.cost_opt, loss)
        soft_update(self.cost_target, self.cost_critic, self.config.tau)

        episode_cost = estimate = self.episode_cost()
        if self.csc.dual == "advantage":  # the cost advantage of π's actions over the replayed ones
            advantage = cost_logs["cost_q_policy"] - cost_logs["cost_q_data"]
            estimate = episode_cost + advantage / (1.0 - self.config.discount)
        self.lagrange = dual_step(self.lagrange, estimate, self.csc.threshold, self.csc.dual_lr)
        return logs | cost_logs | {"lambda": self.lagrange.clone(), "episode_cost": episode_cost}
