"""The API's functions that train and write records: run (one cell, `harness run`) and sweep (the grid,
`harness sweep`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from harness.api.common import results_folder, say
from harness.config import RunConfig, check_limit, parse_seeds, run_config_from, setting_flags
from harness.errors import RunFailed, UserError


def seed_list(seeds: int | Iterable[int] | None) -> list[int]:
    """seeds as `harness run` takes them: None (seed 42), a count N (--seeds N: 42, 43, ...) or the seeds."""
    if seeds is None or (isinstance(seeds, int) and not isinstance(seeds, bool)):
        return parse_seeds(None, seeds)
    if isinstance(seeds, str):
        return parse_seeds(seeds, None)
    return parse_seeds(",".join(str(s) for s in seeds), None)


def settings_of(settings: dict) -> dict:
    """Every run setting (RunConfig's fields) -> the value given, None where not given; unknown names refused."""
    names = [f.name for f in dataclasses.fields(RunConfig)]
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise UserError(f"unknown run setting '{unknown[0]}' (valid: {', '.join(names)})")
    return {n: settings.get(n) for n in names}


# ------------------------------------------------------------------ one cell: harness run

@dataclass
class RunPlan:
    """A `harness run` checked and resolved, before anything is loaded: what to train and where it goes."""
    task: object  # registry.specs.TaskSpec
    model: object  # registry.specs.ModelSpec
    cfg: RunConfig
    seeds: list[int]  # every seed asked for
    todo: list[int]  # the seeds to train: those without a complete record (every one when forced)
    limit: int | None
    results: Path
    mirror: str | None
    trust_remote_code: bool
    use_cache: bool
    argv: list[str]  # the command as a user types it, for the record (without the program name)

    @property
    def variant(self) -> str:
        from harness.record.variants import variant_of

        return variant_of(self.cfg, self.limit)


def plan_run(task: str, model: str, *, seeds: int | Iterable[int] | None = None, limit: int | None = None,
             results: str | Path | None = None, mirror: str | None = None, family: str | None = None,
             force: bool = False, trust_remote_code: bool = False, use_cache: bool = True,
             processes: int | None = None, argv: list[str] | None = None, **settings) -> RunPlan:
    """Check a run and say which seeds are already done; when any is left, check that this machine can run it
    and that the hub answers where the run needs it (one line now, not 50 s of library retries)."""
    from harness.hub.reachability import repos_needed, require_hub
    from harness.record.store import check_writable
    from harness.registry.load import load_models, load_tasks, resolve_model, resolve_task

    task_spec = resolve_task(task, load_tasks())
    model_spec = resolve_model(model, load_models(), family)
    given = settings_of(settings)
    cfg = run_config_from(given)
    seed_values = seed_list(seeds)
    check_limit(limit)
    if processes is not None and processes < 1:
        raise UserError(f"--processes must be at least 1, got {processes}")
    folder = results_folder(results)
    check_writable(folder)
    if argv is None:  # called from Python: record the command that does the same
        argv = ["run", "--task", task_spec.name, "--model", model, "--seed", ",".join(map(str, seed_values)),
                *setting_flags(given), *(["--limit", str(limit)] if limit is not None else []),
                *(["--mirror", str(mirror)] if mirror else []), *(["--results", str(results)] if results else [])]
    plan = RunPlan(task=task_spec, model=model_spec, cfg=cfg, seeds=seed_values, todo=seed_values, limit=limit,
                   results=folder, mirror=mirror, trust_remote_code=trust_remote_code, use_cache=use_cache,
                   argv=list(argv))
    if not force:
        plan.todo = _seeds_to_run(plan)
    if plan.todo:
        _check_before_loading(cfg, processes)
        require_hub(repos_needed(task_spec, model_spec, mirror))
    return plan


def _seeds_to_run(plan: RunPlan) -> list[int]:
    """The seeds without a complete record, saying which are skipped."""
    from harness.record.store import is_complete, record_path

    def path(seed):
        return record_path(plan.results, plan.task.name, plan.model.name, plan.variant, seed)

    done = [s for s in plan.seeds if is_complete(path(s))]
    if done:
        say(f"harness: skipped {plan.task.name}/{plan.model.name} seed{'s' if len(done) > 1 else ''} "
             f"{', '.join(map(str, done))}: complete record in {path(done[0]).parent} (--force reruns)")
    return [s for s in plan.seeds if s not in done]


def _check_before_loading(cfg: RunConfig, processes: int | None) -> None:
    """What this machine or launch cannot run stops here, before processes start or anything loads."""
    from harness.finetune import distributed
    from harness.model import adapters
    from harness.model.loading import resolve_device

    adapters.check_supported(cfg, resolve_device(cfg).type)  # QLoRA without CUDA
    if cfg.sharding == "fsdp" and (processes or distributed.world_size()) < 2:
        raise UserError("--sharding fsdp shards the model over several processes: add --processes N (N >= 2)")


def run_planned(plan: RunPlan, on_epoch=None) -> list:
    """Train the plan's seeds left to run, one record each (written by the main process); the records of every
    seed asked for, in order (a skipped seed's as found; a failed run's record has status "failed").
    on_epoch(seed, epoch metrics): after each epoch; a reason it returns stops that fit (status "pruned")."""
    from harness.finetune import progress
    from harness.record.store import read_record, record_path

    display = progress.for_stream(cells=len(plan.todo))  # one display for every seed: the ETA is the whole run's
    trained = {seed: _run_seed(plan, seed, display, on_epoch) for seed in plan.todo}
    return [trained[s] if s in trained else
            read_record(record_path(plan.results, plan.task.name, plan.model.name, plan.variant, s))
            for s in plan.seeds]


def _run_seed(plan: RunPlan, seed: int, display, on_epoch=None):
    """One seed: train, write the record (rank 0), say the headline. display: where progress goes."""
    from harness.finetune import distributed
    from harness.finetune.cell import run_cell
    from harness.metrics import METRICS, shown
    from harness.record.build import failure_record
    from harness.record.provenance import command_line
    from harness.record.store import checkpoint_dir

    task, model = plan.task, plan.model
    checkpoints = checkpoint_dir(plan.results, task.name, model.name, plan.variant, seed) \
        if plan.cfg.save_every_epoch else None
    try:
        record = run_cell(task, model, plan.cfg, seed=seed, limit=plan.limit, mirror=plan.mirror,
                          allow_remote_code=plan.trust_remote_code, use_cache=plan.use_cache,
                          checkpoint_dir=checkpoints, log=display,
                          on_epoch=None if on_epoch is None else lambda epoch: on_epoch(seed, epoch))
    except RunFailed as exc:
        record = failure_record(task, model, plan.cfg, seed, plan.limit, str(exc))
        record.command_line = command_line(plan.argv)
        if distributed.is_main():
            path = _write_record(plan.results, record)
            say(f"harness: run failed: {task.name}/{model.name} seed {seed}: {exc} (see {path})")
        return record
    record.command_line = command_line(plan.argv)
    if distributed.is_main():  # rank 0 writes the record
        path = _write_record(plan.results, record)
        pub, clean = record.protocols["published"], record.protocols["clean"]
        text = f"published {shown(task.main, pub.main_score):.2f}" if pub else "published –"
        text += f", clean {shown(task.main, clean.main_score):.2f}" if clean else ", clean –"
        text += f"; pruned: {record.failure}" if record.status == "pruned" else ""
        print(f"{task.name}/{model.name} seed {seed}: test {METRICS[task.main].display} {text} "
              f"({record.timings.total_s:.0f}s) -> {path}", flush=True)
    return record


def _write_record(results: Path, record) -> Path:
    from harness.record.store import write_record

    try:
        return write_record(results, record)
    except OSError as exc:  # the folder went away, or the disk filled, during the run
        raise UserError(f"cannot write the record of {record.task.name}/{record.model.name} seed {record.seed} "
                        f"under '{results}': {exc.strerror or exc}") from None


def run(task: str, model: str, *, seeds: int | Iterable[int] | None = None, limit: int | None = None,
        results: str | Path | None = None, mirror: str | None = None, family: str | None = None,
        force: bool = False, trust_remote_code: bool = False, use_cache: bool = True, **settings) -> list:
    """Fine-tune `model` on `task` once per seed, writing one record each under `results`, and return the
    records (RunRecord, harness/record/schema.py) of every seed asked for. A seed whose complete record exists
    is not trained again unless `force`. seeds: a count N (42, 43, ...) or the seeds themselves (default 42).
    settings: the recipe and speed knobs of RunConfig (harness/config.py), e.g. learning_rate=2e-5, epochs=1."""
    return run_planned(plan_run(task, model, seeds=seeds, limit=limit, results=results, mirror=mirror,
                                family=family, force=force, trust_remote_code=trust_remote_code,
                                use_cache=use_cache, **settings))


# ------------------------------------------------------------------ the grid: harness sweep

SEARCH_DEFAULTS = dict(grid=None, search_seeds=None, sampler=None, trials=None, prune=False, storage=None)

@dataclass
class SweepResult:
    plan: object  # grid.plan.SweepPlan: the cells, done or to do
    outcomes: list  # grid.plan.Outcome per cell run (empty for a dry run)
    estimates: dict = dataclasses.field(default_factory=dict)  # cell label -> grid.estimate.Estimate (cells to do)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if not o.ok]


def sweep(tasks: str | list[str] | None = None, models: str | list[str] | None = None,
          seeds: int | Iterable[int] | None = None, *, config: str | Path | None = None, limit: int | None = None,
          mirror: str | None = None, executor: str | None = None, jobs: int | str | None = None,
          slurm: dict | None = None, results: str | Path | None = None, force: bool = False,
          trust_remote_code: bool = False, dry_run: bool = False, tune: dict | None = None,
          **settings) -> SweepResult:
    """The grid tasks x models x seeds, each cell its own `harness run` (local processes, or SLURM through
    submitit), skipping cells already done. config: a sweep file (its values where these are not given).
    slurm: partition, gpus, time_min, mem, cpus, array_parallelism. dry_run: plan only. tune: one `harness tune`
    per (task, model) instead, with these search options (grid, search_seeds, sampler, trials, prune, storage as
    harness.tune takes them; {} for the defaults), its final seeds the sweep's seeds (default 3)."""
    from harness.api import tuning
    from harness.grid import executors
    from harness.grid import plan as grid
    from harness.registry.load import load_models, load_tasks

    folder = results_folder(results)
    all_models, all_tasks = load_models(), load_tasks()
    request = grid.SweepRequest(tasks=tasks, models=models, seeds=seeds, limit=limit, mirror=mirror,
                                executor=executor, jobs=jobs, slurm=dict(slurm or {}),
                                config=str(config) if config else None, force=force,
                                trust_remote_code=trust_remote_code,
                                tune=None if tune is None else tuning.search_argv(**{**SEARCH_DEFAULTS, **tune}))
    plan = grid.resolve(request, settings_of(settings), all_tasks, all_models, folder)
    todo = plan.todo
    for cell in todo if tune is not None else []:  # each search's checks now, not in a job an hour later
        tuning.resolve(cell.task, cell.model_arg, seeds=plan.spec.seeds, limit=limit, results=folder, mirror=mirror,
                       trust_remote_code=trust_remote_code, **tune, **settings)
    shape = f"{len(plan.spec.seeds)} seeds" if tune is None else f"one search each, {len(plan.spec.seeds)} final seeds"
    say(f"sweep: {len(plan.cells)} cells ({len(plan.spec.tasks)} tasks x {len(plan.spec.models)} models x "
        f"{shape}), variant {plan.variant}: {len(plan.cells) - len(todo)} done, "
        f"{len(todo)} to run with the {plan.executor} executor")
    # A run's time, estimated; a search is several runs whose number pruning decides, so it gets none.
    estimates = estimate_cells(plan, folder, all_tasks, all_models) if todo and tune is None else {}
    if estimates:
        say(grid_estimate(estimates, plan))
    if dry_run or not todo:
        return SweepResult(plan, [], estimates)
    log_dir = folder / "logs"
    if plan.executor == "local":
        cells_at_once = grid.jobs_for(plan.jobs, todo, all_models, plan.mirror, plan.cfg)
        outcomes = executors.run_local(todo, plan.spec, folder, cells_at_once, log_dir, say)
    else:
        pool = executors.make_submitit_executor(plan.executor, log_dir, plan.slurm)
        outcomes = executors.run_submitit(todo, plan.spec, folder, pool, say)
    return SweepResult(plan, outcomes, estimates)


def estimate_cells(plan, folder: Path, tasks: dict, models: dict) -> dict:
    """Cell label -> grid.estimate.Estimate for each cell to run: its time on this device (from the past records
    under `folder` where there are some) and the hub repositories it needs where the hub does not answer."""
    import torch

    from harness.grid import estimate
    from harness.hub import local, reachability
    from harness.model.loading import resolve_device
    from harness.record.provenance import device_name
    from harness.record.store import scan
    from harness.registry.load import resolve_model

    device = resolve_device(plan.cfg)
    records = scan(folder)[0] if folder.is_dir() else []
    pace, tokens = estimate.paces(records, device_name(device)), estimate.tokens_per_example(records)
    sizes = {r.model.name: r.model.parameters for r in records if r.model.parameters}
    out = {}
    for cell in plan.todo:
        task, model = tasks[cell.task], resolve_model(cell.model_arg, models)
        found = estimate.cell_estimate(task, model, plan.cfg, plan.limit, pace, tokens, device.type,
                                       torch.get_num_threads(), sizes)
        needed = [spec.hub_id for spec, where in ((model, local.model_source(model, plan.mirror)),
                                                   (task, local.task_source(task, plan.mirror))) if where == local.HUB]
        if needed and not reachability.hub_available():  # asked once per process
            found.needs_hub = needed
            variable = reachability.offline_variable()
            found.hub = f"{variable} is set" if variable else "it does not answer from here"
        out[cell.label] = found
    return out


def grid_estimate(estimates: dict, plan) -> str:
    """One line: the whole grid's estimated time on this device, and the cells that need an unreachable hub."""
    from harness.finetune.progress import duration

    known = [e.seconds for e in estimates.values() if e.seconds is not None]
    jobs = str(plan.jobs or 1)
    at_once = (f"one {plan.executor} job per cell" if plan.executor != "local" else "one cell at a time"
               if jobs == "1" else "as many cells at once as --jobs auto picks" if jobs == "auto"
               else f"{jobs} cells at once")
    text = (f"sweep: estimated {duration(sum(known))} of training for the {len(known)} cells to run on this device "
            f"({at_once})") if known else "sweep: no time estimate (no model size or task sizes to go on)"
    if len(known) < len(estimates):
        text += f"; {len(estimates) - len(known)} cells without an estimate"
    blocked = [label for label, e in estimates.items() if e.needs_hub]
    if blocked:
        text += (f"; {len(blocked)} cells need the hub and {estimates[blocked[0]].hub} (--dry-run names them; "
                 f"or use --mirror DIR from `harness prefetch`)")
    return text


