"""The `harness` commands as a user types them: run, list, table; every mistake one line and exit code 2."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import harness, run_toy
from records import make_record

from harness.cli.commands import main
from harness.config import RunConfig
from harness.finetune.precision import resolved_precision
from harness.record.store import is_complete, read_record, record_path, write_record
from harness.registry.load import local_name


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
    # auto as this CPU resolves it (bf16 where it computes bf16 natively): the table names it.
    auto = resolved_precision(RunConfig(), torch.device("cpu"))
    assert "protocol `clean`" in out.stdout and (record.precision, record.device_type) == (auto, "cpu")
    assert (results / "table-clean-all-variants.md").read_text() == out.stdout
    published = harness("table", "--results", results, "--protocol", "published", "--format", "csv")
    row = f"epochs=2_limit30,published,{auto} (cpu),{local_name(tiny_encoder)},toy,"
    assert published.returncode == 0 and row in published.stdout


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


def test_table_without_results_after_the_demo_names_the_demos_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    assert main(["table"]) == 2
    assert "results-demo" not in capsys.readouterr().err  # no demo run here: nothing to point at
    (tmp_path / "results-demo").mkdir()
    assert main(["table"]) == 2
    err = capsys.readouterr().err
    assert "no results folder 'results'" in err and "--results results-demo" in err


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


def test_table_shows_the_ttl_group_by_default_and_other_groups_on_request(tmp_path, capsys):
    """Records of models in other groups stay out of the default (TTL) table; models in no group (minilm-l6,
    a local folder) join it; --group picks another group, --group all shows every model."""


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


def test_run_help_documents_every_new_flag(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--peft", "--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets", "--gradient-checkpointing",
                 "--sharding", "--emissions-country", "--processes"):
        assert flag in text
    for words in ("qlora (LoRA on 4-bit base weights", "the same loss and gradients", "fsdp: with --processes N",
                  "codecarbon, offline"):
        assert words in text
    with pytest.raises(SystemExit):
        main(["table", "--help"])
    assert "--cost" in capsys.readouterr().out


def test_run_skips_a_seed_whose_complete_record_exists_unless_forced(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]

    def path(seed):
        return record_path(results, "toy", local_name(tiny_encoder), "epochs=1_limit16", seed)

    assert run_toy(toy_env, tiny_encoder, "--seed", "1") == 0
    first = path(1).read_bytes()
    capsys.readouterr()
    assert run_toy(toy_env, tiny_encoder, "--seed", "1,2") == 0
    err = capsys.readouterr().err
    assert f"skipped toy/{local_name(tiny_encoder)} seed 1: complete record in" in err and "--force" in err
    assert path(1).read_bytes() == first and is_complete(path(2))  # seed 1 untouched, seed 2 run
    assert run_toy(toy_env, tiny_encoder, "--seed", "1", "--force") == 0
    assert "skipped" not in capsys.readouterr().err
    assert path(1).read_bytes() != first  # trained again (its timings differ)


def test_a_data_parallel_run_launches_only_the_seeds_left(toy_env, tiny_encoder, monkeypatch, capsys):
    import subprocess

    launched, real_run = [], subprocess.run

    def run(argv, **kw):  # the launcher is recorded, not started; other commands (git, for provenance) run
        if "torch.distributed.run" not in argv:
            return real_run(argv, **kw)
        launched.append(argv)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(subprocess, "run", run)
    assert run_toy(toy_env, tiny_encoder, "--seed", "42") == 0 and not launched  # one process: no launcher
    assert run_toy(toy_env, tiny_encoder, "--seeds", "2", "--processes", "2") == 0
    (argv,) = launched
    assert "--nproc_per_node=2" in argv and argv[argv.index("--seed") + 1] == "43"
    assert "--seeds" not in argv and "--processes" not in argv
    assert run_toy(toy_env, tiny_encoder, "--seeds", "1", "--processes", "2") == 0 and len(launched) == 1  # all done
    assert "skipped" in capsys.readouterr().err


def test_two_local_folders_of_one_name_keep_two_records(toy_env, tiny_encoder, tmp_path, capsys):
    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    shutil.copytree(tiny_encoder, a)
    shutil.copytree(tiny_encoder, b)
    assert local_name(a) != local_name(b) and local_name(a).startswith("model-")
    assert local_name(a) == local_name(tmp_path / "a" / ".." / "a" / "model")  # the resolved path decides
    assert run_toy(toy_env, a) == 0 and run_toy(toy_env, b) == 0
    records = sorted(toy_env["results"].rglob("seed42.json"))
    assert len(records) == 2
    assert {read_record(p).model.source for p in records} == {str(a.resolve()), str(b.resolve())}
    capsys.readouterr()
    assert main(["table", "--results", str(toy_env["results"])]) == 0
    out = capsys.readouterr().out
    # two rows, told apart by their unique names, and the legend says what each is: the folder's name and the
    # content hash of its weights, never where it lies on this machine
    assert f"| {local_name(a)} |" in out and f"| {local_name(b)} |" in out
    assert f"{local_name(a)}: `folder model, weights sha256:" in out and f"{local_name(b)}: `folder model" in out
    assert str(tmp_path) not in out


def test_a_lone_local_folder_keeps_its_folder_name_in_the_table(toy_env, tiny_encoder, capsys):
    assert run_toy(toy_env, tiny_encoder) == 0
    capsys.readouterr()
    assert main(["table", "--results", str(toy_env["results"])]) == 0
    out = capsys.readouterr().out
    legend = "tiny-bert: `folder tiny-bert, weights sha256:"
    assert "| tiny-bert |" in out and legend in out and str(tiny_encoder.parent) not in out
    from harness import results  # the pandas path builds the same legend

    assert legend in results.table(results.load(toy_env["results"]))


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_mistyped_flag_points_to_the_subcommand_help(command, toy_env, tiny_encoder, capsys):
    args = ["--task", "toy", "--model", str(tiny_encoder)] if command == "run" else []
    assert main([command, *args, "--lmit", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("harness: error: unrecognized arguments: --lmit 3; did you mean --limit? "
                   f"(see harness {command} --help)")


HOSTILE_RUN = {
    "seed beyond the generators": (["--seed", "99999999999999999999"], "--seed takes integers from 0 to 4294967295"),
    "seed just beyond": (["--seed", "1,4294967296"], "--seed takes integers from 0 to 4294967295"),
    "a huge number of seeds": (["--seeds", "99999999999"], "--seeds must be from 1 to 10000"),
    "seed list with garbage": (["--seed", "1,2;3"], "--seed takes integers separated by commas"),
    "huge threads": (["--threads", "99999999999999999999"], "threads must be in 0..1024"),
    "infinite learning rate": (["--learning-rate", "inf"], "learning_rate must be a finite number, got inf"),
    "infinite weight decay": (["--weight-decay", "inf"], "weight_decay must be a finite number"),
    "non-numeric batch size": (["--batch-size", "lots"], "invalid int value: 'lots'"),
    "negative batch size": (["--batch-size", "-4"], "batch_size must be >= 1"),
    "read-only results": (["--results", "/sys/poeta-harness-results"], "results folder '/sys' is not writable"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RUN))
def test_hostile_run_flags(case, toy_env, tiny_encoder, capsys):
    args, message = HOSTILE_RUN[case]
    if "/sys" in " ".join(args) and not Path("/sys").is_dir():
        pytest.skip("no /sys here (a folder no one may write to, root included)")
    argv = ["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
            "--epochs", "1", "--limit", "16", *args]
    if "--results" not in args:
        argv += ["--results", str(toy_env["results"])]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


def test_a_record_that_cannot_be_written_is_one_line(toy_env, tiny_encoder, monkeypatch, capsys):
    import harness.record.store

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.record.store, "write_atomic", disk_full)
    code = run_toy(toy_env, tiny_encoder)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("harness: error: cannot write the record of toy/")
    assert "No space left on device" in err[-1] and not any("Traceback" in ln for ln in err)


def test_several_seeds_each_get_a_record_and_the_table_shows_the_interval(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(results), "--epochs", "1", "--limit", "24", "--seeds", "3"])
    assert code == 0
    assert sorted(p.name for p in results.rglob("seed*.json")) == ["seed42.json", "seed43.json", "seed44.json"]
    capsys.readouterr()
    assert main(["table", "--results", str(results), "--protocol", "clean"]) == 0
    assert "(n=3)" in capsys.readouterr().out


def test_after_the_demo_table_plot_and_report_work_without_naming_a_suite(tmp_path, capsys):
    """Records only outside the default suite (the demo's): each command shows the suite they are in and says
    so on stderr; a suite named explicitly that has no records is one line naming the suites that do."""
    from records import make_record

    from harness.record.store import write_record

    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 3.0]
    for seed in (42, 43):
        write_record(tmp_path, make_record("assin-ptbr-sts", "minilm-l6", seed, 0, gold=scores, preds=scores,
                                           main="pearson", task_type="regression",
                                           test={"pearson": 0.6, "spearman": 0.6, "mse": 0.5},
                                           clean_test={"pearson": 0.6 + seed / 1000, "spearman": 0.6, "mse": 0.5}))
    note = "no task of the default suite 'ttl' has records: showing suite 'assin'"
    for command in (["table"], ["plot"], ["report"]):
        assert main([*command, "--results", str(tmp_path)]) == 0, command
        out = capsys.readouterr()
        assert note in out.err, command
    assert main(["table", "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| ASSIN PT-BR STS |" in printed and "Pearson (%) on test" in printed  # the task's main metric
    from harness import results  # the DataFrame way: the same table, the same note (as a warning)

    with pytest.warns(UserWarning, match="showing suite 'assin'"):
        assert results.table(results.load(tmp_path)) == printed[:printed.rindex("\n_Built from ")]
    assert main(["table", "--results", str(tmp_path), "--suite", "ttl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no task in suite 'ttl' has records: the suites with records: assin" in err


def test_list_lines_up_its_columns_and_says_size_and_where_each_is(capsys, monkeypatch):
    from harness.hub import local

    monkeypatch.setattr(local, "cached_repos", lambda: frozenset({("model", "nicholasKluge/TeenyTinyLlama-160m")}))
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    tasks, models = (block.splitlines()[1:] for block in out.split("\n\n"))
    for block, column in ((tasks, "here"), (models, "here")):  # long names do not push a column out of line
        at = block[0].index(column)
        assert all(line[at - 2:at] == "  " and line[at] != " " for line in block), column
    rows = {line.split()[0]: line for line in models[1:]}
    assert "shown in tables as" in models[0] and rows["bertimbau-base"].split()[1] == "BERTimbau-small"
    assert " 110M " in rows["bertimbau-base"] and " needs the hub " in rows["bertimbau-base"]
    assert " HF cache " in rows["ttl-160m"] and " 6.7B " in rows["gervasio-7b-ptbr"]
    assert "  package" in rows["minilm-l6"]
    task_rows = {line.split()[0]: line for line in tasks[1:]}
    assert "2,500 / 500 / 2,000" in task_rows["assin-ptbr-sts"] and "package (harness)" in task_rows["assin-ptbr-sts"]
    assert "25,000 / – / 5,000" in task_rows["imdb"]
