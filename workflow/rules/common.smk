# Shared wildcard constraints and target lists.


def reported(path, caption, category):
    """``report(path, ...)`` when the file exists, else the plain path.

    `snakemake --report` fails on a file marked for the report that does not exist. The Snakefile
    is read again for every call, so marking only what exists lets the report of a partial run
    build; workflow/report/workflow.rst lists the artefacts still missing.
    """
    return report(path, caption=caption, category=category) if os.path.exists(path) else path


ENVS = config["envs"]
KINDS = config["datasets"]["kinds"]


wildcard_constraints:
    env="hopper|walker2d|halfcheetah",
    kind="random|medium-replay|medium-expert|medium|expert|cloned",
    percent="[1-9][0-9]?",
    contaminant="random|cloned",
    size="[1-9][0-9]*",


def dataset_summaries():
    return expand("resources/datasets/{env}-{kind}.json", env=ENVS, kind=KINDS)


CONTAMINATION = config["datasets"]["contamination"]
CLONED_CONTAMINATION = config["datasets"]["cloned_contamination"]


def contaminated_summaries():
    return expand("resources/datasets/{env}-expert-random-{percent}.json", env=ENVS, percent=CONTAMINATION) + expand(
        "resources/datasets/{env}-expert-cloned-{percent}.json", env=ENVS, percent=CLONED_CONTAMINATION
    )


def dataset_dir(env, kind):
    return f"resources/minari/offrl/{env}/{kind}-v0"


def collect_inputs(wildcards):
    """What generating one dataset needs: a policy, the replay buffer, or the two datasets it joins."""
    policies = f"resources/behaviour/{wildcards.env}"
    if wildcards.kind in ("medium", "expert", "cloned"):
        return {"policy": f"{policies}/{wildcards.kind}.pt"}
    if wildcards.kind == "medium-replay":
        return {"replay": f"{policies}/replay_medium.npz"}
    if wildcards.kind == "medium-expert":
        return {
            "medium": dataset_dir(wildcards.env, "medium"),
            "expert": dataset_dir(wildcards.env, "expert"),
        }
    return {}


OFFLINE = config["offline"]
# `--resources gpu=N` as given (None when not given). With gpu=0 a training job on device "auto" asks no GPU and runs on the CPU.
GPUS_GIVEN = getattr(workflow.global_resources.get("gpu"), "value", workflow.global_resources.get("gpu"))
TRAIN_DEVICE = "cpu" if OFFLINE["device"] == "auto" and GPUS_GIVEN == 0 else OFFLINE["device"]
ALGORITHMS = OFFLINE["algorithms"]
SEED_GROUPS = seed_groups(OFFLINE["seeds"], OFFLINE["seeds_per_job"])
DATASET_NAMES = [f"{env}-{kind}" for env in ENVS for kind in KINDS]


VARIANTS = all_variants(config)


wildcard_constraints:
    algo="|".join(sorted([*PRESETS, *VARIANTS], key=len, reverse=True)),
    dataset="(hopper|walker2d|halfcheetah)-(random|medium-replay|medium-expert|medium|expert|cloned|expert-(random|cloned)-[1-9][0-9]?|expert-first[1-9][0-9]*)",
    seeds="[0-9]+(-[0-9]+)*",


def run_dir(algo, dataset, seeds):
    return f"results/runs/{algo}/{dataset}/seed{seeds}"


def evaluations(algorithms, datasets):
    """Every evaluation file of these algorithms on these datasets, all seed groups."""
    return [
        f"{run_dir(algo, dataset, seeds)}/evaluation.csv"
        for algo in algorithms
        for dataset in datasets
        for seeds in SEED_GROUPS
    ]


def dataset_input(wildcards):
    env, kind = wildcards.dataset.split("-", 1)
    return {"dataset": dataset_dir(env, kind), "summary": f"resources/datasets/{wildcards.dataset}.json"}


def train_inputs(wildcards):
    """The dataset, and for Guided TD3+BC the env's safety expert and the dataset's SimHash index."""
    inputs = dataset_input(wildcards)
    if preset_of(VARIANTS, wildcards.algo) in GUIDED_ALGORITHMS:
        env = wildcards.dataset.split("-", 1)[0]
        inputs["guide_expert"] = f"resources/safety_expert/{env}/expert.pt"
        inputs["guide_index"] = f"results/index/{wildcards.dataset}/simhash.npz"
    return inputs


def train_options(wildcards, input):
    """A variant's options and the files a run supplies from its inputs, as the JSON the train command takes."""
    options = dict(VARIANTS.get(wildcards.algo, {}).get("options", {}))
    options.update({name: input[name] for name in ("guide_expert", "guide_index") if name in input.keys()})
    return json.dumps(options, sort_keys=True)


# The TD3BC++ study's artefacts by their config name (taming.artefacts).
TAMING_ARTEFACTS = {
    "table1": "results/tables/taming_table1.md",
    "table8": "results/tables/taming_table8.md",
    **{fig: f"results/figures/taming_{fig}.png" for fig in ("fig3", "fig4", "fig5", "fig6", "fig7", "fig8", "fig11")},
}


def contamination_targets():
    """Table 3 of the TD3BC++ paper when the config asks for contaminated datasets; its study's tables and figures with taming.envs."""
    targets = ["results/tables/contamination.md"] if CONTAMINATION or CLONED_CONTAMINATION else []
    if config["taming"]["envs"]:
        targets += [TAMING_ARTEFACTS[name] for name in config["taming"]["artefacts"]]
    return targets


# Guided TD3+BC's study: its envs (the Total's rows), extension envs (rows after the Total) and seeds.
GUIDED = config["guided"]
GUIDED_DATASETS = [f"{env}-{kind}" for env in GUIDED["envs"] for kind in KINDS]
GUIDED_EXTENSION_DATASETS = [f"{env}-{kind}" for env in GUIDED["extension_envs"] for kind in KINDS]


def guided_targets():
    """Guided TD3+BC's Table 1 and Figure 1, when the run trains the guided preset."""
    if not any(preset_of(VARIANTS, algo) in GUIDED_ALGORITHMS for algo in ALGORITHMS):
        return []
    return ["results/tables/guided_table1.md", "results/figures/guided_fig1.png"]


# TD3BC++ paper (Taming policy constrained offline RL): the datasets and runs of its Table 1 and figures.
TAMING = config["taming"]
# Each "++" method's Total is shown with its gain over the method it extends.
PLUS_PLUS = {"td3bc_pp": "td3bc", "bear_pp": "bear", "bear_pp_d4rl": "bear_d4rl"}


def taming_datasets(kinds=("expert", "medium-expert"), contaminated=True):
    """The study's datasets per env: the given D4RL kinds, then expert-random-X for each X."""
    extra = [f"expert-random-{p}" for p in CONTAMINATION] if contaminated else []
    return [f"{env}-{kind}" for env in TAMING["envs"] for kind in [*kinds, *extra]]


def taming_contaminated(keep=lambda percent: True):
    """The study's expert-random-X datasets whose X passes ``keep``, or all of them if none does."""
    chosen = [p for p in CONTAMINATION if keep(p)] or CONTAMINATION
    return [f"{env}-expert-random-{p}" for env in TAMING["envs"] for p in chosen]


def taming_contaminated_runs():
    """Run directories of Figure 4: the figure's algorithms on the contaminated datasets."""
    return [run_dir(a, d, s) for a in TAMING["figure_algorithms"] for d in taming_contaminated() for s in SEED_GROUPS]


# The paper's sweeps: Figure 5 on ER1-ER5, Figure 11 on expert-medium and ER3-ER7, Figure 7 on every ER.
TAMING_SWEEPS = taming_sweeps(TAMING)
TAMING_FIG5_DATASETS = taming_contaminated(lambda p: p <= 50)
TAMING_FIG11_DATASETS = [f"{env}-medium-expert" for env in TAMING["envs"]] + taming_contaminated(lambda p: p >= 30)
# Figure 8 (the ablation) on expert-medium, ER1, ER3 and ER5, the settings the paper discusses.
TAMING_FIG8_DATASETS = [f"{env}-medium-expert" for env in TAMING["envs"]] + taming_contaminated(lambda p: p <= 50)
TAMING_FIG7_GRID = [f"{name}:{alpha}:{weight}" for name, alpha, weight in TAMING_SWEEPS["fig7_grid"]]


# The BEAR blog: Figure 1 (expert data of several sizes) and Figures 7-9 (medium, expert, random).
BEAR_BLOG = config["bear_blog"]
BEAR_BLOG_DATASETS = [f"{env}-{kind}" for env in BEAR_BLOG["envs"] for kind in ("medium", "expert", "random")]
BEAR_FIG1_DATASETS = [f"{env}-expert-first{size}" for env in BEAR_BLOG["figure1_envs"] for size in BEAR_BLOG["figure1_sizes"]]
BEAR_FIG1_RUNS = [run_dir(a, d, s) for a in BEAR_BLOG["figure1_algorithms"] for d in BEAR_FIG1_DATASETS for s in SEED_GROUPS]


def bear_blog_targets():
    """The blog's figures the config asks for: Figure 1 with figure1_envs, Figures 7-9 with envs."""
    targets = ["results/figures/bear_fig1.png"] if BEAR_FIG1_DATASETS else []
    return targets + (["results/figures/bear_curves.png"] if BEAR_BLOG_DATASETS else [])


# The slides' Q diagnostic: learned Q minus the actual return, on these runs (shared with the other studies where they coincide).
Q_DIAGNOSTIC = config["q_diagnostic"]
Q_DIAGNOSTIC_RUNS = [run_dir(a, d, s) for a in Q_DIAGNOSTIC["algorithms"] for d in Q_DIAGNOSTIC["datasets"] for s in SEED_GROUPS]


def q_diagnostic_targets():
    """The diagnostic's table and figure, when q_diagnostic.datasets names any."""
    return ["results/tables/q_overestimation.md", "results/figures/q_overestimation.png"] if Q_DIAGNOSTIC_RUNS else []


# SAFER (workflow/rules/safer.smk): the grasp study's targets and inputs.


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
    f"--task-seed {SAFER_TASKS['seed']} --data-tasks {SAFER_TASKS['data']}"
    f" --eval-task-seed {SAFER_TASKS['eval_seed']} --eval-tasks {SAFER_TASKS['eval']}"
    + (" --observe-geometry" if SAFER_TASKS["observe_geometry"] else "")
)


wildcard_constraints:
    prior="parrot|contextual_parrot|safer_no_context|safer",
    method="sac|csc|parrot|contextual_parrot|prior_explore|safer_no_context|safer_u[0-9]+|safer",
    split="offline|holdout",
    task="[1-9][0-9]*",


def grasp_dataset(split):
    return f"resources/minari/grasp/{split}-v0"


def downstream_prior(method):
    """The prior and bound a method acts through: safer_uN is SAFER with the bound of target N %; sac and csc act on raw actions."""
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


# The findings report (workflow/rules/findings.smk): the studies it checks and their inputs.


def findings_studies():
    """The studies this configuration builds, with the inputs and flags of each one's checks."""
    studies = {}
    if guided_targets():
        inputs = evaluations(GUIDED_COMPARISON, GUIDED_DATASETS)
        studies["guided"] = {
            "inputs": inputs,
            "args": f"--guided-datasets {' '.join(GUIDED_DATASETS)} --guided-seeds {' '.join(map(str, GUIDED['seeds']))}"
            + " --guided-evaluations "
            + " ".join(inputs),
        }
    if TAMING["envs"] and {"td3bc", "td3bc_pp"} <= set(TAMING["algorithms"]):
        datasets = taming_datasets(kinds=("expert",))
        runs = [run_dir(a, d, s) for a in ("td3bc", "td3bc_pp") for d in datasets for s in SEED_GROUPS]
        studies["taming"] = {
            "inputs": [f"{run}/{name}" for run in runs for name in ("evaluation.csv", "train_log.csv")],
            "args": "--taming-datasets " + " ".join(datasets) + " --taming-runs " + " ".join(runs),
        }
    if Q_DIAGNOSTIC_RUNS and "sac" in Q_DIAGNOSTIC["algorithms"]:
        inputs = [f"{run}/q_diagnostic.csv" for run in Q_DIAGNOSTIC_RUNS]
        studies["bear_blog"] = {
            "inputs": inputs,
            "args": "--q-datasets " + " ".join(Q_DIAGNOSTIC["datasets"]) + " --q-diagnostics " + " ".join(inputs),
        }
    if "table1" in SAFER["artefacts"]:
        methods, tasks = SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]
        priors = ["parrot", "safer"]
        calibration = {task: f"results/safer/calibration/task{task}.csv" for task in SAFER_EVAL_TASKS}
        studies["safer"] = {
            "inputs": downstream_logs(methods, tasks)
            + [f"results/safer/priors/{prior}/likelihood.csv" for prior in priors]
            + list(calibration.values()),
            "args": f"--safer-tasks {' '.join(map(str, tasks))} --safer-target {SAFER['bounds']['table_target']}"
            + " --safer-likelihood "
            + " ".join(f"{prior}=results/safer/priors/{prior}/likelihood.csv" for prior in priors)
            + " --safer-calibration "
            + " ".join(f"{task}={path}" for task, path in calibration.items())
            + " --safer-runs "
            + safer_runs_arguments(methods, tasks),
        }
    return studies


# A local run on a GPU box needs no --resources: at most one training job per GPU torch sees
# (each claims its own, offrl.device). Given by the user (--resources gpu=N), a cluster
# executor, or no GPU here (training then runs on the CPUs): left as it is.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    import torch

    if torch.cuda.device_count():
        workflow.register_resource("gpu", torch.cuda.device_count())
