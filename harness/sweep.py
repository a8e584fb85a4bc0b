"""harness sweep: the grid of tasks x models x seeds, resumable, on one machine or a SLURM cluster.

Each cell runs as its own `harness run` (a subprocess locally, a job on SLURM), so a failed or
out-of-memory cell does not stop the others, and several cells can share one GPU. A cell whose
complete record exists is skipped (unless --force): an interrupted sweep, run again, does only
what is missing.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .record import read_record, record_path


@dataclass
class Cell:
    task: str
    model: str  # the name records use (a registered name or a local folder's slug)
    model_arg: str  # what to pass to --model
    seed: int
    path: Path  # where its record lands
    done: bool = False

    @property
    def label(self) -> str:
        return f"{self.task}/{self.model} seed {self.seed}"


@dataclass
class Outcome:
    cell: Cell
    ok: bool
    seconds: float
    log: Path | None = None
    message: str = ""


@dataclass
class SweepSpec:
    tasks: list[str]
    models: list[str]
    seeds: list[int]
    run_args: list[str] = field(default_factory=list)  # flags passed through to every `harness run`


def is_complete(path: Path) -> bool:
    try:
        return read_record(path).status == "complete"
    except (OSError, ValueError):
        return False


def plan(spec: SweepSpec, results: Path, variant: str, resolve_model, force: bool = False) -> list[Cell]:
    cells = []
    for task in spec.tasks:
        for model_arg in spec.models:
            model = resolve_model(model_arg).name
            for seed in spec.seeds:
                path = record_path(results, task, model, variant, seed)
                cells.append(Cell(task, model, model_arg, seed, path, done=not force and is_complete(path)))
    return cells


def cell_argv(cell: Cell, spec: SweepSpec, results: Path) -> list[str]:
    return ["run", "--task", cell.task, "--model", cell.model_arg, "--seed", str(cell.seed),
            "--results", str(results), *spec.run_args]


# ------------------------------------------------------------------ executors

def run_local(cells: list[Cell], spec: SweepSpec, results: Path, jobs: int, log_dir: Path, report) -> list[Outcome]:
    """k cells at a time, each in its own process (on one GPU they share the card)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    pending, running, outcomes = list(cells), [], []
    while pending or running:
        while pending and len(running) < jobs:
            cell = pending.pop(0)
            log = log_dir / f"{cell.task}__{cell.model}__seed{cell.seed}.log"
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
            ok = proc.returncode == 0 and is_complete(cell.path)
            outcome = Outcome(cell, ok, time.perf_counter() - t0, log, "" if ok else _last_line(log))
            outcomes.append(outcome)
            report(_progress(outcome, len(outcomes), len(cells)))
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


def slurm_command_preview(cells: list[Cell], spec: SweepSpec, results: Path) -> list[str]:
    """What each job runs, for --dry-run and for the unit test of the slurm path's command line."""
    return [" ".join([sys.executable, "-m", "harness", *cell_argv(c, spec, results)]) for c in cells]


def _job(argv: list[str]) -> int:
    """What a SLURM job runs: one `harness run`, in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "harness", *argv]).returncode


def run_submitit(cells: list[Cell], spec: SweepSpec, results: Path, executor, report) -> list[Outcome]:
    argvs = [cell_argv(c, spec, results) for c in cells]
    t0 = time.perf_counter()
    with executor.batch():  # one job array
        jobs = [executor.submit(_job, argv) for argv in argvs]
    report(f"submitted {len(jobs)} jobs ({', '.join(str(j.job_id) for j in jobs[:3])}{', ...' if len(jobs) > 3 else ''})")
    outcomes = []
    for cell, job in zip(cells, jobs):
        try:
            code = job.result()
            ok, message = code == 0 and is_complete(cell.path), "" if code == 0 else f"exit code {code}"
        except Exception as exc:  # a job that died (time limit, node failure) fails its cell only
            ok, message = False, (str(exc).strip().splitlines() or ["job failed"])[-1][:200]
        log = Path(str(job.paths.stdout)) if hasattr(job, "paths") else None
        outcome = Outcome(cell, ok, time.perf_counter() - t0, log, message)
        outcomes.append(outcome)
        report(_progress(outcome, len(outcomes), len(cells)))
    return outcomes


def _progress(o: Outcome, done: int, total: int) -> str:
    status = "ok" if o.ok else f"FAILED ({o.message})"
    return f"[{done}/{total}] {o.cell.label}: {status} ({o.seconds:.0f}s)"


def _last_line(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    last = lines[-1] if lines else "no output"
    # harness's own errors are one line by design and end with the advice: keep them whole
    return last if last.startswith("harness: ") else last[:200]


def load_sweep_file(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read sweep file '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    allowed = {"tasks", "models", "seeds", "limit", "mirror", "executor", "jobs", "settings", "slurm"}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UserError(f"{path}: unknown field '{unknown[0]}' (valid fields: {', '.join(sorted(allowed))})")
    return data
