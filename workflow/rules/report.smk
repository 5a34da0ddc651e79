# Reporting: the tables and figures every study shares, and the base rules the studies' own
# tables and figures reuse with `use rule ... with:` (score tables, learning curves, dataset tables).
# A derived rule would keep its base's description (`--list-rules`, the report): each study's
# `use rule ... with:` block gives its own docstring.


rule dataset_table:
    """Sizes and returns of every dataset of the run."""
    input:
        run_config=RUN_CONFIG,
        files=dataset_summaries(),
    output:
        csv="results/tables/datasets.csv",
        md=reported("results/tables/datasets.md", caption="../report/datasets.rst", category="Datasets"),
        tex="results/tables/datasets.tex",
    log:
        "logs/report/datasets.log",
    benchmark:
        "logs/benchmarks/report/datasets.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="datasets",
        stem=subpath(output.csv, strip_suffix=".csv"),
        options="",
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " dataset-table {params.options} --out {params.stem} {input.files} > {log} 2>&1"


# offline.iqm_rows: every score table adds the IQM row (rliable's protocol) under its Total.
IQM_ROWS = " --iqm" if OFFLINE["iqm_rows"] else ""


rule d4rl_table:
    """TD3+BC and BC on D4RL's dataset kinds: final scores, mean ± std over seeds."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(ALGORITHMS, D4RL_DATASETS),
    output:
        csv="results/tables/d4rl.csv",
        md=reported("results/tables/d4rl.md", caption="../report/d4rl_table.rst", category="D4RL"),
        tex="results/tables/d4rl.tex",
    log:
        "logs/report/d4rl_table.log",
    benchmark:
        "logs/benchmarks/report/d4rl_table.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="offline",
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=ALGORITHMS,
        datasets=D4RL_DATASETS,
        last=OFFLINE["final_evaluations"],
        options="",  # the studies' tables add their layout: extension rows, seeds, spreads, gains
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " score-table --algorithms {params.algorithms} --datasets {params.datasets}"
        f" --last {{params.last}} {{params.options}}{IQM_ROWS} --table {{params.stem}} {{input.files}} > {{log}} 2>&1"


rule d4rl_curves:
    """TD3+BC and BC on D4RL's dataset kinds: learning curves."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(ALGORITHMS, D4RL_DATASETS),
    output:
        png=reported("results/figures/d4rl_curves.png", caption="../report/d4rl_curves.rst", category="D4RL"),
        pdf="results/figures/d4rl_curves.pdf",
        csv="results/figures/d4rl_curves.csv",
    log:
        "logs/report/d4rl_curves.log",
    benchmark:
        "logs/benchmarks/report/d4rl_curves.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="offline",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=ALGORITHMS,
        datasets=D4RL_DATASETS,
        options="",
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " learning-curves --algorithms {params.algorithms} --datasets {params.datasets}"
        " {params.options} --figure {params.stem} {input.files} > {log} 2>&1"


rule resolved_config:
    """The run's whole configuration: its scale's file with the schema's defaults filled in."""
    output:
        RUN_CONFIG,
    log:
        "logs/report/resolved_config.log",
    benchmark:
        "logs/benchmarks/report/resolved_config.tsv"
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        # A copy taken here, before the Snakefile adds the report's derived report_missing list.
        config=copy.deepcopy(config),
    run:
        import yaml
        from offrl.files import write_atomically

        write_atomically(
            output[0],
            lambda tmp: Path(tmp).write_text(yaml.safe_dump(params.config, sort_keys=False, allow_unicode=True)),
        )


rule q_overestimation:
    """Learned Q against the discounted return of the evaluated policy, at the dataset's initial states
    and along the rollouts; table and curves."""
    input:
        run_config=RUN_CONFIG,
        files=[f"{run}/q_diagnostic.csv" for run in Q_DIAGNOSTIC_RUNS],
    output:
        csv="results/tables/q_overestimation.csv",
        md=reported(
            "results/tables/q_overestimation.md",
            caption="../report/q_overestimation_table.rst",
            category="Q diagnostic",
        ),
        tex="results/tables/q_overestimation.tex",
        png=reported(
            "results/figures/q_overestimation.png", caption="../report/q_overestimation.rst", category="Q diagnostic"
        ),
        pdf="results/figures/q_overestimation.pdf",
        curves="results/figures/q_overestimation.csv",
    log:
        "logs/report/q_overestimation.log",
    benchmark:
        "logs/benchmarks/report/q_overestimation.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="bear_blog",
        table=subpath(output.csv, strip_suffix=".csv"),
        figure=subpath(output.png, strip_suffix=".png"),
        algorithms=Q_DIAGNOSTIC["algorithms"],
        datasets=Q_DIAGNOSTIC["datasets"],
        last=OFFLINE["final_evaluations"],
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " q-overestimation --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --table {params.table} --figure {params.figure} {input.files} > {log} 2>&1"
