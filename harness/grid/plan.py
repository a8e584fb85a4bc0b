"""harness sweep: the grid of tasks x models x seeds, resumable, on one machine or a SLURM cluster.

Each cell runs as its own `harness run` (a subprocess locally, a job on SLURM), so a failed or
out-of-memory cell does not stop the others, and several cells can share one GPU. A cell whose
complete record exists is skipped (unless --force): an interrupted sweep, run again, does only
what is missing. With --tune a cell is a (task, model) and runs as one `harness tune` (its search, then its
final seeds); it is done when its search record and final records are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import RunConfig, check_limit, parse_seeds, run_config_from, setting_flags
from harness.errors import UserError
from harness.record import search as search_record
from harness.record.store import check_writable, is_complete, record_path
from harness.record.variants import variant_of


@dataclass
class GridCell:
    task: str
    model: str  # the name records use (a registered name or a local folder's slug)
    model_arg: str  # what to pass to --model
    seed: int | None  # None: a tuned cell (its final seeds are the sweep's seeds)
    path: Path  # where its record lands (a tuned cell: its search record)
    done: bool = False

    @property
    def label(self) -> str:
        return f"{self.task}/{self.model} " + (f"seed {self.seed}" if self.seed is not None else "tune")


def finished(cell: GridCell) -> bool:
    """A run cell: its complete record. A tuned cell: its search record, and the final seeds' complete records."""
    if cell.seed is not None:
        return is_complete(cell.path)
    return search_record.is_finished(cell.path)


@dataclass
class Outcome:
    cell: GridCell
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
    tune_args: list[str] | None = None  # --tune: the search's flags for every `harness tune`; None: plain runs


def plan(spec: SweepSpec, results: Path, variant: str, resolve_model, force: bool = False) -> list[GridCell]:
    cells = []
    for task in spec.tasks:
        for model_arg in spec.models:
            model = resolve_model(model_arg).name
            if spec.tune_args is not None:  # one search per (task, model), its final seeds the sweep's seeds
                cell = GridCell(task, model, model_arg, None, search_record.search_path(results, task, model, variant))
                cell.done = finished(cell)
                cells.append(cell)
                continue
            for seed in spec.seeds:
                path = record_path(results, task, model, variant, seed)
                cells.append(GridCell(task, model, model_arg, seed, path, done=not force and is_complete(path)))
    return cells


def cell_argv(cell: GridCell, spec: SweepSpec, results: Path) -> list[str]:
    if cell.seed is None:
        return ["tune", "--task", cell.task, "--model", cell.model_arg, "--seed", ",".join(map(str, spec.seeds)),
                "--results", str(results), *spec.tune_args, *spec.run_args]
    return ["run", "--task", cell.task, "--model", cell.model_arg, "--seed", str(cell.seed),
            "--results", str(results), *spec.run_args]


SWEEP_FILE_FIELDS = {"tasks", "models", "seeds", "limit", "mirror", "executor", "jobs", "settings", "slurm"}
SLURM_FLAGS = ("partition", "gpus", "time_min", "mem", "cpus", "array_parallelism")


@dataclass
class SweepPlan:
    """A sweep with the sweep file and the flags resolved (flags win)."""
    spec: SweepSpec
    cells: list[GridCell]
    variant: str
    executor: str  # local, slurm or submitit-local
    jobs: str | int | None  # local: cells at once, or "auto"
    slurm: dict  # submitit options (slurm_parameters)
    mirror: str | None
    cfg: RunConfig | None = None  # the run settings every cell gets (--jobs auto reads LoRA and precision)
    limit: int | None = None  # examples per split of every cell

    @property
    def todo(self) -> list[GridCell]:
        return [c for c in self.cells if not c.done]


@dataclass
class SweepRequest:
    """A sweep as asked for (flags or API arguments; None: not given, the sweep file's value or the default)."""
    tasks: str | list | None = None  # comma-separated, or a list
    models: str | list | None = None
    seeds: int | list | None = None  # a count (42, 43, ...) or the seeds
    limit: int | None = None
    mirror: str | None = None
    executor: str | None = None
    jobs: int | str | None = None
    slurm: dict = field(default_factory=dict)  # SLURM_FLAGS given
    config: str | None = None  # a sweep file
    force: bool = False
    trust_remote_code: bool = False
    tune: list[str] | None = None  # --tune: the search's flags for each cell's `harness tune` (tuning.search_argv)


def resolve(request: SweepRequest, settings: dict, tasks: dict, models: dict, results: Path) -> SweepPlan:
    """settings: every run setting, None where not given (the sweep file's `settings` fill those)."""
    from harness.registry.load import resolve_model, resolve_task, table_models

    conf = load_sweep_file(Path(request.config)) if request.config else {}
    settings = dict(settings)
    for key, value in (conf.get("settings") or {}).items():  # settings: {learning_rate: 2e-5, ...}
        if key not in settings:
            raise UserError(f"{request.config}: unknown setting '{key}' (see harness run --help)")
        if settings[key] is None:
            settings[key] = value

    def names(given, key, default):
        raw = given if given is not None else conf.get(key)
        if raw is None:
            return default
        items = raw.split(",") if isinstance(raw, str) else [str(x) for x in raw]
        if not any(x.strip() for x in items):  # `--tasks ,` or `models: []`: a sweep of nothing is a typo
            raise UserError(f"--{key} (or the sweep file's '{key}') names no {key[:-1]}: give at least one or "
                            f"leave it out for the default")
        return [x.strip() for x in items if x.strip()]

    task_names = [resolve_task(t, tasks).name for t in names(request.tasks, "tasks", list(tasks))]
    model_args = names(request.models, "models", [n for n, _ in table_models(models)[0] if not models[n].smoke])
    seeds = request.seeds if request.seeds is not None else conf.get("seeds")
    if request.tune is not None and request.force:
        raise UserError("--force does not combine with --tune: a search reuses what it ran; delete a cell's folder "
                        "under <results>/search/ to search it again")
    seeds = _seeds(TUNED_SEEDS if seeds is None and request.tune is not None else seeds)
    limit = check_limit(request.limit if request.limit is not None else conf.get("limit"))
    mirror = request.mirror or conf.get("mirror")
    cfg = run_config_from(settings)
    check_writable(results)

    run_args = setting_flags(settings)
    run_args += (["--limit", str(limit)] if limit else []) + (["--mirror", str(mirror)] if mirror else [])
    run_args += ["--trust-remote-code"] if request.trust_remote_code else []
    run_args += ["--force"] if request.force else []  # a cell's `harness run` skips a complete record otherwise
    spec = SweepSpec(tasks=task_names, models=model_args, seeds=seeds, run_args=run_args, tune_args=request.tune)
    variant = variant_of(cfg, limit)
    slurm = dict(conf.get("slurm") or {})
    slurm.update({k: v for k, v in request.slurm.items() if v is not None})
    check_slurm_options(slurm)
    return SweepPlan(spec=spec, cells=plan(spec, results, variant, lambda m: resolve_model(m, models), request.force),
                     variant=variant, executor=request.executor or conf.get("executor") or "local",
                     jobs=request.jobs if request.jobs is not None else conf.get("jobs"), slurm=slurm, mirror=mirror,
                     cfg=cfg, limit=limit)


TUNED_SEEDS = 3  # a tuned cell's final seeds unless given (harness tune's default)


def _seeds(value) -> list[int]:
    """A count (N seeds from 42) or a list of seeds; none given: 42."""
    if isinstance(value, list):
        return parse_seeds(",".join(map(str, value)), None)
    return parse_seeds(None, value)


# The sweep file's fields and the types each may have (a list holds names or seeds).
SWEEP_FILE_TYPES = {"tasks": (str, list), "models": (str, list), "seeds": (int, list), "limit": (int,),
                    "mirror": (str,), "executor": (str,), "jobs": (int, str), "settings": (dict,), "slurm": (dict,)}
SLURM_TYPES = {"partition": str, "gpus": int, "time_min": int, "mem": str, "cpus": int, "array_parallelism": int}
EXECUTORS = ("local", "slurm", "submitit-local")


def load_sweep_file(path: Path) -> dict:
    from harness.yamlfile import Fields, read_yaml

    data = read_yaml(path)
    fields = Fields(data, str(path), SWEEP_FILE_FIELDS, what="a mapping of fields (tasks, models, seeds, ...)")
    for key in data:
        fields.get(key, SWEEP_FILE_TYPES[key], required=False)
    if data.get("executor") is not None and data["executor"] not in EXECUTORS:
        raise UserError(f"{path}: field 'executor' must be one of {', '.join(EXECUTORS)}, got {data['executor']!r}")
    slurm = Fields(data.get("slurm") or {}, str(path), SLURM_TYPES, prefix="slurm.")
    for key in slurm.data:
        slurm.get(key, SLURM_TYPES[key])
    return data


def check_slurm_options(slurm: dict) -> dict:
    """Numbers a scheduler would refuse only after submission (or a local executor take as nonsense)."""
    for key in ("time_min", "cpus", "array_parallelism"):
        if slurm.get(key) is not None and slurm[key] < 1:
            raise UserError(f"--{key.replace('_min', '').replace('_', '-')} must be at least 1, got {slurm[key]}")
    if slurm.get("gpus") is not None and slurm["gpus"] < 0:
        raise UserError(f"--gpus must be at least 0, got {slurm['gpus']}")
    return slurm


def jobs_for(value, cells: list[GridCell], models: dict, mirror: str | None, cfg: RunConfig | None = None) -> int:
    """--jobs: an integer, or "auto" (from the free GPU memory, the largest model and the settings: LoRA trains
    fewer parameters, fp32 holds wider activations); default 1."""
    if value is None:
        return 1
    if str(value) != "auto":
        try:
            jobs = int(value)
        except ValueError:
            raise UserError(f"--jobs takes an integer or 'auto', got '{value}'") from None
        if jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {jobs}")
        return jobs
    from harness.grid.capacity import cells_per_gpu

    return cells_per_gpu([c.model_arg for c in cells], models, mirror, cfg or RunConfig())
