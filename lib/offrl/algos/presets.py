"""Named presets: an algorithm class and its options. Paper variants are presets, not copies."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Preset:
    algorithm: str  # module in offrl.algos
    options: dict[str, Any] = field(default_factory=dict)
    # Options only a run can supply (files it was given), which must be present at build time.
    required: tuple[str, ...] = ()
    # Train on the best trajectories only: this fraction of the episodes, by return ("10%BC").
    top_episodes: float | None = None
    # Options a reference sets per env, on top of ``options`` (a run's own options still win).
    env_options: dict[str, dict[str, Any]] = field(default_factory=dict)


# BEAR as the TD3BC++ paper ran it: rail-berkeley/d4rl_evaluations (rlkit), "the recommended settings for
# mujoco tasks": the author's per-env kernel and σ (aviralkumar2907/BEAR issue 8: Laplacian σ = 20 for Hopper and
# Walker2d, Gaussian σ = 20 for HalfCheetah), policy lr 1e-4, Q lr 3e-4, VAE lr 3e-4, 256-wide actor and critics
# (VAE 750-750), n = 4 MMD samples (BEARTrainer's num_samples_mmd_match), next actions from π itself, the actor's
# Q at its first sample, unclipped noise (bear/rlkit/torch/sac/bear.py::BEARTrainer.train_from_torch), evaluation
# by argmax Q₁ over 100 samples (rlkit/core/batch_rl_algorithm.py::policy_fn), and the first 40k steps of warm-up:
# 40k of the paper scale's 1M steps, kept as that share at any scale.
BEAR_D4RL = {
    "actor_lr": 1e-4,
    "critic_lr": 3e-4,
    "vae_lr": 3e-4,
    "hidden": (256, 256),
    "kernel": "laplacian",
    "sigma": 20.0,
    "mmd_samples": 4,
    "warmup_fraction": 0.04,
    "target_policy": "current",
    "actor_q": "first",
    "noise_clip": None,
    "eval_samples": 100,
}
# The TD3BC++ paper (appendix C.1): "for four adroit tasks, we use the Gaussian kernel".
BEAR_D4RL_ENVS = {env: {"kernel": "gaussian"} for env in ("halfcheetah", "door", "hammer", "pen", "relocate")}
# aviralkumar2907/BEAR's README commands: Laplacian σ = 10 for Hopper (BEARConfig's default, HalfCheetah's too),
# Gaussian σ = 20 for Walker2d.
BEAR_README_ENVS = {"walker2d": {"kernel": "gaussian", "sigma": 20.0}}

# CQL as the TD3BC++ paper ran it, young-geng/CQL's SimpleSAC (conservative_sac.py::get_default_config,
# conservative_sac_main.py, model.py): lrs 3e-4, 2×256 networks, raw states, log σ = m·x + o with learnable m, o
# (o = −1 at the start), w = 5 (the paper's Table 5 sets it per env in config/paper.yaml's env_options).
CQL_YOUNG_GENG = {
    "actor_lr": 3e-4,
    "alpha_lr": 3e-4,
    "hidden": (256, 256),
    "normalize_states": False,
    "log_std": "affine",
    "min_q_weight": 5.0,
}


PRESETS: dict[str, Preset] = {
    "bc": Preset("bc"),
    "td3bc": Preset("td3bc"),
    # Verma et al.: TD3+BC whose critic target leans on a safety expert where conf(s) is low.
    "guided_td3bc": Preset("td3bc", required=("guide_expert", "guide_index")),
    # TD3BC++ and its ablations (λ_GP = 1 for the gym tasks, the paper's Table 7).
    "td3bc_gp": Preset("td3bc", {"gradient_penalty": 1.0}),
    "td3bc_cr": Preset("td3bc", {"relaxation": "minmax"}),
    "td3bc_pp": Preset("td3bc", {"gradient_penalty": 1.0, "relaxation": "minmax"}),
    # The TD3BC++ paper's naive baselines: the top 10% of trajectories by return.
    "bc_10pct": Preset("bc", top_episodes=0.1),
    "td3bc_10pct": Preset("td3bc", top_episodes=0.1),
    # The BEAR blog: naive offline SAC, BEAR-QL and BCQ; BEAR++ is BEAR-QL with both TD3BC++ plugins (λ_GP = 1,
    # Table 7).
    "sac": Preset("sac"),
    "bear": Preset("bear", env_options=BEAR_README_ENVS),
    "bear_pp": Preset("bear", {"gradient_penalty": 1.0, "relaxation": "minmax"}, env_options=BEAR_README_ENVS),
    # The TD3BC++ study's BEAR-QL and BEAR++ (d4rl_evaluations' settings, above).
    "bear_d4rl": Preset("bear", BEAR_D4RL, env_options=BEAR_D4RL_ENVS),
    "bear_pp_d4rl": Preset(
        "bear", {**BEAR_D4RL, "gradient_penalty": 1.0, "relaxation": "minmax"}, env_options=BEAR_D4RL_ENVS
    ),
    "bcq": Preset("bcq"),
    # TD3BC++'s other baselines: CQL(H) and CQL(ρ) (Kumar et al. 2020) and IQL (Kostrikov et al. 2021),
    # Fisher-BRC and UWAC; the lecture slides' BRAC-p and BRAC-v.
    "cql": Preset("cql", CQL_YOUNG_GENG),
    "cql_rho": Preset("cql", {**CQL_YOUNG_GENG, "regularizer": "rho"}),
    "iql": Preset("iql"),
    "fisher_brc": Preset("fisher_brc"),
    "uwac": Preset("uwac"),
    "brac_p": Preset("brac", {"value_penalty": False}),
    "brac_v": Preset("brac", {"value_penalty": True}),
}


def training_data(preset: str, dataset: Any) -> Any:
    """The part of ``dataset`` preset ``preset`` trains on: all of it, or its best episodes."""
    fraction = PRESETS[preset].top_episodes if preset in PRESETS else None
    return dataset if fraction is None else dataset.top_episodes(fraction)


# Each algorithm module of offrl.algos and its (algorithm class, config class), imported on use.
ALGORITHMS: dict[str, tuple[str, str]] = {
    "bc": ("BC", "BCConfig"),
    "td3bc": ("TD3BC", "TD3BCConfig"),
    "sac": ("SAC", "SACConfig"),
    "bear": ("BEAR", "BEARConfig"),
    "bcq": ("BCQ", "BCQConfig"),
    "cql": ("CQL", "CQLConfig"),
    "iql": ("IQL", "IQLConfig"),
    "fisher_brc": ("FisherBRC", "FisherBRCConfig"),
    "uwac": ("UWAC", "UWACConfig"),
    "brac": ("BRAC", "BRACConfig"),
}


def _classes(preset: str) -> tuple[type, type]:
    if preset not in PRESETS:
        raise ValueError(f"unknown algorithm {preset!r}; allowed: {', '.join(sorted(PRESETS))}")
    algorithm = PRESETS[preset].algorithm
    module = importlib.import_module(f"offrl.algos.{algorithm}")
    cls, config_cls = ALGORITHMS[algorithm]
    return getattr(module, cls), getattr(module, config_cls)


def check_options(preset: str, options: dict[str, Any]) -> None:
    """Raise ValueError naming any option the preset's algorithm does not have, and the allowed ones."""
    _, config_cls = _classes(preset)
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for algorithm {preset!r}; allowed: {sorted(known)}")


def preset_options(preset: str, env: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A preset's options on ``env``: its own, then its per-env ones, then ``overrides`` (a run's, e.g. a variant's)."""
    spec = PRESETS[preset]
    return {**spec.options, **spec.env_options.get(env, {}), **(overrides or {})}


def build(
    preset: str,
    obs_dim: int,
    act_dim: int,
    generators: list,
    device: Any,
    overrides: dict[str, Any] | None = None,
    env: str | None = None,
) -> Any:
    """Instantiate preset ``preset`` on ``env`` (for per-env options) with ``overrides`` on top of its options."""
    cls, config_cls = _classes(preset)
    spec = PRESETS[preset]
    options = preset_options(preset, env, overrides)
    missing = [name for name in spec.required if options.get(name) is None]
    if missing:
        raise ValueError(
            f"algorithm {preset!r} needs option(s) {missing} "
            f"(files a run supplies, e.g. --options '{{\"{missing[0]}\": ...}}')"
        )
    check_options(preset, options)
    return cls(obs_dim, act_dim, generators, config_cls(**options), device)
