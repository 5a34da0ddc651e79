"""GPU claims: one GPU per job, the same one again for a process that holds it, locks per user."""

import os
import subprocess
import sys

import pytest
import torch

from offrl.device import choose_device, claim_gpu, lock_dir

HOLD = (
    "import pathlib, sys; from offrl.device import claim_gpu; "
    "print(claim_gpu({count}, directory=pathlib.Path({directory!r})), flush=True); sys.stdin.read()"
)


def other_job(directory, count):
    """Another process that claims a GPU and holds it until its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLD.format(count=count, directory=str(directory))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
    )


def test_each_job_claims_its_own_gpu_and_a_process_reuses_its_own(tmp_path):
    assert claim_gpu(2, directory=tmp_path) == 0
    assert (
        claim_gpu(2, directory=tmp_path) == 0
    )  # this process holds GPU 0: it gets it again (bench of several algorithms)
    second = other_job(tmp_path, 2)
    try:
        assert second.stdout.readline().strip() == "1"  # GPU 0 is held: the other job gets GPU 1
        third = subprocess.run(
            [sys.executable, "-c", HOLD.format(count=2, directory=str(tmp_path))],
            input="",
            capture_output=True,
            text=True,
        )
        assert third.returncode != 0 and "all 2 visible GPUs are claimed by other offrl jobs" in third.stderr
    finally:
        second.communicate("")
    assert claim_gpu(1, names=["7"], directory=tmp_path) == 0  # named by the scheduler's physical id
    assert (tmp_path / "gpu7.lock").read_text() == f"{os.getpid()}\n"


def test_choose_device_on_a_fake_two_gpu_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("OFFRL_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert choose_device("cuda") == choose_device("auto") == torch.device("cuda:0")  # one claim, reused
    assert [p.name for p in tmp_path.iterdir()] == ["gpu3.lock"]
    assert choose_device("cuda:1") == torch.device("cuda:1") and choose_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        choose_device("gpu")


def test_lock_directory_is_per_user(monkeypatch):
    monkeypatch.delenv("OFFRL_GPU_LOCK_DIR", raising=False)
    assert lock_dir().name == f"offrl-gpu-locks-{os.getuid()}"
    monkeypatch.setenv("OFFRL_GPU_LOCK_DIR", "/somewhere/locks")
    assert str(lock_dir()) == "/somewhere/locks"


HOLD_SHARED = (
    "import pathlib, sys; from offrl.device import claim_gpu; "
    "print(claim_gpu({count}, names={names!r}, directory=pathlib.Path({directory!r}), jobs_per_gpu={k}), flush=True); "
    "sys.stdin.read()"
)


@pytest.mark.slow  # starts several processes: tens of seconds on a loaded 2-core machine (--durations)
def test_jobs_per_gpu_lets_k_jobs_share_a_gpu_filled_evenly(tmp_path):
    def job():
        return subprocess.Popen(
            [sys.executable, "-c", HOLD_SHARED.format(count=2, names=["3", "5"], directory=str(tmp_path), k=2)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ,
        )

    jobs = [job() for _ in range(4)]
    try:
        # Four jobs, two GPUs, two slots each: slot 0 of both GPUs, then slot 1 of both.
        claimed = sorted(int(j.stdout.readline().strip()) for j in jobs)
        assert claimed == [0, 0, 1, 1]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "gpu3.lock",
            "gpu3.slot1.lock",
            "gpu5.lock",
            "gpu5.slot1.lock",
        ]
        fifth = subprocess.run(
            [sys.executable, "-c", HOLD_SHARED.format(count=2, names=["3", "5"], directory=str(tmp_path), k=2)],
            input="",
            capture_output=True,
            text=True,
        )
        assert fifth.returncode != 0 and "all 2 visible GPUs (2 jobs each) are claimed" in fifth.stderr
    finally:
        for j in jobs:
            j.communicate("")


def test_a_process_holding_a_slot_reuses_its_gpu(tmp_path):
    first = other_job(tmp_path, 1)  # another job holds slot 0 of the only GPU
    try:
        assert first.stdout.readline().strip() == "0"
        assert claim_gpu(1, directory=tmp_path, jobs_per_gpu=3) == 0  # this process takes slot 1
        assert claim_gpu(1, directory=tmp_path, jobs_per_gpu=3) == 0  # and reuses it (bench td3bc bc --device cuda)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu0.lock", "gpu0.slot1.lock"]
    finally:
        first.communicate("")
    with pytest.raises(ValueError, match="jobs_per_gpu must be at least 1"):
        claim_gpu(1, directory=tmp_path, jobs_per_gpu=0)


@pytest.mark.parametrize("bad", ["gpu", "CPU", "cuda:", "cuda:x", "cuda:-1"])
def test_a_bad_device_is_refused_naming_the_allowed_values(bad):
    with pytest.raises(ValueError, match=rf"unknown device '{bad}'; allowed: auto, cpu, cuda, cuda:<index>$"):
        choose_device(bad)


def test_a_gpu_that_is_not_there_is_a_value_error(tmp_path, monkeypatch):
    """A ValueError, which the command line reports in one line (a RuntimeError would print a traceback)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for request in ("cuda", "cuda:0"):
        with pytest.raises(
            ValueError, match=f"device '{request}' requested but torch sees no GPU; allowed here: auto, cpu"
        ):
            choose_device(request)
    assert choose_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("OFFRL_GPU_LOCK_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"'cuda:2' requested but torch sees 2 GPU\(s\): cuda:0 to cuda:1"):
        choose_device("cuda:2")
