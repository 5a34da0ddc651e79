# What every stage and study shares: the config's sections, wildcard constraints, run paths.
# Each study's own constants and input functions live beside its rules (guided.smk, taming.smk,
# bear_blog.smk, safer.smk).
from offrl.envs import ADROIT_ENVS, ADROIT_KINDS, ENV_SPECS, minari_remote_id


def reported(path, caption, category):
    """``report(path, ...)`` when the file exists, else the plain path.

    `snakemake --report` fails on a file marked for the report that does not exist. The Snakefile
    is read again for every call, so marking only what exists lets the report of a partial run
    build; workflow/report/workflow.rst lists the artefacts still missing.
    """
    return report(path, caption=caption, category=category) if os.path.exists(path) else path


# The project's one software environment (`--sdm conda`), each rule that runs a command names it
# (`conda: CONDA_ENV`); Snakemake's top-level `conda:` would instead run Snakemake itself in it.
# A `run:` rule (resolved_config) runs inside Snakemake, where no environment applies.
CONDA_ENV = str(Path(workflow.basedir) / "envs" / "offrl.yaml")
ENVS = config["envs"]
DATASETS = config["datasets"]
KINDS = DATASETS["kinds"]
GUIDED = config["guided"]
OFFLINE = config["offline"]
Q_DIAGNOSTIC = config["q_diagnostic"]
# The run's resolved config (report.smk's resolved_config): every table and figure states its scale from it
# (`--run-config`, offrl.report.scale), for the study its rule names (`--study`, in the rule's params).
RUN_CONFIG = "results/config.yaml"


def one_of(values):
    """A wildcard constraint matching exactly one of ``values`` (the longest first, so none stops at a prefix)."""
    return "|".join(sorted(values, key=len, reverse=True))


wildcard_constraints:
    env=one_of(ENV_SPECS),  # every env of the registry (offrl.envs): the locomotion and the Adroit tasks
    kind=one_of(ALL_KINDS),
    percent="[1-9][0-9]?",
    contaminant="random|cloned",
    size="[1-9][0-9]*",


def dataset_summaries():
    return expand("resources/datasets/{env}-{kind}.json", env=ENVS, kind=KINDS)


def dataset_dir(env, kind):
    return f"resources/minari/offrl/{env}/{kind}-v0"


# `--resources gpu=N` as given (None when not given). With gpu=0 a training job on device "auto"
# asks no GPU and runs on the CPU. offline.device is every training job's: offline training and
# online TD3 (behaviour policies, safety experts). The one place, with the local GPU limit at the
# end of this file, that still reads Snakemake's internals (workflow.global_resources): Snakemake
# documents no way to read `--resources` or set its default (issue 33, item 3).
GPUS_GIVEN = getattr(workflow.global_resources.get("gpu"), "value", workflow.global_resources.get("gpu"))
TRAIN_DEVICE = "cpu" if OFFLINE["device"] == "auto" and GPUS_GIVEN == 0 else OFFLINE["device"]
ALGORITHMS = OFFLINE["algorithms"]
SEED_GROUPS = seed_groups(OFFLINE["seeds"], OFFLINE["seeds_per_job"])
DATASET_NAMES = [f"{env}-{kind}" for env in ENVS for kind in KINDS]
# Each study's datasets, by the config key that names them (offrl.config.study_datasets).
STUDY_DATASETS = study_datasets(config)
# The D4RL score table's datasets: offline.algorithms on offline.envs × datasets.kinds.
D4RL_DATASETS = STUDY_DATASETS["offline.envs"]
# A study may train its runs for its own budget (taming.steps); every other run trains offline.steps.
STUDY_STEPS = run_steps(config)


def steps_of(dataset):
    """The training steps of every run on ``dataset``."""
    return STUDY_STEPS.get(dataset, OFFLINE["steps"])


VARIANTS = all_variants(config)


wildcard_constraints:
    algo=one_of([*PRESETS, *VARIANTS]),
    dataset=(
        f"({one_of(ENV_SPECS)})-({one_of(ALL_KINDS)}" "|expert-(random|cloned)-[1-9][0-9]?|expert-first[1-9][0-9]*)"
    ),
    seeds="[0-9]+(-[0-9]+)*",


# The runs named while the workflow is read, by any study; train_packs.smk packs them (offline.pack_members).
NAMED_RUNS = set()


def run_dir(algo, dataset, seeds):
    NAMED_RUNS.add((algo, dataset, seeds))
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
    options = run_options(config, VARIANTS, wildcards.algo, wildcards.dataset.split("-", 1)[0])
    options.update({name: input[name] for name in ("guide_expert", "guide_index") if name in input.keys()})
    return json.dumps(options, sort_keys=True)


# The lecture slides' diagnostic: learned Q minus the actual return of the evaluated policy, on
# these runs (shared with the studies where they coincide).
Q_DIAGNOSTIC_RUNS = [
    run_dir(a, d, s) for a in Q_DIAGNOSTIC["algorithms"] for d in Q_DIAGNOSTIC["datasets"] for s in SEED_GROUPS
]


def q_diagnostic_targets():
    """The diagnostic's table and figure, when q_diagnostic.datasets names any."""
    return ["results/tables/q_overestimation.md", "results/figures/q_overestimation.png"] if Q_DIAGNOSTIC_RUNS else []


# A local run on a GPU box needs no --resources: at most offline.jobs_per_gpu training jobs per
# GPU torch sees (each claims a slot itself, offrl.device). Given by the user (--resources gpu=N,
# N = GPUs × jobs_per_gpu), a cluster executor, or no GPU here (training then runs on the CPUs):
# left as it is.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    import torch

    if torch.cuda.device_count():
        workflow.register_resource("gpu", torch.cuda.device_count() * OFFLINE["jobs_per_gpu"])
