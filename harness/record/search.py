"""The search record: what `harness tune` searched for one (task, model, base variant), each candidate's
validation score, what it chose and why, and what the search cost. One JSON file per search, field by field below.

Layout: under <results>/search/, one level deeper than the ordinary records (record/store.py), so `harness table`
never pools a candidate's records into any protocol's cells:

    <results>/search/<task>/<model>/<variant>/seed<k>.json        a candidate's ordinary run record; its variant
                                                                    is that of its settings (record/variants.py)
    <results>/search/<task>/<model>/<base variant>/search.json    the search record (SearchRecord)
    <results>/search/<task>/<model>/<base variant>/study.journal  Optuna's study (the default storage)

The search record is written once, by one worker (write_once: an atomic create), after the last candidate.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.record.schema import RunRecord

SEARCH_SCHEMA_VERSION = 1
SEARCH_DIR = "search"
SEARCH_FILE = "search.json"
JOURNAL_FILE = "study.journal"
STATES = ("complete", "pruned", "failed", "incomplete")  # a candidate's state; only "complete" can be chosen


@dataclass
class Candidate:
    """One setting of the grid, trained with every search seed (or stopped: pruned, failed)."""
    settings: dict  # the searched fields and this candidate's values, e.g. {"learning_rate": 2e-05}
    variant: str  # the results variant of the base settings with these values
    state: str  # one of STATES: "incomplete" is a candidate the search drew but never finished
    # search seed (as text: a JSON key) -> validation score of the task's main metric at the epoch picked on
    # validation (the clean protocol's epoch); None: that seed has none (pruned before it, failed, not run)
    scores: dict[str, float | None]
    mean: float | None  # the mean of scores over the search seeds: the objective (complete candidates only)
    records: list[str]  # its records' paths, relative to the results folder
    reason: str | None = None  # why it was pruned or failed


@dataclass
class Choice:
    settings: dict  # the chosen candidate's searched fields
    variant: str  # where its final runs live in the ordinary results tree
    mean: float  # its validation score (mean over the search seeds)
    why: str  # the rule in words: best validation score, and how a tie was broken


@dataclass
class SearchCost:
    """What the search's candidate runs cost, summed over their records (the final runs are ordinary runs, in
    `harness table --cost`'s other rows)."""
    runs: int  # candidate records (complete, pruned and failed)
    train_s: float  # training time, all runs
    eval_s: float  # validation and test evaluation time, all runs
    energy_kwh: float | None  # codecarbon's figures, summed; None where no run measured any
    emissions_kg: float | None
    unmeasured: int  # runs without energy figures (codecarbon not installed, or a failed run)


@dataclass
class SearchRecord:
    schema_version: int  # SEARCH_SCHEMA_VERSION
    created_at: str  # ISO 8601, UTC
    task: str  # registry name
    model: str  # registry name, or a local folder's slug (as run records name it)
    base_variant: str  # the variant of the settings the search started from: the tuned table's section
    base_settings: dict  # those settings' recipe overrides (the searched fields take the grid's values)
    limit: int | None  # --limit: examples per split; None = full data
    grid: dict[str, list]  # searched field -> its values, in the order given
    sampler: str  # "grid" (every point) or "tpe" (Optuna's TPE, `trials` draws from the grid)
    trials: int | None  # tpe: how many trials; grid: None
    prune: bool  # Optuna's MedianPruner stopped candidates below the median after an epoch
    metric: str  # the task's main metric, read on validation only
    direction: str  # "maximize" or "minimize" (MSE)
    search_seeds: list[int]  # every candidate's seeds; not the final seeds, so no test figure comes from them
    study: str  # Optuna's study name: task, model, base variant and a hash of what was searched
    storage: str  # the study's storage: a journal file (relative to the results folder) or a URL (password masked)
    candidates: list[Candidate]  # in grid order
    choice: Choice | None  # None: no candidate completed (every one pruned or failed)
    final_seeds: list[int]  # the seeds run at the chosen setting, in the ordinary results tree
    cost: SearchCost
    harness_version: str


def describe_grid(grid: dict) -> str:
    """The grid in one line, e.g. "learning_rate {1e-05, 2e-05}; epochs {2, 3}"."""
    return "; ".join(f"{k} {{{', '.join(_text(v) for v in values)}}}" for k, values in grid.items())


def describe_point(point: dict) -> str:
    """A candidate's settings in one line, e.g. "learning_rate=2e-05, epochs=3"."""
    return ", ".join(f"{k}={_text(v)}" for k, v in point.items()) or "the base settings"


def _text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def search_root(results: Path) -> Path:
    """Where candidates and search records live: a results folder of their own, below the ordinary one."""
    return Path(results) / SEARCH_DIR


def search_dir(results: Path, task: str, model: str, variant: str) -> Path:
    return search_root(results) / task / model / variant


def search_path(results: Path, task: str, model: str, base_variant: str) -> Path:
    return search_dir(results, task, model, base_variant) / SEARCH_FILE


def to_json(record: SearchRecord) -> str:
    from harness.redact import scrub

    return json.dumps(scrub(asdict(record)), indent=1, ensure_ascii=False) + "\n"


def from_dict(data) -> SearchRecord:
    from harness.record.serialize import build_dataclass

    if not isinstance(data, dict) or data.get("schema_version") != SEARCH_SCHEMA_VERSION:
        version = data.get("schema_version") if isinstance(data, dict) else None
        raise ValueError(f"not a search record of version {SEARCH_SCHEMA_VERSION} (schema_version {version!r})")
    record = build_dataclass(SearchRecord, data, "search")
    for c in record.candidates:
        if c.state not in STATES:
            raise ValueError(f"search.candidates: state {c.state!r} is not one of {', '.join(STATES)}")
    return record


def read_search(path: Path) -> SearchRecord:
    with open(path, encoding="utf-8") as fh:
        return from_dict(json.load(fh))


def write_once(path: Path, record: SearchRecord) -> bool:
    """Create the search record unless one exists: True where this call wrote it. Atomic (a temp file linked to
    its name), so of several workers finishing together exactly one writes, and no reader sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(to_json(record))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.link(tmp, path)  # fails if the name exists: the create-if-absent
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def is_finished(path: Path) -> bool:
    """Whether the search whose record would be at `path` is done: its record written, and the final seeds'
    records complete (where it chose a setting)."""
    from harness.record.store import is_complete, record_path

    try:
        record = read_search(path)
    except (OSError, ValueError):
        return False
    results = Path(path).parents[4]  # <results>/search/<task>/<model>/<base variant>/search.json
    return record.choice is None or all(
        is_complete(record_path(results, record.task, record.model, record.choice.variant, s))
        for s in record.final_seeds)


def read_searches(results: Path) -> tuple[list[SearchRecord], list[str]]:
    """Every search record under <results>/search/, and a warning per file that is not one."""
    records, warnings = [], []
    for path in sorted(search_root(results).glob(f"*/*/*/{SEARCH_FILE}")):
        try:
            records.append(read_search(path))
        except (OSError, ValueError) as exc:
            warnings.append(f"skipped {path}: {exc}")
    return records, warnings


# ------------------------------------------------------------------ a candidate, from its records

def validation_score(record: RunRecord) -> float | None:
    """The validation score of the task's main metric at the epoch the clean protocol picked on validation (the
    search's objective for one seed); None where the run has no such epoch. Never reads test."""
    clean = record.protocols.get("clean")
    if record.status == "failed" or clean is None:
        return None
    validation = record.fits[clean.fit].epochs[clean.epoch - 1].validation
    return None if validation is None else validation.metrics[clean.main]


def candidate_of(settings: dict, variant: str, seeds: list[int], found: dict, results: Path) -> Candidate:
    """A candidate's state and scores from its records. found: search seed -> (record, path) for the seeds that
    have one. Complete: every seed complete; pruned or failed: any seed was (the first reason is kept)."""
    records = [found[s][0] for s in seeds if s in found]
    scores = {str(s): validation_score(found[s][0]) if s in found else None for s in seeds}
    stopped = next((r for r in records if r.status in ("pruned", "failed")), None)
    if stopped is not None:
        state, reason = stopped.status, stopped.failure
    elif len(records) == len(seeds) and all(v is not None for v in scores.values()):
        state, reason = "complete", None
    else:
        state, reason = "incomplete", None
    mean = sum(scores.values()) / len(seeds) if state == "complete" else None
    paths = [str(Path(found[s][1]).relative_to(results)) for s in seeds if s in found]
    return Candidate(settings=dict(settings), variant=variant, state=state, scores=scores, mean=mean,
                     records=paths, reason=reason)


def cost_of(records: list[RunRecord]) -> SearchCost:
    """The summed cost of a search's candidate records."""
    energy = [r.cost.energy_kwh for r in records if r.cost and r.cost.energy_kwh is not None]
    emissions = [r.cost.emissions_kg for r in records if r.cost and r.cost.emissions_kg is not None]
    return SearchCost(runs=len(records), train_s=sum(r.timings.train_s for r in records if r.timings),
                      eval_s=sum(r.timings.eval_s for r in records if r.timings),
                      energy_kwh=sum(energy) if energy else None, emissions_kg=sum(emissions) if emissions else None,
                      unmeasured=len(records) - len(energy))

