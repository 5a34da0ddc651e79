# SimHash index of each dataset's states (Guided TD3+BC's conf(s)).


rule simhash_index:
    """Exact bucket counts of μ(s) = sgn(A·g(s)) over the dataset's states."""
    input:
        unpack(dataset_input),
    output:
        index="results/index/{dataset}/simhash.npz",
        summary="results/index/{dataset}/simhash.json",
    log:
        "logs/index/{dataset}.log",
    benchmark:
        "logs/benchmarks/index/{dataset}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=DATASET_MEM_MB,
        runtime=DATASET_RUNTIME,
    params:
        k=GUIDED["simhash_k"],
        seed=GUIDED["simhash_seed"],
    shell:
        "python -m offrl index --dataset-dir {input.dataset} --k {params.k} --seed {params.seed}"
        " --out {output.index} --summary {output.summary} > {log} 2>&1"


rule simhash_figure:
    """How the datasets' states spread over SimHash buckets, and the conf(s) they get."""
    input:
        run_config=RUN_CONFIG,
        files=expand("results/index/{dataset}/simhash.npz", dataset=DATASET_NAMES),
    output:
        png=reported(
            "results/figures/simhash_conf.png",
            caption="../report/simhash_conf.rst",
            category="Guided TD3+BC",
        ),
        pdf="results/figures/simhash_conf.pdf",
        csv="results/figures/simhash_conf.csv",
        histograms=reported(
            "results/figures/simhash_conf_hist.png",
            caption="../report/simhash_conf_hist.rst",
            category="Guided TD3+BC",
        ),
        histograms_pdf="results/figures/simhash_conf_hist.pdf",
        histograms_csv="results/figures/simhash_conf_hist.csv",
    log:
        "logs/report/simhash_conf.log",
    benchmark:
        "logs/benchmarks/report/simhash_conf.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=LIGHT_MEM_MB,
        runtime=LIGHT_RUNTIME,
    params:
        study="datasets",
        stem=subpath(output.png, strip_suffix=".png"),
        histograms=subpath(output.histograms, strip_suffix=".png"),
        names=DATASET_NAMES,
    shell:
        "python -m offrl --run-config {input.run_config} --study {params.study}"
        " conf-figure --names {params.names} --figure {params.stem}"
        " --histograms {params.histograms} {input.files} > {log} 2>&1"
