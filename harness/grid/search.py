"""The search engine of `harness tune`: one Optuna study per (task, model, base variant), its workers, and the
choice. Optuna does what it is made for: the study's storage (a journal file several processes, here or on a
cluster's shared filesystem, append to; or any storage URL), the samplers (GridSampler by default, TPE on
request) and the pruner (MedianPruner). What it cannot do is in harness/grid/claims.py (who trains a candidate).

A candidate is one point of the grid, trained once per search seed as ordinary `harness run` records under
<results>/search/ (harness/record/search.py); its records are the truth about it, the study only schedules: a
candidate whose records are done is reported, not trained again, so a resumed search trains only what is
missing, and a worker that draws a candidate another live worker holds waits for its records. The objective is
the mean over search seeds of the validation score of the task's main metric at the epoch the clean protocol
picks; test is never read. After the last candidate, the first worker to create the search record writes it.

Optuna is an extra (`pip install 'poeta-harness[tune]'`): it is imported only here, inside the functions.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.grid import claims, search_space
from harness.record import search as search_record

POLL_S = 2.0  # how often a worker waiting for another's candidate looks at its records
STEP_STRIDE = 10_000  # the pruner's step of (search seed i, epoch e) is i * STEP_STRIDE + e
SAMPLERS = ("grid", "tpe")
PRUNE_STARTUP = 2  # candidates that finish before the pruner may stop one (Optuna's default, 5, exceeds a grid of 4)


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("harness tune needs Optuna: pip install 'poeta-harness[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the harness says what happens, one line per candidate
    return optuna


@dataclass
class SearchSpec:
    """One search, resolved and checked (harness/api/tuning.py builds it)."""
    task: str
    model: str
    metric: str  # the task's main metric
    direction: str  # "maximize" or "minimize"
    base_variant: str
    base_settings: dict  # the base's recipe overrides, for the search record
    limit: int | None
    grid: dict  # field -> values
    variants: list[str]  # the variant of each grid point, in grid order
    sampler: str  # SAMPLERS
    trials: int | None  # tpe: how many
    prune: bool
    search_seeds: list[int]
    final_seeds: list[int]
    results: Path
    storage: str | None = None  # a storage URL; None: the journal file beside the search record

    @property
    def points(self) -> list[dict]:
        return search_space.points(self.grid)

    @property
    def folder(self) -> Path:
        return search_record.search_dir(self.results, self.task, self.model, self.base_variant)

    @property
    def identity(self) -> dict:
        """What makes two searches the same search (and resuming one possible)."""
        return {"grid": self.grid, "sampler": self.sampler, "trials": self.trials, "prune": self.prune,
                "search_seeds": self.search_seeds, "metric": self.metric}

    @property
    def study_name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.study_prefix}{digest}"

    @property
    def study_prefix(self) -> str:
        return f"{self.task}/{self.model}/{self.base_variant}/"

    def storage_text(self) -> str:
        return self.storage or str((self.folder / search_record.JOURNAL_FILE).relative_to(self.results))

    def variant_of(self, point: dict) -> str:
        return self.variants[self.points.index(point)]


# ------------------------------------------------------------------ the study

def _storage(spec: SearchSpec):
    """The study's storage: the URL given, or a journal file beside the search record (Optuna's choice for
    processes on one machine and on a cluster's shared filesystem, where SQLite's locking is unsafe)."""
    require_optuna()
    if spec.storage:
        return spec.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    spec.folder.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(spec.folder / search_record.JOURNAL_FILE)))


def check_resumable(spec: SearchSpec) -> None:
    """Refuse a search of a cell that another search (another grid, sampler, seeds or pruning) has claimed: its
    search record, or a study of it in the storage. Reads only; creates nothing but the journal's folder."""
    path = search_record.search_path(spec.results, spec.task, spec.model, spec.base_variant)
    done = search_record.read_search(path) if path.is_file() else None
    if done is not None and done.study != spec.study_name:
        raise UserError(f"{spec.task}/{spec.model} (variant {spec.base_variant}) was searched already, with grid "
                        f"{search_record.describe_grid(done.grid)} ({done.sampler}, search seeds "
                        f"{','.join(map(str, done.search_seeds))}): see {path}; delete {path.parent} to search "
                        f"again (its candidates' records are kept in their own folders and reused where they match)")
    if spec.storage is None and not (spec.folder / search_record.JOURNAL_FILE).is_file():
        return
    optuna = require_optuna()
    try:
        names = optuna.get_all_study_names(storage=_storage(spec))
    except Exception as exc:  # an unreachable or malformed storage URL: the driver's own words, one line
        from harness.errors import short

        raise UserError(f"cannot open the study storage '{spec.storage_text()}': {short(exc)}") from None
    other = [n for n in names if n.startswith(spec.study_prefix) and n != spec.study_name]
    if other:
        raise UserError(f"{spec.task}/{spec.model} (variant {spec.base_variant}) has a search in progress with "
                        f"other settings (study {other[0]} in {spec.storage_text()}): finish it with the same "
                        f"flags, or delete {spec.folder} to start again")


def open_study(spec: SearchSpec):
    optuna = require_optuna()
    if spec.sampler == "grid":
        sampler = optuna.samplers.GridSampler(spec.grid, seed=0)  # a fixed order: the same search every time
    else:
        sampler = optuna.samplers.TPESampler(seed=0)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP) if spec.prune else \
        optuna.pruners.NopPruner()
    return optuna.create_study(study_name=spec.study_name, storage=_storage(spec), sampler=sampler, pruner=pruner,
                               direction=spec.direction, load_if_exists=True)


def finished(study, spec: SearchSpec) -> bool:
    """Grid: every point has a finished trial. TPE: `trials` trials finished or held by a live worker."""
    if spec.sampler == "grid":
        return study.sampler.is_exhausted(study)
    from optuna.trial import TrialState

    count = 0
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished():
            count += 1
        elif t.state == TrialState.RUNNING and set(t.params) == set(spec.grid):
            count += claims.live_claim(candidate_folder(spec, t.params)) is not None
    return count >= spec.trials


def candidate_folder(spec: SearchSpec, point: dict) -> Path:
    return search_record.search_dir(spec.results, spec.task, spec.model, spec.variant_of(dict(point)))
