"""harness tune's input (api/tuning.py, grid/search_space.py): every mistake one line, exit 2, nothing written;
the grid as parsed; the worker command it hands to other processes."""
import sys

import pytest

from harness.api import tuning
from harness.cli.commands import main
from harness.cli.parser import build_parser
from harness.config import RunConfig
from harness.errors import UserError
from harness.grid.search_space import parse_grid

NOVAL_TASK = """name: toynoval
display_name: ToyNoVal
hub_id: tester/toy
splits: {train: train, test: test}
text:
  decoder: "{hypothesis}"
  encoder: "{hypothesis}"
label:
  column: label
  names: [NEG, POS]
"""

BAD = {
    "empty grid": (["--grid", "lr="], "--grid learning_rate= names no value"),
    "no equals sign": (["--grid", "foo"], "--grid takes FIELD=V1,V2,..."),
    "unknown field": (["--grid", "foo=1,2"], "--grid: unknown field 'foo'"),
    "a speed knob": (["--grid", "eval_batch_size=8,16"], "--grid: unknown field 'eval_batch_size'"),
    "not a number": (["--grid", "lr=1e-5,fast"], "--grid learning_rate: 'fast' is not a number"),
    "not an integer": (["--grid", "epochs=2,2.5"], "--grid epochs: '2.5' is not an integer"),
    "out of range": (["--grid", "lr=1e-5,-1"], "--grid point learning_rate=-1: bad run setting: learning_rate "
                                                "must be > 0"),
    "out of range, int": (["--grid", "epochs=0,2"], "bad run setting: epochs must be >= 1"),
    "a field twice": (["--grid", "lr=1e-5", "--grid", "learning-rate=2e-5"], "--grid names learning_rate twice"),
    "searched and fixed": (["--grid", "lr=1e-5", "--learning-rate", "2e-5"], "--grid learning_rate and "
                                                                            "--learning-rate both set"),
    "no search seeds": (["--search-seeds", "0"], "--search-seeds must be from 1 to 10000, got 0"),
    "tpe without trials": (["--sampler", "tpe"], "give --trials K"),
    "trials on the grid": (["--trials", "3"], "--trials is for --sampler tpe"),
    "final seed a search seed": (["--seed", "42,1000"], "final seeds 1000 are search seeds too"),
    "published only": (["--protocols", "published"], "--protocols published: the tuned protocol"),
    "no workers": (["--jobs", "0"], "--jobs must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_search_input_is_one_line_and_writes_nothing(case, toy_env, tiny_encoder, capsys):
    flags, message = BAD[case]
    code = main(["tune", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


def test_a_task_without_validation_is_refused_with_how_to_carve_one(toy_env, tiny_encoder, capsys):
    (toy_env["registry"] / "tasks" / "toynoval.yaml").write_text(NOVAL_TASK, encoding="utf-8")
    code = main(["tune", "--task", "toynoval", "--model", str(tiny_encoder), "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not toy_env["results"].exists()
    assert "no validation split" in err and "choosing on test is the published protocol's bias" in err
    assert "validation_from_train" in err
    # a carved validation split is one: toybool carves its own
    request = tuning.resolve("toybool", str(tiny_encoder), results=toy_env["results"])
    assert request.spec.grid == {"learning_rate": [1e-5, 2e-5, 4e-5, 8e-5]}


def test_without_optuna_one_line_names_the_extra(toy_env, tiny_encoder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna fails
    code = main(["tune", "--task", "toy", "--model", str(tiny_encoder), "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "harness: error: harness tune needs Optuna: pip install 'poeta-harness[tune]'"
    assert not toy_env["results"].exists()


def test_no_optuna_is_imported_where_no_search_is_asked_for():
    import subprocess

    code = ("import sys, harness, harness.api, harness.cli.commands, harness.grid.plan, harness.grid.search, "
            "harness.grid.search_worker, harness.api.tuning; assert 'optuna' not in sys.modules, 'optuna imported'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_default_grids_follow_the_adaptation_and_lr_is_short_for_learning_rate():
    none = {f: None for f in RunConfig.__dataclass_fields__}
    assert parse_grid(None, RunConfig(), none) == {"learning_rate": [1e-5, 2e-5, 4e-5, 8e-5]}
    lora = RunConfig(peft="lora")
    assert parse_grid(None, lora, {**none, "peft": "lora"}) == {"learning_rate": [1e-4, 2e-4, 4e-4, 8e-4]}
    assert parse_grid(["lr=1e-5,3e-5,1e-5", "batch-size=8,16"], RunConfig(), none) == {
        "learning_rate": [1e-5, 3e-5], "batch_size": [8, 16]}
    assert parse_grid({"lr": [1e-5, 3]}, RunConfig(), none) == {"learning_rate": [1e-5, 3.0]}  # the Python API
    with pytest.raises(UserError, match="names no value"):
        parse_grid({"lr": []}, RunConfig(), none)


def test_the_worker_command_parses_back_to_the_same_search(toy_env, tiny_encoder):
    request = tuning.resolve("toy", str(tiny_encoder), grid=["lr=1e-5,3e-5", "epochs=1,2"], search_seeds=2,
                             seeds=[7, 8], sampler="tpe", trials=3, prune=True, limit=16, batch_size=8,
                             results=toy_env["results"], mirror=str(toy_env["mirror"]))
    args = build_parser().parse_args(tuning.tune_argv(request))
    assert (args.command, args.task, args.seed, args.search_seeds, args.sampler, args.trials, args.prune) == (
        "tune", "toy", "7,8", 2, "tpe", 3, True)
    assert (args.limit, args.batch_size, args.results, args.mirror) == (16, 8, str(toy_env["results"]),
                                                                        str(toy_env["mirror"]))
    again = tuning.resolve(args.task, args.model, grid=args.grid, search_seeds=args.search_seeds, seeds=[7, 8],
                           sampler=args.sampler, trials=args.trials, prune=args.prune, limit=args.limit,
                           batch_size=args.batch_size, results=args.results, mirror=args.mirror)
    assert again.spec.study_name == request.spec.study_name and again.spec.grid == request.spec.grid


def test_the_study_minimizes_a_lower_is_better_main_metric(toy_env, tiny_encoder):
    from conftest import TOYREG_TASK

    (toy_env["registry"] / "tasks" / "toymse.yaml").write_text(
        TOYREG_TASK.replace("name: toyreg", "name: toymse").replace("type: regression", "type: regression\nmain: mse"),
        encoding="utf-8")
    assert tuning.resolve("toymse", str(tiny_encoder), results=toy_env["results"]).spec.direction == "minimize"
    assert tuning.resolve("toyreg", str(tiny_encoder), results=toy_env["results"]).spec.direction == "maximize"
