# SAFER's constants and input functions (its rules: safer.smk, which includes this file).

SAFER = config["safer"]
SAFER_TASKS = SAFER["tasks"]
SAFER_DATA = SAFER["data"]
SAFER_DOWNSTREAM = SAFER["downstream"]
SAFER_EVAL_TASKS = list(range(1, SAFER_TASKS["eval"] + 1))  # calibration rollouts are cheap: every task
SAFER_SEED_GROUPS = seed_groups(SAFER_DOWNSTREAM["seeds"], SAFER_DOWNSTREAM["seeds_per_job"])
SAFER_TARGET_PERCENTS = [round(100 * target) for target in SAFER["bounds"]["targets"]]
SAFER_TABLE_PERCENT = round(100 * SAFER["bounds"]["table_target"])
# The prior each downstream method acts through (Prior-Explore samples SAFER's).
SAFER_METHOD_PRIOR = {
    "parrot": "parrot",
    "contextual_parrot": "contextual_parrot",
    "prior_explore": "safer",
    "safer": "safer",
    "safer_no_context": "safer_no_context",
}
TASK_ARGS = (
    f"--task-seed {SAFER_TASKS['seed']} --data-tasks {SAFER_TASKS['data']} --eval-tasks {SAFER_TASKS['eval']}"
    f" --look-steps {SAFER_TASKS['look_steps']}" + (" --observe-geometry" if SAFER_TASKS["observe_geometry"] else "")
)


wildcard_constraints:
    prior="parrot|contextual_parrot|safer_no_context|safer",
    method="sac|csc|parrot|contextual_parrot|prior_explore|safer_no_context|safer_u[0-9]+|safer",
    split="offline|holdout",
    task="[1-9][0-9]*",


def grasp_dataset(split):
    return f"resources/minari/grasp/{split}-v0"


def downstream_prior(method):
    """The prior and bound a method acts through: safer_uN is SAFER with the bound of target N %; sac and
    csc act on raw actions."""
    if method in ("sac", "csc"):
        return None, None
    if method.startswith("safer_u"):
        return "safer", int(method[len("safer_u") :])
    prior = SAFER_METHOD_PRIOR[method]
    return prior, SAFER_TABLE_PERCENT if method in ("safer", "safer_no_context") else None


def downstream_inputs(wildcards):
    prior, percent = downstream_prior(wildcards.method)
    inputs = {"summary": "resources/grasp/offline.json"}
    if prior is not None:
        inputs["prior"] = f"results/safer/priors/{prior}/prior.pt"
    if percent is not None:
        inputs["bounds"] = f"results/safer/priors/{prior}/bounds.csv"
    return inputs


def downstream_options(wildcards, input):
    prior, percent = downstream_prior(wildcards.method)
    if prior is None:
        return ""
    options = f"--prior {input.prior}"
    if percent is not None:
        options += f" --bounds {input.bounds} --target {percent / 100} --latent-map {SAFER['latent_map']}"
    return options


def downstream_logs(methods, tasks):
    return [
        f"results/safer/downstream/{method}/task{task}/seed{seeds}/log.csv"
        for method in methods
        for task in tasks
        for seeds in SAFER_SEED_GROUPS
    ]


def safer_runs_arguments(methods, tasks):
    """method:task=log.csv arguments of the report commands, one per seed group."""
    return " ".join(
        f"{method}:{task}=results/safer/downstream/{method}/task{task}/seed{seeds}/log.csv"
        for method in methods
        for task in tasks
        for seeds in SAFER_SEED_GROUPS
    )


def figure5_methods():
    """SAFER at every bound target; the table's target is the `safer` run itself."""
    return ["safer" if percent == SAFER_TABLE_PERCENT else f"safer_u{percent}" for percent in SAFER_TARGET_PERCENTS]


SAFER_ARTEFACTS = {
    "table1": "results/tables/safer_table1.md",
    "fig1": "results/figures/safer_fig1.png",
    "fig4": "results/figures/safer_fig4.png",
    "fig5": "results/figures/safer_fig5.png",
    "fig6": "results/figures/safer_fig6.png",
    "fig7": "results/figures/safer_fig7.png",
    "fig8": "results/figures/safer_fig8.png",
}


def safer_targets():
    return [SAFER_ARTEFACTS[name] for name in SAFER["artefacts"]]


# Resources (resources.smk): the scripted episodes of a split, prior steps, downstream member steps.
GRASP_EPISODES = {
    "offline": SAFER_DATA["episodes_per_task"] * SAFER_TASKS["data"],
    "holdout": SAFER_DATA["holdout_episodes_per_task"] * SAFER_TASKS["data"],
}
# The default scale's 1000 offline episodes hold ~39k scripted steps.
GRASP_STEPS_PER_EPISODE = 39
GRASP_TRANSITIONS = GRASP_EPISODES["offline"] * GRASP_STEPS_PER_EPISODE
GRASP_MEM_MB = mem_mb(GRASP_TRANSITIONS)
# The bounds and likelihood pass the data through a prior once: priced as rolling out as many transitions.
GRASP_PASS_RUNTIME = runtime_min("collect_dataset", GRASP_TRANSITIONS)
