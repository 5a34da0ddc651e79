"""The cost plan: the scheduling simulation against hand-computed wall times, the units read from job
commands, and the smoke scale's plan against the jobs a real smoke run benchmarked."""

import json
import math

import pytest

from offrl.plan import Job, Task, captured_rate, groups_of, project, projected_seconds, wall_time
from tests.conftest import REPO


def test_independent_jobs_share_the_cores():
    tasks = [Task(10), Task(10), Task(10)]
    assert wall_time(tasks, cores=2, gpus=0) == 20  # two at once, then the third
    assert wall_time(tasks, cores=3, gpus=0) == 10


def test_a_job_waits_for_its_inputs_and_the_longest_path_goes_first():
    # A(5) -> B(5), C(8). On 2 cores: A and C at 0, B at 5: 10. On 1 core: A first (path 10 > 8), then C (8 > B's 5),
    # then B: 18.
    tasks = [Task(5), Task(5, after=(0,)), Task(8)]
    assert wall_time(tasks, cores=2, gpus=0) == 10
    assert wall_time(tasks, cores=1, gpus=0) == 18


def test_threads_hold_cores():
    # A job of 2 threads and two of 1 thread, 10 s each, on 2 cores: never more than 2 threads at once.
    tasks = [Task(10, threads=2), Task(10), Task(10)]
    assert wall_time(tasks, cores=2, gpus=0) == 20
    assert wall_time(tasks, cores=4, gpus=0) == 10
    # Snakemake runs a job of more threads than the box has on all its cores.
    assert wall_time([Task(10, threads=4), Task(10)], cores=2, gpus=0) == 20


def test_gpu_jobs_queue_for_the_gpus():
    tasks = [Task(10, gpus=1), Task(10, gpus=1), Task(10)]
    assert wall_time(tasks, cores=16, gpus=1) == 20  # the CPU job runs beside the first GPU job
    assert wall_time(tasks, cores=16, gpus=2) == 10
    with pytest.raises(ValueError, match="needs 1 GPU"):
        wall_time(tasks, cores=16, gpus=0)


def test_a_cluster_runs_at_most_jobs_at_once_whatever_their_threads():
    tasks = [Task(10, threads=8, gpus=1)] * 4 + [Task(30, after=(0, 1, 2, 3))]
    assert wall_time(tasks, slots=2) == 50  # 2 × 10 s in two waves, then 30 s
    assert wall_time(tasks, slots=4) == 40


def test_a_ready_job_that_fits_starts_beside_a_blocked_one():
    # A 2-thread job waits for both cores; the 1-thread job behind it in the queue starts on the free core.
    tasks = [Task(20), Task(10, threads=2), Task(5)]
    assert wall_time(tasks, cores=2, gpus=0) == 30  # 0-20: A, 0-5: C; 20-30: B


def _job(rule, shell, **kwargs):
    defaults = {"wildcards": {}, "threads": 1, "gpus": 0, "benchmark": None, "inputs": [], "outputs": []}
    return Job(rule=rule, shell=shell, **{**defaults, **kwargs})


COSTS = {
    "startup_s": {"default": 3.0, "evaluate_run": 4.0},
    "train_offline": {
        "cpu": {"td3bc": 100.0, "bc": 400.0},
        "gpu": {"td3bc": 250.0, "bear": 90.0},
        "gpu_same_as": {"td3bc_10pct": "td3bc"},
    },
    "per_unit": {"evaluate_run": 1e-4, "safer_downstream": {"default": 0.01, "sac": 0.005}},
}


def test_units_come_from_each_jobs_command():
    train = _job(
        "train_offline",
        "python -m offrl --threads 1 train --algo td3bc --seeds 0 1 2 --steps 2000 --batch-size 128"
        " --eval-every 500 --options '{\"alpha\": 1}' --out x > log 2>&1",
        wildcards={"algo": "td3bc_a1"},
        outputs=["runs/x/snapshots.pt"],
    )
    evaluate = _job(
        "evaluate_run",
        "python -m offrl evaluate --snapshots runs/x/snapshots.pt --episodes 5 > log",
        wildcards={"seeds": "0-1-2"},
        inputs=["runs/x/snapshots.pt"],
    )
    gpu = _job(
        "train_offline",
        "python -m offrl train --algo td3bc_10pct --seeds 0 1 2 3 4 --steps 1000000 --batch-size 256",
        gpus=1,
    )
    unknown = _job("train_offline", "python -m offrl train --algo cql --seeds 0 --steps 1000 --batch-size 256", gpus=1)
    downstream = _job(
        "safer_downstream",
        "python -m offrl downstream --method sac --seeds 0 1 --steps 300 --start-steps 100 --batch-size 128",
        wildcards={"method": "sac"},
    )
    table = _job("d4rl_table", "python -m offrl score-table a.csv b.csv")
    project([train, evaluate, gpu, unknown, downstream, table], COSTS, measured={})
    # 2000 steps × 3 seeds at td3bc's 100 member-steps/s (the variant's preset), half as long at batch 128
    assert train.seconds == pytest.approx(3 + 2000 * 3 / 100 * 0.5)
    assert train.size == "2k steps × 3 seeds" and "td3bc 100 member-steps/s" in train.figure
    # 2000/500 = 4 snapshots × 3 seeds × 5 episodes × 1000 steps, 1e-4 s each
    assert evaluate.seconds == pytest.approx(4 + 4 * 3 * 5 * 1000 * 1e-4)  # evaluation's own start-up
    assert (
        gpu.seconds == pytest.approx(3 + 1e6 / 250) and "td3bc 250 steps/s" in gpu.figure
    )  # a GPU step trains every seed
    assert unknown.seconds == pytest.approx(3 + 1000 / 90) and "no figure, bear's" in unknown.figure
    assert downstream.seconds == pytest.approx(
        3 + (300 - 100) * 2 * 0.005 / 2
    )  # the learning steps of 2 seeds, at half the batch
    assert table.seconds == 3 and "start-up only" in table.figure


CAPTURED = {
    **COSTS,
    "train_offline": {**COSTS["train_offline"], "gpu_captured": {"td3bc": {1: 2000, 5: 8000, 60: 30000}}},
}


def test_a_pack_is_priced_by_its_members_and_its_runs_are_evaluated_by_their_seeds():
    runs = " ".join(f"--run hopper-{k} d/{k} 0-1-2-3-4 results/runs/td3bc/hopper-{k}/seed0-1-2-3-4" for k in "abc")
    pack = _job(
        "train_pack",
        f"python -m offrl train-pack --algo td3bc {runs} --steps 1000 --eval-every 100 --batch-size 256 > log",
        outputs=["results/runs/td3bc/hopper-a/seed0-1-2-3-4/snapshots.pt"],
    )
    evaluate = _job(
        "evaluate_run",
        "python -m offrl evaluate --snapshots results/runs/td3bc/hopper-a/seed0-1-2-3-4/snapshots.pt --episodes 2",
        wildcards={"seeds": "0-1-2-3-4"},
        inputs=["results/runs/td3bc/hopper-a/seed0-1-2-3-4/snapshots.pt"],
    )
    project([pack, evaluate], COSTS, measured={})
    assert pack.members == 15 and pack.name == "td3bc" and pack.size == "1k steps × 15 members"
    assert pack.seconds == pytest.approx(3 + 1000 * 15 / 100)  # CPU: member-steps at td3bc's 100 per second
    assert evaluate.seconds == pytest.approx(4 + 10 * 5 * 2 * 1000 * 1e-4)  # 10 snapshots × its run's 5 seeds


def test_a_captured_gpu_job_gets_the_rate_of_its_members_shared_with_its_gpus_other_jobs():
    # 5 members: 8000 member-steps/s; 1000 steps × 5 members.
    seconds, figure = projected_seconds(CAPTURED, "train_offline", 1000, preset="td3bc", gpu=True, capture=True)
    assert seconds == pytest.approx(3 + 1000 * 5 / 8000) and "estimate" in figure
    # 2 jobs of 5 on one GPU: a 10-member process's rate, 8000·(30000/8000)^(ln 2 / ln 12), half each.
    rate = 8000 * (30000 / 8000) ** (math.log(2) / math.log(12))
    seconds, figure = projected_seconds(
        CAPTURED, "train_offline", 1000, preset="td3bc", gpu=True, capture=True, sharing=2
    )
    assert seconds == pytest.approx(3 + 1000 * 5 / (rate / 2)) and "2 jobs per GPU" in figure
    # BEAR at its eager speed against TD3+BC's (90 / 250), 60 members: the curve's last point; past it, flat.
    seconds, _ = projected_seconds(CAPTURED, "train_offline", 1000, preset="bear", gpu=True, capture=True, members=60)
    assert seconds == pytest.approx(3 + 1000 * 60 / (30000 * 90 / 250))
    assert captured_rate(CAPTURED, 120) == 30000 and captured_rate(CAPTURED, 1) == 2000
    # Eager: the 5-seed job's steps/s for any size, said an estimate for another size; 2 jobs per GPU share it.
    seconds, figure = projected_seconds(CAPTURED, "train_offline", 1000, preset="td3bc", gpu=True, members=20)
    assert seconds == pytest.approx(3 + 1000 / 250) and "estimate: measured at 5 seeds" in figure
    seconds, figure = projected_seconds(CAPTURED, "train_offline", 1000, preset="td3bc", gpu=True, sharing=2)
    assert seconds == pytest.approx(3 + 2 * 1000 / 250) and "estimate: sharing its speed" in figure


def test_the_workflows_runtime_figures_are_the_plans():
    """workflow/rules/resources.smk calls projected_seconds with a job's units: a variant's own figure first, then its
    preset's."""
    costs = {**COSTS, "train_offline": {**COSTS["train_offline"], "cpu": {"td3bc": 100.0, "td3bc_a1": 50.0}}}
    assert projected_seconds(costs, "train_offline", 1000, name="td3bc_a1", preset="td3bc")[0] == pytest.approx(
        3 + 1000 / 50
    )
    assert projected_seconds(costs, "train_offline", 1000, name="td3bc_a4", preset="td3bc", batch=512)[
        0
    ] == pytest.approx(3 + 1000 * 2 / 100)
    assert projected_seconds(costs, "train_offline", 1000, name="x", preset="td3bc_10pct", gpu=True)[
        0
    ] == pytest.approx(3 + 1000 / 250)
    assert projected_seconds(costs, "safer_downstream", 100, name="parrot")[0] == pytest.approx(
        3 + 100 * 0.01
    )  # the rule's default
    assert projected_seconds(costs, "other rules") == (3.0, "start-up only (light jobs: tables, figures, indexes, ...)")


def test_a_measured_job_keeps_its_time():
    job = _job(
        "train_offline",
        "python -m offrl train --algo td3bc --seeds 0 --steps 10 --batch-size 256",
        benchmark="logs/b.tsv",
    )
    project([job], COSTS, measured={"logs/b.tsv": 42.0})
    assert job.seconds == 42.0 and job.figure.startswith("measured")


def test_an_algorithm_without_a_cpu_figure_is_named():
    job = _job(
        "train_offline",
        "python -m offrl train --algo iql --seeds 0 --steps 10 --batch-size 256",
        wildcards={"algo": "iql"},
    )
    with pytest.raises(ValueError, match="no figure for iql"):
        project([job], COSTS, measured={})


@pytest.mark.slow
def test_the_smoke_plan_lists_every_job_the_smoke_run_benchmarked(smoke_run, tmp_path):
    """The plan of the smoke scale prices the jobs the smoke run ran, each with a projection from a figure.

    How close those projections come to the run's measured times is a speed figure, not a test:
    ``benchmarks/plan_accuracy.py RUN_DIR`` prints the projected / measured ratio per rule and algorithm.
    """
    from benchmarks.plan_accuracy import measured_benchmarks, smoke_plan

    run_dir = smoke_run
    plan = smoke_plan(tmp_path)
    measured = measured_benchmarks(run_dir)
    listed = [job for job in plan["jobs"] if job["benchmark"]]
    assert len({(job["rule"], job["algorithm"]) for job in listed}) > 40
    for job in listed:
        assert job["benchmark"] in measured, job["benchmark"]  # the smoke run ran every job the plan lists
        assert job["seconds"] > 0, job


def test_a_previous_run_of_the_same_config_gives_its_jobs_measured_times(tmp_path):
    import yaml

    from offrl.plan import measured_seconds

    config = {"scale": "test", "offline": {"steps": 200}}
    (tmp_path / "results" / "runs" / "r").mkdir(parents=True)
    (tmp_path / "results" / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "results" / "runs" / "r" / "config.json").write_text(json.dumps({"device": "cpu"}))
    (tmp_path / "logs").mkdir()
    for name in ("a", "t"):  # wall 30 s on a busy machine, 12 s of CPU: the job's own time is 12 s
        (tmp_path / "logs" / f"{name}.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n30.0\t0:00:30\t500\t12.0\n")
    evaluate = _job("evaluate_run", "", benchmark="logs/a.tsv")
    train_cpu = _job("train_offline", "", benchmark="logs/t.tsv", outputs=["results/runs/r/config.json"])
    train_gpu = _job("train_offline", "", benchmark="logs/t.tsv", outputs=["results/runs/r/config.json"], gpus=1)
    measured, note = measured_seconds(tmp_path, config, [evaluate, train_cpu])
    assert measured == {"logs/a.tsv": 12.0, "logs/t.tsv": 12.0} and "2 jobs measured" in note
    measured, _ = measured_seconds(tmp_path, config, [train_gpu])
    assert measured == {}  # trained on the CPU then, planned on a GPU now
    measured, note = measured_seconds(tmp_path, {**config, "scale": "paper"}, [evaluate])
    assert measured == {} and "another config" in note


def test_a_job_on_a_shared_gpu_holds_its_share_of_the_gpu_hours():
    job = _job("train_offline", "python -m offrl train --algo td3bc --seeds 0 --steps 10", gpus=1, seconds=7200.0)
    assert groups_of([job], sharing=4)[0].gpu_hours == pytest.approx(0.5)
    assert groups_of([job])[0].gpu_hours == pytest.approx(2.0)


@pytest.mark.slow  # three dry runs of the paper scale, a minute each
def test_the_readmes_cost_table_is_the_plans(monkeypatch):
    """README.md's paper-scale table between its markers is what `plan --markdown-table` prints: regenerate it with
    `python -m offrl plan --configfile config/paper.yaml --markdown-table` when the figures or the DAG change."""
    from offrl.plan import readme_table

    readme = (REPO / "README.md").read_text()
    start, end = "<!-- plan table: config/paper.yaml -->\n", "\n<!-- end plan table -->"
    found = readme[readme.index(start) + len(start) : readme.index(end)]
    monkeypatch.chdir(REPO)  # the plan reads the Snakefile and the schema from the repository root
    assert readme_table(["config/paper.yaml"]) == found


def test_a_target_is_priced_with_only_the_jobs_it_needs():
    """`plan TARGET`: the dry run of that file alone (issue 34: one figure's cost)."""
    from offrl.plan import dry_run

    config = [str(REPO / ".test" / "config" / "config.yaml")]
    jobs = dry_run(config, 2, 0, REPO / "Snakefile", targets=["resources/datasets/hopper-random.json"])
    assert [(job.rule, job.outputs[0]) for job in jobs] == [
        ("collect_dataset", "resources/minari/offrl/hopper/random-v0")
    ]
