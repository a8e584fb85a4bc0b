"""Where a sweep's cells run: local subprocesses (k at a time), or SLURM / local processes through submitit.
Each cell is one `harness run` (sweep.cell_argv), or one `harness tune` (`harness sweep --tune`); a failed cell
fails only itself, with its log's last line. A search's workers (`harness tune --jobs K`) run the same ways."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness.errors import UserError, short
from harness.finetune.progress import duration, eta
from harness.grid.plan import GridCell, Outcome, SweepSpec, cell_argv, finished


def run_local(cells: list[GridCell], spec: SweepSpec, results: Path, jobs: int, log_dir: Path, report) -> list[Outcome]:
    """k cells at a time, each in its own process (on one GPU they share the card)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    pending, running, outcomes, t_start = list(cells), [], [], time.perf_counter()
    while pending or running:
        while pending and len(running) < jobs:
            cell = pending.pop(0)
            log = log_dir / f"{cell.task}__{cell.model}__{'tune' if cell.seed is None else f'seed{cell.seed}'}.log"
            fh = open(log, "w")
            proc = subprocess.Popen([sys.executable, "-m", "harness", *cell_argv(cell, spec, results)],
                                    stdout=fh, stderr=subprocess.STDOUT)
            running.append((cell, proc, fh, log, time.perf_counter()))
            report(f"started {cell.label}")
        time.sleep(0.2)
        for item in list(running):
            cell, proc, fh, log, t0 = item
            if proc.poll() is None:
                continue
            fh.close()
            running.remove(item)
            ok = proc.returncode == 0 and finished(cell)
            outcome = Outcome(cell, ok, time.perf_counter() - t0, log, "" if ok else _last_line(log))
            outcomes.append(outcome)
            report(_progress(outcome, len(outcomes), len(cells), time.perf_counter() - t_start))
    return outcomes


def make_submitit_executor(kind: str, log_dir: Path, options: dict):
    """A submitit executor: kind 'slurm' (a real cluster) or 'submitit-local' (same path, local processes)."""
    try:
        import submitit
    except ImportError:
        raise UserError("the slurm executor needs submitit: pip install 'poeta-harness[slurm]'") from None
    if kind == "slurm":
        import shutil

        if shutil.which("srun") is None or shutil.which("sbatch") is None:
            raise UserError("no SLURM client here (srun/sbatch not found): run on a cluster login node, or use "
                            "--executor local or submitit-local")
        executor = submitit.AutoExecutor(folder=str(log_dir / "%j"), cluster="slurm")
        executor.update_parameters(**slurm_parameters(options))
    else:
        executor = submitit.LocalExecutor(folder=str(log_dir / "%j"))
        executor.update_parameters(timeout_min=options.get("time_min", 240))
    return executor


def slurm_parameters(options: dict) -> dict:
    """submitit's AutoExecutor parameters from the sweep's slurm options (one GPU, 4 h, 32G by default)."""
    params = {"timeout_min": options.get("time_min", 240), "slurm_mem": options.get("mem", "32G"),
              "gpus_per_node": options.get("gpus", 1), "cpus_per_task": options.get("cpus", 8),
              "slurm_job_name": "poeta-harness"}
    if options.get("partition"):
        params["slurm_partition"] = options["partition"]
    if options.get("array_parallelism"):
        params["slurm_array_parallelism"] = options["array_parallelism"]
    if options.get("gpus") == 0:  # a CPU-only cluster (and the test cluster)
        del params["gpus_per_node"]
    return params


def slurm_command_preview(cells: list[GridCell], spec: SweepSpec, results: Path) -> list[str]:
    """What each job runs, for --dry-run and for the unit test of the slurm path's command line."""
    return [" ".join([sys.executable, "-m", "harness", *cell_argv(c, spec, results)]) for c in cells]


def _job(argv: list[str]) -> int:
    """What a SLURM job runs: one `harness run`, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "harness", *argv]).returncode


def run_submitit(cells: list[GridCell], spec: SweepSpec, results: Path, executor, report) -> list[Outcome]:
    argvs = [cell_argv(c, spec, results) for c in cells]
    t0 = time.perf_counter()
    with executor.batch():  # one job array
        jobs = [executor.submit(_job, argv) for argv in argvs]
    shown = ", ".join(str(j.job_id) for j in jobs[:3]) + (", ..." if len(jobs) > 3 else "")
    report(f"submitted {len(jobs)} jobs ({shown})")
    outcomes = []
    for cell, job in zip(cells, jobs, strict=True):
        try:
            code = job.result()
            ok, message = code == 0 and finished(cell), "" if code == 0 else f"exit code {code}"
        except Exception as exc:  # a job that died (time limit, node failure) fails its cell only
            ok, message = False, short(exc, last=True, fallback="job failed")
        log = Path(str(job.paths.stdout)) if hasattr(job, "paths") else None
        outcome = Outcome(cell, ok, time.perf_counter() - t0, log, message)
        outcomes.append(outcome)
        report(_progress(outcome, len(outcomes), len(cells), time.perf_counter() - t0))
    return outcomes


def run_workers(argvs: list[list[str]], log_dir: Path, report) -> list[tuple[int, str]]:
    """Several `harness` commands at once, one local process each (a search's workers on one study); each
    one's (exit code, last line of its log)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for i, argv in enumerate(argvs):
        log = log_dir / f"worker{i}.log"
        with open(log, "w") as fh:  # the child holds its own copy of the descriptor
            started.append((subprocess.Popen([sys.executable, "-m", "harness", *argv], stdout=fh,
                                             stderr=subprocess.STDOUT), log))
    report(f"started {len(started)} workers (logs: {log_dir})")
    return [(proc.wait(), "" if proc.returncode == 0 else _last_line(log)) for proc, log in started]


def submit_workers(argvs: list[list[str]], executor, report) -> list[tuple[int, str]]:
    """The same through submitit: one job per worker (SLURM, or local processes with submitit-local)."""
    with executor.batch():
        jobs = [executor.submit(_job, argv) for argv in argvs]
    report(f"submitted {len(jobs)} worker jobs ({', '.join(str(j.job_id) for j in jobs[:3])}"
           f"{', ...' if len(jobs) > 3 else ''})")
    out = []
    for job in jobs:
        try:
            code = job.result()
            out.append((code, "" if code == 0 else f"exit code {code}"))
        except Exception as exc:  # a job that died (time limit, node failure)
            out.append((1, short(exc, last=True, fallback="job failed")))
    return out


def _progress(o: Outcome, done: int, total: int, elapsed: float) -> str:
    """A finished cell, the cells done and to do, and the sweep's ETA at the pace of the finished cells."""
    status = "ok" if o.ok else f"FAILED ({o.message})"
    left = total - done
    tail = f"{left} to do, ETA {duration(eta(elapsed, done, left))}" if left else f"all done in {duration(elapsed)}"
    return f"[{done}/{total}] {o.cell.label}: {status} ({duration(o.seconds)}); {tail}"


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    if not lines:
        return "no output"
    # harness's own errors are one line by design and end with the advice: keep them whole
    return lines[-1] if lines[-1].startswith("harness: ") else short(lines[-1])
