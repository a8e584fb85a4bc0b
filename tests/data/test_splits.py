"""Splits: loaded from the hub, a mirror or the embedded copy, checked, labels encoded, subsets stratified."""
import numpy as np
import pytest
from conftest import example, write_parquet

from harness.cli.commands import main
from harness.data import prepare, splits
from harness.data.splits import load_raw
from harness.errors import UserError
from harness.registry.load import load_tasks
from harness.registry.parse import parse_task


def _bad_registry(toy_env, name, text):
    (toy_env["registry"] / "tasks" / f"{name}.yaml").write_text(text, encoding="utf-8")


def _toy_task(**change):
    import yaml
    from conftest import TOY_TASK

    data = yaml.safe_load(TOY_TASK)
    data.update(change)
    return yaml.safe_dump(data, allow_unicode=True)


BAD_DATA = {
    "missing column": (lambda env: _bad_registry(env, "toy", _toy_task(text={"decoder": "{x}", "encoder": "{frase}"})),
                       "column 'frase' not in split 'train'"),
    "labels outside classes": (lambda env: _bad_registry(env, "toy", _toy_task(label={"column": "label",
                                                                                      "names": ["ONLY", "ONE"]}))
                               or write_parquet(env["mirror"] / "tester" / "toy", "test",
                                                {"premise": ["a"], "hypothesis": ["b"], "label": [5]}),
                               "label 5 in split 'test' is outside the declared classes"),
    "label column of wrong type": (lambda env: [write_parquet(env["mirror"] / "tester" / "toy", split,
                                                              {"premise": ["a"], "hypothesis": ["b"], "label": ["pos"]})
                                                for split in ("train", "validation", "test")],
                                   "holds str 'pos'"),
    "empty split": (lambda env: write_parquet(env["mirror"] / "tester" / "toy", "validation",
                                              {"premise": [], "hypothesis": [], "label": []}),
                    "cannot read the dataset in mirror folder"),
    "malformed yaml": (lambda env: _bad_registry(env, "toy", "name: toy\nsplits: {train: [\n"), "invalid YAML"),
    "wrong-typed yaml": (lambda env: _bad_registry(env, "toy", _toy_task(max_length="long")),
                         "field 'max_length' must be int"),
    "unknown yaml field": (lambda env: _bad_registry(env, "toy", _toy_task(lable="x")), "unknown field 'lable'"),
    "hub id escaping the mirror": (lambda env: _bad_registry(env, "toy", _toy_task(hub_id="../../etc")),
                                   "must look like 'owner/name'"),
    "split not in dataset": (lambda env: _bad_registry(env, "toy", _toy_task(splits={"train": "train",
                                                                                     "test": "testing"})),
                             "split 'testing' not in the dataset"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_task_data(case, toy_env, tiny_encoder, capsys):
    setup, message = BAD_DATA[case]
    setup(toy_env)
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


def test_stratified_subset_keeps_class_shares_and_is_seeded():
    labels = np.array([0] * 300 + [1] * 100)
    sub = splits.stratified_subset(labels, 40, seed=0)
    assert len(sub) == 40 and len(set(sub)) == 40
    assert np.sum(labels[sub] == 1) == 10  # 25% of 40
    assert np.array_equal(sub, splits.stratified_subset(labels, 40, seed=0))
    assert not np.array_equal(sub, splits.stratified_subset(labels, 40, seed=1))


def test_carve_validation_is_disjoint_stratified_and_fixed():
    labels = np.array([0, 1, 2, 3] * 50)
    parts = splits.carve_validation(labels, 40, seed=0)
    assert len(parts["validation"]) == 40 and len(parts["train"]) == 160
    assert not set(parts["validation"]) & set(parts["train"])
    assert np.bincount(labels[parts["validation"]]).tolist() == [10, 10, 10, 10]
    assert np.array_equal(parts["validation"], splits.carve_validation(labels, 40, seed=0)["validation"])


def test_labels_bool_int_and_rejections():
    task = load_tasks()["hatebr"]
    assert splits.encode_labels(task, [True, False, True], "train").tolist() == [1, 0, 1]
    with pytest.raises(UserError, match="outside the declared classes"):
        splits.encode_labels(task, [0, 1, 2], "train")
    with pytest.raises(UserError, match="holds str 'yes'.*label.map"):
        splits.encode_labels(task, ["yes"], "train")


def test_label_map_for_string_labels():
    task = parse_task({"name": "t", "display_name": "T", "hub_id": "o/t", "splits": {"train": "a", "test": "b"},
                       "text": {"decoder": "{x}", "encoder": "{x}"},
                       "label": {"column": "y", "names": ["A", "B"], "map": {"neg": 0, "pos": 1}}}, "t.yaml")
    assert splits.encode_labels(task, ["pos", "neg"], "a").tolist() == [1, 0]


def test_subset_of_encoded_split():
    split = splits.EncodedSplit(np.arange(10, dtype=np.int32), np.array([0, 3, 5, 10]), np.array([0, 1, 0]))
    sub = split.subset(np.array([2, 0]))
    assert example(sub, 0)[0].tolist() == [5, 6, 7, 8, 9] and example(sub, 1)[0].tolist() == [0, 1, 2]
    assert sub.labels.tolist() == [0, 0]


def test_missing_column_is_named(toy_env, tiny_encoder):
    from transformers import AutoTokenizer

    bad = load_tasks()["toy"]
    bad = bad.__class__(**{**bad.__dict__, "encoder_templates": ("{premisse}",)})
    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    with pytest.raises(UserError, match="column 'premisse' not in split 'train'"):
        prepare.prepare(bad, tok, "encoder", max_positions=512, mirror=str(toy_env["mirror"]))


def test_hub_unreachable_points_to_the_mirror(tiny_encoder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    with pytest.raises(UserError, match=r"cannot load the dataset from the hub.*--mirror DIR"):
        prepare.prepare(load_tasks()["imdb"], tok, "encoder", max_positions=512)


def test_empty_split_is_refused():
    import datasets

    task = load_tasks()["assin2"]
    empty = datasets.Dataset.from_dict({"premise": [], "hypothesis": [], "entailment_judgment": []})
    with pytest.raises(UserError, match="split 'test' is empty"):
        splits._to_raw(task, empty, "test")


def test_text_column_of_the_wrong_type_is_refused():
    import datasets

    task = load_tasks()["assin2"]
    ds = datasets.Dataset.from_dict({"premise": [1, 2], "hypothesis": ["a", "b"], "entailment_judgment": [0, 1]})
    with pytest.raises(UserError, match="column 'premise' in split 'train' holds int, not text"):
        splits._to_raw(task, ds, "train")


def test_an_offline_dataset_error_says_offline_not_cached_in_none(toy_env, tiny_encoder, capsys):
    # no --mirror: the toy task's hub id is looked up on the hub, which HF_HUB_OFFLINE=1 (conftest) forbids
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "None" not in err and "Couldn't reach 'tester/toy'" in err and "--mirror" in err


def test_the_root_cause_stops_where_the_library_suppressed_the_context():
    from harness.data.splits import _root_cause

    def load():  # the shape of datasets' offline failure
        try:
            raise OSError("offline")
        except OSError:
            try:
                raise FileNotFoundError("Dataset x is not cached in None")
            except FileNotFoundError:
                raise ConnectionError("Couldn't reach 'x' on the Hub (OfflineModeIsEnabled)") from None

    with pytest.raises(ConnectionError) as info:
        load()
    assert _root_cause(info.value) == "ConnectionError: Couldn't reach 'x' on the Hub (OfflineModeIsEnabled)"
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError as exc:
        assert _root_cause(exc) == "KeyError: 'inner'"  # an explicit cause is still followed


EXPECTED = {  # task -> (train, validation, test, label check)
    "assin2-sts": (6500, 500, 2448, "float"), "assin-ptbr-sts": (2500, 500, 2000, "float"),
    "assin-ptpt-sts": (2500, 500, 2000, "float"), "assin-ptbr-rte": (2500, 500, 2000, 3),
    "assin-ptpt-rte": (2500, 500, 2000, 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_assin_tasks_load_from_the_real_mirror(assin_mirror, name):
    task = load_tasks()[name]
    raw, source, _ = load_raw(task, str(assin_mirror))
    *sizes, kind = EXPECTED[name]
    assert [len(raw[r]) for r in ("train", "validation", "test")] == sizes
    assert source.endswith(task.hub_id)
    for split in raw.values():
        if kind == "float":
            assert split.labels.dtype == np.float64 and split.labels.min() >= 1 and split.labels.max() <= 5
            assert len(np.unique(split.labels)) > 10
        else:
            assert sorted(np.unique(split.labels)) == [0, 1, 2]
    if name == "assin-ptbr-rte":  # the imbalance that makes macro-F1 the main metric
        assert np.bincount(raw["test"].labels).tolist() == [1553, 341, 106]


def test_the_ptbr_and_ptpt_configs_are_different_data(assin_mirror):
    tasks = load_tasks()
    br = load_raw(tasks["assin-ptbr-rte"], str(assin_mirror))[0]["test"]
    pt = load_raw(tasks["assin-ptpt-rte"], str(assin_mirror))[0]["test"]
    assert br.columns["premise"][0] != pt.columns["premise"][0]


def _write_reg(env, values):
    from conftest import write_parquet

    for split in ("train", "validation", "test"):  # one column type in every split, as a real dataset has
        write_parquet(env["mirror"] / "tester" / "toyreg", split,
                      {"premise": ["a"] * len(values), "hypothesis": ["b"] * len(values), "score": values})


@pytest.mark.parametrize("values, message", [
    (["alto", "baixo"], "label column 'score' in split 'train' holds str 'alto'; a regression task needs numbers "
                        "in -2..2"),
    ([1.0, 7.5], "label 7.5 in split 'train' is outside the declared range -2..2; fix label.range in"),
    ([True, False], "holds bool True"),
])
def test_bad_regression_labels_are_one_line(toy_env, tiny_encoder, capsys, values, message):
    _write_reg(toy_env, values)
    code = main(["run", "--task", "toyreg", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


def test_subsets_and_carved_validation_of_a_regression_are_stratified_by_decile():
    from harness.data.splits import carve_validation, strata, stratified_subset

    rng = np.random.default_rng(0)
    labels = np.round(rng.uniform(1, 5, 2000) ** 2 / 5 + 1, 2)  # skewed, with ties
    deciles = strata(labels)
    assert sorted(np.unique(deciles)) == list(range(10))
    sub = stratified_subset(labels, 200, seed=0)
    assert np.abs(np.bincount(deciles[sub], minlength=10) - np.bincount(deciles) / 10).max() <= 1
    parts = carve_validation(labels, 100, seed=3)
    assert len(parts["validation"]) == 100 and len(np.intersect1d(parts["validation"], parts["train"])) == 0
    assert np.abs(np.bincount(deciles[parts["validation"]], minlength=10) - np.bincount(deciles) / 20).max() <= 1
    assert np.array_equal(strata(np.array([1, 0, 2])), [1, 0, 2])  # class ids are their own strata
