"""The papers' names for what the pipeline calls by id: algorithms (presets and variants), SAFER's methods, datasets.

Declared once here; every table and figure shows these names, and says which id each stands for.
"""

from __future__ import annotations

from collections.abc import Iterable

# Preset ids (offrl.algos.presets) and SAFER's downstream methods -> the names their papers use.
PAPER_NAMES = {
    "bc": "BC",
    "bc_10pct": "10%BC",
    "td3bc": "TD3+BC",
    "td3bc_10pct": "10%TD3+BC",
    "guided_td3bc": "Guided TD3+BC",
    "td3bc_gp": "TD3+BC+GP",
    "td3bc_cr": "TD3+BC+CR",
    "td3bc_pp": "TD3BC++",
    "sac": "SAC",
    "bear": "BEAR",
    "bear_pp": "BEAR++",
    "bcq": "BCQ",
    "bear_d4rl": "BEAR-QL (d4rl_evaluations)",
    "bear_pp_d4rl": "BEAR++ (d4rl_evaluations)",
    "cql": "CQL(H)",
    "cql_rho": "CQL(ρ)",
    "iql": "IQL",
    "fisher_brc": "Fisher-BRC",
    "uwac": "UWAC",
    "brac_p": "BRAC-p",
    "brac_v": "BRAC-v",
    "parrot": "PARROT",
    "contextual_parrot": "Context PAR.",
    "prior_explore": "Prior Explore",
    "safer": "SAFER",
    "safer_no_context": "SAFER w/o c",
    "csc": "CSC",
}
ENV_NAMES = {
    "hopper": "Hopper",
    "walker2d": "Walker2d",
    "halfcheetah": "HalfCheetah",
    "door": "Door",
    "hammer": "Hammer",
    "pen": "Pen",
    "relocate": "Relocate",
}


def paper_name(name: str) -> str:
    """The paper's name of an algorithm or method; a variant gets its preset's name and its own suffix.

    ``td3bc_pp`` -> ``TD3BC++``; ``bear_256`` -> ``BEAR (256)``; ``safer_u15`` -> ``SAFER (≤15% unsafe)``.
    """
    if name in PAPER_NAMES:
        return PAPER_NAMES[name]
    if name.startswith("safer_u") and name[len("safer_u") :].isdigit():
        return f"SAFER (≤{name[len('safer_u') :]}% unsafe)"
    prefixes = [known for known in PAPER_NAMES if name.startswith(f"{known}_")]
    if not prefixes:
        return name
    preset = max(prefixes, key=len)
    return f"{PAPER_NAMES[preset]} ({name[len(preset) + 1 :]})"


def dataset_name(dataset: str) -> str:
    """``hopper-medium-replay`` -> ``Hopper medium-replay``."""
    env, _, kind = dataset.partition("-")
    return f"{ENV_NAMES.get(env, env)} {kind}".strip()


def id_footnote(names: Iterable[str]) -> str:
    """Which id each shown name stands for: ``TD3+BC = td3bc, BC = bc`` (only where they differ)."""
    pairs = [f"{paper_name(name)} = {name}" for name in dict.fromkeys(names) if paper_name(name) != name]
    return f"ids: {', '.join(pairs)}" if pairs else ""


def spread_label(seeds: Iterable[int], spread: str = "mean ± s.d.") -> str:
    """What a line and its band or error bar show, from the seed count of each: ``mean ± s.d. over 5 seeds``
    (``2-3 seeds`` if they differ)."""
    counts = sorted({int(n) for n in seeds})
    if not counts:
        return spread
    number = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{spread} over {number} seed{'s' if counts[-1] != 1 else ''}"
