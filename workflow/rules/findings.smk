# The papers' headline findings, checked on this run's outputs (lib/offrl/report/findings.py).


FINDINGS_STUDIES = findings_studies()


rule findings:
    """Each paper's headline claims as checks: the effect, its 95 % bootstrap interval over seeds, the verdict."""
    input:
        [path for study in FINDINGS_STUDIES.values() for path in study["inputs"]],
    output:
        md=reported("results/findings.md", caption="../report/findings.rst", category="Findings"),
        json="results/findings.json",
    params:
        stem=subpath(output.md, strip_suffix=".md"),
        scale=config["scale"],
        last=OFFLINE["final_evaluations"],
        studies=" ".join(study["args"] for study in FINDINGS_STUDIES.values()),
    log:
        "logs/report/findings.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl findings --out {params.stem} --scale {params.scale} --last {params.last}"
        " {params.studies} > {log} 2>&1"
