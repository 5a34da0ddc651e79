# Data stage: D4RL-protocol datasets, generated here from the behaviour policies or downloaded.


include: "datasets_inputs.smk"


if DATASETS["source"] == "local":

    rule collect_dataset:
        """Roll a behaviour policy out into a D4RL-kind dataset, stored in Minari format."""
        input:
            unpack(collect_inputs),
        output:
            dataset=directory("resources/minari/offrl/{env}/{kind}-v0"),
            summary="resources/datasets/{env}-{kind}.json",
        log:
            "logs/datasets/{env}-{kind}.log",
        benchmark:
            "logs/benchmarks/datasets/{env}-{kind}.tsv"
        wildcard_constraints:
            env="|".join(LOCOMOTION_ENVS),
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=DATASET_MEM_MB,
            runtime=runtime_min("collect_dataset", DATASETS["size"]),
        params:
            behaviour="resources/behaviour/{env}",
            size=DATASETS["size"],
            seed=DATASETS["seed"],
            noise=DATASETS["noise"],
        shell:
            "python -m offrl collect --env {wildcards.env} --kind {wildcards.kind}"
            " --behaviour {params.behaviour} --size {params.size} --seed {params.seed}"
            " --noise {params.noise} --root resources/minari --summary {output.summary}"
            " --quiet > {log} 2>&1"


rule download_dataset:
    """Fetch a remote Minari dataset, or take the copy placed in MINARI_DATASETS_PATH; without
    either, fail first, in one line naming the run's datasets and how to place them."""
    input:
        download_inputs,
    output:
        dataset=directory("resources/minari/offrl/{env}/{kind}-v0"),
        summary="resources/datasets/{env}-{kind}.json",
    log:
        "logs/datasets/{env}-{kind}.log",
    benchmark:
        "logs/benchmarks/datasets/{env}-{kind}.tsv"
    wildcard_constraints:
        env="|".join(DOWNLOADED_ENVS),
    # Before any other job: a run that cannot get its data stops at once, not hours in.
    priority: 100
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=DATASET_RUNTIME,
    params:
        remote_id=remote_id,
        needed=lambda wildcards: ADROIT_REMOTE_IDS if wildcards.env in ADROIT_ENVS else [],
        # Stand-ins are read from their own root, as a hand-placed copy would be from MINARI_DATASETS_PATH.
        minari_path=lambda wildcards, input: f"MINARI_DATASETS_PATH={ADROIT_STANDIN_ROOT} " if input else "",
    shell:
        "{params.minari_path}python -m offrl download --remote-id {params.remote_id} --env {wildcards.env}"
        " --kind {wildcards.kind} --root resources/minari --summary {output.summary} --needed {params.needed}"
        " > {log} 2>&1 || (tail -n 1 {log} >&2; exit 1)"


rule adroit_standin:
    """A small stand-in for an Adroit dataset (taming.adroit.source: standin): a few episodes of a
    scripted or random policy in the real env, under D4RL's Minari id."""
    output:
        directory(f"{ADROIT_STANDIN_ROOT}/D4RL/{{env}}/{{kind}}-v2"),
    log:
        "logs/datasets/standin-{env}-{kind}.log",
    benchmark:
        "logs/benchmarks/datasets/standin-{env}-{kind}.tsv"
    wildcard_constraints:
        env="|".join(ADROIT_ENVS),
        kind="|".join(ADROIT_KINDS),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=DATASET_RUNTIME,
    params:
        episodes=ADROIT["standin_episodes"],
    shell:
        "python -m offrl standin --env {wildcards.env} --kind {wildcards.kind} --episodes {params.episodes}"
        f" --root {ADROIT_STANDIN_ROOT} > {{log}} 2>&1"


rule contaminate_dataset:
    """expert-random-X / expert-cloned-X (the TD3BC++ paper's ER and EC settings): the expert dataset's
    final X% replaced."""
    input:
        expert=dataset_dir("{env}", "expert"),
        contaminant=dataset_dir("{env}", "{contaminant}"),
    output:
        dataset=directory("resources/minari/offrl/{env}/expert-{contaminant}-{percent}-v0"),
        summary="resources/datasets/{env}-expert-{contaminant}-{percent}.json",
    log:
        "logs/datasets/{env}-expert-{contaminant}-{percent}.log",
    benchmark:
        "logs/benchmarks/datasets/{env}-expert-{contaminant}-{percent}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=DATASET_RUNTIME,
    shell:
        "python -m offrl contaminate --env {wildcards.env} --percent {wildcards.percent}"
        " --contaminant {wildcards.contaminant} --root resources/minari --summary {output.summary} > {log} 2>&1"


rule subset_dataset:
    """expert-firstN: the expert dataset's first N transitions (the BEAR blog's Figure 1 trains on two sizes)."""
    input:
        expert=dataset_dir("{env}", "expert"),
    output:
        dataset=directory("resources/minari/offrl/{env}/expert-first{size}-v0"),
        summary="resources/datasets/{env}-expert-first{size}.json",
    log:
        "logs/datasets/{env}-expert-first{size}.log",
    benchmark:
        "logs/benchmarks/datasets/{env}-expert-first{size}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=DATASET_RUNTIME,
    shell:
        "python -m offrl subset --env {wildcards.env} --size {wildcards.size}"
        " --root resources/minari --summary {output.summary} > {log} 2>&1"


rule cloned_policy:
    """BC on the first transitions of the expert dataset: the behaviour policy of the cloned kind."""
    input:
        expert=dataset_dir("{env}", "expert"),
    output:
        actor="resources/behaviour/{env}/cloned.pt",
        manifest="resources/behaviour/{env}/cloned.json",
    log:
        "logs/behaviour/{env}-cloned.log",
    benchmark:
        "logs/benchmarks/behaviour/{env}-cloned.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=runtime_min("cloned_policy", DATASETS["cloned"]["steps"]),
    params:
        fraction=DATASETS["cloned"]["fraction"],
        steps=DATASETS["cloned"]["steps"],
        seed=DATASETS["cloned"]["seed"],
    shell:
        "python -m offrl --threads {threads} clone --env {wildcards.env} --expert-dir {input.expert}"
        " --fraction {params.fraction} --steps {params.steps} --seed {params.seed}"
        " --out {output.actor} --manifest {output.manifest} --quiet > {log} 2>&1"
