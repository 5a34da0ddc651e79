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
    # The BEAR blog: naive offline SAC, BEAR-QL and BCQ; BEAR++ is BEAR-QL with both TD3BC++ plugins (λ_GP = 1, Table 7).
    "sac": Preset("sac"),
    "bear": Preset("bear"),
    "bear_pp": Preset("bear", {"gradient_penalty": 1.0, "relaxation": "minmax"}),
    "bcq": Preset("bcq"),
    # Baselines of TD3BC++'s Table 1 (Fisher-BRC, UWAC) and of the lecture slides (BRAC-p, BRAC-v).
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


def build(preset: str, obs_dim: int, act_dim: int, generators: list, device: Any, overrides: dict[str, Any] | None = None) -> Any:
    """Instantiate preset ``preset`` with ``overrides`` on top of its options."""
    cls, config_cls = _classes(preset)
    spec = PRESETS[preset]
    options = {**spec.options, **(overrides or {})}
    missing = [name for name in spec.required if options.get(name) is None]
    if missing:
        raise ValueError(f"algorithm {preset!r} needs option(s) {missing} (files a run supplies, e.g. --options '{{\"{missing[0]}\": ...}}')")
    check_options(preset, options)
    return cls(obs_dim, act_dim, generators, config_cls(**options), device)
