"""Every rule asks a scheduler for threads, mem_mb and runtime (workflow/rules/resources.smk), at every scale.

The workflow is loaded through Snakemake's API (``SnakemakeApi.workflow``) in a subprocess, one per
config: each rule's ``ruleinfo`` holds what the rule itself declared (``threads`` is None when a rule
leaves it out, which the rule's resolved value of 1 would hide; the names of its ``resources``), and
the DAG of ``all`` built as for a dry run gives every job's evaluated values, callables included.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

# Each scale loads the workflow and builds its DAG in Snakemake: minutes in all.
pytestmark = pytest.mark.slow

LOAD = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

repo, configfile, workdir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    api_workflow = api.workflow(resource_settings=ResourceSettings(),
                                config_settings=ConfigSettings(configfiles=[configfile]),
                                snakefile=repo / "Snakefile", workdir=workdir)
    api_workflow.dag(DAGSettings(targets={"all"}))
    workflow = api_workflow._workflow
    rules = [
        {"name": rule.name, "norun": rule.norun, "is_run": rule.is_run, "threads": rule.ruleinfo.threads,
         "resources": sorted(rule.ruleinfo.resources[1]) if rule.ruleinfo.resources else [], "conda": rule.conda_env}
        for rule in workflow.rules
    ]
    workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True, nolock=True)
    workflow._build_dag()
    jobs = [{"rule": job.rule.name, "wildcards": dict(job.wildcards_dict), "threads": job.threads,
             "mem_mb": job.resources.get("mem_mb"), "runtime": job.resources.get("runtime"),
             "outputs": [str(f) for f in job.output]} for job in workflow.dag.jobs]
print("JSON" + json.dumps({"rules": rules, "jobs": jobs}))
"""

# Scale -> its config file; "minari" is the smoke scale downloading its datasets (the rules defined
# only when datasets.source is minari).
CONFIGS = {
    "test": ".test/config/config.yaml",
    "default": "config/config.yaml",
    "paper": "config/paper.yaml",
    "minari": None,
}
MAX_RUNTIME_MIN = 3 * 24 * 60  # resources.smk's bound: a common partition limit


def minari_config(path):
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    ids = {f"hopper-{kind}": f"mujoco/hopper/{kind}-v0" for kind in config["datasets"]["kinds"]}
    config["datasets"] |= {"source": "minari", "minari_ids": ids, "cloned_contamination": []}  # no remote cloned kind
    path.write_text(yaml.safe_dump(config))
    return path


def load(configfile, workdir) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(REPO), str(REPO / configfile), str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("JSON") + 4 :])


@pytest.fixture(scope="module", params=list(CONFIGS))
def loaded(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    configfile = CONFIGS[request.param] or minari_config(workdir / "minari.yaml")
    return request.param, load(configfile, workdir)


def test_every_rule_declares_threads_mem_mb_and_runtime(loaded):
    scale, workflow = loaded
    rules = [rule for rule in workflow["rules"] if not rule["norun"]]  # `all` only gathers targets
    names = {rule["name"] for rule in rules}
    assert len(rules) >= 40 and "download_dataset" in names  # at every scale: Adroit's data come through it
    assert [rule["name"] for rule in rules if rule["threads"] is None] == []
    assert [rule["name"] for rule in rules if not {"mem_mb", "runtime"} <= set(rule["resources"])] == []


def test_every_rule_with_a_command_runs_in_the_one_conda_env(loaded):
    _, workflow = loaded
    commands = [rule for rule in workflow["rules"] if not (rule["norun"] or rule["is_run"])]
    assert {rule["conda"] for rule in commands} == {str(REPO / "envs" / "offrl.yaml")}


def test_every_job_gets_whole_positive_values_within_the_bounds(loaded):
    _, workflow = loaded
    jobs = [job for job in workflow["jobs"] if job["rule"] != "all"]
    for job in jobs:
        assert isinstance(job["mem_mb"], int) and 1000 <= job["mem_mb"] <= 64_000, job
        assert isinstance(job["runtime"], int) and 5 <= job["runtime"] <= MAX_RUNTIME_MIN, job
        assert job["threads"] >= 1, job


def test_paper_scale_values_follow_the_measured_costs(loaded):
    """Hand-computed from benchmarks/costs.yaml, resources.smk's policy and config/paper.yaml (1M steps, 5 seeds
    a job, 1M transitions); training asks a GPU, as no `--resources gpu=0` is given."""
    scale, workflow = loaded
    if scale != "paper":
        pytest.skip("the hand-computed values are the paper scale's")

    def job(rule, **wildcards):
        return next(j for j in workflow["jobs"] if j["rule"] == rule and wildcards.items() <= j["wildcards"].items())

    def pack(algo, env):
        """The pack (offline.pack_members: 60) of ``algo``'s runs on ``env``'s datasets that holds the most runs."""
        packs = [
            j
            for j in workflow["jobs"]
            if j["rule"].startswith("train_pack_") and j["outputs"][0].startswith(f"results/runs/{algo}/{env}-")
        ]
        return max(packs, key=lambda j: len(j["outputs"]))

    # A job's runtime: ceil(3 * (12 s cluster start + start-up + work) / 60), eager GPU speeds (the longer).
    # Guided TD3+BC (never packed) on a GPU, 265 steps/s: 5.45 + 1e6 / 265 = 3779.04 s; 3 * 3791.04 / 60 = 189.55 -> 190
    assert job("train_offline", algo="guided_td3bc")["runtime"] == 190
    # 2 * (610 MB + 0.27 MB * 2000k transitions + 1500 MB of CUDA runtime) = 5300
    assert job("train_offline", algo="guided_td3bc")["mem_mb"] == 5300
    # A pack of TD3+BC runs on a GPU, at the eager 233 steps/s whatever its members: 5.45 + 1e6 / 233 = 4297.30 s;
    # 3 * 4309.30 / 60 = 215.47 -> 216
    td3bc = pack("td3bc", "hopper")
    assert td3bc["runtime"] == 216 and len(td3bc["outputs"]) == 3 * 9  # 9 runs of 5 seeds: 45 members
    # 2 * (610 + 0.27 * 2000k * 9 datasets + 1500) = 13940 -> 14000
    assert td3bc["mem_mb"] == 14000
    # CQL has no GPU figure: the slowest measured, BEAR's 96 steps/s: 5.45 + 1e6 / 96 = 10422.12 s;
    # 3 * 10434.12 / 60 = 521.7 -> 522
    assert pack("cql", "hopper")["runtime"] == 522
    # 1e6 / 5000 = 200 snapshots * 5 members * 10 episodes * 1000 steps = 1e7 env steps * 0.0898 ms (Hopper's
    # figure) = 898 s; 3 * (12 + 3.96 + 898) / 60 = 45.70 -> 46
    assert job("evaluate_run", algo="td3bc", dataset="hopper-expert")["runtime"] == 46
    # (1e6 - 25k random) TD3 learning steps * 11.6 ms = 11310 s; 3 * (12 + 5.01 + 11310) / 60 = 566.35 -> 567;
    # online TD3 asks a GPU too (no GPU figure yet: the CPU's runtime); 2 * (610 + 0.27 * 1000k replayed steps
    # + 1500 MB of CUDA runtime) = 4760 -> 4800
    assert (job("behaviour_policy")["runtime"], job("behaviour_policy")["mem_mb"]) == (567, 4800)
    # 2 * (610 + 0.27 * 2000k) = 2300 (medium-expert holds two rollouts of 1M)
    assert job("collect_dataset", kind="expert")["mem_mb"] == 2300
    # 1e6 transitions * 0.187 ms = 187 s; 3 * (12 + 2.8 + 187) / 60 = 10.09 -> 11
    assert job("collect_dataset", kind="expert")["runtime"] == 11


# Rules the plan prices at start-up only that pass over a whole dataset: resources.smk prices them as
# rolling the dataset out, above the plan's projection.
PRICED_ABOVE_THE_PLAN = {
    "contaminate_dataset",
    "subset_dataset",
    "download_dataset",
    "simhash_index",
    "safer_bounds",
    "safer_likelihood",
    "safer_probe",
}


def test_paper_scale_runtime_is_the_plans_projection_with_headroom(loaded):
    """Each job's runtime request is ceil(headroom * (cluster start + the seconds `offrl plan` projects) / 60), within
    the bounds."""
    from offrl.plan import dry_run, load_costs, project

    scale, workflow = loaded
    if scale != "paper":
        pytest.skip("one scale is enough: the figures are the same at every scale")
    costs = load_costs(REPO / "benchmarks" / "costs.yaml")
    jobs = dry_run(
        [str(REPO / CONFIGS[scale])], cores=16, gpus=1, snakefile=REPO / "Snakefile"
    )  # as the load: training on a GPU
    project(jobs, costs, measured={})
    requested = {j["outputs"][0]: j["runtime"] for j in workflow["jobs"] if j["outputs"]}
    checked = set()
    for job in jobs:
        if job.rule == "all":
            continue
        expected = min(MAX_RUNTIME_MIN, max(5, math.ceil(3 * (costs["cluster_job_start_s"] + job.seconds) / 60)))
        runtime = requested[job.outputs[0]]
        if job.rule in PRICED_ABOVE_THE_PLAN:
            assert runtime >= expected, (job.rule, job.wildcards, runtime, expected)
        else:
            assert runtime == expected, (job.rule, job.wildcards, job.figure, runtime, expected)
        checked.add(job.rule)
    assert {
        "train_offline",
        "train_pack",
        "evaluate_run",
        "behaviour_policy",
        "safety_expert",
        "collect_dataset",
        "cloned_policy",
        "grasp_data",
        "safer_prior",
        "safer_downstream",
    } <= checked
