# The BEAR blog (Kumar, BAIR 2019): Figure 1 (expert data of several sizes) and Figures 7-9
# (medium, expert, random). The expert-firstN datasets are built in datasets.smk.


include: "bear_blog_inputs.smk"


rule bear_fig1:
    """Figure 1 of the BEAR blog: naive offline SAC on expert data of several sizes, return and Q over
    training, beside BEAR and TD3+BC."""
    input:
        run_config=RUN_CONFIG,
        logs=[f"{run}/train_log.csv" for run in BEAR_FIG1_RUNS],
        evaluations=[f"{run}/evaluation.csv" for run in BEAR_FIG1_RUNS],
    output:
        png=reported("results/figures/bear_fig1.png", caption="../report/bear_fig1.rst", category="BEAR"),
        pdf="results/figures/bear_fig1.pdf",
        csv="results/figures/bear_fig1.csv",
    log:
        "logs/report/bear_fig1.log",
    benchmark:
        "logs/benchmarks/report/bear_fig1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="bear_blog",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=BEAR_BLOG["figure1_algorithms"],
        datasets=BEAR_FIG1_DATASETS,
        runs=BEAR_FIG1_RUNS,
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " return-q-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --figure {params.stem} {params.runs} > {log} 2>&1"


use rule d4rl_curves as bear_curves with:
    """Figures 7-9 of the BEAR blog: BEAR against BC, BCQ and naive SAC on medium, expert and random data; one row per
    env.
    """
    input:
        run_config=RUN_CONFIG,
        files=evaluations(BEAR_BLOG["algorithms"], BEAR_BLOG_DATASETS),
    output:
        png=reported("results/figures/bear_curves.png", caption="../report/bear_curves.rst", category="BEAR"),
        pdf="results/figures/bear_curves.pdf",
        csv="results/figures/bear_curves.csv",
    log:
        "logs/report/bear_curves.log",
    benchmark:
        "logs/benchmarks/report/bear_curves.tsv"
    params:
        study="offline",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=BEAR_BLOG["algorithms"],
        datasets=BEAR_BLOG_DATASETS,
        options="--columns 3",
