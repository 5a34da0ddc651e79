# SAFER on the safe-grasp task family: scripted data -> priors -> bounds -> downstream SAC -> Table 1, Figures 1, 4-8.


include: "safer_inputs.smk"


rule grasp_data:
    """Scripted grasp episodes with SAFER's labels, stored as a Minari dataset (the holdout split from the
    next seed)."""
    output:
        dataset=directory("resources/minari/grasp/{split}-v0"),
        summary="resources/grasp/{split}.json",
    log:
        "logs/grasp/{split}.log",
    benchmark:
        "logs/benchmarks/grasp/{split}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=GRASP_MEM_MB,
        runtime=lambda wildcards: runtime_min("grasp_data", GRASP_EPISODES[wildcards.split]),
    params:
        episodes=lambda wildcards: (
            SAFER_DATA["episodes_per_task"]
            if wildcards.split == "offline"
            else SAFER_DATA["holdout_episodes_per_task"]
        ),
        seed=lambda wildcards: SAFER_DATA["seed"] + (wildcards.split == "holdout"),
        modes=json.dumps(SAFER_DATA["modes"]),
        noise=SAFER_DATA["noise"],
        tasks=TASK_ARGS,
    shell:
        "python -m offrl grasp-data {params.tasks} --root resources/minari --dataset-id grasp/{wildcards.split}-v0"
        " --summary {output.summary} --episodes-per-task {params.episodes} --noise {params.noise}"
        " --modes {params.modes:q} --seed {params.seed} > {log} 2>&1"


rule safer_prior:
    """Train one skill prior on the grasp data (Algorithm 2; PARROT's kinds without the unsafe term), one per
    prior seed."""
    input:
        dataset=grasp_dataset("offline"),
    output:
        prior="results/safer/priors/{prior}/seed{prior_seed}/prior.pt",
        log_csv="results/safer/priors/{prior}/seed{prior_seed}/train_log.csv",
        config_json="results/safer/priors/{prior}/seed{prior_seed}/config.json",
    log:
        "logs/safer/prior/{prior}/seed{prior_seed}.log",
    benchmark:
        "logs/benchmarks/safer/prior/{prior}/seed{prior_seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=GRASP_MEM_MB,
        runtime=runtime_min("safer_prior", SAFER["prior"]["steps"], batch=SAFER["prior"]["batch_size"]),
    params:
        out=subpath(output.prior, parent=True),
        steps=SAFER["prior"]["steps"],
        batch_size=SAFER["prior"]["batch_size"],
        options=json.dumps(SAFER["prior"]["options"]),
    shell:
        "python -m offrl --threads {threads} safer-prior --kind {wildcards.prior} --dataset-dir {input.dataset}"
        " --steps {params.steps} --batch-size {params.batch_size} --seed {wildcards.prior_seed}"
        " --options {params.options:q} --out {params.out} > {log} 2>&1"


rule safer_bounds:
    """Algorithm 3: the bound η on z for each target unsafe fraction, from the offline data."""
    input:
        prior="results/safer/priors/{prior}/seed{prior_seed}/prior.pt",
        dataset=grasp_dataset("offline"),
    output:
        "results/safer/priors/{prior}/seed{prior_seed}/bounds.csv",
    log:
        "logs/safer/bounds/{prior}/seed{prior_seed}.log",
    benchmark:
        "logs/benchmarks/safer/bounds/{prior}/seed{prior_seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=GRASP_MEM_MB,
        runtime=GRASP_PASS_RUNTIME,
    params:
        targets=SAFER["bounds"]["targets"],
    shell:
        "python -m offrl --threads 1 safer-bounds --prior {input.prior} --dataset-dir {input.dataset}"
        " --targets {params.targets} --seed {wildcards.prior_seed} --out {output} > {log} 2>&1"


rule safer_probe:
    """Does the prior's safety variable carry the geometry the state hides? KL_safe, the action change when
    windows are swapped, a linear probe's R² from c and from s_t (offrl.safer.priors.probe)."""
    input:
        prior="results/safer/priors/{prior}/seed{prior_seed}/prior.pt",
        dataset=grasp_dataset("offline"),
    output:
        "results/safer/priors/{prior}/seed{prior_seed}/probe.json",
    log:
        "logs/safer/probe/{prior}/seed{prior_seed}.log",
    benchmark:
        "logs/benchmarks/safer/probe/{prior}/seed{prior_seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=GRASP_MEM_MB,
        runtime=GRASP_PASS_RUNTIME,
    params:
        tasks=TASK_ARGS,
    shell:
        "python -m offrl --threads 1 safer-probe {params.tasks} --prior {input.prior} --dataset-dir {input.dataset}"
        " --seed {wildcards.prior_seed} --out {output} > {log} 2>&1"


rule safer_likelihood:
    """Figure 1's probe: the % of unsafe pairs among the most likely holdout pairs under one prior."""
    input:
        prior="results/safer/priors/{prior}/seed{prior_seed}/prior.pt",
        dataset=grasp_dataset("holdout"),
    output:
        "results/safer/priors/{prior}/seed{prior_seed}/likelihood.csv",
    log:
        "logs/safer/likelihood/{prior}/seed{prior_seed}.log",
    benchmark:
        "logs/benchmarks/safer/likelihood/{prior}/seed{prior_seed}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=GRASP_MEM_MB,
        runtime=GRASP_PASS_RUNTIME,
    params:
        top=SAFER["figure1_top_percents"],
    shell:
        "python -m offrl --threads 1 safer-likelihood --prior {input.prior} --dataset-dir {input.dataset}"
        " --top-percents {params.top} --out {output} > {log} 2>&1"


rule safer_downstream:
    """Algorithm 1: SAC on one evaluation task over raw actions (prior seed none) or one prior's latent actions;
    seeds as members."""
    input:
        unpack(downstream_inputs),
    output:
        log_csv="results/safer/downstream/{method}/task{task}/prior{prior_seed}/seed{seeds}/log.csv",
        config_json="results/safer/downstream/{method}/task{task}/prior{prior_seed}/seed{seeds}/config.json",
    log:
        "logs/safer/downstream/{method}/task{task}/prior{prior_seed}/seed{seeds}.log",
    benchmark:
        "logs/benchmarks/safer/downstream/{method}/task{task}/prior{prior_seed}/seed{seeds}.tsv"
    conda:
        CONDA_ENV
    threads: SAFER_DOWNSTREAM["threads"]
    resources:
        mem_mb=mem_mb(SAFER_DOWNSTREAM["steps"] * SAFER_DOWNSTREAM["seeds_per_job"]),  # the replay buffers
        runtime=lambda wildcards: runtime_min(
            "safer_downstream",
            (SAFER_DOWNSTREAM["steps"] - SAFER_DOWNSTREAM["start_steps"]) * seeds_in(wildcards),
            name=wildcards.method,
            batch=SAFER_DOWNSTREAM["batch_size"],
        ),
    params:
        out=subpath(output.log_csv, parent=True),
        method=lambda wildcards: "safer" if wildcards.method.startswith("safer_u") else wildcards.method,
        prior=downstream_options,
        seeds=lambda wildcards: wildcards.seeds.replace("-", " "),
        steps=SAFER_DOWNSTREAM["steps"],
        start_steps=SAFER_DOWNSTREAM["start_steps"],
        batch_size=SAFER_DOWNSTREAM["batch_size"],
        log_every=SAFER_DOWNSTREAM["log_every"],
        hidden=SAFER_DOWNSTREAM["hidden"],
        initial_alpha=SAFER_DOWNSTREAM["initial_alpha"],
        tasks=TASK_ARGS,
    shell:
        "python -m offrl --threads {threads} downstream --method {params.method} {params.tasks} --task {wildcards.task}"
        " {params.prior} --data-summary {input.summary} --seeds {params.seeds} --steps {params.steps}"
        " --start-steps {params.start_steps} --batch-size {params.batch_size} --log-every {params.log_every}"
        " --hidden {params.hidden} --initial-alpha {params.initial_alpha} --out {params.out} > {log} 2>&1"


rule safer_calibration:
    """Figure 4's rollouts: one SAFER prior acting with z drawn inside each target's bound (safer.latent_map) on
    one evaluation task."""
    input:
        prior="results/safer/priors/safer/seed{prior_seed}/prior.pt",
        bounds="results/safer/priors/safer/seed{prior_seed}/bounds.csv",
    output:
        "results/safer/calibration/prior{prior_seed}/task{task}.csv",
    log:
        "logs/safer/calibration/prior{prior_seed}/task{task}.log",
    benchmark:
        "logs/benchmarks/safer/calibration/prior{prior_seed}/task{task}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        rollouts=SAFER["calibration_rollouts"],
        latent_map=SAFER["latent_map"],
        tasks=TASK_ARGS,
    shell:
        "python -m offrl --threads 1 safer-calibration {params.tasks} --task {wildcards.task} --prior {input.prior}"
        " --bounds {input.bounds} --rollouts {params.rollouts} --latent-map {params.latent_map}"
        " --seed {wildcards.prior_seed}"
        " --out {output} > {log} 2>&1"


rule safer_table1:
    """SAFER's Table 1: success rate and total violations during downstream training, per evaluation task."""
    input:
        run_config=RUN_CONFIG,
        files=downstream_logs(SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]),
    output:
        md=reported("results/tables/safer_table1.md", caption="../report/safer_table1.rst", category="SAFER"),
        tex="results/tables/safer_table1.tex",
        csv="results/tables/safer_table1.csv",
    log:
        "logs/report/safer_table1.log",
    benchmark:
        "logs/benchmarks/report/safer_table1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        stem=subpath(output.md, strip_suffix=".md"),
        methods=SAFER_DOWNSTREAM["methods"],
        tasks=SAFER_DOWNSTREAM["tasks"],
        runs=safer_runs_arguments(SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report table1 --methods {params.methods} --tasks {params.tasks}"
        " --out {params.stem} {params.runs} > {log} 2>&1"


rule safer_fig1:
    """SAFER's Figure 1: % unsafe among the most likely holdout pairs, PARROT against SAFER (each kind's first
    prior)."""
    input:
        run_config=RUN_CONFIG,
        parrot=prior_file("parrot", FIRST_PRIOR[0], "likelihood.csv"),
        safer=prior_file("safer", FIRST_PRIOR[0], "likelihood.csv"),
    output:
        png=reported("results/figures/safer_fig1.png", caption="../report/safer_fig1.rst", category="SAFER"),
        pdf="results/figures/safer_fig1.pdf",
        csv="results/figures/safer_fig1.csv",
    log:
        "logs/report/safer_fig1.log",
    benchmark:
        "logs/benchmarks/report/safer_fig1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        stem=subpath(output.png, strip_suffix=".png"),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report fig1 --out {params.stem} parrot={input.parrot} safer={input.safer} > {log} 2>&1"


rule safer_fig4:
    """SAFER's Figure 4: calibration of the first SAFER prior's bound on every evaluation task (rollouts are
    cheap, not only the downstream tasks)."""
    input:
        run_config=RUN_CONFIG,
        files=list(calibration_files(FIRST_PRIOR).values()),
    output:
        png=reported("results/figures/safer_fig4.png", caption="../report/safer_fig4.rst", category="SAFER"),
        pdf="results/figures/safer_fig4.pdf",
        csv="results/figures/safer_fig4.csv",
    log:
        "logs/report/safer_fig4.log",
    benchmark:
        "logs/benchmarks/report/safer_fig4.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        stem=subpath(output.png, strip_suffix=".png"),
        inputs=" ".join(f"{task}={path}" for (task, _), path in calibration_files(FIRST_PRIOR).items()),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report fig4 --out {params.stem} {params.inputs} > {log} 2>&1"


rule safer_fig5:
    """SAFER's Figure 5: success and violations against the bound's target on one task (the first prior)."""
    input:
        run_config=RUN_CONFIG,
        logs=downstream_logs(figure5_methods(), [SAFER_DOWNSTREAM["figure5_task"]], FIRST_PRIOR),
        calibration=calibration_files(FIRST_PRIOR)[(SAFER_DOWNSTREAM["figure5_task"], FIRST_PRIOR[0])],
    output:
        png=reported("results/figures/safer_fig5.png", caption="../report/safer_fig5.rst", category="SAFER"),
        pdf="results/figures/safer_fig5.pdf",
        csv="results/figures/safer_fig5.csv",
    log:
        "logs/report/safer_fig5.log",
    benchmark:
        "logs/benchmarks/report/safer_fig5.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        stem=subpath(output.png, strip_suffix=".png"),
        task=SAFER_DOWNSTREAM["figure5_task"],
        bound_methods=" ".join(
            f"{method}={percent}" for method, percent in zip(figure5_methods(), SAFER_TARGET_PERCENTS)
        ),
        runs=safer_runs_arguments(figure5_methods(), [SAFER_DOWNSTREAM["figure5_task"]], FIRST_PRIOR),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report fig5 --tasks {params.task} --bound-methods {params.bound_methods}"
        " --calibration {input.calibration} --out {params.stem} {params.runs} > {log} 2>&1"


rule safer_fig6:
    """SAFER's Figure 6: cumulative violations over downstream training (every prior's runs)."""
    input:
        run_config=RUN_CONFIG,
        files=downstream_logs(SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]),
    output:
        png=reported("results/figures/safer_fig6.png", caption="../report/safer_fig6.rst", category="SAFER"),
        pdf="results/figures/safer_fig6.pdf",
        csv="results/figures/safer_fig6.csv",
    log:
        "logs/report/safer_fig6.log",
    benchmark:
        "logs/benchmarks/report/safer_fig6.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        artefact="fig6",
        stem=subpath(output.png, strip_suffix=".png"),
        methods=SAFER_DOWNSTREAM["methods"],
        tasks=SAFER_DOWNSTREAM["tasks"],
        runs=safer_runs_arguments(SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report {params.artefact} --methods {params.methods} --tasks {params.tasks}"
        " --out {params.stem} {params.runs} > {log} 2>&1"


use rule safer_fig6 as safer_fig7 with:
    """SAFER's Figure 7: violations per window of downstream training."""
    output:
        png=reported("results/figures/safer_fig7.png", caption="../report/safer_fig7.rst", category="SAFER"),
        pdf="results/figures/safer_fig7.pdf",
        csv="results/figures/safer_fig7.csv",
    log:
        "logs/report/safer_fig7.log",
    benchmark:
        "logs/benchmarks/report/safer_fig7.tsv"
    params:
        artefact="fig7",  # violations per window instead of their running sum
        stem=subpath(output.png, strip_suffix=".png"),


rule safer_fig8:
    """SAFER's Figure 8: the ablation without the safety variable, success and violations over training."""
    input:
        run_config=RUN_CONFIG,
        files=downstream_logs(["safer", "safer_no_context"], SAFER_DOWNSTREAM["ablation_tasks"], FIRST_PRIOR),
    output:
        png=reported("results/figures/safer_fig8.png", caption="../report/safer_fig8.rst", category="SAFER"),
        pdf="results/figures/safer_fig8.pdf",
        csv="results/figures/safer_fig8.csv",
    log:
        "logs/report/safer_fig8.log",
    benchmark:
        "logs/benchmarks/report/safer_fig8.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="safer",
        stem=subpath(output.png, strip_suffix=".png"),
        tasks=SAFER_DOWNSTREAM["ablation_tasks"],
        runs=safer_runs_arguments(["safer", "safer_no_context"], SAFER_DOWNSTREAM["ablation_tasks"], FIRST_PRIOR),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safer-report fig8 --tasks {params.tasks} --out {params.stem} {params.runs} > {log} 2>&1"
