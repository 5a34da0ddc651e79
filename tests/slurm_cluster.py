"""A real one-node Slurm cluster for the tests: munge, slurmctld and slurmd on this machine.

Needs root and, where Slurm is not installed, apt-get (Debian 12: slurm-wlm 22.05). The
daemons run in the foreground as children of the test, with their configuration, state
and logs in a temporary directory (clients find it through ``SLURM_CONF``), on ports picked
free; they are stopped by their PIDs. Without accounting (no slurmdbd), so job status comes
from ``squeue``. The node declares two GPUs (gres/gpu on stand-in device files): enough for
Slurm to schedule ``--gpus=N`` jobs; the jobs themselves see no GPU and run on the CPUs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ["munge", "slurm-client", "slurmctld", "slurmd"]
DAEMONS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol"]
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
# profiles/slurm's partitions by kind of job; the one node is in both, the CPU one the default.
PARTITIONS = ("cpu", "gpu")
GPUS = 2


def missing_requirement() -> str | None:
    """Why this machine cannot run the cluster (no root, or no Slurm and no apt-get), else ``None``."""
    if os.geteuid() != 0:
        return "starting slurmctld and slurmd needs root"
    if not all(shutil.which(tool, path=_sbin_path()) for tool in DAEMONS) and not shutil.which("apt-get"):
        return f"Slurm is not installed and there is no apt-get to install it ({' '.join(PACKAGES)})"
    return None


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def install() -> None:
    """apt-get the Slurm packages that are missing (about 15 s on Debian 12 after ``apt-get update``)."""
    if all(shutil.which(tool, path=_sbin_path()) for tool in DAEMONS):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def write_config(root: Path, node: str) -> Path:
    """slurm.conf and gres.conf under ``root``; return slurm.conf's path."""
    for name in ("state", "spool", "log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    # Declared, not measured (config_overrides): a small CI box still fits the rules' mem_mb requests;
    # the test's jobs use a few hundred MB each.
    memory = max(int(0.8 * _memory_mb()), 16000)
    cpus = os.cpu_count() or 2
    # slurmd drops GPUs without a File= (a count-only gres/gpu), so each gets a stand-in device:
    # /dev/null's numbers, or a plain file where mknod is not allowed (slurmd then logs an error and counts it anyway).
    for index in range(GPUS):
        device = root / f"gpu{index}"
        device.unlink(missing_ok=True)
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            device.touch()
    (root / "gres.conf").write_text(f"NodeName={node} Name=gpu File={root}/gpu[0-{GPUS - 1}]\n")
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=offrl-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName={PARTITIONS[0]} Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName={PARTITIONS[1]} Nodes={node} MaxTime=INFINITE State=UP
"""
    )
    return conf


def _munge_works() -> bool:
    encode = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
    return (
        encode.returncode == 0
        and subprocess.run(["unmunge"], input=encode.stdout, capture_output=True, timeout=10).returncode == 0
    )


def _wait(what: str, ready, procs: list[subprocess.Popen], logs: list[Path], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        for proc in procs:
            if proc.poll() is not None:
                break
        else:
            time.sleep(0.5)
            continue
        break
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs if log.is_file())
    raise RuntimeError(f"the Slurm test cluster did not become ready ({what}) within {timeout:.0f} s\n{tails}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@contextlib.contextmanager
def slurm_cluster(root: Path) -> Iterator[dict[str, str]]:
    """Start the cluster under ``root``; yield the environment its clients need; stop it by PID."""
    install()
    node = socket.gethostname().split(".")[0]
    conf = write_config(root, node)
    # snakemake-executor-plugin-slurm-jobstep clears SLURM_* (SLURM_CONF too) before the srun it
    # runs inside a job, so that srun would look for /etc/slurm/slurm.conf: a shim on PATH points it here.
    shim = root / "bin" / "srun"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {shutil.which("srun", path=_sbin_path())} "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": os.pathsep.join([str(shim.parent), _sbin_path()])}
    procs: list[subprocess.Popen] = []
    outputs = []
    try:
        if not _munge_works():  # a munged already serving the socket is used, not restarted
            MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
            shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
            out = open(root / "log" / "munged.out", "w")
            outputs.append(out)
            procs.append(
                subprocess.Popen(
                    ["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", "munged", "-F"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
            _wait("munged", _munge_works, procs, [root / "log" / "munged.out"])
        for daemon in (["slurmctld", "-D", "-i", "-f", str(conf)], ["slurmd", "-D", "-N", node, "-f", str(conf)]):
            out = open(root / "log" / f"{daemon[0]}.out", "w")
            outputs.append(out)
            procs.append(subprocess.Popen(daemon, env=env, stdout=out, stderr=subprocess.STDOUT))
            if daemon[0] == "slurmctld":
                _wait(
                    "scontrol ping",
                    lambda: "UP" in _run(["scontrol", "ping"], env),
                    procs,
                    [root / "log" / "slurmctld.out"],
                )
        logs = [root / "log" / name for name in ("slurmctld.log", "slurmd.log", "slurmd.out")]
        _wait("node idle", lambda: _run(["sinfo", "-h", "-o", "%T"], env).strip() == "idle", procs, logs)
        yield env
    finally:
        if len(procs) > 1:
            subprocess.run(["scancel", "--full", "--quiet", "--user=root"], env=env, capture_output=True, timeout=20)
        for proc in reversed(procs):
            _stop(proc)
        for out in outputs:
            out.close()


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=20)
    return result.stdout if result.returncode == 0 else ""
