# Evaluation of policy snapshots, on CPUs, in vectorised environments.


rule evaluate_run:
    """Every snapshot of a run, every seed, OFFLINE['eval_episodes'] episodes each; and the slides' Q
    diagnostic of the same episodes."""
    input:
        snapshots="results/runs/{algo}/{dataset}/seed{seeds}/snapshots.pt",
    output:
        scores="results/runs/{algo}/{dataset}/seed{seeds}/evaluation.csv",
        q_diagnostic="results/runs/{algo}/{dataset}/seed{seeds}/q_diagnostic.csv",
    log:
        "logs/evaluate/{algo}/{dataset}/seed{seeds}.log",
    benchmark:
        "logs/benchmarks/evaluate/{algo}/{dataset}/seed{seeds}.tsv"
    conda:
        CONDA_ENV
    threads: OFFLINE["eval_threads"]  # worker processes over the snapshots
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=evaluate_runtime,
    params:
        episodes=OFFLINE["eval_episodes"],
        q_tail=Q_DIAGNOSTIC["tail"],
        # The run's algorithm name may be a variant of this config: the command checks names against it.
        variants=lambda wildcards: json.dumps(
            {wildcards.algo: VARIANTS[wildcards.algo]} if wildcards.algo in VARIANTS else {}
        ),
    shell:
        "python -m offrl --threads {threads} evaluate --snapshots {input.snapshots} --episodes {params.episodes}"
        " --algo {wildcards.algo} --variants {params.variants:q} --dataset {wildcards.dataset} --out {output.scores}"
        " --q-out {output.q_diagnostic} --q-tail {params.q_tail} --quiet > {log} 2>&1"
