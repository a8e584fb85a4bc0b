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
