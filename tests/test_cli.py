"""The real CLI end to end, and the catalog of bad input: one line, exit code 2, nothing written."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_parquet

from harness.cli.commands import main
from harness.record.store import read_record
from harness.registry.load import local_name


def harness(*args, env=None, timeout=300):
    """The installed console script, as a user runs it."""
    exe = shutil.which("harness") or str(Path(sys.executable).parent / "harness")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=timeout)


def test_help_is_quick_and_imports_nothing_heavy():
    code = ("import sys, harness.cli.commands as c; c.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
    assert harness("--help").returncode == 0


def test_list_shows_tasks_models_and_hub_ids():
    out = harness("list")
    assert out.returncode == 0
    for text in ("assin2", "nilc-nlp/assin2", "ruanchaves/faquad-nli", "ttl-460m",
                 "nicholasKluge/TeenyTinyLlama-460m", "bertimbau-small"):
        assert text in out.stdout


@pytest.mark.slow  # end to end: two trainings in subprocesses, then three tables
def test_run_then_table_end_to_end_both_families(toy_env, tiny_decoder, tiny_encoder):
    results = toy_env["results"]
    for model in (tiny_decoder, tiny_encoder):
        out = harness("run", "--task", "toy", "--model", model, "--mirror", toy_env["mirror"], "--limit", 30,
                      "--epochs", 2, "--results", results)
        assert out.returncode == 0, out.stderr
    paths = sorted(results.rglob("seed42.json"))
    assert [p.relative_to(results).parts[:3] for p in paths] == [
        ("toy", local_name(tiny_encoder), "epochs=2_limit30"), ("toy", local_name(tiny_decoder), "epochs=2_limit30")]
    record = read_record(paths[1])
    assert record.model.family == "decoder" and record.limit == 30
    assert record.overrides == {"epochs": 2} and record.dataset_sizes == {"train": 30, "validation": 30, "test": 30}
    assert len(record.fits[0].epochs) == 2 and record.fits[0].epochs[0].validation is not None
    assert record.harness.git_commit is None or len(record.harness.git_commit) == 40
    assert record.tokens.train_real <= record.tokens.train_processed
    assert set(vars(record.timings)) >= {"load_s", "tokenize_s", "train_s", "eval_s"}
    assert "torch" in record.packages and record.device.startswith("cpu")

    out = harness("table", "--results", results)
    assert out.returncode == 0, out.stderr
    header = "| Models | Toy | Average |"  # the registered tasks nobody ran are no columns
    assert header in out.stdout
    assert "| tiny-llama |" in out.stdout and "| tiny-bert |" in out.stdout
    assert "protocol `clean`" in out.stdout and (record.precision, record.device_type) == ("fp32", "cpu")
    assert (results / "table-clean-all-variants.md").read_text() == out.stdout
    published = harness("table", "--results", results, "--protocol", "published", "--format", "csv")
    row = f"epochs=2_limit30,published,fp32 (cpu),{local_name(tiny_encoder)},toy,"
    assert published.returncode == 0 and row in published.stdout


@pytest.mark.slow  # end to end: a training on the real data in a subprocess
def test_real_assin2_through_the_cli(assin2_mirror, tiny_encoder, tmp_path):
    results = tmp_path / "results"
    out = harness("run", "--task", "assin2", "--model", tiny_encoder, "--mirror", assin2_mirror, "--limit", 200,
                  "--results", results)
    assert out.returncode == 0, out.stderr
    record = read_record(results / "assin2" / local_name(tiny_encoder) / "limit200" / "seed42.json")
    assert record.task.source.endswith("nilc-nlp/assin2") and record.task.revision_resolved.startswith("sha256")
    assert record.dataset_sizes == {"train": 200, "validation": 200, "test": 200}
    assert len(record.test_labels) == 200 and set(record.test_labels) == {"0", "1"}
    assert 0.0 <= record.protocols["published"].test["accuracy"] <= 1.0
    table = harness("table", "--results", results)
    assert "| Models | Assin2 | Average |" in table.stdout  # only the task that ran is a column
    assert re.search(r"\| tiny-bert \| \d+\.\d\d \| \d+\.\d\d \|", table.stdout)  # alone: no mark


def test_hub_unreachable_model_says_how_to_use_the_mirror(tmp_path):
    out = harness("run", "--task", "assin2", "--model", "ttl-460m", "--results", tmp_path / "r",
                  env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "ttl-460m" in lines[0] and "--mirror" in lines[0]
    assert not (tmp_path / "r").exists()


def _bad_registry(toy_env, name, text):
    (toy_env["registry"] / "tasks" / f"{name}.yaml").write_text(text, encoding="utf-8")


def _toy_task(**change):
    import yaml
    from conftest import TOY_TASK

    data = yaml.safe_load(TOY_TASK)
    data.update(change)
    return yaml.safe_dump(data, allow_unicode=True)


BAD_INPUTS = {
    "unknown task": (["--task", "asin2"], "unknown task 'asin2'"),
    "unknown model": (["--model", "bertimbau-smal"], "did you mean 'bertimbau-small'"),
    "misspelled flag": (["--lmit", "3"], "did you mean --limit"),
    "limit zero": (["--limit", "0"], "--limit must be a positive"),
    "limit negative": (["--limit", "-5"], "--limit must be a positive"),
    "bad seed list": (["--seed", "1,x"], "--seed takes integers"),
    "seeds zero": (["--seeds", "0"], "--seeds must be from 1 to"),
    "epochs zero": (["--epochs", "0"], "epochs must be >= 1"),
    "wrong-typed flag": (["--learning-rate", "fast"], "invalid float value"),
    "missing model folder": (["--model", "./no/such/model"], "does not exist"),
    "mirror missing": (["--mirror", "/no/such/mirror"], "mirror folder '/no/such/mirror' does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_cli_input(case, toy_env, tiny_encoder, capsys):
    args, message = BAD_INPUTS[case]
    base = {"--task": "toy", "--model": str(tiny_encoder), "--mirror": str(toy_env["mirror"]),
            "--results": str(toy_env["results"])}
    for flag in ("--task", "--model", "--mirror"):
        if flag in args:
            base.pop(flag)
    argv = ["run", *[x for kv in base.items() for x in kv], "--epochs", "1", *args]
    if "--epochs" in args:
        argv.remove("--epochs"), argv.remove("1")
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("harness: error:") and message in err, err
    assert not toy_env["results"].exists()


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


def test_results_path_is_a_file(toy_env, tiny_encoder, capsys):
    blocker = toy_env["results"]
    blocker.write_text("not a folder")
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(blocker / "sub")])
    assert code == 2 and "is a file" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


def test_model_folder_without_tokenizer(toy_env, tiny_encoder, tmp_path, capsys):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_encoder / f, folder / f)
    code = main(["run", "--task", "toy", "--model", str(folder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot load the tokenizer" in err
    assert not toy_env["results"].exists()


def test_remote_code_needs_the_flag(toy_env, capsys):
    models = toy_env["registry"] / "models.yaml"
    models.write_text(models.read_text() + "sneaky:\n  display_name: S\n  family: encoder\n  hub_id: a/b\n"
                      "  trust_remote_code: true\n")
    code = main(["run", "--task", "toy", "--model", "sneaky", "--results", str(toy_env["results"])])
    assert code == 2 and "--trust-remote-code" in capsys.readouterr().err


def test_table_without_results(tmp_path, capsys):
    assert main(["table", "--results", str(tmp_path / "none")]) == 2
    assert "no results folder" in capsys.readouterr().err


def test_divergence_writes_a_failure_record_the_table_skips(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(results), "--epochs", "1", "--learning-rate", "1e30", "--max-grad-norm", "0"])
    assert code == 1 and "diverged" in capsys.readouterr().err
    failed = list(results.rglob("*.failed.json"))
    assert len(failed) == 1 and json.loads(failed[0].read_text())["status"] == "failed"
    main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
          "--results", str(results), "--epochs", "1", "--limit", "20"])
    capsys.readouterr()
    assert main(["table", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "failed run not tabulated" in captured.err and "diverged" in captured.err
    assert "learning_rate=1e+30" not in captured.out  # the failed cell gives no number


def test_checkpoints_only_when_asked(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    base = ["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
            "--results", str(results), "--epochs", "2", "--limit", "16"]
    assert main(base) == 0
    assert not list(results.rglob("checkpoints"))
    assert main(base + ["--save-every-epoch", "--force"]) == 0
    (folder,) = results.rglob("checkpoints")
    assert sorted(p.name for p in (folder / "seed42").iterdir()) == ["train-epoch1", "train-epoch2"]
    assert (folder / "seed42" / "train-epoch2" / "config.json").is_file()


def test_mirror_from_the_environment(toy_env, tiny_encoder, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_MIRROR", str(toy_env["mirror"]))
    monkeypatch.setenv("HARNESS_RESULTS", str(toy_env["results"]))
    assert main(["run", "--task", "toy", "--model", str(tiny_encoder), "--epochs", "1", "--limit", "16"]) == 0
    (path,) = toy_env["results"].rglob("seed42.json")
    assert read_record(path).task.source == str((toy_env["mirror"] / "tester" / "toy").resolve())


def test_table_shows_the_ttl_group_by_default_and_other_groups_on_request(tmp_path, capsys):
    """Records of models in other groups stay out of the default (TTL) table; models in no group (minilm-l6,
    a local folder) join it; --group picks another group, --group all shows every model."""
    from records import make_record

    from harness.record.store import write_record

    shown = {"ttl-160m": "TTL-160m", "minilm-l6": "MiniLM-L6 (English)", "tucano-160m": "Tucano-160m",
             "my-folder": "my-folder"}  # the registry's display names; the record's for a folder
    for model in shown:
        write_record(tmp_path, make_record("assin2", model, 42, 80.0, display=model))

    def rows(*flags):
        assert main(["table", "--results", str(tmp_path), "--protocol", "published", *flags]) == 0
        out = capsys.readouterr().out.split("### Against")[0]
        return [model for model, display in shown.items() if f"| {display} |" in out]

    assert rows() == ["ttl-160m", "minilm-l6", "my-folder"]
    assert rows("--group", "tucano") == ["minilm-l6", "tucano-160m", "my-folder"]
    assert rows("--group", "all") == ["ttl-160m", "minilm-l6", "tucano-160m", "my-folder"]
    assert main(["table", "--results", str(tmp_path), "--group", "tucan"]) == 2
    err = capsys.readouterr().err
    assert "unknown model group 'tucan'" in err and "did you mean 'tucano'" in err and len(err.splitlines()) == 1
    only_tucano = tmp_path / "only-tucano"
    write_record(only_tucano, make_record("assin2", "tucano-160m", 42, 80.0))
    assert main(["table", "--results", str(only_tucano)]) == 2
    assert "no complete records for the models of group 'ttl': try --group all" in capsys.readouterr().err
