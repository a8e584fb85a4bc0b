"""The data shipped inside the package: its lock, its license, and when it is read."""
import hashlib
import subprocess
import sys

import pytest
from conftest import REPO

from harness import embedded
from harness.hub import mirror_lock
from harness.registry.load import load_tasks


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
    repo = REPO
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
