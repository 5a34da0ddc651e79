# Offline training: one job per (algorithm, dataset, group of seeds trained together).


rule train_offline:
    """Train one preset on one dataset; its seeds are members of one ensemble."""
    input:
        unpack(train_inputs),
    output:
        snapshots="results/runs/{algo}/{dataset}/seed{seeds}/snapshots.pt",
        log_csv="results/runs/{algo}/{dataset}/seed{seeds}/train_log.csv",
        config_json="results/runs/{algo}/{dataset}/seed{seeds}/config.json",
    log:
        "logs/train/{algo}/{dataset}/seed{seeds}.log",
    benchmark:
        "logs/benchmarks/train/{algo}/{dataset}/seed{seeds}.tsv"
    conda:
        CONDA_ENV
    threads: OFFLINE["threads"]
    resources:
        gpu=TRAIN_GPU,
        mem_mb=mem_mb(DATASET_TRANSITIONS, extra_mb=TRAIN_CUDA_MB),
        runtime=train_runtime,
    params:
        out=subpath(output.snapshots, parent=True),
        # Outside the outputs: Snakemake deletes those before a job (re)starts.
        checkpoint="results/checkpoints/{algo}/{dataset}/seed{seeds}.pt",
        seeds=lambda wildcards: wildcards.seeds.replace("-", " "),
        steps=lambda wildcards: steps_of(wildcards.dataset),
        batch_size=lambda wildcards: batch_size(OFFLINE, VARIANTS, wildcards.algo),
        eval_every=OFFLINE["eval_every"],
        log_every=OFFLINE["log_every"],
        device=TRAIN_DEVICE,
        preset=lambda wildcards: preset_of(VARIANTS, wildcards.algo),
        options=train_options,
        critic_snapshots=Q_DIAGNOSTIC["snapshots"],
        capture=OFFLINE["capture"],
        jobs_per_gpu=OFFLINE["jobs_per_gpu"],
    shell:
        "python -m offrl --threads {threads} --capture {params.capture} --jobs-per-gpu {params.jobs_per_gpu}"
        " train --algo {params.preset} --dataset {wildcards.dataset}"
        " --dataset-dir {input.dataset} --seeds {params.seeds} --steps {params.steps}"
        " --batch-size {params.batch_size} --eval-every {params.eval_every} --log-every {params.log_every}"
        " --device {params.device} --options {params.options:q} --out {params.out}"
        " --checkpoint {params.checkpoint} --critic-snapshots {params.critic_snapshots} > {log} 2>&1"
