"""profiles/slurm against a real Slurm: a slice of the smoke pipeline as sbatch jobs, equal to a local run.

The cluster (tests/slurm_cluster.py) is one node on this machine, started for this module and
stopped by PID. The slice: a dataset, a training job asking for a GPU (``offline.device: auto``
makes the rule ask for ``gpu: 1``, submitted as ``--gpus=1`` against the node's gres/gpu, on the
profile's GPU partition), its evaluation and the D4RL table (on its CPU partition); beside it, a
dataset whose behaviour policy is damaged, the failing job whose log Snakemake must show. About 3-5
minutes on 2 cores, mostly the plugin's status-check interval (2, 12, 22, ... s after each finished
job) and the jobs' Snakefile parse.
"""

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.pipeline_slice import SNAKEMAKE, TABLE, assert_same_results, slice_config, snakemake_env
from tests.slurm_cluster import missing_requirement, slurm_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement())),
]

LIMIT_S = 600  # each Snakemake run is killed (SIGKILL: the plugin may ignore SIGTERM) after this


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with slurm_cluster(tmp_path_factory.mktemp("slurm-cluster")) as env:
        yield env


def test_slice_runs_as_sbatch_jobs_equal_to_a_local_run_and_a_failed_job_shows_its_log(cluster, tmp_path):
    config = slice_config(
        tmp_path / "slice.yaml", device="auto"
    )  # the training rule asks for a GPU; the job runs on the CPU
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    # The local reference runs meanwhile: the Slurm run mostly waits for status checks.
    local_run = subprocess.Popen(
        ["timeout", "-s", "KILL", str(LIMIT_S), *SNAKEMAKE, TABLE, "--cores", "1", "--configfile", str(config)],
        cwd=local,
        env=snakemake_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    # A damaged copy of a shipped behaviour policy: the hopper-medium dataset job must fail, with its log shown.
    behaviour = remote / "resources" / "behaviour" / "hopper"
    # Copied with fresh times (not copy2), so Snakemake takes them as newer than the shipped ones and keeps them.
    shutil.copytree(REPO / "resources" / "shipped" / "behaviour" / "hopper", behaviour, copy_function=shutil.copy)
    (behaviour / "medium.pt").write_bytes((behaviour / "medium.pt").read_bytes()[:300])
    result = subprocess.run(
        [
            "timeout",
            "-s",
            "KILL",
            str(LIMIT_S),
            *SNAKEMAKE,
            TABLE,
            "resources/datasets/hopper-medium.json",
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--configfile",
            str(config),
            "--jobs",
            "2",
            "--latency-wait",
            "5",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--slurm-no-account",
            "--keep-going",
        ],
        cwd=remote,
        env=snakemake_env(cluster),
        capture_output=True,
        text=True,
        timeout=LIMIT_S + 30,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-5000:]

    submitted = {
        rule: job
        for job, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S+/slurm_logs/rule_(\w+)/", output)
    }
    # resolved_config: the table states the run's scale from results/config.yaml.
    assert set(submitted) == {"collect_dataset", "resolved_config", "train_offline", "evaluate_run", "d4rl_table"}, (
        output[-5000:]
    )
    jobs = {
        rule: subprocess.run(["scontrol", "show", "job", job], env=cluster, capture_output=True, text=True).stdout
        for rule, job in submitted.items()
    }
    job = jobs["train_offline"]
    assert "TresPerJob=gres:gpu:1" in job and "JobState=COMPLETED" in job, job  # scheduled on one of the node's GPUs
    # The profile's partitions by kind: the GPU job on the GPU partition, the CPU jobs (dataset, table) on the other.
    assert "Partition=gpu " in job, job
    # collect_dataset's job here may be either of its two (hopper-medium fails by design): its partition alone.
    for rule in ("collect_dataset", "evaluate_run", "d4rl_table"):
        assert "Partition=cpu " in jobs[rule], jobs[rule]
        assert rule == "collect_dataset" or "JobState=COMPLETED" in jobs[rule], jobs[rule]

    failure = output[output.index("Error in rule collect_dataset") :]
    assert "--kind medium" in failure[: failure.index("Logfile")]
    assert re.search(
        r"log: logs/datasets/hopper-medium\.log, "
        r"\S+/\.snakemake/slurm_logs/rule_collect_dataset/hopper_medium/\d+\.log",
        failure,
    )
    assert "Logfile logs/datasets/hopper-medium.log:" in failure
    assert (
        f"offrl collect: error: cannot read the actor checkpoint {behaviour.relative_to(remote)}/medium.pt: "
        "it is damaged" in failure
    )
    assert not (remote / "resources" / "datasets" / "hopper-medium.json").exists()

    local_output = local_run.communicate(timeout=LIMIT_S + 30)[0]
    assert local_run.returncode == 0, local_output[-5000:]
    assert_same_results(local, remote)
