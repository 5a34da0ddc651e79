"""Offline training of a skill prior: PARROT's maximum likelihood and SAFER's contrastive objective.

SAFER (eq. 5, Algorithm 2) minimises, over a batch of safe and a batch of unsafe (s, a, Λ),

    NLL = −( mean log p_φ(a_safe | s, c_safe) − λ · mean log p_φ(a_unsafe | s, c_unsafe)
             − mean KL(q_ρ(c | Λ_safe) ‖ N(0, I)) − mean KL(q_ρ(c | Λ_unsafe) ‖ N(0, I)) ),

c drawn by reparameterisation. With ``free_bits`` > 0 each KL term is max(mean KL, free_bits) instead
(Kingma et al. 2016's free bits, a departure): with the paper's weight the posterior collapses to
N(0, I) within a thousand steps on our data and c reaches no action (docs/safer.md measures it);
below ``free_bits`` nats the KL costs nothing, so q_ρ keeps what Λ holds.

−λ·log p(a_unsafe) is unbounded below: the paper clips
gradients and "freezes this term if it starts to diverge". Here a row's unsafe term is
frozen once its log-likelihood is below ``unsafe_floor`` (it is pushed no further; the
share of frozen rows is logged), and the gradient norm is clipped to ``grad_clip``.

The kinds (:data:`PRIOR_KINDS`) switch the two parts on and off: PARROT has no safety variable
and no unsafe term; Contextual PARROT adds the safety variable; SAFER without c keeps the
unsafe term and drops the variable. Every kind's safe data are the same (``safe_set``): by default
every (s, a) of a trajectory that succeeded without a single violation (appendix D: PARROT's
prior is limited "to *both* safe and successful rollouts"; §3.2: "safe and successful trajectory
data"); ``safe_set = "pair"`` reads appendix B per pair instead ("w(s, a) = 0 for each training
point ... only those tuples in successful trajectories"), which keeps the safe steps of a
successful trajectory that touched a wall elsewhere. The unsafe data are the pairs with
ω(s, a) = 1. Algorithm 3 uses the same two sets (``offrl.safer.priors.evaluate.safety_bounds``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from offrl.files import write_atomically
from offrl.provenance import provenance
from offrl.safer.grasp_script import GraspRollouts
from offrl.safer.priors.model import SkillPrior, save_prior

OPTIMIZERS = ("adam", "sgd")
SAFE_SETS = ("trajectory", "pair")  # safe and successful trajectories, or safe pairs of successful ones


@dataclass
class PriorConfig:
    kind: str = "safer"
    steps: int = 500_000  # appendix C
    batch_size: int = 256
    optimizer: str = "sgd"  # SGD with momentum diverged less often than Adam (appendix C)
    lr: float = 1e-4
    momentum: float = 0.9
    grad_clip: float = 1.0
    unsafe_weight: float = 1e-4  # λ; the paper tuned {1e-4, 1e-5}
    unsafe_floor: float = -20.0  # log p(a_unsafe) below which a row's unsafe term is frozen
    context_dim: int = 8
    window: int = 16
    layers: int = 3
    hidden: tuple[int, ...] = (256, 256)
    encoder_dim: int = 32
    encoder_layers: int = 1
    seed: int = 0
    log_every: int = 500
    safe_set: str = "trajectory"  # see the module docstring
    free_bits: float = 0.0  # nats: a batch's mean KL below this is not penalised (0: the paper's ELBO; docs/safer.md)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer = {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.safe_set not in SAFE_SETS:
            raise ValueError(f"safe_set = {self.safe_set!r}; allowed: {', '.join(SAFE_SETS)}")
        for name in ("steps", "batch_size", "window", "layers", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be positive")
        if self.free_bits < 0:
            raise ValueError(f"free_bits = {self.free_bits}: must be ≥ 0")
        if self.unsafe_weight < 0 or self.context_dim < 0:
            raise ValueError(
                f"unsafe_weight = {self.unsafe_weight}, context_dim = {self.context_dim}: both must be ≥ 0"
            )


@dataclass(frozen=True)
class PriorKind:
    """What makes a kind itself; no option changes it."""

    safety_variable: bool  # conditions the flow on c ~ q_ρ(c | Λ)
    contrastive: bool  # the −λ·log p(a_unsafe) term
    optimizer: str  # the paper's choice for the kind, unless an option says otherwise


PRIOR_KINDS: dict[str, PriorKind] = {
    "parrot": PriorKind(
        safety_variable=False, contrastive=False, optimizer="adam"
    ),  # appendix D: Adam, lr 1e-4, 3 bijectors
    "contextual_parrot": PriorKind(safety_variable=True, contrastive=False, optimizer="adam"),
    "safer": PriorKind(safety_variable=True, contrastive=True, optimizer="sgd"),
    "safer_no_context": PriorKind(safety_variable=False, contrastive=True, optimizer="sgd"),
}


def prior_config(kind: str, **options: Any) -> PriorConfig:
    """The kind's configuration with ``options`` (any :class:`PriorConfig` field) on top.

    Options shared by every kind leave each kind itself: ``context_dim`` sizes c only where the
    kind has one (else 0), ``unsafe_weight`` is λ only for the contrastive kinds (else 0).
    """
    if kind not in PRIOR_KINDS:
        raise ValueError(f"prior kind {kind!r}; allowed: {', '.join(PRIOR_KINDS)}")
    known = {f.name for f in fields(PriorConfig)} - {"kind"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown prior option(s) {unknown}; allowed: {', '.join(sorted(known))}")
    structure = PRIOR_KINDS[kind]
    config = replace(PriorConfig(kind=kind, optimizer=structure.optimizer), **options)
    if structure.safety_variable and config.context_dim < 1:
        raise ValueError(f"context_dim = {config.context_dim}: {kind} has a safety variable, of at least 1 component")
    if structure.contrastive and not config.unsafe_weight > 0:
        raise ValueError(f"unsafe_weight = {config.unsafe_weight}: {kind}'s contrastive term needs λ > 0")
    return replace(
        config,
        context_dim=config.context_dim if structure.safety_variable else 0,
        unsafe_weight=config.unsafe_weight if structure.contrastive else 0.0,
    )


def safe_rows(data: GraspRollouts, safe_set: str = "trajectory") -> np.ndarray:
    """Algorithm 2's safe set: every row of a safe and successful trajectory, or (``"pair"``) the rows with
    ω(s, a) = 0 of trajectories that succeeded."""
    if safe_set not in SAFE_SETS:
        raise ValueError(f"safe_set = {safe_set!r}; allowed: {', '.join(SAFE_SETS)}")
    if safe_set == "pair":
        return np.flatnonzero(data.success & ~data.violations)
    episodes = data.transitions.episode_ids
    unsafe_episodes = np.unique(episodes[data.violations])
    return np.flatnonzero(data.success & ~np.isin(episodes, unsafe_episodes))


def kl_term(kl: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """The batch's KL term of the loss: its mean KL, or ``free_bits`` (no gradient) where the mean is below that."""
    return kl.mean().clamp(min=free_bits)


@dataclass
class _Part:
    """One of the two datasets as tensors, sampled with its own generator."""

    states: torch.Tensor
    actions: torch.Tensor
    windows: torch.Tensor
    generator: torch.Generator = field(repr=False)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.states), (batch_size,), generator=self.generator)
        return self.states[index], self.actions[index], self.windows[index]


def _part(data: GraspRollouts, rows: np.ndarray, seed: int) -> _Part:
    t = torch.as_tensor
    return _Part(
        t(data.transitions.observations[rows]),
        t(data.transitions.actions[rows]),
        t(data.windows[rows]),
        torch.Generator().manual_seed(seed),
    )


def train_prior(
    data: GraspRollouts, config: PriorConfig, out_dir: str | Path, progress: bool = True, command: str = ""
) -> dict[str, Any]:
    """Train one prior on the labelled grasp data; write ``prior.pt``, ``train_log.csv`` and ``config.json``."""
    c = config
    if data.windows.shape[1] != c.window:
        raise ValueError(
            f"the data's windows hold {data.windows.shape[1]} states; the config asks for window = {c.window}"
        )
    safe, unsafe = safe_rows(data, c.safe_set), np.flatnonzero(data.violations)
    if len(safe) == 0 or (c.unsafe_weight > 0 and len(unsafe) == 0):
        raise ValueError(
            f"{len(safe)} safe and {len(unsafe)} unsafe rows: {c.kind} needs both "
            "(collect more data or more failure modes)"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    torch.manual_seed(c.seed)
    prior = SkillPrior(
        data.transitions.observations.shape[1],
        data.transitions.actions.shape[1],
        c.context_dim,
        c.window,
        c.layers,
        c.hidden,
        c.encoder_dim,
        c.encoder_layers,
    )
    prior.set_state_statistics(data.transitions.observations)
    if c.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(prior.parameters(), lr=c.lr)
    else:
        optimizer = torch.optim.SGD(prior.parameters(), lr=c.lr, momentum=c.momentum)
    safe_part, unsafe_part = _part(data, safe, c.seed), _part(data, unsafe, c.seed + 1)
    context_noise = torch.Generator().manual_seed(c.seed + 2)
    contrastive = c.unsafe_weight > 0

    rows: list[dict[str, float]] = []
    totals: dict[str, float] = {}
    bar = tqdm(range(1, c.steps + 1), desc=f"prior {c.kind}", disable=not progress, mininterval=5.0)
    for step in bar:
        states, actions, windows = safe_part.sample(c.batch_size)
        log_p_safe, kl_safe = prior.log_prob(states, actions, windows, context_noise)
        loss = -log_p_safe.mean() + kl_term(kl_safe, c.free_bits)
        logs = {"log_p_safe": log_p_safe.mean(), "kl_safe": kl_safe.mean()}
        if contrastive:
            states, actions, windows = unsafe_part.sample(c.batch_size)
            log_p_unsafe, kl_unsafe = prior.log_prob(states, actions, windows, context_noise)
            loss = loss + c.unsafe_weight * log_p_unsafe.clamp(min=c.unsafe_floor).mean()
            loss = loss + kl_term(kl_unsafe, c.free_bits)
            logs |= {
                "log_p_unsafe": log_p_unsafe.mean(),
                "kl_unsafe": kl_unsafe.mean(),
                "frozen_unsafe": (log_p_unsafe < c.unsafe_floor).float().mean(),
            }
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(prior.parameters(), c.grad_clip)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the {c.kind} prior's loss is {loss.item()} at step {step}")
        optimizer.step()
        for name, value in (logs | {"loss": loss, "grad_norm": grad_norm}).items():
            totals[name] = totals.get(name, 0.0) + value.item()
        if step % c.log_every == 0 or step == c.steps:
            count = step - (rows[-1]["step"] if rows else 0)
            rows.append(
                {
                    "step": step,
                    **{name: total / count for name, total in totals.items()},
                    "wall_s": round(time.time() - started, 1),
                }
            )
            totals = {}
            bar.set_postfix(loss=f"{rows[-1]['loss']:.2f}")
    bar.close()

    record = {
        "kind": c.kind,
        "command": command,
        "config": asdict(c),
        "safe_rows": int(len(safe)),
        "unsafe_rows": int(len(unsafe)),
        "wall_time_s": round(time.time() - started, 1),
        **provenance(),
    }
    write_atomically(out_dir / "prior.pt", lambda tmp: save_prior(prior, tmp, kind=c.kind, safe_set=c.safe_set))
    write_atomically(out_dir / "config.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    write_atomically(out_dir / "train_log.csv", lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))
    return record
