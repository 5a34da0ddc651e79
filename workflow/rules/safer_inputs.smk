# SAFER's constants and input functions (its rules: safer.smk, which includes this file).

SAFER = config["safer"]
SAFER_TASKS = SAFER["tasks"]
SAFER_DATA = SAFER["data"]
SAFER_DOWNSTREAM = SAFER["downstream"]
SAFER_EVAL_TASKS = list(range(1, SAFER_TASKS["eval"] + 1))  # calibration rollouts are cheap: every task
SAFER_SEED_GROUPS = seed_groups(SAFER_DOWNSTREAM["seeds"], SAFER_DOWNSTREAM["seeds_per_job"])
SAFER_TARGET_PERCENTS = [round(100 * target) for target in SAFER["bounds"]["targets"]]
SAFER_TABLE_PERCENT = round(100 * SAFER["bounds"]["table_target"])
# Table 1 and Figure 4's checks count the priors' spread: each prior-based run is repeated on every prior
# seed. Figures 1 and 5-8 draw the first prior of each kind.
SAFER_PRIOR_SEEDS = SAFER["prior"]["seeds"]
FIRST_PRIOR = SAFER_PRIOR_SEEDS[:1]
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
    prior_seed="[0-9]+|none",


def grasp_dataset(split):
    return f"resources/minari/grasp/{split}-v0"


def prior_file(prior, seed, name="prior.pt"):
    return f"results/safer/priors/{prior}/seed{seed}/{name}"


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
    if (prior is None) != (wildcards.prior_seed == "none"):
        raise ValueError(f"{wildcards.method} runs with prior seed {wildcards.prior_seed!r}: a number for a prior")
    if prior is not None:
        inputs["prior"] = prior_file(prior, wildcards.prior_seed)
    if percent is not None:
        inputs["bounds"] = prior_file(prior, wildcards.prior_seed, "bounds.csv")
    return inputs


def downstream_options(wildcards, input):
    prior, percent = downstream_prior(wildcards.method)
    if prior is None:
        return ""
    options = f"--prior {input.prior}"
    if percent is not None:
        options += f" --bounds {input.bounds} --target {percent / 100} --latent-map {SAFER['latent_map']}"
    return options


def run_priors(method, prior_seeds):
    """The prior seeds a method's runs act through: none for raw actions."""
    return ["none"] if downstream_prior(method)[0] is None else prior_seeds


def downstream_runs(methods, tasks, prior_seeds):
    """(method, task, prior seed, log.csv) of every run, one per seed group and prior seed."""
    return [
        (method, task, prior, f"results/safer/downstream/{method}/task{task}/prior{prior}/seed{seeds}/log.csv")
        for method in methods
        for task in tasks
        for prior in run_priors(method, prior_seeds)
        for seeds in SAFER_SEED_GROUPS
    ]


def downstream_logs(methods, tasks, prior_seeds=SAFER_PRIOR_SEEDS):
    return [path for *_, path in downstream_runs(methods, tasks, prior_seeds)]


def safer_runs_arguments(methods, tasks, prior_seeds=SAFER_PRIOR_SEEDS):
    """METHOD:TASK[:PRIOR_SEED]=log.csv arguments of the report commands, one per seed group and prior."""
    return " ".join(
        f"{method}:{task}{'' if prior == 'none' else f':{prior}'}={path}"
        for method, task, prior, path in downstream_runs(methods, tasks, prior_seeds)
    )


def calibration_files(prior_seeds=SAFER_PRIOR_SEEDS):
    """Figure 4's rollouts: {(task, prior seed): calibration.csv} on every evaluation task."""
    return {
        (task, seed): f"results/safer/calibration/prior{seed}/task{task}.csv"
        for seed in prior_seeds
        for task in SAFER_EVAL_TASKS
    }


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


# safer-probe's readings of every prior with a safety variable: does c carry the hidden geometry?
PROBED_PRIORS = ("contextual_parrot", "safer")


def safer_targets():
    targets = [SAFER_ARTEFACTS[name] for name in SAFER["artefacts"] if name != "probe"]
    if "probe" in SAFER["artefacts"]:
        targets += [prior_file(kind, seed, "probe.json") for kind in PROBED_PRIORS for seed in SAFER_PRIOR_SEEDS]
    return targets


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
