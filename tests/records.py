"""Small complete records for aggregation tests (no training)."""
from harness.record.predictions import encode_predictions
from harness.record.schema import (
    SCHEMA_VERSION,
    EpochMetrics,
    Fit,
    HarnessInfo,
    ModelInfo,
    ProtocolResult,
    RunRecord,
    SplitMetrics,
    TaskInfo,
)


def make_record(task, model, seed, acc, clean=None, variant="default", preds=None, gold=None, display=None,
                precision="fp32", device_type="cpu", created_at="2026-01-01T00:00:00+00:00",
                task_type="classification", main="accuracy", test=None, clean_test=None):
    """precision None: a record written before the harness recorded it. acc / clean: the main score in %
    (classification, as the TTL table shows it). test / clean_test: {metric: value} to give every test metric
    instead (fractions, correlations, MSE as recorded)."""
    gold = gold if gold is not None else [0, 1] * 5
    preds = preds if preds is not None else gold
    test = test or {"accuracy": acc / 100, "macro_f1": acc / 100}
    epoch = EpochMetrics(epoch=1, train_loss=0.6, test=SplitMetrics(dict(test), 0.5),
                         validation=SplitMetrics({k: 0.8 for k in test}, 0.5),
                         test_predictions=encode_predictions(preds, task_type))
    fit = Fit(train_set="train", validation_source="split", train_examples=100, validation_examples=10,
              epochs=[epoch], train_s=1.0, eval_s=0.5, train_tokens_real=900, train_tokens_processed=1000,
              eval_tokens_real=90, eval_tokens_processed=100, steps=7)
    if clean is not None and clean_test is None:
        clean_test = {"accuracy": clean / 100, "macro_f1": 0.5}
    protocols = {"published": ProtocolResult(0, 1, f"test {main}", main, dict(test)),
                 "clean": None if clean_test is None else ProtocolResult(0, 1, f"validation {main}", main,
                                                                         dict(clean_test))}
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="complete", created_at=created_at,
        task=TaskInfo(name=task, display_name=task, hub_id=f"tester/{task}", type=task_type),
        model=ModelInfo(name=model, display_name=display or model, family="encoder", source=model),
        variant=variant, seed=seed, hyperparameters={}, overrides={}, limit=None, dataset_sizes={"test": len(gold)},
        test_labels=encode_predictions(gold, task_type), fits=[fit], protocols=protocols, timings=None, tokens=None,
        peak_memory=None, device="cpu", packages={}, harness=HarnessInfo(version="test", git_commit=None,
                                                                         git_dirty=None),
        data_cache=None, precision=precision, device_type=None if precision is None else device_type)


def with_provenance(record, definition="d1", data="sha256:data1", weights="sha256:weights1", precision="fp32"):
    """The record with the four fields a table cell must agree on set (None or "unknown" leave one unknown)."""
    record.task.definition = None if definition is None else {"templates": definition}
    record.task.revision_resolved = data
    record.model.weights_fingerprint = weights
    record.precision = precision
    return record


def curve_record(task, model, variant, seed, validation, test, status="complete", reason=None, main="accuracy",
                 created_at="2026-01-01T00:00:00+00:00"):
    """A record whose fit has one epoch per value of the validation and test curves (fractions of the main metric);
    its protocols picked by the harness's own rules (record/protocols.py). status "pruned" or "failed" with its
    reason (a failed record has no fits)."""
    from harness.record import protocols as protocols_mod

    epochs = [EpochMetrics(epoch=i, train_loss=0.5, test=SplitMetrics({main: t}, 0.5),
                           validation=SplitMetrics({main: v}, 0.5), test_predictions="01")
              for i, (v, t) in enumerate(zip(validation, test, strict=True), 1)]
    fits = [] if status == "failed" else [
        Fit(train_set="train", validation_source="split", train_examples=4, validation_examples=2, epochs=epochs,
            train_s=1.0, eval_s=0.5, train_tokens_real=9, train_tokens_processed=10, eval_tokens_real=9,
            eval_tokens_processed=10, steps=3, stopped=reason if status == "pruned" else None)]
    record = make_record(task, model, seed, 50.0, variant=variant, gold=[0, 1], created_at=created_at)
    record.status, record.failure, record.fits = status, reason, fits
    record.protocols = protocols_mod.protocols(fits, main) if fits else {"published": None, "clean": None}
    return record


def make_search(task, model, chosen, base_variant="default", grid=None, search_seeds=(1000,), final_seeds=(42, 43, 44),
                **changes):
    """A search record (record/search.py) that searched `grid` ({field: values}; default learning_rate 1e-5..8e-5)
    from the registered recipe and chose the point `chosen` ({field: value}; None: nothing chosen). Every candidate
    complete, the chosen one scoring 0.9 on validation, the others 0.5."""
    import itertools

    from harness.record import search
    from harness.record.variants import variant_name

    grid = grid or {"learning_rate": [1e-5, 2e-5, 4e-5, 8e-5]}
    limit = changes.pop("limit", None)

    def variant(point):
        return variant_name({k: v for k, v in point.items() if not (k == "learning_rate" and v == 4e-5)}, limit)

    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    candidates = [search.Candidate(settings=p, variant=variant(p), state="complete",
                                   scores={str(s): 0.9 if p == chosen else 0.5 for s in search_seeds},
                                   mean=0.9 if p == chosen else 0.5,
                                   records=[f"search/{task}/{model}/{variant(p)}/seed{s}.json" for s in search_seeds])
                  for p in points]
    fields = dict(schema_version=search.SEARCH_SCHEMA_VERSION, created_at="2026-01-01T00:00:00+00:00", task=task,
                  model=model, base_variant=base_variant, base_settings={}, limit=limit, grid=grid, sampler="grid",
                  trials=None, prune=False, metric="accuracy", direction="maximize", search_seeds=list(search_seeds),
                  study=f"{task}/{model}/{base_variant}/abcd1234",
                  storage=f"search/{task}/{model}/{base_variant}/study.journal", candidates=candidates,
                  choice=None if chosen is None else search.Choice(settings=dict(chosen), variant=variant(chosen),
                                                                   mean=0.9, why="the best validation Accuracy"),
                  final_seeds=list(final_seeds),
                  cost=search.SearchCost(runs=len(points) * len(search_seeds), train_s=10.0 * len(points),
                                         eval_s=2.0 * len(points), energy_kwh=0.001 * len(points),
                                         emissions_kg=0.0004 * len(points), unmeasured=0),
                  harness_version="0.1.0")
    return search.SearchRecord(**{**fields, **changes})
