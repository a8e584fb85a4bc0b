"""The registry: task files and models.yaml validated field by field; lookups; hostile files one line each."""
import shutil

import pytest
from conftest import REPO, run_toy, write_file

from harness.cli.commands import main
from harness.errors import UserError
from harness.registry.load import (
    load_models,
    load_tasks,
    resolve_model,
    resolve_task,
    table_models,
)
from harness.registry.parse import parse_task
from harness.yamlfile import read_yaml

VALID = {
    "name": "t", "display_name": "T", "hub_id": "o/t", "splits": {"train": "train", "test": "test"},
    "text": {"decoder": "{a}", "encoder": "{a}"}, "label": {"column": "y", "names": ["A", "B"]},
}


def test_the_five_tasks_are_registered_as_published():
    tasks = load_tasks()
    ttl = [t for t in tasks if "ttl" in tasks[t].suites]
    assert ttl == ["imdb", "faquad-nli", "hatebr", "assin2", "agnews"]  # the published column order
    assert list(tasks)[:5] == ttl  # and first in every table
    assert [tasks[t].display_name for t in ttl] == ["IMDB", "FaQuAD-NLI", "HateBr", "Assin2", "AgNews"]
    assert tasks["imdb"].max_length == 256 and tasks["agnews"].max_length == 256
    for name in ("faquad-nli", "hatebr", "agnews"):
        assert tasks[name].revision == "refs/convert/parquet"
    assert tasks["assin2"].encoder_templates == ("{premise}", "{hypothesis}")  # native sentence pair
    assert tasks["assin2"].decoder_template == "{bos}{premise}{bos}{hypothesis}{eos}"
    assert tasks["agnews"].label.num_classes == 4
    assert tasks["hatebr"].label.column == "offensive_language"
    assert tasks["imdb"].validation_from_train == {"size": 2500, "seed": 0}
    assert tasks["assin2"].published == {"bertimbau-large": 88.97, "bertimbau-base": 87.45,
                                         "ttl-460m": 86.43, "ttl-160m": 85.78}


def test_models_and_aliases():
    models = load_models()
    assert {"ttl-160m", "ttl-460m", "bertimbau-base", "bertimbau-large", "minilm-l6"} <= set(models)
    assert resolve_model("bertimbau-small", models).name == "bertimbau-base"
    assert models["ttl-460m"].family == "decoder" and models["bertimbau-large"].family == "encoder"
    assert models["bertimbau-base"].display_name == "BERTimbau-small"


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UserError, match=r"unknown task 'asin2' .*did you mean 'assin2'"):
        resolve_task("asin2", load_tasks())
    with pytest.raises(UserError, match=r"unknown model 'ttl-406m'.*did you mean 'ttl-460m'"):
        resolve_model("ttl-406m", load_models())


def test_local_folder_family_is_detected(tiny_decoder, tiny_encoder):
    models = load_models()
    assert resolve_model(str(tiny_decoder), models).family == "decoder"
    assert resolve_model(str(tiny_encoder), models).family == "encoder"
    assert resolve_model(str(tiny_encoder), models, family="decoder").family == "decoder"


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(str(tmp_path), load_models())


@pytest.mark.parametrize("change, message", [
    ({"lable": 1}, "unknown field 'lable'"),
    ({"hub_id": None}, "missing required field 'hub_id'"),
    ({"hub_id": "../../etc"}, "field 'hub_id' must look like"),
    ({"max_length": "long"}, "field 'max_length' must be int"),
    ({"label": {"column": "y", "names": ["A"]}}, "at least two class names"),
    ({"text": {"decoder": "{a}", "encoder": ["{a}", "{b}", "{c}"]}}, "a list of two"),
    ({"published": {"m": "high"}}, "published.m' must be a number"),
    ({"validation_from_train": {"size": 10}, "splits": {"train": "tr", "validation": "v", "test": "te"}},
     "not both"),
    # task types, metrics and suites (issue 13)
    ({"type": "ranking"}, "field 'type' must be one of classification, regression"),
    ({"main": "pearson"}, r"field 'main' \('pearson'\) must be one of the task's metrics"),
    ({"metrics": ["accuracy", "pearson"]}, "lists 'pearson', which does not fit a classification task"),
    ({"metrics": ["acuracy"]}, "lists 'acuracy', which is not a metric"),
    ({"metrics": ["accuracy", "accuracy"]}, "metrics once each"),
    ({"metrics": ["macro_f1"]}, r"field 'main' \('accuracy'\)"),  # the default main must be listed too
    ({"suites": ["tll"]}, "field 'suites' names unknown suite 'tll' \\(valid: ttl, assin\\)"),
    ({"suites": []}, "at least one suite"),
    ({"type": "regression"}, "missing required field 'range'|'label.names' is for classification"),
    ({"type": "regression", "label": {"column": "y", "range": [5, 1]}}, "'label.range' must be two numbers"),
    ({"type": "regression", "label": {"column": "y", "range": [1, 5]}, "metrics": ["pearson", "accuracy"]},
     "lists 'accuracy', which does not fit a regression task"),
    ({"label": {"column": "y", "names": ["A", "B"], "range": [0, 1]}}, "'label.range' is for regression"),
    ({"baselines": {"pearson": 0.1}}, "field 'baselines.pearson' is not one of the task's metrics"),
    ({"max_scores": {"accuracy": "all"}}, "field 'max_scores.accuracy' must be a number"),
    ({"references": [{"model": "m", "metric": "mse", "value": 1, "source": "x"}]},
     r"references\[0\].metric' \('mse'\) is not one of the task's metrics"),
    ({"references": [{"model": "m", "metric": "accuracy", "value": 0.9}]}, "missing required field 'source'"),
    ({"type": "regression", "label": {"column": "y", "range": [1, 5]}, "published": {"m": 80.0}},
     "for other figures use 'references'"),
])
def test_invalid_task_names_file_and_field(change, message):
    data = {**VALID, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(UserError, match=message) as err:
        parse_task(data, "tasks/t.yaml")
    assert str(err.value).startswith("tasks/t.yaml")


def test_malformed_yaml_file_names_the_file(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(UserError, match=r"bad\.yaml.*invalid YAML"):
        load_tasks(tmp_path)


def test_task_name_must_match_file(tmp_path):
    (tmp_path / "tasks").mkdir()
    import yaml

    (tmp_path / "tasks" / "other.yaml").write_text(yaml.safe_dump(VALID))
    with pytest.raises(UserError, match="must match the file name"):
        load_tasks(tmp_path)


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_tasks(tmp_path)


def test_model_entry_needs_exactly_one_source(tmp_path):
    (tmp_path / "models.yaml").write_text("m:\n  display_name: M\n  family: encoder\n  hub_id: a/b\n  path: /x\n")
    with pytest.raises(UserError, match="exactly one of"):
        load_models(tmp_path)
    (tmp_path / "models.yaml").write_text("m:\n  display_name: M\n  family: seq2seq\n  hub_id: a/b\n")
    with pytest.raises(UserError, match="family"):
        load_models(tmp_path)


def test_registry_files_exist_in_checkout():
    root = REPO
    assert {p.stem for p in (root / "tasks").glob("*.yaml")} >= {
        "imdb", "faquad-nli", "hatebr", "assin2", "agnews", "assin2-sts", "assin-ptbr-rte", "assin-ptbr-sts",
        "assin-ptpt-rte", "assin-ptpt-sts"}


def test_defaults_keep_the_ttl_tasks_as_they_were():
    tasks = load_tasks()
    for name in ("imdb", "faquad-nli", "hatebr", "assin2", "agnews"):
        t = tasks[name]
        assert (t.type, t.main, t.metrics[0]) == ("classification", "accuracy", "accuracy") and "ttl" in t.suites
        assert t.num_labels == t.label.num_classes
    assert parse_task(VALID, "tasks/t.yaml").suites == ("ttl",)


def test_the_assin_tasks():
    tasks = load_tasks()
    for name in ("assin2-sts", "assin-ptbr-sts", "assin-ptpt-sts"):
        t = tasks[name]
        assert (t.type, t.main, t.label.range, t.num_labels) == ("regression", "pearson", (1.0, 5.0), 1)
        assert t.label.column == "relatedness_score" and t.suites == ("assin",)
        assert set(t.metrics) == {"pearson", "spearman", "mse"}
    for name in ("assin-ptbr-rte", "assin-ptpt-rte"):
        t = tasks[name]
        assert (t.type, t.main, t.label.names) == ("classification", "macro_f1", ("NONE", "ENTAILMENT", "PARAPHRASE"))
    for name in ("assin-ptbr-rte", "assin-ptbr-sts", "assin-ptpt-rte", "assin-ptpt-sts"):
        assert (tasks[name].hub_id, tasks[name].config) == ("nilc-nlp/assin", name.split("-")[1])
    assert tasks["assin2-sts"].reference_scores("pearson") == {"bertimbau-large": 85.2, "bertimbau-base": 83.6}
    assert "assin" in tasks["assin2"].suites


def _models_yaml(tmp_path, text):
    (tmp_path / "models.yaml").write_text(text, encoding="utf-8")
    return load_models(tmp_path)


@pytest.mark.parametrize("extra, message", [
    ("  groups: [Big Models]\n", "field 'groups' must list lowercase names"),
    ("  groups: [all]\n", "'all' is reserved"),
    ("  groups: ttl\n", "field 'groups' must be list"),
    ("  pad_token: ''\n", "field 'pad_token' must name a token"),
    ("  pad_token: 3\n", "field 'pad_token' must be str"),
])
def test_bad_groups_and_pad_token_name_file_and_field(tmp_path, extra, message):
    with pytest.raises(UserError, match=message) as err:
        _models_yaml(tmp_path, "m:\n  display_name: M\n  family: decoder\n  hub_id: a/b\n" + extra)
    assert str(err.value).startswith(f"{tmp_path / 'models.yaml'}: m:")


def test_table_rows_of_a_group_then_models_in_no_group(tmp_path):
    models = _models_yaml(tmp_path, "".join(
        f"{name}:\n  display_name: {name.upper()}\n  family: encoder\n  hub_id: a/{name}\n{groups}"
        for name, groups in [("a", "  groups: [ttl]\n"), ("b", "  groups: [x, ttl]\n"), ("c", ""),
                             ("d", "  groups: [x]\n")]))
    assert models["b"].groups == ("x", "ttl") and models["c"].groups == ()
    assert table_models(models) == ([("a", "A"), ("b", "B"), ("c", "C")], {"d"})
    assert table_models(models, "x") == ([("b", "B"), ("c", "C"), ("d", "D")], {"a"})
    assert table_models(models, "all") == ([("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")], set())
    with pytest.raises(UserError, match=r"unknown model group 'xx' \(valid: all, ttl, x\); did you mean 'x'"):
        table_models(models, "xx")


def test_the_ttl_table_keeps_its_rows_and_the_new_models_are_registered():
    models = load_models()
    rows, left_out = table_models(models)
    assert [name for name, _ in rows] == ["bertimbau-large", "bertimbau-base", "ttl-460m", "ttl-160m", "minilm-l6"]
    assert {"tucano-160m", "gervasio-7b-ptbr", "xlm-roberta-large", "mmbert-base"} <= left_out
    assert models["gervasio-7b-ptbr"].pad_token == "<unk>" and models["gervasio-7b-ptbr"].family == "decoder"
    assert models["albertina-100m-ptbr"].family == "encoder"


def test_every_entry_outside_the_ttl_table_names_its_source():
    """A hub entry added since the TTL table carries, in a comment, the stored card or config it was checked
    against (the TTL table's four are in the reference notes)."""
    import re

    text = (REPO / "models.yaml").read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[a-z0-9][\w.-]*:\n)", text)
    models = load_models()
    checked = 0
    for block in blocks:
        name = block.split(":", 1)[0].strip().splitlines()[-1]
        spec = models.get(name)
        if spec is None or not spec.hub_id or "ttl" in spec.groups:
            continue
        comments = " ".join(line for line in block.splitlines() if line.strip().startswith("#"))
        assert re.search(r"https://(huggingface\.co|fast\.hugflare\.com)/\S+", comments), name
        assert re.search(r"[Pp]arameters|config\.json", comments), name
        checked += 1
    assert checked == len([m for m in models.values() if m.hub_id and "ttl" not in m.groups]) >= 9


def _models_file(env):
    return env["registry"] / "models.yaml"


def _task_file(env):
    return env["registry"] / "tasks" / "toy.yaml"


HOSTILE_REGISTRY = {
    "task file not UTF-8": (lambda env: write_file(_task_file(env), _task_file(env).read_bytes() + b"\nx: \xff\xfe\n"),
                            "is not UTF-8 text (byte 0xff)"),
    "models.yaml not UTF-8": (lambda env: write_file(_models_file(env),
                                                     b"# caf\xe9\n" + _models_file(env).read_bytes()),
                              "models.yaml: line 1 is not UTF-8 text (byte 0xe9)"),
    "duplicate model entry": (lambda env: write_file(_models_file(env), _models_file(env).read_text() + (
        "minilm-l6:\n  display_name: Other\n  family: encoder\n  hub_id: a/b\n")), "duplicate key 'minilm-l6'"),
    "duplicate task field": (lambda env: write_file(_task_file(env), _task_file(env).read_text() + "hub_id: other/x\n"),
                             "duplicate key 'hub_id'"),
    "task file is a folder": (lambda env: (_task_file(env).unlink(), _task_file(env).mkdir()),
                              "toy.yaml: Is a directory"),
    "task file is a list": (lambda env: write_file(_task_file(env), "- name: toy\n"), "expected a mapping, got list"),
    "task file is empty": (lambda env: write_file(_task_file(env), ""), "expected a mapping, got NoneType"),
    "models.yaml is a list": (lambda env: write_file(_models_file(env), "- ttl-160m\n"), "expected a mapping of model"),
    "smoke not a bool": (lambda env: write_file(_models_file(env), _models_file(env).read_text().replace(
        "smoke: true", "smoke: sometimes")), "field 'smoke' must be bool"),
    "unknown fields of mixed types": (lambda env: write_file(_task_file(env),
                                                             _task_file(env).read_text() + "1: a\nb: 2\n"),
                                      "unknown field '1'"),
    "an alias that is another model's name": (lambda env: write_file(_models_file(env), _models_file(
        env).read_text().replace("aliases: [bertimbau-small]", "aliases: [bertimbau-small, ttl-160m]")),
        "'ttl-160m' names both 'bertimbau-base' and 'ttl-160m'"),
    "a class name twice": (lambda env: write_file(_task_file(env), _task_file(env).read_text().replace(
        "names: [NEG, POS]", "names: [NEG, NEG]")), "two class names, each once"),
    "a class id that is a boolean": (lambda env: write_file(_task_file(env), _task_file(env).read_text().replace(
        "names: [NEG, POS]", "names: [NEG, POS]\n  map: {0: false, 1: true}")), "must map values to class ids 0..1"),
    "max_length beyond any tokenizer": (lambda env: write_file(_task_file(env), _task_file(env).read_text() + (
        "max_length: 99999999999999999999\n")), "field 'max_length' must be from 2 to 1000000"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_REGISTRY))
def test_hostile_registry_files(case, toy_env, tiny_encoder, capsys):
    setup, message = HOSTILE_REGISTRY[case]
    setup(toy_env)
    for argv in (["list"], ["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                            "--results", str(toy_env["results"])]):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


def test_duplicate_keys_are_refused_at_any_depth_but_merge_keys_are_not(tmp_path):
    from harness.errors import UserError

    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b: 1\n  c: 2\n  b: 3\n")
    with pytest.raises(UserError, match=r"x.yaml: line 4: duplicate key 'b'"):
        read_yaml(path)
    path.write_text("base: &base {lr: 1, epochs: 2}\nrun:\n  <<: *base\n  lr: 3\n")
    assert read_yaml(path)["run"] == {"lr": 3, "epochs": 2}


@pytest.mark.parametrize("config, message", [
    ('[]', "config.json is not a transformers config"),
    ('{"architectures": 5}', "config.json is not a transformers config"),
    ('{"architectures": ["Bert', "config.json is not valid JSON"),
], ids=["a list", "architectures not a list", "truncated"])
def test_a_model_folder_with_a_broken_config(config, message, toy_env, tiny_encoder, tmp_path, capsys):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_encoder, folder)
    (folder / "config.json").write_text(config)
    code = run_toy(toy_env, folder)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("change, message", [
    ("main: pearson\n", "toy.yaml: field 'main' ('pearson') must be one of the task's metrics"),
    ("metrics: [accuracy, spearman]\n", "toy.yaml: field 'metrics' lists 'spearman', which does not fit a "
                                        "classification task"),
    ("suites: [ttl, asin]\n", "toy.yaml: field 'suites' names unknown suite 'asin'"),
])
def test_bad_task_files_are_one_line_naming_file_and_field(toy_env, tiny_encoder, capsys, change, message):
    from conftest import TOY_TASK

    (toy_env["registry"] / "tasks" / "toy.yaml").write_text(TOY_TASK + change, encoding="utf-8")
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
