# Packed offline training (offline.pack_members): runs of one algorithm on datasets of one env, with one
# training budget, train in one process (`offrl train-pack`), every seed of every run a member of one
# ensemble. One rule per pack, its outputs every run's files where train_offline writes them: a rule
# without wildcards, which Snakemake prefers to train_offline for those files, so the evaluation and
# table rules are unchanged. A run no rule names while the workflow is read (an input function's) trains alone.


include: "train_packs_inputs.smk"


for number, pack in enumerate(TRAIN_PACKS):
    pack_algo, pack_dataset, _ = pack[0]
    pack_name = f"{pack_algo}-{pack_dataset.split('-', 1)[0]}-{number}"

    rule:
        """Train one preset on several datasets of one env in one process; every seed of every run is a member."""
        name:
            f"train_pack_{number}"
        input:
            [dataset_dir(*dataset.split("-", 1)) for _, dataset, _ in pack],
        output:
            [f"{run_dir(*run)}/{file}" for run in pack for file in RUN_FILES],
        log:
            f"logs/train/packs/{pack_name}.log",
        benchmark:
            f"logs/benchmarks/train/packs/{pack_name}.tsv"
        conda:
            CONDA_ENV
        threads: OFFLINE["threads"]
        resources:
            gpu=TRAIN_GPU,
            mem_mb=mem_mb(len(pack) * DATASET_TRANSITIONS, extra_mb=TRAIN_CUDA_MB),
            runtime=pack_runtime(pack),
        params:
            runs=" ".join(
                f"--run {dataset} {dataset_dir(*dataset.split('-', 1))} {seeds} {run_dir(algo, dataset, seeds)}"
                for algo, dataset, seeds in pack
            ),
            # Outside the outputs: Snakemake deletes those before a job (re)starts.
            checkpoint=f"results/checkpoints/packs/{pack_name}.pt",
            steps=steps_of(pack_dataset),
            batch_size=batch_size(OFFLINE, VARIANTS, pack_algo),
            eval_every=OFFLINE["eval_every"],
            log_every=OFFLINE["log_every"],
            device=TRAIN_DEVICE,
            preset=preset_of(VARIANTS, pack_algo),
            options=json.dumps(VARIANTS.get(pack_algo, {}).get("options", {}), sort_keys=True),
            critic_snapshots=Q_DIAGNOSTIC["snapshots"],
            capture=OFFLINE["capture"],
            jobs_per_gpu=OFFLINE["jobs_per_gpu"],
        shell:
            "python -m offrl --threads {threads} --capture {params.capture} --jobs-per-gpu {params.jobs_per_gpu}"
            " train-pack --algo {params.preset} {params.runs} --steps {params.steps}"
            " --batch-size {params.batch_size} --eval-every {params.eval_every} --log-every {params.log_every}"
            " --device {params.device} --options {params.options:q} --checkpoint {params.checkpoint}"
            " --critic-snapshots {params.critic_snapshots} > {log} 2>&1"
