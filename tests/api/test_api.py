"""The Python API (harness.run, harness.table, ...): what the command line does, from Python, with the same
records, the same text and the same one-line errors."""
import subprocess
import sys

import pytest

import harness
from harness.cli.commands import main
from harness.errors import UserError
from harness.record.store import read_record
from harness.registry.load import local_name


def test_run_returns_one_record_per_seed_and_writes_them(toy_env, tiny_encoder, capsys):
    records = harness.run("toy", str(tiny_encoder), seeds=[1, 2], limit=16, epochs=1, mirror=str(toy_env["mirror"]),
                          results=toy_env["results"])
    assert [r.seed for r in records] == [1, 2] and all(r.status == "complete" for r in records)
    name = local_name(tiny_encoder)
    for r in records:
        on_disk = read_record(toy_env["results"] / "toy" / name / "epochs=1_limit16" / f"seed{r.seed}.json")
        assert on_disk.protocols["clean"].test == r.protocols["clean"].test
    # the record says how to do the same from the command line, and that command parses
    argv = records[0].command_line
    assert argv[:2] == ["harness", "run"] and "--epochs" in argv and "1,2" in argv
    from harness.cli.parser import build_parser

    args = build_parser().parse_args(argv[1:])
    assert (args.task, args.epochs, args.limit) == ("toy", 1, 16)
    out = capsys.readouterr().out
    assert out.count(f"toy/{name} seed") == 2  # the headline per seed, as `harness run` prints it


def test_a_seed_with_a_complete_record_is_returned_not_trained(toy_env, tiny_encoder, capsys):
    common = dict(limit=16, epochs=1, mirror=str(toy_env["mirror"]), results=toy_env["results"])
    (first,) = harness.run("toy", str(tiny_encoder), seeds=[3], **common)
    capsys.readouterr()
    (again,) = harness.run("toy", str(tiny_encoder), seeds=[3], **common)
    assert again.created_at == first.created_at and again.protocols == first.protocols
    assert "skipped" in capsys.readouterr().err
    (forced,) = harness.run("toy", str(tiny_encoder), seeds=[3], force=True, **common)
    assert forced.protocols == first.protocols  # trained again: the same seed gives the same numbers


def test_seeds_as_a_count_are_the_cli_seeds(toy_env, tiny_encoder):
    plan = harness.api.plan_run("toy", str(tiny_encoder), seeds=3, limit=16, mirror=str(toy_env["mirror"]),
                                results=toy_env["results"])
    assert plan.seeds == [42, 43, 44] == plan.todo


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rat=1e-5), "unknown run setting 'learning_rat'"),
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(seeds=[-1]), "non-negative integers"),
    (dict(limit=0), "--limit must be a positive number"),
])
def test_bad_arguments_are_one_line_user_errors_before_any_work(toy_env, tiny_encoder, kwargs, message):
    with pytest.raises(UserError, match=message):
        harness.run("toy", str(tiny_encoder), mirror=str(toy_env["mirror"]), results=toy_env["results"], **kwargs)
    assert not toy_env["results"].exists() or not list(toy_env["results"].rglob("*.json"))


def test_table_is_the_text_the_command_prints(toy_env, tiny_encoder, capsys):
    harness.run("toy", str(tiny_encoder), seeds=2, limit=16, epochs=1, mirror=str(toy_env["mirror"]),
                results=toy_env["results"])
    capsys.readouterr()
    for kwargs, flags in [({}, []), (dict(protocol="published", format="csv"), ["--protocol", "published",
                                                                                 "--format", "csv"])]:
        text = harness.table(toy_env["results"], **kwargs)
        assert main(["table", "--results", str(toy_env["results"]), *flags]) == 0
        assert capsys.readouterr().out == text


def test_the_cli_is_parsing_plus_api_calls():
    """Every command's handler reaches the API (a command that grew its own orchestration again fails this)."""
    import inspect

    from harness.cli import commands, show

    for name, handler in commands.COMMANDS.items():
        if name in ("list", "prefetch", "demo"):  # the registry listing, the hub download, the demo script
            continue
        source = inspect.getsource(handler)
        assert "harness.api" in source, name
    assert "harness.api" in inspect.getsource(show)


def test_importing_harness_loads_no_heavy_library():
    code = "import sys, harness; print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
