"""A one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd from Debian's
slurm-wlm, a config written here, all daemons stopped afterwards."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

CONF = """ClusterName=poeta-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldPort=16817
SlurmdPort=16818
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why a cluster can't start here, or None."""
    for exe in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo"):
        if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists():
            return f"{exe} not found (install Debian's slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "a test cluster needs root (SlurmUser=root)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key"
    return None


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    def __init__(self, folder: Path):
        self.dir = folder
        self.conf = folder / "slurm.conf"
        self.started_munge = False

    def start(self, timeout: float = 30.0) -> None:
        (self.dir / "state").mkdir(parents=True, exist_ok=True)
        (self.dir / "spool").mkdir(exist_ok=True)
        self.conf.write_text(CONF.format(host=socket.gethostname(), d=self.dir, cpus=os.cpu_count() or 1))
        if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            subprocess.run([_exe("munged"), "--force"], check=True, capture_output=True)
            self.started_munge = True
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        subprocess.run([_exe("slurmctld"), "-f", str(self.conf)], check=True, env=env, capture_output=True)
        subprocess.run([_exe("slurmd"), "-f", str(self.conf)], check=True, env=env, capture_output=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the test cluster did not come up: {(self.dir / 'slurmctld.log').read_text()[-500:]}")

    def stop(self) -> None:
        for pidfile in ("slurmd.pid", "slurmctld.pid"):
            path = self.dir / pidfile
            if path.exists():
                try:
                    os.kill(int(path.read_text().strip()), 15)
                except (ValueError, ProcessLookupError):
                    pass
        if self.started_munge:
            subprocess.run(["pkill", "-x", "munged"], capture_output=True)
