# The findings report's studies and their inputs (its rule: findings.smk, which includes this file).


def findings_studies():
    """The studies this configuration builds, with the inputs and flags of each one's checks."""
    studies = {}
    if guided_targets():
        inputs = evaluations(GUIDED_COMPARISON, GUIDED_DATASETS)
        studies["guided"] = {
            "inputs": inputs,
            "args": f"--guided-datasets {' '.join(GUIDED_DATASETS)}"
            + f" --guided-seeds {' '.join(map(str, GUIDED['seeds']))}"
            + " --guided-evaluations "
            + " ".join(inputs),
        }
    if TAMING["envs"] and {"td3bc", "td3bc_pp"} <= set(TAMING["algorithms"]):
        datasets = taming_datasets(config, kinds=("expert",))
        runs = [run_dir(a, d, s) for a in ("td3bc", "td3bc_pp") for d in datasets for s in SEED_GROUPS]
        studies["taming"] = {
            "inputs": [f"{run}/{name}" for run in runs for name in ("evaluation.csv", "train_log.csv")],
            "args": "--taming-datasets " + " ".join(datasets) + " --taming-runs " + " ".join(runs),
        }
    if Q_DIAGNOSTIC_RUNS and "sac" in Q_DIAGNOSTIC["algorithms"]:
        inputs = [f"{run}/q_diagnostic.csv" for run in Q_DIAGNOSTIC_RUNS]
        studies["bear_blog"] = {
            "inputs": inputs,
            "args": "--q-datasets " + " ".join(Q_DIAGNOSTIC["datasets"]) + " --q-diagnostics " + " ".join(inputs),
        }
    if "table1" in SAFER["artefacts"]:
        methods, tasks = SAFER_DOWNSTREAM["methods"], SAFER_DOWNSTREAM["tasks"]
        likelihood = {prior: prior_file(prior, FIRST_PRIOR[0], "likelihood.csv") for prior in ("parrot", "safer")}
        calibration = calibration_files()
        studies["safer"] = {
            "inputs": downstream_logs(methods, tasks) + list(likelihood.values()) + list(calibration.values()),
            "args": f"--safer-tasks {' '.join(map(str, tasks))} --safer-target {SAFER['bounds']['table_target']}"
            + " --safer-likelihood "
            + " ".join(f"{prior}={path}" for prior, path in likelihood.items())
            + " --safer-calibration "
            + " ".join(f"{task}:{seed}={path}" for (task, seed), path in calibration.items())
            + " --safer-runs "
            + safer_runs_arguments(methods, tasks),
        }
    return studies


FINDINGS_STUDIES = findings_studies()
