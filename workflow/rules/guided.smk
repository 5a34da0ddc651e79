# Guided TD3+BC (Verma et al.): Table 1 and Figure 1, TD3+BC against the guided variant.
# The safety experts are trained in experts.smk, the SimHash index in index.smk.

# The study's envs (the Total's rows), extension envs (rows after the Total) and the two methods.


include: "guided_inputs.smk"


use rule d4rl_table as guided_table1 with:
    """Table 1 of the Guided TD3+BC paper: final normalised scores of its seeds, mean ± std over seeds, the Total's ±
    the sum of the rows'.
    """
    input:
        run_config=RUN_CONFIG,
        files=evaluations(GUIDED_COMPARISON, GUIDED_DATASETS + GUIDED_EXTENSION_DATASETS),
    output:
        csv="results/tables/guided_table1.csv",
        md=reported("results/tables/guided_table1.md", caption="../report/guided_table1.rst", category="Guided TD3+BC"),
        tex="results/tables/guided_table1.tex",
    log:
        "logs/report/guided_table1.log",
    benchmark:
        "logs/benchmarks/report/guided_table1.tsv"
    params:
        study="guided",
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=GUIDED_COMPARISON,
        datasets=GUIDED_DATASETS,
        options=f"--extension-datasets {' '.join(GUIDED_EXTENSION_DATASETS)}"
        f" --seeds {' '.join(map(str, GUIDED['seeds']))} --total-spread sum",


rule guided_fig1:
    """Figure 1 of the Guided TD3+BC paper: % change of unsafe events and of Σ|a| over all evaluations."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(GUIDED_COMPARISON, GUIDED_DATASETS + GUIDED_EXTENSION_DATASETS),
    output:
        png=reported("results/figures/guided_fig1.png", caption="../report/guided_fig1.rst", category="Guided TD3+BC"),
        pdf="results/figures/guided_fig1.pdf",
        csv="results/figures/guided_fig1.csv",
        md="results/figures/guided_fig1.md",
        tex="results/figures/guided_fig1.tex",
    log:
        "logs/report/guided_fig1.log",
    benchmark:
        "logs/benchmarks/report/guided_fig1.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="guided",
        figure=subpath(output.png, strip_suffix=".png"),
        table=subpath(output.csv, strip_suffix=".csv"),
        baseline=GUIDED_COMPARISON[0],
        method=GUIDED_COMPARISON[1],
        datasets=GUIDED_DATASETS,
        extension=GUIDED_EXTENSION_DATASETS,
        seeds=GUIDED["seeds"],
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " safety-figure --baseline {params.baseline} --method {params.method}"
        " --datasets {params.datasets} --extension-datasets {params.extension} --seeds {params.seeds}"
        " --table {params.table} --figure {params.figure} {input.files} > {log} 2>&1"
