"""Exports: model-index, .eval_results and JSON lines with intervals; pushing to the Hub."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from records import make_record, with_provenance

from harness import metrics, results
from harness.aggregate import frame
from harness.cli.commands import main
from harness.outputs import hub_formats
from harness.record import store

COMMIT = "0123456789abcdef0123456789abcdef01234567"


GOLD = [0, 1] * 20


HUB_IDS = {"imdb": "christykoh/imdb_pt", "assin2": "nilc-nlp/assin2"}


def _f1(right: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(GOLD, _preds(right), average="macro"))


def _preds(right: int) -> list[int]:
    """Predictions right on the first `right` of the 40 test examples."""
    return [g if i < right else 1 - g for i, g in enumerate(GOLD)]


@pytest.fixture
def results_dir(tmp_path):
    """ttl-160m on imdb (hub data at a commit) and assin2 (mirror data), three seeds; another model beside."""
    folder = tmp_path / "results"
    for seed, right in enumerate([36, 37, 35]):
        for task, data in (("imdb", COMMIT), ("assin2", "sha256:mirror")):
            r = make_record(task, "ttl-160m", seed, 100 * right / 40, clean=100 * right / 40, preds=_preds(right),
                            gold=GOLD, display="TTL-160m")
            for protocol in ("published", "clean"):  # as a real record: the numbers of its predictions
                r.protocols[protocol].test["macro_f1"] = _f1(right)
            r.task.hub_id = HUB_IDS[task]
            store.write_record(folder, with_provenance(r, data=data))
    other = make_record("imdb", "bertimbau-base", 0, 50.0, preds=_preds(20), gold=GOLD)
    other.protocols["published"].test["macro_f1"] = _f1(20)
    store.write_record(folder, with_provenance(other))
    return folder


def test_model_index_round_trips_through_huggingface_hub(results_dir, capsys):
    from huggingface_hub import ModelCardData

    assert main(["export", "--format", "model-index", "--model", "ttl-160m", "--protocol", "published",
                 "--results", str(results_dir)]) == 0
    text = (results_dir / "export" / "ttl-160m" / "model-index.yaml").read_text()
    assert capsys.readouterr().out == text
    df = results.load(results_dir)
    from harness.registry.load import load_tasks

    summaries = hub_formats.cell_summaries(df, "ttl-160m", "published", "default", load_tasks())
    built = hub_formats.model_index_results(summaries, "published")
    parsed = ModelCardData(**yaml.safe_load(text))
    assert parsed.model_name == "TTL-160m" and parsed.eval_results == built
    by_key = {(e.dataset_type, e.metric_type): e for e in parsed.eval_results}
    assert set(by_key) == {("christykoh/imdb_pt", "accuracy"), ("christykoh/imdb_pt", "f1"),
                           ("nilc-nlp/assin2", "accuracy"), ("nilc-nlp/assin2", "f1")}
    imdb = by_key[("christykoh/imdb_pt", "accuracy")]
    assert imdb.metric_value == round(float(np.mean([90.0, 92.5, 87.5])), 2) and imdb.dataset_split == "test"
    assert imdb.dataset_revision == COMMIT  # a hub commit is a revision ...
    assert by_key[("nilc-nlp/assin2", "accuracy")].dataset_revision is None  # ... a mirror's hash is not
    f1 = by_key[("christykoh/imdb_pt", "f1")]
    assert f1.metric_value == round(100 * float(np.mean([_f1(36), _f1(37), _f1(35)])), 2)
    assert f1.metric_args == {"average": "macro"}
    assert "mean of 3 seeds ± " in imdb.metric_name and "protocol published" in imdb.metric_name


def test_eval_results_files_follow_the_hub_format(results_dir):
    from huggingface_hub import parse_eval_result_entries

    assert main(["export", "--format", "eval-results", "--model", "ttl-160m", "--protocol", "clean",
                 "--results", str(results_dir)]) == 0
    folder = results_dir / "export" / "ttl-160m" / ".eval_results"
    assert sorted(p.name for p in folder.iterdir()) == ["assin2.yaml", "imdb.yaml"]
    assert yaml.safe_load((folder / "assin2.yaml").read_text())[0]["dataset"] == {"id": "nilc-nlp/assin2",
                                                                                  "task_id": "default"}
    data = yaml.safe_load((folder / "imdb.yaml").read_text())
    # The documented shape: a list of {dataset: {id, task_id[, revision]}, value[, date, notes, ...]}.
    assert set(data[0]) <= {"dataset", "value", "verifyToken", "date", "source", "notes"}
    assert data[0]["dataset"] == {"id": "christykoh/imdb_pt", "task_id": "default", "revision": COMMIT}
    assert data[0]["value"] == round(float(np.mean([90.0, 92.5, 87.5])), 2)
    (entry,) = parse_eval_result_entries(data)
    df = results.load(results_dir)
    from harness.registry.load import load_tasks

    summaries = hub_formats.cell_summaries(df, "ttl-160m", "clean", "default", load_tasks())
    built = hub_formats.eval_result_entries(summaries, "clean", "default")
    assert built["imdb"] == [entry]
    assert "protocol clean" in entry.notes and entry.date == "2026-01-01T00:00:00+00:00"


def test_jsonl_one_line_per_record_and_metric_with_intervals(results_dir):
    from scipy.stats import norm

    assert main(["export", "--format", "jsonl", "--results", str(results_dir)]) == 0
    lines = [json.loads(x) for x in (results_dir / "export" / "results.jsonl").read_text().splitlines()]
    # 6 ttl-160m records x 2 protocols x 2 metrics, and the other model's record x 1 protocol x 2 metrics.
    assert len(lines) == 6 * 2 * 2 + 2
    for line in lines:
        assert line["ci95_low"] <= line["value"] <= line["ci95_high"], line
    acc = next(x for x in lines if x["metric"] == "accuracy" and x["seed"] == 1 and x["protocol"] == "published")
    # Wilson's interval by its closed form: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    n, p, z = 40, 37 / 40, norm.ppf(0.975)
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert acc["ci95_low"] == pytest.approx((centre - spread) / (1 + z * z / n))
    assert acc["ci95_high"] == pytest.approx((centre + spread) / (1 + z * z / n))
    assert acc["test_examples"] == 40 and acc["model_fingerprint"] == "sha256:weights1"
    assert set(frame.PROVENANCE) <= set(acc)


def test_wilson_interval_covers_as_it_says():
    """Simulated accuracy of a classifier right with probability 0.85 on 120 examples: ~95% of intervals
    contain 0.85 (1000 draws: the estimate's standard error is 0.7 points)."""
    rng = np.random.default_rng(1)
    gold = np.zeros(120, dtype=np.int64)
    hits = 0
    for _ in range(1000):
        pred = (rng.random(120) > 0.85).astype(np.int64)
        low, high, _ = hub_formats.interval("accuracy", 0.0, pred, gold)
        hits += low <= 0.85 <= high
    assert 0.92 <= hits / 1000 <= 0.98


def test_macro_f1_bootstrap_interval_covers_roughly():
    """The percentile bootstrap is approximate: its coverage of the population macro-F1 is near 95%."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(2)
    population_gold = rng.integers(0, 3, 200_000)
    noisy = rng.random(200_000) < 0.3
    population_pred = np.where(noisy, rng.integers(0, 3, 200_000), population_gold)
    truth = f1_score(population_gold, population_pred, average="macro")
    hits = 0
    for _ in range(60):
        idx = rng.integers(0, 200_000, 300)
        low, high, method = hub_formats.interval("macro_f1", 0.0, population_pred[idx], population_gold[idx])
        hits += low <= truth <= high
    assert "bootstrap" in method and 0.85 <= hits / 60 <= 1.0


def test_the_bootstraps_macro_f1_is_scores_macro_f1_and_sklearn():
    from sklearn.metrics import f1_score

    from harness.metrics import macro_f1

    rng = np.random.default_rng(3)
    pred, gold = rng.integers(0, 4, (50, 30)), rng.integers(0, 4, (50, 30))
    pred[0] = gold[0] = 1  # one class only: the others are left out, as sklearn does with the labels present
    batched = metrics.batched("macro_f1", pred, gold)  # what hub_formats.interval's bootstrap scores
    for i in range(50):
        assert batched[i] == pytest.approx(macro_f1(pred[i], gold[i]))
        assert batched[i] == pytest.approx(f1_score(gold[i], pred[i], average="macro"))


def test_export_input_errors_are_one_line(results_dir, capsys):
    cases = [(["--format", "model-index"], "pass --model NAME"),
             (["--format", "eval-results", "--model", "ttl-460m"], "found: bertimbau-base, ttl-160m"),
             (["--format", "model-index", "--model", "ttl-160m", "--variant", "limit9"], "found: default"),
             (["--format", "yaml", "--model", "ttl-160m"], "invalid choice")]
    for argv, message in cases:
        assert main(["export", "--results", str(results_dir), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_export_refuses_mixed_cells(results_dir, capsys):
    r = with_provenance(make_record("imdb", "ttl-160m", 5, 90.0), data=COMMIT, weights="sha256:other")
    store.write_record(results_dir, r)
    assert main(["export", "--format", "model-index", "--model", "ttl-160m", "--results", str(results_dir)]) == 2
    assert "differs in model fingerprint" in capsys.readouterr().err


SECRET = "hf_PushTokenThatMustNeverBeWritten123"


def test_push_without_a_token_says_so(results_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hc, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    assert main(["export", "--format", "eval-results", "--model", "ttl-160m", "--results", str(results_dir),
                 "--push", "me/model"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "set HF_TOKEN" in err


@pytest.mark.parametrize("fmt", ["model-index", "eval-results", "jsonl"])
def test_push_with_the_hub_unreachable_is_one_line(fmt, results_dir, monkeypatch, capsys):
    """Offline (HF_HUB_OFFLINE=1, as here and in CI): the upload call fails; one line, exit 2, no token shown."""
    import huggingface_hub.constants as hc

    assert hc.HF_HUB_OFFLINE  # conftest set it before huggingface_hub was imported
    monkeypatch.setenv("HF_TOKEN", SECRET)
    code = main(["export", "--format", fmt, "--model", "ttl-160m", "--results", str(results_dir), "--push", "me/m"])
    out = capsys.readouterr()
    assert code == 2
    lines = out.err.strip().splitlines()  # model-index also says where it wrote the file (before pushing)
    assert lines[-1].startswith("harness: error: cannot push to 'me/m'") and "nothing was uploaded" in lines[-1]
    assert all(x.startswith("(written to ") for x in lines[:-1]) and "Traceback" not in out.err
    assert SECRET not in out.out + out.err
    for f in (results_dir / "export").rglob("*"):
        assert not f.is_file() or SECRET not in f.read_text()


@pytest.mark.slow
def test_push_to_an_endpoint_that_refuses_connections_is_one_line(results_dir):
    """Online but unreachable: huggingface_hub retries (about 25 s) and its retry messages stay quiet."""
    env = {**os.environ, "HF_TOKEN": SECRET, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-m", "harness", "export", "--format", "eval-results", "--model", "ttl-160m",
                          "--results", str(results_dir), "--push", "me/m"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("harness: error: cannot push to 'me/m'") and SECRET not in out.stdout + out.stderr


def test_push_reaches_the_upload_call_with_the_exported_files(results_dir, monkeypatch, capsys):
    """Up to the upload call: the commit huggingface_hub is asked to make holds exactly the written files."""
    from huggingface_hub import HfApi

    calls = []

    class Done:
        commit_url = "https://huggingface.co/me/model/commit/abc"

    def fake_commit(self, repo_id, operations, **kwargs):
        calls.append((repo_id, {op.path_in_repo: op.path_or_fileobj for op in operations}, kwargs))
        return Done()

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setattr(HfApi, "create_commit", fake_commit)
    assert main(["export", "--format", "eval-results", "--model", "ttl-160m", "--results", str(results_dir),
                 "--push", "me/model"]) == 0
    assert "pushed: https://huggingface.co/me/model/commit/abc" in capsys.readouterr().out
    ((repo, files, kwargs),) = calls
    written = results_dir / "export" / "ttl-160m" / ".eval_results"
    assert repo == "me/model" and kwargs["repo_type"] == "model"
    assert files == {f".eval_results/{p.name}": p.read_bytes() for p in written.iterdir()}

    captured = []
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "metadata_update",
                        lambda repo_id, metadata, **kw: captured.append((repo_id, metadata, kw)) or "url")
    assert main(["export", "--format", "model-index", "--model", "ttl-160m", "--results", str(results_dir),
                 "--push", "me/model"]) == 0
    ((repo, metadata, kw),) = captured
    text = (results_dir / "export" / "ttl-160m" / "model-index.yaml").read_text()
    assert metadata == {"model-index": yaml.safe_load(text)["model-index"]} and kw["overwrite"] is True
