# Reporting: tables and figures from the per-run outputs.


rule dataset_table:
    """Sizes and returns of every dataset of the run."""
    input:
        dataset_summaries(),
    output:
        csv="results/tables/datasets.csv",
        md=report("results/tables/datasets.md", caption="../report/datasets.rst", category="Datasets"),
        tex="results/tables/datasets.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
    log:
        "logs/report/datasets.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl dataset-table --out {params.stem} {input} > {log} 2>&1"
