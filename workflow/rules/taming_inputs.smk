# The TD3BC++ study's constants and input functions (its rules: taming.smk, which includes this file).
import shlex

from offrl.config import adroit_study

TAMING = config["taming"]
CONTAMINATION = DATASETS["contamination"]
CLONED_CONTAMINATION = DATASETS["cloned_contamination"]
# The study's artefacts by their config name (taming.artefacts).
TAMING_ARTEFACTS = {
    "table1": "results/tables/taming_table1.md",
    "table8": "results/tables/taming_table8.md",
    **{
        fig: f"results/figures/taming_{fig}.png"
        for fig in ("fig3", "fig4", "fig5", "fig6", "fig7_gym", "fig8", "fig11")
    },
}
# The Adroit artefacts by their config name (taming.adroit.artefacts).
ADROIT_ARTEFACTS = {
    "table2": "results/tables/taming_table2.md",
    "table4": "results/tables/taming_table4.md",
    "fig7": "results/figures/taming_fig7.png",
}
# Each "++" method's Total is shown with its gain over the method it extends.
PLUS_PLUS = {"td3bc_pp": "td3bc", "bear_pp": "bear", "bear_pp_d4rl": "bear_d4rl"}


def contaminated_summaries():
    return expand("resources/datasets/{env}-expert-random-{percent}.json", env=ENVS, percent=CONTAMINATION) + expand(
        "resources/datasets/{env}-expert-cloned-{percent}.json", env=ENVS, percent=CLONED_CONTAMINATION
    )


def contamination_targets():
    """Table 3 when the config asks for contaminated datasets; the study's tables and figures with taming.envs,
    its Adroit ones with taming.adroit.envs."""
    targets = ["results/tables/contamination.md"] if CONTAMINATION or CLONED_CONTAMINATION else []
    if TAMING["envs"]:
        targets += [TAMING_ARTEFACTS[name] for name in TAMING["artefacts"]]
    if ADROIT["envs"]:
        targets += [ADROIT_ARTEFACTS[name] for name in ADROIT["artefacts"]]
    return targets


def taming_contaminated(keep=lambda percent: True):
    """The study's expert-random-X datasets whose X passes ``keep``, or all of them if none does."""
    chosen = [p for p in CONTAMINATION if keep(p)] or CONTAMINATION
    return [f"{env}-expert-random-{p}" for env in TAMING["envs"] for p in chosen]


def taming_with_medium_expert(keep):
    """Each study env's expert-medium dataset, then its expert-random-X datasets whose X passes ``keep``."""
    return [f"{env}-medium-expert" for env in TAMING["envs"]] + taming_contaminated(keep)


def taming_contaminated_runs():
    """Run directories of Figure 4: the figure's algorithms on the contaminated datasets."""
    return [run_dir(a, d, s) for a in TAMING["figure_algorithms"] for d in taming_contaminated() for s in SEED_GROUPS]


def gains(algorithms):
    """--gain options for each "++" method shown beside the method it extends."""
    return " ".join(f"--gain {a}:{b}" for a, b in PLUS_PLUS.items() if a in algorithms and b in algorithms)


# The paper's sweeps: Figure 5 on ER1-ER5, Figure 11 on expert-medium and ER3-ER7, Figure 7 on every ER.
TAMING_SWEEPS = taming_sweeps(TAMING)
TAMING_FIG5_DATASETS = taming_contaminated(lambda p: p <= 50)
TAMING_FIG11_DATASETS = taming_with_medium_expert(lambda p: p >= 30)
# Figure 8 (the ablation) on expert-medium, ER1, ER3 and ER5, the settings the paper discusses.
TAMING_FIG8_DATASETS = taming_with_medium_expert(lambda p: p <= 50)
TAMING_FIG7_GRID = [f"{name}:{alpha}:{weight}" for name, alpha, weight in TAMING_SWEEPS["fig7_grid"]]
# Tables 1 and 8: ± over every final episode, evaluation and seed; the Total's ± the sum of the rows'.
TAMING_SPREAD = "--spread pooled --total-spread sum"

# Adroit (taming.adroit): Table 2's cells, Table 4's datasets, Figure 7's (offrl.config.adroit_study).
ADROIT_STUDY = adroit_study(config)
ADROIT_TABLE2_EVALUATIONS = [
    f"{run_dir(algo, dataset, seeds)}/evaluation.csv" for algo, dataset in ADROIT_STUDY["runs"] for seeds in SEED_GROUPS
]
ADROIT_OMIT = " ".join(f"--omit {algo}:{dataset}" for algo, dataset in ADROIT_STUDY["omitted"])
# Artefacts of stand-in data say so, under the table or figure and in the report's caption.
ADROIT_NOTE = (
    "Built from stand-in data (a few episodes of a scripted or random policy, taming.adroit.source: standin),"
    " not D4RL's: the wiring is checked, the numbers mean nothing."
    if ADROIT["source"] == "standin"
    else ""
)
