# The gallery (docs/results.md, docs/img/): a few of this run's figures, small, beside the paper's claims
# and the findings' verdicts on them (lib/offrl/report/gallery.py). Not part of `all`: `snakemake gallery`
# at the default scale, then commit docs/results.md and docs/img/ (tests/test_gallery.py checks them).

from offrl.report.gallery import GALLERY

# The findings of the studies the gallery shows: SAFER's Figures 1 and 4 need its priors' probes and calibration
# rollouts (no downstream runs); Guided TD3+BC's, its runs, read only when its Figure 1 is a GALLERY entry (its
# four training runs add 23 CPU-minutes at the default scale).
GALLERY_FIGURES = [entry.figure for entry in GALLERY]
GALLERY_GUIDED = "results/figures/guided_fig1.png" in GALLERY_FIGURES and "guided" in FINDINGS_STUDIES


rule gallery_findings:
    """The findings the gallery's figures bear on: Guided TD3+BC's, and SAFER's Figures 1 and 4 (no downstream runs)."""
    input:
        guided=FINDINGS_STUDIES["guided"]["inputs"] if GALLERY_GUIDED else [],
        likelihood=[prior_file(prior, FIRST_PRIOR[0], "likelihood.csv") for prior in ("parrot", "safer")],
        calibration=list(calibration_files().values()),
    output:
        md="results/gallery/findings.md",
        json="results/gallery/findings.json",
    log:
        "logs/report/gallery_findings.log",
    benchmark:
        "logs/benchmarks/report/gallery_findings.tsv"
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
        guided=FINDINGS_STUDIES["guided"]["args"] if GALLERY_GUIDED else "",
        likelihood=" ".join(
            f"{prior}={prior_file(prior, FIRST_PRIOR[0], 'likelihood.csv')}" for prior in ("parrot", "safer")
        ),
        calibration=" ".join(f"{task}:{seed}={path}" for (task, seed), path in calibration_files().items()),
        target=SAFER["bounds"]["table_target"],
    shell:
        "python -m offrl findings --out {params.stem} --scale {params.scale} --last {params.last} {params.guided}"
        " --safer-likelihood {params.likelihood} --safer-calibration {params.calibration}"
        " --safer-target {params.target} > {log} 2>&1"


rule gallery:
    """docs/results.md and docs/img/: the gallery's figures, small, beside the papers' claims and their verdicts."""
    input:
        run_config=RUN_CONFIG,
        findings="results/gallery/findings.json",
        figures=GALLERY_FIGURES,
    output:
        page="docs/results.md",
        manifest="docs/img/manifest.json",
        images=[f"docs/img/{Path(entry.figure).name}" for entry in GALLERY],
    log:
        "logs/report/gallery.log",
    benchmark:
        "logs/benchmarks/report/gallery.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    shell:
        "python -m offrl --run-config {input.run_config} gallery --findings {input.findings}"
        " --img-dir docs/img --page {output.page} {input.figures} > {log} 2>&1"
