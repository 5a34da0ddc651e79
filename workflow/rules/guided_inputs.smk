# Guided TD3+BC's constants and input functions (its rules: guided.smk, which includes this file).

GUIDED_DATASETS = STUDY_DATASETS["guided.envs"]
GUIDED_EXTENSION_DATASETS = STUDY_DATASETS["guided.extension_envs"]
GUIDED_COMPARISON = ["td3bc", "guided_td3bc"]


def guided_targets():
    """Guided TD3+BC's Table 1 and Figure 1, when the run trains the guided preset."""
    if not any(preset_of(VARIANTS, algo) in GUIDED_ALGORITHMS for algo in ALGORITHMS):
        return []
    return ["results/tables/guided_table1.md", "results/figures/guided_fig1.png"]
