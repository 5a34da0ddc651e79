# The BEAR blog's constants and input functions (its rules: bear_blog.smk, which includes this file).

BEAR_BLOG = config["bear_blog"]
BEAR_BLOG_DATASETS = [f"{env}-{kind}" for env in BEAR_BLOG["envs"] for kind in ("medium", "expert", "random")]
BEAR_FIG1_DATASETS = [
    f"{env}-expert-first{size}" for env in BEAR_BLOG["figure1_envs"] for size in BEAR_BLOG["figure1_sizes"]
]
BEAR_FIG1_RUNS = [
    run_dir(a, d, s) for a in BEAR_BLOG["figure1_algorithms"] for d in BEAR_FIG1_DATASETS for s in SEED_GROUPS
]


def bear_blog_targets():
    """The blog's figures the config asks for: Figure 1 with figure1_envs, Figures 7-9 with envs."""
    targets = ["results/figures/bear_fig1.png"] if BEAR_FIG1_DATASETS else []
    return targets + (["results/figures/bear_curves.png"] if BEAR_BLOG_DATASETS else [])
