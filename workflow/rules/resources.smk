# What each job asks of a scheduler: every rule declares `threads`, `mem_mb` and `runtime`
# (minutes); Slurm (profiles/slurm) books them and kills a job that outgrows its memory or its
# runtime. A job's runtime is the seconds `python -m offrl plan` projects for it, from the figures
# of benchmarks/costs.yaml (offrl.plan.projected_seconds: start-up + its work, the steps, episodes,
# transitions of its config, at the measured cost per unit), plus a cluster job's own start;
# memory a measured base plus its dataset.
COSTS = load_costs()
# The runtime is a limit at which Slurm kills the job: three times the projection, at least
# 5 minutes, at most 3 days (a common partition limit). Offline training keeps a checkpoint
# (results/checkpoints/): a job stopped at the limit resumes there when run again.
RUNTIME_HEADROOM = 3
MIN_RUNTIME_MIN = 5
MAX_RUNTIME_MIN = 3 * 24 * 60

# Memory: the largest max_rss of any smoke job (train/td3bc_pp_gp0p1, 610 MB; most are 430-560 MB)
# plus the dataset held: training on hopper-expert's 100k transitions peaked 24 MB above its first
# 10k (/usr/bin/time, 477 against 453 MB); twice that, rounded up to 100 MB.
BASE_MEM_MB = 610
MB_PER_1K_TRANSITIONS = 0.27
MEM_HEADROOM = 2
# A training job on a GPU also holds the CUDA runtime in host memory: not measured here (no GPU
# lent to this project's machine); torch's usual 1.5 GB.
CUDA_HOST_MB = 1500
# Every training job (offline training, online TD3) on offline.device: on a GPU it asks one GPU
# slot (`--resources gpu=N`) and the CUDA runtime's host memory.
TRAIN_GPU = 0 if TRAIN_DEVICE == "cpu" else 1
TRAIN_CUDA_MB = 0 if TRAIN_DEVICE == "cpu" else CUDA_HOST_MB


def runtime_min(rule, units=0.0, **figure):
    """A job's runtime request in minutes: the plan's projection of ``rule``'s job doing ``units`` of work
    (``figure``: name, preset, batch, gpu, as offrl.plan.projected_seconds takes them) and a cluster job's
    start, times the headroom, within the bounds."""
    seconds, _ = projected_seconds(COSTS, rule, units, **figure)
    minutes = math.ceil(RUNTIME_HEADROOM * (COSTS["cluster_job_start_s"] + seconds) / 60)
    return min(MAX_RUNTIME_MIN, max(MIN_RUNTIME_MIN, minutes))


def mem_mb(transitions=0, extra_mb=0):
    """A job's memory request: the measured base and the dataset it holds, times the headroom."""
    projected = BASE_MEM_MB + MB_PER_1K_TRANSITIONS * transitions / 1000 + extra_mb
    return 100 * math.ceil(MEM_HEADROOM * projected / 100)


# The largest dataset of a run: medium-expert holds two rollouts of datasets.size.
DATASET_TRANSITIONS = 2 * DATASETS["size"]
# Tables, figures, calibration rollouts, copies: the plan prices them at a command's start-up.
LIGHT_RUNTIME = runtime_min("other rules")
LIGHT_MEM_MB = mem_mb()
# Contaminating, subsetting, downloading and indexing a dataset (start-up only in the plan): priced
# as rolling out the largest dataset, which costs more per transition.
DATASET_RUNTIME = runtime_min("collect_dataset", DATASET_TRANSITIONS)
DATASET_MEM_MB = mem_mb(DATASET_TRANSITIONS)


def seeds_in(wildcards):
    return len(wildcards.seeds.split("-"))


def train_runtime(wildcards):
    """Steps x members on the CPU (steps on a GPU, a step trains every member) at the variant's figure, else its preset's."""
    gpu = TRAIN_DEVICE != "cpu"
    return runtime_min(
        "train_offline",
        steps_of(wildcards.dataset) * (1 if gpu else seeds_in(wildcards)),
        name=wildcards.algo,
        preset=preset_of(VARIANTS, wildcards.algo),
        batch=batch_size(OFFLINE, VARIANTS, wildcards.algo),  # a GPU figure takes no batch
        gpu=gpu,
        members=seeds_in(wildcards),
    )


def evaluate_runtime(wildcards):
    """Environment steps: snapshots x members x episodes, every episode at its env's full length."""
    snapshots = steps_of(wildcards.dataset) / OFFLINE["eval_every"]
    steps = snapshots * seeds_in(wildcards) * OFFLINE["eval_episodes"] * episode_steps(wildcards.dataset)
    # Figures per env, plus the preset's policy where it samples and scores actions (costs.yaml evaluate_policy).
    return runtime_min(
        "evaluate_run", steps, name=wildcards.dataset.split("-", 1)[0], preset=preset_of(VARIANTS, wildcards.algo)
    )


def online_runtime(rule, section):
    """Online TD3 for a behaviour policy or a safety expert (``section`` of the config): its learning steps."""
    return runtime_min(rule, section["total_steps"] - section["start_steps"])
