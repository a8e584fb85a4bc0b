import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Never reach for the hub in tests: an online lookup hangs for ~20-45 s before failing.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))
REPO = Path(__file__).resolve().parent.parent
SHARED_MIRROR = REPO.parent / "shared" / "data" / "hub"
ASSIN2 = SHARED_MIRROR / "nilc-nlp" / "assin2"
ASSIN = SHARED_MIRROR / "nilc-nlp" / "assin"

from tiny_models import make_decoder, make_encoder  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    monkeypatch.delenv("HARNESS_REGISTRY", raising=False)


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory):
    return make_decoder(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    return make_encoder(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture
def assin2_mirror():
    if not ASSIN2.is_dir():
        pytest.skip(f"the real Assin2 mirror is not at {ASSIN2} (../shared absent)")
    return SHARED_MIRROR


@pytest.fixture
def assin_mirror():
    if not (ASSIN2.is_dir() and ASSIN.is_dir()):
        pytest.skip(f"the real ASSIN / Assin2 mirror is not at {SHARED_MIRROR} (../shared absent)")
    return SHARED_MIRROR


POSITIVE = ["bom", "ótimo", "excelente", "lindo", "feliz", "maravilhoso"]
NEGATIVE = ["ruim", "péssimo", "horrível", "feio", "triste", "terrível"]


def toy_rows(n: int, seed: int, bool_labels: bool = False):
    """A separable toy pair task: the label says whether the hypothesis word is positive."""
    import random

    rng = random.Random(seed)
    rows = {"premise": [], "hypothesis": [], "label": []}
    for i in range(n):
        y = i % 2
        word = rng.choice(POSITIVE if y else NEGATIVE)
        rows["premise"].append(f"o filme {rng.randint(1, 99)} foi visto")
        rows["hypothesis"].append(f"foi {word}")
        rows["label"].append(bool(y) if bool_labels else y)
    return rows


def write_parquet(folder: Path, split: str, rows: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), folder / "data" / f"{split}-00000-of-00001.parquet")


TOY_TASK = """name: toy
display_name: Toy
hub_id: tester/toy
splits: {train: train, validation: validation, test: test}
text:
  decoder: "{bos}{premise}{bos}{hypothesis}{eos}"
  encoder: ["{premise}", "{hypothesis}"]
label:
  column: label
  names: [NEG, POS]
published: {tiny-bert: 90.0}
"""

TOYBOOL_TASK = """name: toybool
display_name: ToyBool
hub_id: tester/toybool
splits: {train: train, test: test}
validation_from_train: {size: 20, seed: 0}
text:
  decoder: "{hypothesis}"
  encoder: "{hypothesis}"
label:
  column: label
  names: [NEG, POS]
"""


# A learnable regression: the hypothesis word sets the score (-2 to 2), plus a little noise. Centred on 0,
# where a new head starts, so that a few dozen steps of a tiny model show learning (the real tasks' 1-5 scores
# need the longer runs of benchmarks/README.md).
LEVELS = {"péssimo": -2.0, "ruim": -1.0, "regular": 0.0, "bom": 1.0, "ótimo": 2.0}


def toy_regression_rows(n: int, seed: int):
    import random

    rng = random.Random(seed)
    rows = {"premise": [], "hypothesis": [], "score": []}
    words = list(LEVELS)
    for i in range(n):
        word = words[i % len(words)]
        rows["premise"].append(f"o filme {rng.randint(1, 99)} foi visto")
        rows["hypothesis"].append(f"foi {word}")
        rows["score"].append(min(2.0, max(-2.0, LEVELS[word] + rng.uniform(-0.3, 0.3))))
    return rows


# A learnable 3-class task, imbalanced as ASSIN's entailment (NONE most frequent): the hypothesis word says
# the class.
THREE_CLASS_WORDS = (NEGATIVE, ["regular", "mediano", "razoável"], POSITIVE)


def toy3_rows(n: int, seed: int):
    import random

    rng = random.Random(seed)
    rows = {"premise": [], "hypothesis": [], "label": []}
    for i in range(n):
        y = (0, 0, 0, 1, 1, 2)[i % 6]
        rows["premise"].append(f"o filme {rng.randint(1, 99)} foi visto")
        rows["hypothesis"].append(f"foi {rng.choice(THREE_CLASS_WORDS[y])}")
        rows["label"].append(y)
    return rows


TOY3_TASK = """name: toy3
display_name: Toy3
hub_id: tester/toy3
splits: {train: train, validation: validation, test: test}
type: classification
metrics: [macro_f1, accuracy, mcc]
main: macro_f1
suites: [assin]
text:
  decoder: "{bos}{premise}{bos}{hypothesis}{eos}"
  encoder: ["{premise}", "{hypothesis}"]
label:
  column: label
  names: [NONE, SOME, ALL]
"""


TOYREG_TASK = """name: toyreg
display_name: ToyReg
hub_id: tester/toyreg
splits: {train: train, validation: validation, test: test}
type: regression
suites: [assin]
text:
  decoder: "{bos}{premise}{bos}{hypothesis}{eos}"
  encoder: ["{premise}", "{hypothesis}"]
label:
  column: score
  range: [-2, 2]
"""


@pytest.fixture
def toy_env(tmp_path, monkeypatch):
    """A registry (the real tasks and models plus four toy tasks: pair classification, single-text
    classification with a carved validation, 3-class pair classification on macro-F1, pair regression) and a
    mirror holding the toy data."""
    registry = tmp_path / "registry"
    shutil.copytree(REPO / "tasks", registry / "tasks")
    shutil.copy(REPO / "models.yaml", registry / "models.yaml")
    (registry / "tasks" / "toy.yaml").write_text(TOY_TASK, encoding="utf-8")
    (registry / "tasks" / "toybool.yaml").write_text(TOYBOOL_TASK, encoding="utf-8")
    (registry / "tasks" / "toyreg.yaml").write_text(TOYREG_TASK, encoding="utf-8")
    (registry / "tasks" / "toy3.yaml").write_text(TOY3_TASK, encoding="utf-8")
    mirror = tmp_path / "mirror"
    for split, n, seed in (("train", 96, 1), ("validation", 32, 2), ("test", 40, 3)):
        write_parquet(mirror / "tester" / "toy", split, toy_rows(n, seed))
        write_parquet(mirror / "tester" / "toyreg", split, toy_regression_rows(n, seed))
        write_parquet(mirror / "tester" / "toy3", split, toy3_rows(n, seed))
    for split, n, seed in (("train", 120, 4), ("test", 40, 5)):
        write_parquet(mirror / "tester" / "toybool", split, toy_rows(n, seed, bool_labels=True))
    monkeypatch.setenv("HARNESS_REGISTRY", str(registry))
    return {"registry": registry, "mirror": mirror, "results": tmp_path / "results"}


# ------------------------------------------------------------------ helpers several test folders share

ADVICE = ("HF_HUB_OFFLINE=1", "--mirror DIR", "harness prefetch")  # what a hub error tells the user to do

# Every variable that puts the Hugging Face libraries (and reachability.offline) offline: a test about what
# happens online must clear each, whichever a user's shell sets.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def online_env(**extra) -> dict:
    """os.environ without any offline variable (plus extra), for a subprocess that must try the hub."""
    return {**{k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}, **extra}


def go_online(monkeypatch) -> None:
    """This process without any offline variable (monkeypatch restores them after the test)."""
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def harness(*args, env=None, timeout=300):
    """The installed console script, as a user runs it."""
    exe = shutil.which("harness") or str(Path(sys.executable).parent / "harness")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=timeout)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_toy(toy_env, model, *extra):
    """`harness run` on the toy task: 16 examples per split, one epoch."""
    from harness.cli.commands import main

    return main(["run", "--task", "toy", "--model", str(model), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), "--epochs", "1", "--limit", "16", *extra])


def write_file(path: Path, data: bytes | str) -> None:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def encoded_split(seqs, labels, types=None):
    """An EncodedSplit of these token id sequences (and type ids)."""
    from harness.data.splits import EncodedSplit

    lengths = [len(s) for s in seqs]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs])
    t = None if types is None else np.concatenate([np.asarray(x, dtype=np.int8) for x in types])
    return EncodedSplit(ids, offsets, np.asarray(labels), t)


def example(split, i):
    """Token ids (and type ids) of example i of an EncodedSplit."""
    a, b = split.offsets[i], split.offsets[i + 1]
    return split.ids[a:b], (None if split.type_ids is None else split.type_ids[a:b])



def fake_trainer(spec, curves, calls=None):
    """A search's trainer (harness/grid/search_worker.work) for the search `spec` that writes hand-made candidate
    records instead of training: curves(point, n) -> {"validation": [...], "test": [...]} (one value per epoch,
    fractions of accuracy) for the n-th seed trained (n from 1), or {"status": "failed"}. It calls on_epoch after
    each epoch as the fit does, and stops where that answers a reason (status "pruned"). calls: a list that gets
    (point, seed) per seed trained."""
    from records import curve_record

    from harness.record.search import search_root
    from harness.record.store import write_record

    calls = [] if calls is None else calls

    def train(point, seed, on_epoch):
        calls.append((dict(point), seed))
        curve = curves(dict(point), len(calls))
        variant = spec.variant_of(point)
        val, test, reason, status = [], [], None, curve.get("status", "complete")
        for v, t in zip(curve.get("validation", []), curve.get("test", []), strict=True):
            val.append(v)
            test.append(t)
            reason = on_epoch(seed, curve_record("x", "x", "x", seed, val, test).fits[0].epochs[-1])
            if reason:
                status = "pruned"
                break
        record = curve_record(spec.task, spec.model, variant, seed, val, test, status=status,
                              reason=reason or ("training diverged" if status == "failed" else None))
        write_record(search_root(spec.results), record)
        return record

    return train


@pytest.fixture
def slurm(tmp_path_factory):
    """A one-node SLURM test cluster (tests/slurm_cluster.py), skipping, saying why, where none can start."""
    import slurm_cluster

    why = slurm_cluster.missing()
    if why:
        pytest.skip(f"no SLURM test cluster: {why}")
    cluster = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()
