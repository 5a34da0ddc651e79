# TD3BC++ paper (Taming policy constrained offline RL): Table 3 (the contaminated datasets),
# Tables 1 (gym) and 8, Figures 3-8 and 11. The ER-X / EC-X datasets are built in datasets.smk.


include: "taming_inputs.smk"


use rule dataset_table as contamination_table with:
    """Table 3 of the TD3BC++ paper: sizes, expert and contaminant transitions, average reward."""
    input:
        run_config=RUN_CONFIG,
        files=contaminated_summaries(),
    output:
        csv="results/tables/contamination.csv",
        md=reported("results/tables/contamination.md", caption="../report/contamination.rst", category="Datasets"),
        tex="results/tables/contamination.tex",
    log:
        "logs/report/contamination.log",
    benchmark:
        "logs/benchmarks/report/contamination.tsv"
    params:
        study="datasets",
        stem=subpath(output.csv, strip_suffix=".csv"),
        options="--layout contamination",


use rule d4rl_table as taming_table1 with:
    """Table 1 (gym) of the TD3BC++ paper: expert, expert-medium and ER-X datasets, final scores; ± over every final
    episode, evaluation and seed, the Total's the sum of the rows'.
    """
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING["algorithms"], taming_datasets(config)),
    output:
        csv="results/tables/taming_table1.csv",
        md=reported("results/tables/taming_table1.md", caption="../report/taming_table1.rst", category="TD3BC++"),
        tex="results/tables/taming_table1.tex",
    log:
        "logs/report/taming_table1.log",
    benchmark:
        "logs/benchmarks/report/taming_table1.tsv"
    params:
        study="taming",
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=TAMING["algorithms"],
        datasets=taming_datasets(config),
        options=f"{TAMING_SPREAD} {gains(TAMING['algorithms'])}",


use rule d4rl_table as taming_table8 with:
    """Table 8 of the TD3BC++ paper: BEAR, TD3+BC and their ++ versions on D4RL's original dataset kinds."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING["table8_algorithms"], taming_datasets(config, kinds=KINDS, contaminated=False)),
    output:
        csv="results/tables/taming_table8.csv",
        md=reported("results/tables/taming_table8.md", caption="../report/taming_table8.rst", category="TD3BC++"),
        tex="results/tables/taming_table8.tex",
    log:
        "logs/report/taming_table8.log",
    benchmark:
        "logs/benchmarks/report/taming_table8.tsv"
    params:
        study="taming",
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=TAMING["table8_algorithms"],
        datasets=taming_datasets(config, kinds=KINDS, contaminated=False),
        options=f"{TAMING_SPREAD} {gains(TAMING['table8_algorithms'])}",


rule taming_fig3:
    """Figure 3 of the TD3BC++ paper: final score against the share of random data (catastrophic failure)."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING["figure_algorithms"], taming_datasets(config, kinds=("expert",))),
    output:
        png=reported("results/figures/taming_fig3.png", caption="../report/taming_fig3.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig3.pdf",
        csv="results/figures/taming_fig3.csv",
    log:
        "logs/report/taming_fig3.log",
    benchmark:
        "logs/benchmarks/report/taming_fig3.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["figure_algorithms"],
        envs=TAMING["envs"],
        percents=CONTAMINATION,
        last=OFFLINE["final_evaluations"],
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " contamination-figure --algorithms {params.algorithms} --envs {params.envs}"
        " --percents {params.percents} --last {params.last} --figure {params.stem} {input.files} > {log} 2>&1"


rule taming_fig4:
    """Figure 4 of the TD3BC++ paper: the policy's divergence from expert vs contaminant dataset actions,
    and the score."""
    input:
        run_config=RUN_CONFIG,
        logs=[f"{run}/train_log.csv" for run in taming_contaminated_runs()],
        evaluations=[f"{run}/evaluation.csv" for run in taming_contaminated_runs()],
    output:
        png=reported("results/figures/taming_fig4.png", caption="../report/taming_fig4.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig4.pdf",
        csv="results/figures/taming_fig4.csv",
    log:
        "logs/report/taming_fig4.log",
    benchmark:
        "logs/benchmarks/report/taming_fig4.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["figure_algorithms"],
        datasets=taming_contaminated(),
        runs=taming_contaminated_runs(),
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " divergence-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --figure {params.stem} {params.runs} > {log} 2>&1"


rule taming_fig8:
    """Figure 8 of the TD3BC++ paper: ablation of the two plugins (+GP, +CR, both) on expert-medium, ER1,
    ER3 and ER5."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING["ablation_algorithms"], TAMING_FIG8_DATASETS),
    output:
        png=reported("results/figures/taming_fig8.png", caption="../report/taming_fig8.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig8.pdf",
        csv="results/figures/taming_fig8.csv",
    log:
        "logs/report/taming_fig8.log",
    benchmark:
        "logs/benchmarks/report/taming_fig8.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING["ablation_algorithms"],
        datasets=TAMING_FIG8_DATASETS,
        last=OFFLINE["final_evaluations"],
        title="Ablation: final scores over seeds",
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " box-figure --algorithms {params.algorithms} --datasets {params.datasets}"
        " --last {params.last} --title {params.title:q} --figure {params.stem} {input.files} > {log} 2>&1"


use rule taming_fig8 as taming_fig5 with:
    """Figure 5 of the TD3BC++ paper: TD3+BC, and TD3+BC with the gradient penalty on uniform, dataset or policy
    actions.
    """
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING_SWEEPS["fig5"], TAMING_FIG5_DATASETS),
    output:
        png=reported("results/figures/taming_fig5.png", caption="../report/taming_fig5.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig5.pdf",
        csv="results/figures/taming_fig5.csv",
    log:
        "logs/report/taming_fig5.log",
    benchmark:
        "logs/benchmarks/report/taming_fig5.tsv"
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING_SWEEPS["fig5"],
        datasets=TAMING_FIG5_DATASETS,
        title="Gradient penalty: which actions it samples",


use rule taming_fig8 as taming_fig11 with:
    """Figure 11 of the TD3BC++ paper: TD3BC++ over λ_GP."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING_SWEEPS["fig11"], TAMING_FIG11_DATASETS),
    output:
        png=reported("results/figures/taming_fig11.png", caption="../report/taming_fig11.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig11.pdf",
        csv="results/figures/taming_fig11.csv",
    log:
        "logs/report/taming_fig11.log",
    benchmark:
        "logs/benchmarks/report/taming_fig11.tsv"
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=TAMING_SWEEPS["fig11"],
        datasets=TAMING_FIG11_DATASETS,
        title="TD3BC++ over the gradient-penalty weight",


rule taming_fig6:
    """Figure 6 of the TD3BC++ paper: Q of expert vs random dataset actions during training, with and without GP."""
    input:
        run_config=RUN_CONFIG,
        files=expand(
            "results/runs/{algo}/{dataset}/seed{seeds}/snapshots.pt",
            algo=["td3bc", "td3bc_gp"],
            dataset=TAMING["q_histogram_dataset"],
            seeds=SEED_GROUPS,
        ),
    output:
        png=reported("results/figures/taming_fig6.png", caption="../report/taming_fig6.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig6.pdf",
        csv="results/figures/taming_fig6.csv",
    log:
        "logs/report/taming_fig6.log",
    benchmark:
        "logs/benchmarks/report/taming_fig6.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        algorithms=[algo for algo in ["td3bc", "td3bc_gp"] for _ in SEED_GROUPS],
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " q-figure --algorithms {params.algorithms} --figure {params.stem} {input.files} > {log} 2>&1"


rule taming_fig7_gym:
    """Figure 7 of the TD3BC++ paper's sweep on the gym expert-random data (the default scale's stand-in for the
    paper's Adroit figure): score against α for several λ_GP (the penalty relaxes the need for the BC term)."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING_SWEEPS["fig7"], taming_contaminated()),
    output:
        png=reported("results/figures/taming_fig7_gym.png", caption="../report/taming_fig7_gym.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig7_gym.pdf",
        csv="results/figures/taming_fig7_gym.csv",
    log:
        "logs/report/taming_fig7_gym.log",
    benchmark:
        "logs/benchmarks/report/taming_fig7_gym.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        grid=TAMING_FIG7_GRID,
        datasets=taming_contaminated(),
        last=OFFLINE["final_evaluations"],
        note="",
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " alpha-figure --grid {params.grid} --datasets {params.datasets}"
        " --last {params.last} --note={params.note:q} --figure {params.stem} {input.files} > {log} 2>&1"


use rule taming_fig7_gym as taming_fig7 with:
    """Figure 7 of the TD3BC++ paper on Adroit's expert-cloned data: score against α for several λ_GP."""
    input:
        run_config=RUN_CONFIG,
        files=evaluations(TAMING_SWEEPS["fig7"], ADROIT_STUDY["fig7"]),
    output:
        png=reported("results/figures/taming_fig7.png", caption="../report/taming_fig7.rst", category="TD3BC++"),
        pdf="results/figures/taming_fig7.pdf",
        csv="results/figures/taming_fig7.csv",
    log:
        "logs/report/taming_fig7.log",
    benchmark:
        "logs/benchmarks/report/taming_fig7.tsv"
    params:
        study="taming",
        stem=subpath(output.png, strip_suffix=".png"),
        grid=TAMING_FIG7_GRID,
        datasets=ADROIT_STUDY["fig7"],
        last=OFFLINE["final_evaluations"],
        note=ADROIT_NOTE,


use rule d4rl_table as taming_table2 with:
    """Table 2 of the TD3BC++ paper: the Adroit tasks' expert and expert-cloned-X datasets, final scores; the cells
    the paper leaves out shown as –.
    """
    input:
        run_config=RUN_CONFIG,
        files=ADROIT_TABLE2_EVALUATIONS,
    output:
        csv="results/tables/taming_table2.csv",
        md=reported("results/tables/taming_table2.md", caption="../report/taming_table2.rst", category="TD3BC++"),
        tex="results/tables/taming_table2.tex",
    log:
        "logs/report/taming_table2.log",
    benchmark:
        "logs/benchmarks/report/taming_table2.tsv"
    params:
        study="taming",
        stem=subpath(output.csv, strip_suffix=".csv"),
        algorithms=ADROIT["algorithms"],
        datasets=ADROIT_STUDY["table2"],
        options=f"{TAMING_SPREAD} {gains(ADROIT['algorithms'])} {ADROIT_OMIT} --note {shlex.quote(ADROIT_NOTE)}",


use rule dataset_table as taming_table4 with:
    """Table 4 of the TD3BC++ paper: the expert-cloned-X Adroit datasets' sizes, expert and cloned transitions,
    reward.
    """
    input:
        run_config=RUN_CONFIG,
        files=expand("resources/datasets/{dataset}.json", dataset=ADROIT_STUDY["table4"]),
    output:
        csv="results/tables/taming_table4.csv",
        md=reported("results/tables/taming_table4.md", caption="../report/taming_table4.rst", category="Datasets"),
        tex="results/tables/taming_table4.tex",
    log:
        "logs/report/taming_table4.log",
    benchmark:
        "logs/benchmarks/report/taming_table4.tsv"
    params:
        study="datasets",
        stem=subpath(output.csv, strip_suffix=".csv"),
        options=f"--layout contamination --note {shlex.quote(ADROIT_NOTE)}",
