"""A one-node SLURM cluster on localhost for the tests: its own munged (on a private socket),
slurmctld and slurmd from Debian's slurm-wlm, a config written here, on ports free when it starts
(several test sessions on one machine each get their own cluster, never another's controller).

Stopping it ends exactly what it started, by process id: first its jobs are cancelled (scancel),
then any job-step process still alive (slurmstepd ignores SIGTERM while it waits for its
controller; srun lingers with it) is killed, then the daemons, each from its own pid file.
The cluster's processes are the ones whose environment names this cluster's slurm.conf: the daemons
are started with it, slurmd passes it to every slurmstepd, and sbatch to every job and srun. A pid
is signalled only while it is such a process, so a stale pid file never hits a process that took
the number over.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF = """ClusterName=poeta-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
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
KillWait=2
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

DAEMONS = ("slurmd", "slurmctld", "munged")  # stopped in this order: the node, the controller, then auth


def missing() -> str | None:
    """Why a cluster can't start here, or None."""
    for exe in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel"):
        if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists():
            return f"{exe} not found (install Debian's slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "a test cluster needs root (SlurmUser=root)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key"
    return None


def _exe(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def alive(pid: int) -> bool:
    """Running (a zombie, waiting for a parent that will never reap it, is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Cluster:
    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: dict[str, int] = {}  # daemon -> pid, read from the pid file it wrote

    # -------------------------------------------------------------- start

    def start(self, timeout: float = 30.0) -> None:
        (self.dir / "state").mkdir(parents=True, exist_ok=True)
        (self.dir / "spool").mkdir(exist_ok=True)
        os.chmod(self.dir, 0o700)  # munged refuses a socket folder others can write to
        ctld_port, slurmd_port = _free_ports(2)
        self.conf.write_text(CONF.format(host=socket.gethostname(), d=self.dir, cpus=os.cpu_count() or 1,
                                         ctld_port=ctld_port, slurmd_port=slurmd_port))
        try:
            # A munged of our own, on a private socket: no other munged is used or stopped.
            self._daemon("munged", [_exe("munged"), "--force", f"--socket={self.dir}/munge.socket",
                                    f"--pid-file={self.dir}/munged.pid", f"--log-file={self.dir}/munged.log",
                                    f"--seed-file={self.dir}/munged.seed"])
            self._daemon("slurmctld", [_exe("slurmctld"), "-f", str(self.conf)])
            self._daemon("slurmd", [_exe("slurmd"), "-f", str(self.conf)])
            deadline = time.time() + timeout
            while time.time() < deadline:
                out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True)
                if out.returncode == 0 and out.stdout.strip() in ("idle", "mix", "alloc"):
                    return
                time.sleep(0.5)
            raise RuntimeError(f"the test cluster did not come up: {self._log('slurmctld')[-500:]}")
        except BaseException:
            self.stop()
            raise

    def _daemon(self, name: str, argv: list[str]) -> None:
        """Start a daemon (it forks into the background) and keep the pid it writes to its pid file."""
        pidfile = self.dir / f"{name}.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(argv, check=True, env=self.env, capture_output=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                self.pids[name] = int(pidfile.read_text().strip())
                return
            except (OSError, ValueError):
                time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no pid file: {self._log(name)[-500:]}")

    def _log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -------------------------------------------------------------- the cluster's processes

    def job_ids(self) -> list[str]:
        out = subprocess.run(["squeue", "-h", "-o", "%A"], env=self.env, capture_output=True, text=True)
        return out.stdout.split() if out.returncode == 0 else []

    def ours(self, pid: int) -> bool:
        """A running process of this cluster (its environment names this cluster's slurm.conf)."""
        return alive(pid) and f"SLURM_CONF={self.conf}".encode() in _environ(pid).split(b"\0")

    def processes(self) -> dict[int, str]:
        """pid -> command of every running process of this cluster except its daemons (and their own
        helpers, such as slurmctld's slurmscriptd) and this process: job scripts, srun, slurmstepd, and
        the programs the jobs run."""
        daemons = {pid for pid in self.pids.values() if self.ours(pid)}
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid == os.getpid() or pid in daemons or _parent(pid) in daemons:
                continue
            if self.ours(pid):
                found[pid] = _command(pid)
        return found

    # -------------------------------------------------------------- stop

    def stop(self, grace: float = 20.0) -> None:
        """Cancel the jobs, end the job steps, then the daemons; each by its id. Safe to call twice."""
        if self.pids.get("slurmctld") and self.ours(self.pids["slurmctld"]):
            jobs = self.job_ids()
            if jobs:
                subprocess.run(["scancel", *jobs], env=self.env, capture_output=True)
            self._wait(lambda: not self.job_ids() and not self.processes(), grace)
        for pid in self.processes():  # what the cancel did not end (slurmstepd ignores SIGTERM)
            self._kill(pid, signal.SIGKILL)
        self._wait(lambda: not self.processes(), 5)
        for name in DAEMONS:
            pid = self.pids.get(name)
            if pid and self.ours(pid):
                self._kill(pid, signal.SIGTERM)
                if not self._wait(lambda pid=pid: not self.ours(pid), 10):
                    self._kill(pid, signal.SIGKILL)
                    self._wait(lambda pid=pid: not self.ours(pid), 5)
        for pid in self.processes():  # a daemon's helper that outlived it
            self._kill(pid, signal.SIGKILL)

    def _kill(self, pid: int, sig: int) -> None:
        if self.ours(pid):  # checked again right before the signal: never another's process
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    @staticmethod
    def _wait(done, seconds: float) -> bool:
        deadline = time.time() + seconds
        while not done():
            if time.time() > deadline:
                return False
            time.sleep(0.2)
        return True


def _free_ports(n: int) -> list[int]:
    """n TCP ports that are free now (the kernel picks them; held together so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
