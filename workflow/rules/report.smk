# Reporting: tables and figures from the per-run outputs.


rule dataset_table:
    """Sizes and returns of every dataset of the run."""
    input:
        dataset_summaries(),
    output:
        csv="results/tables/datasets.csv",
        md=reported("results/tables/datasets.md", caption="../report/datasets.rst", category="Datasets"),
        tex="results/tables/datasets.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
    log:
        "logs/report/datasets.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl dataset-table --out {params.stem} {input} > {log} 2>&1"


rule d4rl_table:
    """TD3+BC and BC on D4RL's dataset kinds: final scores, mean ± std over seeds."""
    input:
        evaluations(ALGORITHMS, DATASET_NAMES),
    output:
        csv="results/tables/d4rl.csv",
        md=reported("results/tables/d4rl.md", caption="../report/d4rl_table.rst", category="D4RL"),
        tex="results/tables/d4rl.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=ALGORITHMS,
        datasets=DATASET_NAMES,
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/d4rl_table.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl score-table --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --table {params.stem} {input} > {log} 2>&1"


rule d4rl_curves:
    """TD3+BC and BC on D4RL's dataset kinds: learning curves."""
    input:
        evaluations(ALGORITHMS, DATASET_NAMES),
    output:
        png=reported("results/figures/d4rl_curves.png", caption="../report/d4rl_curves.rst", category="D4RL"),
        pdf="results/figures/d4rl_curves.pdf",
        csv="results/figures/d4rl_curves.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=ALGORITHMS,
        datasets=DATASET_NAMES,
    log:
        "logs/report/d4rl_curves.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl learning-curves --algorithms {params.algorithms} --datasets {params.datasets}"
        " --figure {params.stem} {input} > {log} 2>&1"


# Guided TD3+BC (Verma et al.): Table 1 and Figure 1, TD3+BC against the guided variant.
GUIDED_COMPARISON = ["td3bc", "guided_td3bc"]


rule guided_table1:
    """Table 1 of the Guided TD3+BC paper: final normalised scores of its seeds, mean ± std over seeds, the Total's ± the sum of the rows'."""
    input:
        evaluations(GUIDED_COMPARISON, GUIDED_DATASETS + GUIDED_EXTENSION_DATASETS),
    output:
        csv="results/tables/guided_table1.csv",
        md=reported("results/tables/guided_table1.md", caption="../report/guided_table1.rst", category="Guided TD3+BC"),
        tex="results/tables/guided_table1.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=GUIDED_COMPARISON,
        datasets=GUIDED_DATASETS,
        extension=GUIDED_EXTENSION_DATASETS,
        seeds=GUIDED["seeds"],
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/guided_table1.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl score-table --algorithms {params.algorithms} --datasets {params.datasets}"
        " --extension-datasets {params.extension} --seeds {params.seeds} --total-spread sum"
        " --last {params.last} --table {params.stem} {input} > {log} 2>&1"


rule guided_fig1:
    """Figure 1 of the Guided TD3+BC paper: % change of unsafe events and of Σ|a| over all evaluations."""
    input:
        evaluations(GUIDED_COMPARISON, GUIDED_DATASETS + GUIDED_EXTENSION_DATASETS),
    output:
        png=reported("results/figures/guided_fig1.png", caption="../report/guided_fig1.rst", category="Guided TD3+BC"),
        pdf="results/figures/guided_fig1.pdf",
        csv="results/figures/guided_fig1.csv",
        md="results/figures/guided_fig1.md",
        tex="results/figures/guided_fig1.tex",
    params:
        figure=subpath(output.png, strip_suffix=".png"),
        table=subpath(output.csv, strip_suffix=".csv"),
        baseline=GUIDED_COMPARISON[0],
        method=GUIDED_COMPARISON[1],
        datasets=GUIDED_DATASETS,
        extension=GUIDED_EXTENSION_DATASETS,
        seeds=GUIDED["seeds"],
    log:
        "logs/report/guided_fig1.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl safety-figure --baseline {params.baseline} --method {params.method}"
        " --datasets {params.datasets} --extension-datasets {params.extension} --seeds {params.seeds}"
        " --table {params.table} --figure {params.figure} {input} > {log} 2>&1"


rule contamination_table:
    """Table 3 of the TD3BC++ paper: sizes, expert and contaminant transitions, average reward."""
    input:
        contaminated_summaries(),
    output:
        csv="results/tables/contamination.csv",
        md=reported("results/tables/contamination.md", caption="../report/contamination.rst", category="Datasets"),
        tex="results/tables/contamination.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
    log:
        "logs/report/contamination.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl dataset-table --layout contamination --out {params.stem} {input} > {log} 2>&1"


# TD3BC++ paper (Taming policy constrained offline RL): Table 1 (gym), Figures 3 and 4.


rule taming_table1:
    """Table 1 (gym) of the TD3BC++ paper: expert, expert-medium and ER-X datasets, final scores; ± over every final episode, evaluation and seed, the Total's the sum of the rows'."""
    input:
        lambda wildcards: evaluations(TAMING["algorithms"], taming_datasets()),
    output:
        csv="results/tables/taming_table1.csv",
        md=reported("results/tables/taming_table1.md", caption="../report/taming_table1.rst", category="TD3BC++"),
        tex="results/tables/taming_table1.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=TAMING["algorithms"],
        datasets=taming_datasets(),
        last=OFFLINE["final_evaluations"],
        gains=" ".join(f"--gain {a}:{b}" for a, b in PLUS_PLUS.items() if a in TAMING["algorithms"] and b in TAMING["algorithms"]),
    log:
        "logs/report/taming_table1.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl score-table --algorithms {params.algorithms} --datasets {params.datasets}"
        " --spread pooled --total-spread sum --last {params.last} {params.gains} --table {params.stem} {input} > {log} 2>&1"


rule taming_fig3:
    """Figure 3 of the TD3BC++ paper: final score against the share of random data (catastrophic failure)."""
    input:
        lambda wildcards: evaluations(TAMING["figure_algorithms"], taming_datasets(kinds=("expert",))),
    output:
        png=reported("results/figures/taming_fig3.png", caption="../report/taming_fig3.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig3.pdf",
        csv="results/figures/taming_fig3.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["figure_algorithms"],
        envs=TAMING["envs"],
        percents=CONTAMINATION,
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/taming_fig3.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl contamination-figure --algorithms {params.algorithms} --envs {params.envs}"
        " --percents {params.percents} --last {params.last} --figure {params.stem} {input} > {log} 2>&1"


rule taming_fig4:
    """Figure 4 of the TD3BC++ paper: the policy's divergence from expert vs contaminant dataset actions, and the score."""
    input:
        logs=lambda wildcards: [f"{run}/train_log.csv" for run in taming_contaminated_runs()],
        evaluations=lambda wildcards: [f"{run}/evaluation.csv" for run in taming_contaminated_runs()],
    output:
        png=reported("results/figures/taming_fig4.png", caption="../report/taming_fig4.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig4.pdf",
        csv="results/figures/taming_fig4.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["figure_algorithms"],
        datasets=lambda wildcards: taming_contaminated(),
        runs=lambda wildcards: taming_contaminated_runs(),
    log:
        "logs/report/taming_fig4.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl divergence-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --figure {params.stem} {params.runs} > {log} 2>&1"


rule taming_table8:
    """Table 8 of the TD3BC++ paper: BEAR, TD3+BC and their ++ versions on D4RL's original dataset kinds."""
    input:
        lambda wildcards: evaluations(TAMING["table8_algorithms"], taming_datasets(kinds=KINDS, contaminated=False)),
    output:
        csv="results/tables/taming_table8.csv",
        md=reported("results/tables/taming_table8.md", caption="../report/taming_table8.rst", category="TD3BC++"),
        tex="results/tables/taming_table8.tex",
    params:
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=TAMING["table8_algorithms"],
        datasets=lambda wildcards: taming_datasets(kinds=KINDS, contaminated=False),
        last=OFFLINE["final_evaluations"],
        gains=" ".join(f"--gain {a}:{b}" for a, b in PLUS_PLUS.items() if a in TAMING["table8_algorithms"] and b in TAMING["table8_algorithms"]),
    log:
        "logs/report/taming_table8.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl score-table --algorithms {params.algorithms} --datasets {params.datasets}"
        " --spread pooled --total-spread sum --last {params.last} {params.gains} --table {params.stem} {input} > {log} 2>&1"


rule taming_fig8:
    """Figure 8 of the TD3BC++ paper: ablation of the two plugins (+GP, +CR, both) on expert-medium, ER1, ER3 and ER5."""
    input:
        evaluations(TAMING["ablation_algorithms"], TAMING_FIG8_DATASETS),
    output:
        png=reported("results/figures/taming_fig8.png", caption="../report/taming_fig8.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig8.pdf",
        csv="results/figures/taming_fig8.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["ablation_algorithms"],
        datasets=TAMING_FIG8_DATASETS,
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/taming_fig8.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl box-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --title 'Ablation: final scores over seeds' --figure {params.stem} {input} > {log} 2>&1"


rule taming_fig6:
    """Figure 6 of the TD3BC++ paper: Q of expert vs random dataset actions during training, with and without GP."""
    input:
        expand("results/runs/{algo}/{dataset}/seed{seeds}/snapshots.pt", algo=["td3bc", "td3bc_gp"], dataset=TAMING["q_histogram_dataset"], seeds=SEED_GROUPS),
    output:
        png=reported("results/figures/taming_fig6.png", caption="../report/taming_fig6.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig6.pdf",
        csv="results/figures/taming_fig6.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=[algo for algo in ["td3bc", "td3bc_gp"] for _ in SEED_GROUPS],
    log:
        "logs/report/taming_fig6.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl q-figure --algorithms {params.algorithms} --figure {params.stem} {input} > {log} 2>&1"


rule taming_fig5:
    """Figure 5 of the TD3BC++ paper: TD3+BC, and TD3+BC with the gradient penalty on uniform, dataset or policy actions."""
    input:
        evaluations(TAMING_SWEEPS["fig5"], TAMING_FIG5_DATASETS),
    output:
        png=reported("results/figures/taming_fig5.png", caption="../report/taming_fig5.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig5.pdf",
        csv="results/figures/taming_fig5.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING_SWEEPS["fig5"],
        datasets=TAMING_FIG5_DATASETS,
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/taming_fig5.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl box-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --title 'Gradient penalty: which actions it samples' --figure {params.stem} {input} > {log} 2>&1"


rule taming_fig7:
    """Figure 7 of the TD3BC++ paper: score against α for several λ_GP (the penalty relaxes the need for the BC term)."""
    input:
        evaluations(TAMING_SWEEPS["fig7"], taming_contaminated()),
    output:
        png=reported("results/figures/taming_fig7.png", caption="../report/taming_fig7.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig7.pdf",
        csv="results/figures/taming_fig7.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        grid=TAMING_FIG7_GRID,
        datasets=taming_contaminated(),
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/taming_fig7.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl alpha-figure --grid {params.grid} --datasets {params.datasets}"
        " --last {params.last} --figure {params.stem} {input} > {log} 2>&1"


rule taming_fig11:
    """Figure 11 of the TD3BC++ paper: TD3BC++ over λ_GP."""
    input:
        evaluations(TAMING_SWEEPS["fig11"], TAMING_FIG11_DATASETS),
    output:
        png=reported("results/figures/taming_fig11.png", caption="../report/taming_fig11.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig11.pdf",
        csv="results/figures/taming_fig11.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING_SWEEPS["fig11"],
        datasets=TAMING_FIG11_DATASETS,
        last=OFFLINE["final_evaluations"],
    log:
        "logs/report/taming_fig11.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl box-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --title 'TD3BC++ over the gradient-penalty weight' --figure {params.stem} {input} > {log} 2>&1"


# The BEAR blog (Kumar, BAIR 2019): Figure 1 and Figures 7-9.


rule bear_fig1:
    """Figure 1 of the BEAR blog: naive offline SAC on expert data of several sizes, return and Q over training, beside BEAR and TD3+BC."""
    input:
        logs=[f"{run}/train_log.csv" for run in BEAR_FIG1_RUNS],
        evaluations=[f"{run}/evaluation.csv" for run in BEAR_FIG1_RUNS],
    output:
        png=reported("results/figures/bear_fig1.png", caption="../report/bear_fig1.rst", category="BEAR"),
        pdf="results/figures/bear_fig1.pdf",
        csv="results/figures/bear_fig1.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=BEAR_BLOG["figure1_algorithms"],
        datasets=BEAR_FIG1_DATASETS,
        runs=BEAR_FIG1_RUNS,
    log:
        "logs/report/bear_fig1.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl return-q-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --figure {params.stem} {params.runs} > {log} 2>&1"


rule bear_curves:
    """Figures 7-9 of the BEAR blog: BEAR against BC, BCQ and naive SAC on medium, expert and random data; one row per env."""
    input:
        evaluations(BEAR_BLOG["algorithms"], BEAR_BLOG_DATASETS),
    output:
        png=reported("results/figures/bear_curves.png", caption="../report/bear_curves.rst", category="BEAR"),
        pdf="results/figures/bear_curves.pdf",
        csv="results/figures/bear_curves.csv",
    params:
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=BEAR_BLOG["algorithms"],
        datasets=BEAR_BLOG_DATASETS,
    log:
        "logs/report/bear_curves.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl learning-curves --algorithms {params.algorithms} --datasets {params.datasets}"
        " --columns 3 --figure {params.stem} {input} > {log} 2>&1"


rule resolved_config:
    """The run's whole configuration: its scale's file with the schema's defaults filled in."""
    output:
        "results/config.yaml",
    params:
        # A copy taken here, before the Snakefile adds the report's derived report_missing list.
        config=copy.deepcopy(config),
    log:
        "logs/report/resolved_config.log",
    run:
        import yaml

        from offrl.files import write_atomically

        write_atomically(output[0], lambda tmp: Path(tmp).write_text(yaml.safe_dump(params.config, sort_keys=False, allow_unicode=True)))


# The lecture slides' diagnostic: learned Q minus the actual return of the evaluated policy.


rule q_overestimation:
    """Learned Q against the discounted return of the evaluated policy, at the dataset's initial states and along the rollouts; table and curves."""
    input:
        [f"{run}/q_diagnostic.csv" for run in Q_DIAGNOSTIC_RUNS],
    output:
        csv="results/tables/q_overestimation.csv",
        md=reported("results/tables/q_overestimation.md", caption="../report/q_overestimation_table.rst", category="Q diagnostic"),
        tex="results/tables/q_overestimation.tex",
        png=reported("results/figures/q_overestimation.png", caption="../report/q_overestimation.rst", category="Q diagnostic"),
        pdf="results/figures/q_overestimation.pdf",
        curves="results/figures/q_overestimation.csv",
    params:
        table=subpath(output.csv, strip_suffix=".csv"),
        figure=subpath(output.png, strip_suffix=".png"),
        algorithms=Q_DIAGNOSTIC["algorithms"],
        datasets=Q_DIAGNOSTIC["datasets"],
        last=OFFLINE["final_evaluations"],
    threads: 1
    resources:
        mem_mb=2000,
    log:
        "logs/report/q_overestimation.log",
    conda:
        "../../envs/offrl.yaml"
    shell:
        "python -m offrl q-overestimation --algorithms {params.algorithms} --datasets {params.datasets} --last {params.last}"
        " --table {params.table} --figure {params.figure} {input} > {log} 2>&1"
