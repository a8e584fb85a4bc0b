"""Exports: the results of one model in the Hub's two formats, and every record as JSON lines.

- model-index: the `model-index` metadata of a model card, built with huggingface_hub's EvalResult and
  ModelCardData (valid by construction; ModelCardData parses it back).
- eval-results: the `.eval_results/<task>.yaml` files of a model repository (Hub docs "Evaluation
  Results", https://huggingface.co/docs/hub/eval-results, and the hub-docs spec eval_results.yaml), built
  with huggingface_hub's EvalResultEntry and eval_result_entries_to_yaml. The format holds one value per
  entry and no metric name: the entry is the task's accuracy (%), the notes say the rest.
- jsonl: one line per record x protocol x metric, with its 95% confidence interval over the test examples
  (accuracy: Wilson score interval; other metrics: percentile bootstrap of the examples) and the provenance.

Numbers in the Hub formats are the mean over seeds in %, as in `harness table`. Every text written passes
through redact.scrub. Uploading is harness/outputs/publish.py.
"""
from __future__ import annotations

import json
import re

import numpy as np

from harness import metrics
from harness.aggregate.frame import KEYS, PROVENANCE, VALUES, record_rows
from harness.aggregate.table import cell_of
from harness.redact import scrub
from harness.registry.parse import is_commit

# harness name -> hub metric id (the `evaluate` library's names)
METRIC_TYPES = {"accuracy": "accuracy", "macro_f1": "f1", "mcc": "matthews_correlation", "weighted_f1": "f1",
                "pearson": "pearsonr", "spearman": "spearmanr", "mse": "mse"}
METRIC_ARGS = {"macro_f1": {"average": "macro"}, "weighted_f1": {"average": "weighted"}}
METRIC_NAMES = {name: m.display for name, m in metrics.METRICS.items()}
HUB_TASK = "text-classification"
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


# ------------------------------------------------------------------ cells: mean over seeds per task and metric

def cell_summaries(df, model: str, protocol: str, variant: str, tasks: dict) -> list[dict]:
    """Per task (registry order, then the others) and metric: mean and 95% t half-width over seeds, in %,
    with what the Hub formats need about the dataset. tasks: registry name -> TaskSpec."""
    rows = df[(df.model == model) & (df.protocol == protocol) & (df.variant == variant)]
    order = [t for t in tasks if t in set(rows.task)] + sorted(set(rows.task) - set(tasks))
    out = []
    for task in order:
        cell = rows[rows.task == task]
        commits = {c for c in cell.data_fingerprint if is_commit(c)}
        revision = commits.pop() if len(commits) == 1 else None  # a hub commit; a mirror's sha256 is no revision
        spec = tasks.get(task)
        for metric in (m for m in METRIC_TYPES if m in set(cell.metric)):
            values = cell[cell.metric == metric]
            seeds = zip(values.seed, values.value, strict=True)
            score = cell_of([(int(seed), metrics.shown(metric, value)) for seed, value in seeds])
            out.append({"task": task, "display": values.task_display.iloc[0], "hub_id": values.task_hub_id.iloc[0],
                        "config": spec.config if spec else None,
                        "revision": revision,
                        "metric": metric, "main": spec.main if spec else "accuracy", "mean": round(score.mean, 2),
                        "half": None if score.half is None else round(score.half, 2),
                        "n": score.n, "seeds": score.seeds, "date": max(values.created_at)})
    return out


def _describe(c: dict, protocol: str) -> str:
    seeds = f"mean of {c['n']} seeds ± {c['half']:.2f} (95% t-interval)" if c["half"] is not None else "1 seed"
    picked = {"published": "epoch picked on test, as the paper did",
              "tuned": "setting (e.g. learning rate) searched and epoch picked on validation, test of other seeds"}.get(
        protocol, "epoch picked on validation")
    unit = " (%)" if metrics.METRICS[c["metric"]].percent else ""
    return f"{METRIC_NAMES[c['metric']]}{unit} on test, protocol {protocol} ({picked}), {seeds}"


# ------------------------------------------------------------------ model-index

def model_index_results(summaries: list[dict], protocol: str) -> list:
    from huggingface_hub import EvalResult

    return [EvalResult(task_type=HUB_TASK, task_name="Text Classification", dataset_type=c["hub_id"],
                       dataset_name=c["display"], dataset_config=c["config"], dataset_split="test",
                       dataset_revision=c["revision"], metric_type=METRIC_TYPES[c["metric"]],
                       metric_value=c["mean"], metric_name=_describe(c, protocol),
                       metric_args=METRIC_ARGS.get(c["metric"]))
            for c in summaries]


def model_index_yaml(model_name: str, results: list) -> str:
    """The model card metadata: `model-index:` with one entry per task and metric."""
    from huggingface_hub import ModelCardData

    return scrub(ModelCardData(model_name=model_name, eval_results=results).to_yaml()) + "\n"


# ------------------------------------------------------------------ .eval_results

def eval_result_entries(summaries: list[dict], protocol: str, variant: str) -> dict[str, list]:
    """Task name -> its entries (the task's main metric: accuracy for the TTL tasks; the others in the notes)."""
    from huggingface_hub import EvalResultEntry

    from harness import __version__

    out = {}
    for c in (c for c in summaries if c["metric"] == c["main"]):
        notes = f"{_describe(c, protocol)}; fine-tuned with poeta-harness {__version__}, variant {variant}"
        for other in (s for s in summaries if s["task"] == c["task"] and s["metric"] != c["main"]):
            notes += f"; {METRIC_NAMES[other['metric']]} {other['mean']:.2f}"
        out[c["task"]] = [EvalResultEntry(dataset_id=c["hub_id"], task_id=c["config"] or "default", value=c["mean"],
                                          dataset_revision=c["revision"], date=c["date"], notes=notes)]
    return out


def eval_results_files(entries: dict[str, list]) -> dict[str, str]:
    """File name (<task>.yaml, for the .eval_results/ folder) -> YAML text."""
    import yaml
    from huggingface_hub import eval_result_entries_to_yaml

    return {f"{_file_name(task)}.yaml": yaml.safe_dump(scrub(eval_result_entries_to_yaml(items)), sort_keys=False,
                                                       allow_unicode=True)
            for task, items in entries.items()}


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


# ------------------------------------------------------------------ jsonl

def jsonl_lines(records, paths, results=None) -> list[str]:
    """One JSON object per complete record x protocol x metric: the DataFrame's row (aggregate/frame.py) with
    the value's 95% interval over the test examples beside it, naming no path of this machine (shared_row;
    results: the folder the record paths are given relative to)."""
    from harness.record.predictions import decode_predictions
    from harness.redact import secret_paths, secret_values

    hide, hide_paths = secret_values(), secret_paths()  # once, not per line
    lines = []
    for record, path in zip(records, paths, strict=True):
        rows = record_rows(record, path)
        if not rows:
            continue
        gold = decode_predictions(record.test_labels, record.task.type)
        for row in rows:
            text = record.fits[row["fit"]].epochs[row["epoch"] - 1].test_predictions
            pred = decode_predictions(text, record.task.type) if text else np.array([])
            low, high, method = interval(row["metric"], row["value"], pred, gold)
            row.update(ci95_low=low, ci95_high=high, ci_method=method)
            row = shared_row(row, results)
            ordered = {k: row[k] for k in [*KEYS, "value", "ci95_low", "ci95_high", "ci_method", *VALUES[1:],
                                           *PROVENANCE]}
            lines.append(json.dumps(scrub(ordered, hide, hide_paths), ensure_ascii=False))
    return lines


def shared_row(row: dict, results=None) -> dict:
    """A frame row as it may leave this machine: the record's path relative to the results folder, the command
    line's paths, the model's source and the data's source named without the machine's paths (redact.py)."""
    import shlex
    from pathlib import Path

    from harness.redact import command, shared_path, shared_source

    out = dict(row)
    if out.get("path"):
        path = Path(out["path"])
        root = Path(results).resolve() if results is not None else None
        out["path"] = (path.resolve().relative_to(root).as_posix()
                       if root is not None and root in path.resolve().parents else shared_path(path))
    if out.get("command_line"):
        out["command_line"] = shlex.join(command(shlex.split(out["command_line"]), shared=True))
    out["model_source"] = shared_source(out.get("model_source"), out.get("model_fingerprint")) or None
    if out.get("task_source") not in (None, "hub", "embedded"):
        out["task_source"] = "mirror"  # which commit or files: data_fingerprint says
    return out


def interval(metric: str, value: float, pred: np.ndarray, gold: np.ndarray) -> tuple:
    """(low, high, method) of a 95% interval for one record's metric over its test examples; (None, None,
    reason) where the predictions are not in the record."""
    if len(gold) == 0 or len(pred) != len(gold):
        return None, None, "none: no per-example predictions in the record"
    if metric == "accuracy":
        from scipy.stats import binomtest

        ci = binomtest(int(np.sum(pred == gold)), len(gold)).proportion_ci(confidence_level=CONFIDENCE,
                                                                           method="wilson")
        return float(ci.low), float(ci.high), "wilson score interval over test examples"
    if metric in metrics.METRICS:  # any other metric: a bootstrap, all resamples scored at once
        from scipy.stats import bootstrap

        def score(p, g, axis=-1):
            return metrics.batched(metric, p, g).reshape(np.shape(p)[:-1])

        res = bootstrap((pred, gold), score, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                        method="percentile", confidence_level=CONFIDENCE, rng=np.random.default_rng(0))
        return (float(res.confidence_interval.low), float(res.confidence_interval.high),
                f"percentile bootstrap over test examples ({BOOTSTRAP_RESAMPLES} resamples, seed 0)")
    return None, None, f"none: no interval for {metric}"
