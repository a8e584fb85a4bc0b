"""`harness tune`: each model at its own best setting. A search over a grid of recipe settings (the learning rate
by default), each candidate trained with the search seeds and scored on validation only (harness/grid/search.py);
then the chosen setting run with the final seeds as ordinary runs. The tuned protocol shows those final runs
(harness/aggregate/tuned.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.api.common import results_folder, say
from harness.api.runs import plan_run, run_planned, seed_list, settings_of
from harness.config import MAX_SEEDS, check_limit, run_config_from, setting_flags
from harness.errors import UserError

SEARCH_SEED_BASE = 1000  # search seeds 1000, 1001, ...: apart from the final seeds (42, ...) by default
DEFAULT_FINAL_SEEDS = 3
EXECUTORS = ("local", "slurm", "submitit-local")


@dataclass
class TuneResult:
    search: object  # record.search.SearchRecord: the candidates, their validation scores, the choice and its cost
    records: list  # the final seeds' records at the chosen setting (empty where nothing was chosen)


@dataclass
class TuneRequest:
    """A `harness tune` checked and resolved: the search, and what its runs need."""
    spec: object  # grid.search.SearchSpec
    task: object  # registry.specs.TaskSpec
    model: object  # registry.specs.ModelSpec
    model_arg: str  # what to pass to --model
    given: dict  # the run settings given (None: not given), the grid's fields not among them
    mirror: str | None
    family: str | None
    trust_remote_code: bool
    use_cache: bool


def resolve(task: str, model: str, *, grid=None, search_seeds: int | None = None, seeds=None,
            sampler: str | None = None, trials: int | None = None, prune: bool = False, storage: str | None = None,
            limit: int | None = None, results=None, mirror: str | None = None, family: str | None = None,
            trust_remote_code: bool = False, use_cache: bool = True, **settings) -> TuneRequest:
    """Every check of a search, before anything is written (one line each). None: the default."""
    from harness.grid import search
    from harness.grid.search_space import parse_grid, points
    from harness.metrics import METRICS
    from harness.record.store import check_writable
    from harness.record.variants import variant_of
    from harness.registry.load import load_models, load_tasks, resolve_model, resolve_task

    task_spec = resolve_task(task, load_tasks())
    model_spec = resolve_model(model, load_models(), family)
    if not task_spec.splits.get("validation") and not task_spec.validation_from_train:
        raise UserError(f"task {task_spec.name} has no validation split, and a search chooses on validation "
                        f"(choosing on test is the published protocol's bias): carve one from train in its task file, "
                        f"e.g. `validation_from_train: {{size: 500, seed: 0}}` (as tasks/imdb.yaml does)")
    given = settings_of(settings)
    if given["protocols"] == "published":
        raise UserError("--protocols published: the tuned protocol reads the clean protocol's figures; leave it out")
    cfg = run_config_from(given)
    check_limit(limit)
    grid = parse_grid(grid, cfg, given)
    search_seeds = 1 if search_seeds is None else search_seeds
    sampler = sampler or "grid"
    if isinstance(search_seeds, bool) or not isinstance(search_seeds, int) or not 1 <= search_seeds <= MAX_SEEDS:
        raise UserError(f"--search-seeds must be from 1 to {MAX_SEEDS}, got {search_seeds}")
    search_seed_values = list(range(SEARCH_SEED_BASE, SEARCH_SEED_BASE + search_seeds))
    final = seed_list(DEFAULT_FINAL_SEEDS if seeds is None else seeds)
    if set(final) & set(search_seed_values):
        raise UserError(f"final seeds {','.join(map(str, sorted(set(final) & set(search_seed_values))))} are search "
                        f"seeds too: a test figure from a run that won the selection is biased upwards; pick others")
    _check_sampler(sampler, trials)
    folder = results_folder(results)
    check_writable(folder)
    search.require_optuna()
    spec = search.SearchSpec(
        task=task_spec.name, model=model_spec.name, metric=task_spec.main,
        direction="maximize" if METRICS[task_spec.main].higher_is_better else "minimize",
        base_variant=variant_of(cfg, limit), base_settings=cfg.recipe_overrides(), limit=limit, grid=grid,
        variants=[variant_of(run_config_from({**given, **p}), limit) for p in points(grid)], sampler=sampler,
        trials=trials, prune=prune, search_seeds=search_seed_values, final_seeds=final, results=folder,
        storage=storage)
    search.check_resumable(spec)
    return TuneRequest(spec=spec, task=task_spec, model=model_spec, model_arg=model, given=given, mirror=mirror,
                       family=family, trust_remote_code=trust_remote_code, use_cache=use_cache)


def _check_sampler(sampler: str, trials) -> None:
    from harness.grid.search import SAMPLERS

    if sampler not in SAMPLERS:
        raise UserError(f"--sampler must be one of {', '.join(SAMPLERS)}, got '{sampler}'")
    if sampler == "tpe" and (trials is None or isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise UserError("--sampler tpe draws --trials K points of the grid: give --trials K (K >= 1)")
    if sampler == "grid" and trials is not None:
        raise UserError("--trials is for --sampler tpe; the grid sampler runs every point of the grid")


def _plan(request: TuneRequest, settings: dict, seeds: list[int], results: Path):
    """plan_run for one of the search's runs: its checks (this machine, the hub) before anything loads."""
    return plan_run(request.task.name, request.model_arg, seeds=seeds, limit=request.spec.limit, results=results,
                    mirror=request.mirror, family=request.family, trust_remote_code=request.trust_remote_code,
                    use_cache=request.use_cache, **settings)


def _candidate_settings(request: TuneRequest, point: dict) -> dict:
    # Candidates need only the clean protocol's fit (where validation is carved, the full-train fit is skipped).
    return {**request.given, **point, "protocols": "clean"}


def train_candidate(request: TuneRequest):
    """The search's trainer: one search seed of one candidate, an ordinary `harness run` under <results>/search/."""
    from harness.record.search import search_root

    def train(point: dict, seed: int, on_epoch):
        plan = _plan(request, _candidate_settings(request, point), [seed], search_root(request.spec.results))
        (record,) = run_planned(plan, on_epoch)
        return record

    return train


def final_runs(request: TuneRequest, record) -> list:
    """The chosen setting with the final seeds, as ordinary runs (complete records reused), by one worker."""
    from harness.grid import claims

    if record.choice is None:
        say(f"tune {request.spec.task}/{request.spec.model}: no candidate completed (every one pruned or failed): "
            f"no final runs")
        return []
    claim = claims.try_claim(request.spec.folder, prefix="final-claim")
    if claim is None:
        say(f"tune {request.spec.task}/{request.spec.model}: another worker runs the final seeds")
        return []
    with claim:
        plan = _plan(request, {**request.given, **record.choice.settings}, record.final_seeds,
                     request.spec.results)
        return run_planned(plan)


def search_argv(grid, search_seeds: int | None, sampler: str | None, trials: int | None, prune: bool,
                storage: str | None) -> list[str]:
    """The search's flags of `harness tune`, as given (grid: {field: values} or ["lr=1e-5,2e-5", ...])."""
    if isinstance(grid, dict):
        grid = [f"{k}={','.join(repr(v) if isinstance(v, float) else str(v) for v in values)}"
                for k, values in grid.items()]
    argv = [a for g in grid or [] for a in ("--grid", g)]
    argv += ["--search-seeds", str(search_seeds)] if search_seeds is not None else []
    argv += ["--sampler", sampler] if sampler else []
    argv += ["--trials", str(trials)] if trials is not None else []
    argv += ["--prune"] if prune else []
    return argv + (["--storage", storage] if storage else [])


def tune_argv(request: TuneRequest) -> list[str]:
    """The `harness tune` command of one worker of this search (one process, local executor)."""
    spec = request.spec
    argv = ["tune", "--task", spec.task, "--model", request.model_arg, "--seed", ",".join(map(str, spec.final_seeds)),
            "--results", str(spec.results), *search_argv(spec.grid, len(spec.search_seeds), spec.sampler, spec.trials,
                                                          spec.prune, spec.storage), *setting_flags(request.given)]
    argv += ["--limit", str(spec.limit)] if spec.limit is not None else []
    argv += ["--mirror", str(request.mirror)] if request.mirror else []
    argv += ["--family", request.family] if request.family else []
    argv += ["--trust-remote-code"] if request.trust_remote_code else []
    argv += ["--no-cache"] if not request.use_cache else []
    return argv


def _workers(request: TuneRequest, jobs: int, executor: str, slurm: dict | None) -> None:
    """K workers on one study: local processes, or jobs through submitit (SLURM, or local with submitit-local)."""
    from harness.grid import executors
    from harness.grid.plan import check_slurm_options

    argvs = [tune_argv(request)] * jobs
    log_dir = request.spec.results / "logs" / f"tune__{request.spec.task}__{request.spec.model}"
    if executor == "local":
        outcomes = executors.run_workers(argvs, log_dir, say)
    else:
        pool = executors.make_submitit_executor(executor, log_dir, check_slurm_options(dict(slurm or {})))
        outcomes = executors.submit_workers(argvs, pool, say)
    for i, (code, last) in enumerate(outcomes):
        if code != 0:
            say(f"tune: worker {i} ended with exit code {code}: {last}")


def tune(task: str, model: str, *, grid=None, search_seeds: int | None = None, seeds=None,
         sampler: str | None = None, trials: int | None = None, prune: bool = False, storage: str | None = None,
         jobs: int = 1, executor: str = "local", slurm: dict | None = None, limit: int | None = None, results=None,
         mirror: str | None = None, family: str | None = None, trust_remote_code: bool = False,
         use_cache: bool = True, **settings) -> TuneResult:
    """Search `model`'s best setting on `task` on validation, then run it with the final seeds.

    grid: {field: values} or ["lr=1e-5,2e-5", ...] (default: the learning rates of the run's adaptation);
    search_seeds: seeds per candidate (1000, 1001, ...); seeds: the final seeds (a count from 42, or the seeds;
    default 3); sampler "grid" (every point) or "tpe" with `trials`; prune: Optuna's MedianPruner; storage: an
    Optuna storage URL (default: a journal file beside the search record); jobs: workers on one study, local
    processes or, with executor "slurm" / "submitit-local", jobs (slurm: as `harness sweep` takes them).
    settings: the base recipe (RunConfig's fields). Returns the search record and the final records."""
    from harness.grid.search_worker import work
    from harness.record.search import read_search, search_path, search_root

    request = resolve(task, model, grid=grid, search_seeds=search_seeds, seeds=seeds, sampler=sampler, trials=trials,
                      prune=prune, storage=storage, limit=limit, results=results, mirror=mirror, family=family,
                      trust_remote_code=trust_remote_code, use_cache=use_cache, **settings)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{executor}'")
    spec = request.spec
    if jobs == 1 and executor == "local":
        # This machine and the hub, checked before the study is created.
        _plan(request, _candidate_settings(request, spec.points[0]), spec.search_seeds, search_root(spec.results))
        record = work(spec, train_candidate(request), say)
        return TuneResult(search=record, records=final_runs(request, record))
    _workers(request, jobs, executor, slurm)
    path = search_path(spec.results, spec.task, spec.model, spec.base_variant)
    if not path.is_file():
        raise UserError(f"the search's workers ended without a search record: see their logs under "
                        f"{spec.results / 'logs'}")
    record = read_search(path)
    return TuneResult(search=record, records=_final_records(request, record))


def _final_records(request: TuneRequest, record) -> list:
    from harness.record.store import read_record, record_path

    if record.choice is None:
        return []
    paths = [record_path(request.spec.results, record.task, record.model, record.choice.variant, s)
             for s in record.final_seeds]
    return [read_record(p) for p in paths if p.is_file()]
