# The papers' headline findings, checked on this run's outputs (lib/offrl/report/findings.py).
# Included after every study: it reads each one's runs.


include: "findings_inputs.smk"


rule findings:
    """Each paper's headline claims as checks: the effect, its 95 % bootstrap interval over seeds, the verdict."""
    input:
        [path for study in FINDINGS_STUDIES.values() for path in study["inputs"]],
    output:
        md=reported("results/findings.md", caption="../report/findings.rst", category="Findings"),
        json="results/findings.json",
    log:
        "logs/report/findings.log",
    benchmark:
        "logs/benchmarks/report/findings.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        stem=subpath(output.md, strip_suffix=".md"),
        scale=config["scale"],
        last=OFFLINE["final_evaluations"],
        studies=" ".join(study["args"] for study in FINDINGS_STUDIES.values()),
    shell:
        "python -m offrl findings --out {params.stem} --scale {params.scale} --last {params.last}"
        " {params.studies} > {log} 2>&1"
