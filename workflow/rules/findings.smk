# The papers' headline findings, checked on this run's outputs (lib/offrl/report/findings.py).


def findings_studies():
    """The studies this configuration builds, with the inputs and flags of each one's checks."""
    studies = {}
    if guided_targets():
        inputs = evaluations(GUIDED_COMPARISON, DATASET_NAMES)
        studies["guided"] = {
            "inputs": inputs,
            "args": "--guided-datasets " + " ".join(DATASET_NAMES) + " --guided-evaluations " + " ".join(inputs),
        }
    if TAMING["envs"] and {"td3bc", "td3bc_pp"} <= set(TAMING["algorithms"]):
        datasets = taming_datasets(kinds=("expert",))
        runs = [run_dir(a, d, s) for a in ("td3bc", "td3bc_pp") for d in datasets for s in SEED_GROUPS]
        studies["taming"] = {
            "inputs": [f"{run}/{name}" for run in runs for name in ("evaluation.csv", "train_log.csv")],
            "args": "--taming-datasets " + " ".join(datasets) + " --taming-runs " + " ".join(runs),
        }
    if "table1" in SAFER["artefacts"]:
        methods, tasks = SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]
        priors = ["parrot", "safer"]
        calibration = {task: f"results/safer/calibration/task{task}.csv" for task in SAFER_EVAL_TASKS}
        studies["safer"] = {
            "inputs": downstream_logs(methods, tasks)
            + [f"results/safer/priors/{prior}/likelihood.csv" for prior in priors]
            + list(calibration.values()),
            "args": f"--safer-tasks {' '.join(map(str, tasks))} --safer-target {SAFER['bounds']['table_target']}"
            + " --safer-likelihood "
            + " ".join(f"{prior}=results/safer/priors/{prior}/likelihood.csv" for prior in priors)
            + " --safer-calibration "
            + " ".join(f"{task}={path}" for task, path in calibration.items())
            + " --safer-runs "
            + safer_runs_arguments(methods, tasks),
        }
    return studies


FINDINGS_STUDIES = findings_studies()


rule findings:
    """Each paper's headline claims as checks: the effect, its 95 % bootstrap interval over seeds, the verdict."""
    input:
        [path for study in FINDINGS_STUDIES.values() for path in study["inputs"]],
    output:
        md=report("results/findings.md", caption="../report/findings.rst", category="Findings"),
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
