"""The mirror's lock file: written from the files present, verified before a run reads them."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness.cli.commands import main
from harness.errors import UserError
from harness.hub import mirror_lock
from harness.record.store import read_record


def test_mirror_from_the_environment(toy_env, tiny_encoder, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_MIRROR", str(toy_env["mirror"]))
    monkeypatch.setenv("HARNESS_RESULTS", str(toy_env["results"]))
    assert main(["run", "--task", "toy", "--model", str(tiny_encoder), "--epochs", "1", "--limit", "16"]) == 0
    (path,) = toy_env["results"].rglob("seed42.json")
    assert read_record(path).task.source == str((toy_env["mirror"] / "tester" / "toy").resolve())


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
