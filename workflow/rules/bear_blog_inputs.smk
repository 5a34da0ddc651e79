# The BEAR blog's constants and input functions (its rules: bear_blog.smk, which includes this file).

BEAR_BLOG = config["bear_blog"]
BEAR_BLOG_DATASETS = STUDY_DATASETS["bear_blog.envs"]
BEAR_FIG1_DATASETS = STUDY_DATASETS["bear_blog.figure1_envs"]
BEAR_FIG1_RUNS = [
    run_dir(a, d, s) for a in BEAR_BLOG["figure1_algorithms"] for d in BEAR_FIG1_DATASETS for s in SEED_GROUPS
]


def bear_blog_targets():
    """The blog's figures the config asks for: Figure 1 with figure1_envs, Figures 7-9 with envs."""
    targets = ["results/figures/bear_fig1.png"] if BEAR_FIG1_DATASETS else []
    return targets + (["results/figures/bear_curves.png"] if BEAR_BLOG_DATASETS else [])
