"""One worker of a search (harness/grid/search.py): draw a candidate from the study; reuse its records, wait for
the worker that holds it, or claim and train it; report its validation score to the study. After the last
candidate: the choice, and the search record (written by the first worker to create it)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from harness import metrics
from harness.errors import UserError
from harness.grid import claims
from harness.grid.search import POLL_S, STEP_STRIDE, SearchSpec, candidate_folder, finished, open_study
from harness.record import search as search_record
from harness.record.store import read_record, record_path


def work(spec: SearchSpec, train, say) -> search_record.SearchRecord:
    """Run candidates until the search is done, then return its search record (this worker's, or the one another
    worker wrote first). train(point, seed, on_epoch) trains one search seed of a candidate and writes its record
    (an ordinary `harness run` under <results>/search/); on_epoch(seed, epoch metrics) -> a reason to stop."""
    from optuna.distributions import CategoricalDistribution

    study = open_study(spec)
    distributions = {k: CategoricalDistribution(values) for k, values in spec.grid.items()}
    while not finished(study, spec):
        trial = study.ask(distributions)
        point = {k: trial.params[k] for k in spec.grid}
        # An interruption (Ctrl-C, SIGTERM, an error) leaves the trial RUNNING, not FAIL: a failed grid point counts
        # as visited, a running one is handed out again, so a resumed search finishes it.
        candidate = evaluate(spec, point, trial, train, say)
        _tell(study, trial, candidate, spec)
    if spec.sampler == "tpe":  # trials other workers hold are not finished yet: their candidates belong in it
        while any(claims.live_claim(candidate_folder(spec, t.params)) for t in _running(study, spec)):
            time.sleep(POLL_S)
    return conclude(spec, study, say)


def _running(study, spec: SearchSpec) -> list:
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if set(t.params) == set(spec.grid)]


def read_candidate(spec: SearchSpec, point: dict):
    """(the candidate as its records say, search seed -> (record, path) of the seeds that have one)."""
    variant = spec.variant_of(point)
    root, found = search_record.search_root(spec.results), {}
    for seed in spec.search_seeds:
        for failed in (False, True):
            path = record_path(root, spec.task, spec.model, variant, seed, failed=failed)
            try:
                found[seed] = (read_record(path), path)
                break
            except (OSError, ValueError):  # none, or unreadable: that seed is not done
                continue
    return search_record.candidate_of(point, variant, spec.search_seeds, found, spec.results), found


class _Reporter:
    """The candidate's validation scores, epoch by epoch, as the trial's intermediate values (what the pruner
    compares); and the pruning decision after each epoch of a seed being trained."""

    def __init__(self, spec: SearchSpec, trial):
        self.spec, self.trial, self.reported = spec, trial, set()

    def report(self, seed: int, epoch) -> float | None:
        if epoch.validation is None:
            return None
        value = epoch.validation.metrics[self.spec.metric]
        step = self.spec.search_seeds.index(seed) * STEP_STRIDE + epoch.epoch
        if step not in self.reported:
            self.trial.report(value, step)
            self.reported.add(step)
        return value

    def records(self, found: dict) -> None:
        for seed, (record, _) in sorted(found.items()):
            for fit in record.fits:
                for epoch in fit.epochs:
                    self.report(seed, epoch)

    def on_epoch(self, seed: int, epoch) -> str | None:
        value = self.report(seed, epoch)
        if value is None or not self.spec.prune or not self.trial.should_prune():
            return None
        return (f"pruned after epoch {epoch.epoch}: validation {self.spec.metric} {value:.4f} is worse than the "
                f"median of the candidates finished before it at that epoch (Optuna's MedianPruner)")


def evaluate(spec: SearchSpec, point: dict, trial, train, say):
    """The candidate at `point`, done: from its records where they are complete (or pruned, or failed), else
    after this worker trains what is missing, or after the worker holding it has."""
    label = f"{spec.task}/{spec.model} {search_record.describe_point(point)}"
    reporter, waiting = _Reporter(spec, trial), False
    while True:
        candidate, found = read_candidate(spec, point)
        if candidate.state != "incomplete":
            reporter.records(found)
            say(f"tune {label}: {_outcome(candidate, spec)}")
            return candidate
        claim = claims.try_claim(candidate_folder(spec, point))
        if claim is None:
            if not waiting:
                say(f"tune {label}: another worker is training it; waiting for its records")
                waiting = True
            time.sleep(POLL_S)
            continue
        with claim:  # checked again under the claim: another worker may have finished it meanwhile
            candidate, found = read_candidate(spec, point)
            reporter.records(found)
            for seed in [s for s in spec.search_seeds if s not in found]:
                say(f"tune {label}: training search seed {seed}")
                record = train(point, seed, reporter.on_epoch)
                if record.status != "complete":  # pruned or failed: the candidate is decided
                    break


def _outcome(candidate, spec: SearchSpec) -> str:
    if candidate.state == "complete":
        return f"validation {spec.metric} {candidate.mean:.4f} (mean over {len(spec.search_seeds)} search seed(s))"
    return f"{candidate.state}: {candidate.reason}"


def _tell(study, trial, candidate, spec: SearchSpec) -> None:
    from optuna.trial import TrialState

    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}[candidate.state]
    try:
        study.tell(trial, candidate.mean if state == TrialState.COMPLETE else None, state=state,
                   skip_if_finished=True)
    except RuntimeError:
        # After the last grid point GridSampler calls Study.stop(), which refuses outside optimize() (Optuna's
        # documented ask-and-tell caveat); the trial's state is stored before that (optuna/study/_tell.py).
        if not finished(study, spec):
            raise


def choose(candidates: list, spec: SearchSpec) -> search_record.Choice | None:
    """The best validation score among complete candidates (pruned and failed ones never); a tie goes to the
    smaller learning rate, then to grid order."""
    complete = [(i, c) for i, c in enumerate(candidates) if c.state == "complete"]
    if not complete:
        return None
    sign = 1.0 if spec.direction == "maximize" else -1.0
    best = max(sign * c.mean for _, c in complete)
    tied = [(i, c) for i, c in complete if round(sign * c.mean - best, 12) == 0]
    index, chosen = min(tied, key=lambda ic: (ic[1].settings.get("learning_rate", 0.0), ic[0]))
    seeds = len(spec.search_seeds)
    why = (f"the best validation {metrics.METRICS[spec.metric].display} (mean over {seeds} search "
           f"seed{'s' if seeds > 1 else ''}, at the epoch picked on validation) of {len(complete)} complete "
           f"candidate{'s' if len(complete) > 1 else ''}: {chosen.mean:.4f}")
    if len(tied) > 1:
        others = "; ".join(search_record.describe_point(c.settings) for _, c in tied if c is not chosen)
        why += f"; tied with {others}: the smaller learning rate, then grid order, wins"
    stopped = len(candidates) - len(complete)
    if stopped:
        why += f"; {stopped} pruned, failed or unfinished candidate{'s' if stopped > 1 else ''} never chosen"
    return search_record.Choice(settings=dict(chosen.settings), variant=chosen.variant, mean=chosen.mean, why=why)


def conclude(spec: SearchSpec, study, say) -> search_record.SearchRecord:
    """The search record from the candidates' records, written once (the first worker here writes it)."""
    if spec.sampler == "grid":
        points = spec.points
    else:  # the points TPE drew, in grid order
        drawn = [dict(t.params) for t in study.get_trials(deepcopy=False) if set(t.params) == set(spec.grid)]
        points = [p for p in spec.points if p in drawn]
    read = [read_candidate(spec, p) for p in points]
    candidates = [c for c, _ in read]
    lost = [c for c in candidates if c.state == "incomplete"]
    if lost and spec.sampler == "grid":
        raise UserError(f"the study says every candidate of {spec.task}/{spec.model} ran, but "
                        f"{search_record.describe_point(lost[0].settings)} has no records in "
                        f"{search_record.search_dir(spec.results, spec.task, spec.model, lost[0].variant)}: delete "
                        f"{spec.folder / search_record.JOURNAL_FILE} to search again (complete candidates are reused)")
    record = search_record.SearchRecord(
        schema_version=search_record.SEARCH_SCHEMA_VERSION,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), task=spec.task, model=spec.model,
        base_variant=spec.base_variant, base_settings=dict(spec.base_settings), limit=spec.limit,
        grid={k: list(v) for k, v in spec.grid.items()}, sampler=spec.sampler, trials=spec.trials, prune=spec.prune,
        metric=spec.metric, direction=spec.direction, search_seeds=list(spec.search_seeds), study=spec.study_name,
        storage=spec.storage_text(), candidates=candidates, choice=choose(candidates, spec),
        final_seeds=list(spec.final_seeds),
        cost=search_record.cost_of([r for _, found in read for r, _ in found.values()]),
        harness_version=_version())
    path = search_record.search_path(spec.results, spec.task, spec.model, spec.base_variant)
    if search_record.write_once(path, record):
        say(f"tune {spec.task}/{spec.model}: search record -> {path}")
        return record
    return search_record.read_search(path)


def _version() -> str:
    from harness import __version__

    return __version__
