# What each job asks of a scheduler: every rule declares `threads`, `mem_mb` and `runtime`
# (minutes) from these figures; Slurm (profiles/slurm) books them and kills a job that
# outgrows its memory or its runtime. Measured on the project's 2-core Xeon @ 2.80 GHz, shared
# with other jobs, 2026-11-30: the `benchmark:` TSVs (logs/benchmarks/) of the smoke run (.test
# config) and of default-scale runs. CPU seconds (cpu_time), not wall seconds, as the machine
# was loaded. A job's runtime is its work (steps, episodes, transitions of its config) times a
# measured cost per unit, plus a fixed start; memory a measured base plus its dataset.

# Snakemake reading this workflow where the job runs (12 s: `snakemake -n results/config.yaml`)
# and the job's own imports (5 s: `offrl train` of 20 steps took 5.3 s in all).
JOB_START_S = 20
# The runtime is a limit at which Slurm kills the job: three times the projection, at least
# 5 minutes, at most 3 days (a common partition limit). Offline training keeps a checkpoint
# (results/checkpoints/): a job stopped at the limit resumes there when run again.
RUNTIME_HEADROOM = 3
MIN_RUNTIME_MIN = 5
MAX_RUNTIME_MIN = 3 * 24 * 60

# One offline gradient step of one ensemble member, TD3+BC (batch 256, 256-256 networks, one
# thread): train/td3bc/hopper-expert-first10000 at the default scale, 10k steps x 3 members,
# cpu_time 119 s.
MEMBER_STEP_S = 0.004
# A preset's step against TD3+BC's, from the same-process ratios in benchmarks/README.md
# (three members where measured). Not benchmarked yet (fisher_brc, uwac, brac_p, brac_v): BEAR's
# 14, as each trains a behaviour model or a VAE beside its critics; an unlisted preset: 1.
STEP_COST = {
    "bc": 0.34,
    "bc_10pct": 0.34,
    "guided_td3bc": 1.1,
    "td3bc_cr": 1.1,
    "td3bc_gp": 5,
    "td3bc_pp": 5,
    "sac": 1.4,
    "iql": 1.7,
    "bcq": 10,
    "bear": 14,
    "bear_d4rl": 14,
    "bear_pp": 14,
    "bear_pp_d4rl": 14,
    "fisher_brc": 14,
    "uwac": 14,
    "brac_p": 14,
    "brac_v": 14,
    "cql": 50,
    "cql_rho": 50,
}
# One evaluation episode (up to 1000 steps) with its Q diagnostic: evaluate/td3bc at the default
# scale, 11 snapshots x 3 members x 5 episodes, cpu_time 34.5 s less the start.
EPISODE_S = 0.18
# One dataset transition rolled out and written: datasets/hopper-expert at the default scale,
# 100k transitions, cpu_time 25.6 s less the start. Contaminating, subsetting and indexing cost less.
TRANSITION_S = 0.0002
# One online TD3 step (environment step and update, one thread): 45 steps/s of TD3 on walker2d,
# the progress bar of a 1M-step behaviour training on this machine.
ONLINE_STEP_S = 0.022
# SAFER at the default scale: grasp/offline (1150 scripted episodes, cpu_time 27 s), a prior step
# (contextual_parrot, 3000 steps, 101 s) and a downstream SAC step of one member (contextual_parrot,
# 10k steps x 3 members, 151 s).
GRASP_EPISODE_S = 0.02
PRIOR_STEP_S = 0.034
DOWNSTREAM_MEMBER_STEP_S = 0.005
# Tables, figures, calibration rollouts, copies: the smoke run's longest such job, the SimHash
# figure (cpu_time 6.3 s; the tables 2-5 s), rounded up.
LIGHT_JOB_S = 10

# Memory: the largest max_rss of any smoke job (train/td3bc_pp_gp0p1, 610 MB; most are 430-560 MB)
# plus the dataset held: training on hopper-expert's 100k transitions peaked 24 MB above its first
# 10k (/usr/bin/time, 477 against 453 MB); twice that, rounded up to 100 MB.
BASE_MEM_MB = 610
MB_PER_1K_TRANSITIONS = 0.27
MEM_HEADROOM = 2
# A training job on a GPU also holds the CUDA runtime in host memory: not measured here (no GPU
# lent to this project's machine); torch's usual 1.5 GB.
CUDA_HOST_MB = 1500


def runtime_min(seconds):
    """A job's runtime request in minutes: projected seconds and start, times the headroom, within the bounds."""
    minutes = math.ceil(RUNTIME_HEADROOM * (JOB_START_S + seconds) / 60)
    return min(MAX_RUNTIME_MIN, max(MIN_RUNTIME_MIN, minutes))


def mem_mb(transitions=0, extra_mb=0):
    """A job's memory request: the measured base and the dataset it holds, times the headroom."""
    projected = BASE_MEM_MB + MB_PER_1K_TRANSITIONS * transitions / 1000 + extra_mb
    return 100 * math.ceil(MEM_HEADROOM * projected / 100)


# The largest dataset of a run: medium-expert holds two rollouts of datasets.size.
DATASET_TRANSITIONS = 2 * DATASETS["size"]
LIGHT_RUNTIME = runtime_min(LIGHT_JOB_S)
LIGHT_MEM_MB = mem_mb()
DATASET_RUNTIME = runtime_min(DATASET_TRANSITIONS * TRANSITION_S)
DATASET_MEM_MB = mem_mb(DATASET_TRANSITIONS)
SNAPSHOTS = OFFLINE["steps"] // OFFLINE["eval_every"] + 1


def seeds_in(wildcards):
    return len(wildcards.seeds.split("-"))


def train_runtime(wildcards):
    """Steps x members x TD3+BC's member step x the preset's cost against it."""
    cost = STEP_COST.get(preset_of(VARIANTS, wildcards.algo), 1)
    return runtime_min(OFFLINE["steps"] * seeds_in(wildcards) * MEMBER_STEP_S * cost)


def evaluate_runtime(wildcards):
    return runtime_min(SNAPSHOTS * seeds_in(wildcards) * OFFLINE["eval_episodes"] * EPISODE_S)


def online_runtime(section):
    """Online TD3 for a behaviour policy or a safety expert (``section`` of the config)."""
    return runtime_min(section["total_steps"] * ONLINE_STEP_S)
