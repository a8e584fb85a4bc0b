"""The rough edges a new user hit (issue 16): each one a test that fails without its fix.

Hostile input ends in one line on stderr and exit code 2, with nothing written."""
import shutil
from pathlib import Path

import pytest

from harness.cli.commands import main
from harness.record.store import is_complete, read_record, record_path
from harness.registry.load import load_models, local_name
from harness.yamlfile import read_yaml


def _run(toy_env, model, *extra):
    return main(["run", "--task", "toy", "--model", str(model), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), "--epochs", "1", "--limit", "16", *extra])


# ------------------------------------------------------------------ harness run --seeds N resumes

def test_run_skips_a_seed_whose_complete_record_exists_unless_forced(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]

    def path(seed):
        return record_path(results, "toy", local_name(tiny_encoder), "epochs=1_limit16", seed)

    assert _run(toy_env, tiny_encoder, "--seed", "1") == 0
    first = path(1).read_bytes()
    capsys.readouterr()
    assert _run(toy_env, tiny_encoder, "--seed", "1,2") == 0
    err = capsys.readouterr().err
    assert f"skipped toy/{local_name(tiny_encoder)} seed 1: complete record in" in err and "--force" in err
    assert path(1).read_bytes() == first and is_complete(path(2))  # seed 1 untouched, seed 2 run
    assert _run(toy_env, tiny_encoder, "--seed", "1", "--force") == 0
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
    assert _run(toy_env, tiny_encoder, "--seed", "42") == 0 and not launched  # one process: no launcher
    assert _run(toy_env, tiny_encoder, "--seeds", "2", "--processes", "2") == 0
    (argv,) = launched
    assert "--nproc_per_node=2" in argv and argv[argv.index("--seed") + 1] == "43"
    assert "--seeds" not in argv and "--processes" not in argv
    assert _run(toy_env, tiny_encoder, "--seeds", "1", "--processes", "2") == 0 and len(launched) == 1  # all done
    assert "skipped" in capsys.readouterr().err


def test_a_sweep_with_force_passes_it_to_each_run(toy_env, tiny_encoder, capsys):
    argv = ["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--results", str(toy_env["results"]),
            "--dry-run", "--executor", "slurm"]
    assert main(argv) == 0 and "--force" not in capsys.readouterr().out
    assert main(argv + ["--force"]) == 0 and "--force" in capsys.readouterr().out


def test_an_unreadable_record_is_not_complete(tmp_path):
    for name, content in (("list", b"[]"), ("empty", b"{}"), ("binary", b"\xff\xfe\x00"),
                          ("half", b'{"schema_version": 1, "status": "complete"}')):
        (tmp_path / f"{name}.json").write_bytes(content)
        assert not is_complete(tmp_path / f"{name}.json")
    (tmp_path / "folder.json").mkdir()
    assert not is_complete(tmp_path / "folder.json")


# ------------------------------------------------------------------ local models: unique names, sources

def test_two_local_folders_of_one_name_keep_two_records(toy_env, tiny_encoder, tmp_path, capsys):
    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    shutil.copytree(tiny_encoder, a)
    shutil.copytree(tiny_encoder, b)
    assert local_name(a) != local_name(b) and local_name(a).startswith("model-")
    assert local_name(a) == local_name(tmp_path / "a" / ".." / "a" / "model")  # the resolved path decides
    assert _run(toy_env, a) == 0 and _run(toy_env, b) == 0
    records = sorted(toy_env["results"].rglob("seed42.json"))
    assert len(records) == 2
    assert {read_record(p).model.source for p in records} == {str(a.resolve()), str(b.resolve())}
    capsys.readouterr()
    assert main(["table", "--results", str(toy_env["results"])]) == 0
    out = capsys.readouterr().out
    # two rows, told apart by their unique names, and the legend says where each came from
    assert f"| {local_name(a)} |" in out and f"| {local_name(b)} |" in out
    assert f"{local_name(a)}: `{a.resolve()}`" in out and f"{local_name(b)}: `{b.resolve()}`" in out


def test_a_lone_local_folder_keeps_its_folder_name_in_the_table(toy_env, tiny_encoder, capsys):
    assert _run(toy_env, tiny_encoder) == 0
    capsys.readouterr()
    assert main(["table", "--results", str(toy_env["results"])]) == 0
    out = capsys.readouterr().out
    assert "| tiny-bert |" in out and f"tiny-bert: `{tiny_encoder.resolve()}`" in out
    from harness import results  # the pandas path builds the same legend

    assert f"tiny-bert: `{tiny_encoder.resolve()}`" in results.table(results.load(toy_env["results"]))


# ------------------------------------------------------------------ messages that point the right way

@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_mistyped_flag_points_to_the_subcommand_help(command, toy_env, tiny_encoder, capsys):
    args = ["--task", "toy", "--model", str(tiny_encoder)] if command == "run" else []
    assert main([command, *args, "--lmit", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("harness: error: unrecognized arguments: --lmit 3; did you mean --limit? "
                   f"(see harness {command} --help)")


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


# ------------------------------------------------------------------ a bare sweep: the comparison only

def test_a_bare_sweep_leaves_out_the_smoke_test_model(tmp_path, capsys):
    models = load_models()
    assert models["minilm-l6"].smoke and not any(m.smoke for n, m in models.items() if n != "minilm-l6")
    assert main(["sweep", "--dry-run", "--results", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert "x 4 models x" in captured.err and "minilm" not in captured.out
    for name in ("bertimbau-large", "bertimbau-base", "ttl-460m", "ttl-160m"):
        assert f"/{name} seed 42" in captured.out
    assert main(["sweep", "--dry-run", "--models", "minilm-l6", "--results", str(tmp_path / "r")]) == 0
    assert "minilm-l6 seed 42" in capsys.readouterr().out  # still there when asked for
    assert main(["list"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "smoke test" in ln]  # `harness list` says why
    assert line.split()[0] == "minilm-l6"


# ------------------------------------------------------------------ hostile input: one line, exit 2

def _write(path: Path, data: bytes | str) -> None:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _models_yaml(env):
    return env["registry"] / "models.yaml"


def _task_file(env):
    return env["registry"] / "tasks" / "toy.yaml"


HOSTILE_REGISTRY = {
    "task file not UTF-8": (lambda env: _write(_task_file(env), _task_file(env).read_bytes() + b"\nx: \xff\xfe\n"),
                            "is not UTF-8 text (byte 0xff)"),
    "models.yaml not UTF-8": (lambda env: _write(_models_yaml(env), b"# caf\xe9\n" + _models_yaml(env).read_bytes()),
                              "models.yaml: line 1 is not UTF-8 text (byte 0xe9)"),
    "duplicate model entry": (lambda env: _write(_models_yaml(env), _models_yaml(env).read_text() + (
        "minilm-l6:\n  display_name: Other\n  family: encoder\n  hub_id: a/b\n")), "duplicate key 'minilm-l6'"),
    "duplicate task field": (lambda env: _write(_task_file(env), _task_file(env).read_text() + "hub_id: other/x\n"),
                             "duplicate key 'hub_id'"),
    "task file is a folder": (lambda env: (_task_file(env).unlink(), _task_file(env).mkdir()),
                              "toy.yaml: Is a directory"),
    "task file is a list": (lambda env: _write(_task_file(env), "- name: toy\n"), "expected a mapping, got list"),
    "task file is empty": (lambda env: _write(_task_file(env), ""), "expected a mapping, got NoneType"),
    "models.yaml is a list": (lambda env: _write(_models_yaml(env), "- ttl-160m\n"), "expected a mapping of model"),
    "smoke not a bool": (lambda env: _write(_models_yaml(env), _models_yaml(env).read_text().replace(
        "smoke: true", "smoke: sometimes")), "field 'smoke' must be bool"),
    "unknown fields of mixed types": (lambda env: _write(_task_file(env), _task_file(env).read_text() + "1: a\nb: 2\n"),
                                      "unknown field '1'"),
    "an alias that is another model's name": (lambda env: _write(_models_yaml(env), _models_yaml(
        env).read_text().replace("aliases: [bertimbau-small]", "aliases: [bertimbau-small, ttl-160m]")),
        "'ttl-160m' names both 'bertimbau-base' and 'ttl-160m'"),
    "a class name twice": (lambda env: _write(_task_file(env), _task_file(env).read_text().replace(
        "names: [NEG, POS]", "names: [NEG, NEG]")), "two class names, each once"),
    "a class id that is a boolean": (lambda env: _write(_task_file(env), _task_file(env).read_text().replace(
        "names: [NEG, POS]", "names: [NEG, POS]\n  map: {0: false, 1: true}")), "must map values to class ids 0..1"),
    "max_length beyond any tokenizer": (lambda env: _write(_task_file(env), _task_file(env).read_text() + (
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


@pytest.mark.parametrize("config, message", [
    ('[]', "config.json is not a transformers config"),
    ('{"architectures": 5}', "config.json is not a transformers config"),
    ('{"architectures": ["Bert', "config.json is not valid JSON"),
], ids=["a list", "architectures not a list", "truncated"])
def test_a_model_folder_with_a_broken_config(config, message, toy_env, tiny_encoder, tmp_path, capsys):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_encoder, folder)
    (folder / "config.json").write_text(config)
    code = _run(toy_env, folder)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


HOSTILE_SWEEP_FILES = {
    "not UTF-8": (b"tasks: [toy]\nmodels: [caf\xe9]\n", "line 2 is not UTF-8 text"),
    "duplicate key": ("tasks: [toy]\nseeds: 3\nseeds: 5\n", "line 3: duplicate key 'seeds'"),
    "a list": ("- toy\n", "expected a mapping of fields"),
    "seeds as text": ("seeds: three\n", "field 'seeds' must be int or list, got str 'three'"),
    "huge seeds": ("seeds: 99999999999\n", "--seeds must be from 1 to 10000"),
    "settings a list": ("settings: [1]\n", "field 'settings' must be dict"),
    "setting of the wrong type": ("settings: {epochs: many}\n", "epochs must be an integer, got 'many'"),
    "a rate YAML reads as text": ("settings: {learning_rate: 4e-5}\n", "write 4.0e-5"),
    "tasks a number": ("tasks: 5\n", "field 'tasks' must be str or list"),
    "slurm a list": ("slurm: [1]\n", "field 'slurm' must be dict"),
    "unknown slurm option": ("slurm: {gpu: 1}\n", "unknown field 'slurm.gpu'"),
    "negative slurm time": ("slurm: {time_min: -5}\n", "--time must be at least 1, got -5"),
    "unknown executor": ("executor: kubernetes\n", "field 'executor' must be one of"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SWEEP_FILES))
def test_hostile_sweep_files(case, toy_env, tiny_encoder, tmp_path, capsys):
    text, message = HOSTILE_SWEEP_FILES[case]
    config = tmp_path / "sweep.yaml"
    _write(config, text)
    code = main(["sweep", "--config", str(config), "--tasks", "toy", "--models", str(tiny_encoder),
                 "--results", str(toy_env["results"]), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("flags, message", [(["--time", "-5"], "--time must be at least 1"),
                                            (["--cpus", "0"], "--cpus must be at least 1"),
                                            (["--gpus", "-1"], "--gpus must be at least 0")])
def test_hostile_slurm_flags(flags, message, toy_env, tiny_encoder, capsys):
    code = main(["sweep", "--tasks", "toy", "--models", str(tiny_encoder), "--results", str(toy_env["results"]),
                 "--executor", "submitit-local", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_record_that_cannot_be_written_is_one_line(toy_env, tiny_encoder, monkeypatch, capsys):
    import harness.record.store

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.record.store, "write_atomic", disk_full)
    code = _run(toy_env, tiny_encoder)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("harness: error: cannot write the record of toy/")
    assert "No space left on device" in err[-1] and not any("Traceback" in ln for ln in err)


def test_a_sweep_of_no_tasks_or_no_models_is_refused(toy_env, tiny_encoder, tmp_path, capsys):
    base = ["sweep", "--results", str(toy_env["results"]), "--dry-run"]
    for argv, message in ((["--tasks", " , ", "--models", str(tiny_encoder)], "--tasks (or the sweep file's 'tasks') "
                                                                                  "names no task"),
                          (["--tasks", "toy", "--models", ","], "names no model")):
        code = main(base + argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    config = tmp_path / "sweep.yaml"
    config.write_text("models: []\n")
    assert main(base + ["--config", str(config), "--tasks", "toy"]) == 2
    assert "names no model" in capsys.readouterr().err


def test_a_plot_that_cannot_be_written_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    from harness.errors import UserError
    from harness.outputs.plot import _pyplot, save_png

    (tmp_path / "a-file").write_text("")
    fig = _pyplot().figure()
    with pytest.raises(UserError, match=r"cannot write the plot to '.*a-file/x.png': .*; pass --output FILE"):
        save_png(fig, tmp_path / "a-file" / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_demo_trains_every_time_it_runs():
    """`harness run` skips a seed whose record exists; the demo's run is there to do real work, so it forces."""
    from harness.cli.demo import DemoSettings

    assert DemoSettings().run_argv()[-1] == "--force"


def test_the_type_check_of_run_settings_takes_optional_and_other_fields():
    """Settings of other types (a tuple, `int | None`), as a later RunConfig may add, pass the type check, and
    an optional one still refuses a wrong type."""
    import dataclasses

    from harness.config import RunConfig
    from harness.errors import UserError

    @dataclasses.dataclass
    class More(RunConfig):
        rank: int | None = None
        targets: tuple = ()

    assert More().rank is None and More(rank=8).rank == 8
    with pytest.raises(UserError, match="bad run setting: rank must be an integer, got 'x'"):
        More(rank="x")
    with pytest.raises(UserError, match="bad run setting: epochs must be an integer, got True"):
        RunConfig(epochs=True)
