"""The argument parser: each default its help states is the one the code uses, and the Python API's too."""
import argparse
import inspect
import re

import pytest

import harness
from harness import results
from harness.aggregate.columns import DEFAULT_SUITE
from harness.api.common import results_folder
from harness.cli.demo import DemoSettings
from harness.cli.parser import build_parser
from harness.config import parse_seeds
from harness.record.protocols import DEFAULT_PROTOCOL
from harness.registry.specs import DEFAULT_GROUP

DEFAULT = re.compile(r"\(default:? \.?/?([\w.-]+)")


def subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def stated(sub, flag: str) -> str | None:
    """The default a flag's help states: the first word after '(default'."""
    action = next(a for a in sub._actions if flag in a.option_strings)
    found = DEFAULT.search(action.help or "")
    return found.group(1) if found else None


def code_defaults(monkeypatch) -> dict:
    """(command, flag) -> what the code does when the flag is not given, found from the code itself."""
    monkeypatch.delenv("HARNESS_RESULTS", raising=False)
    out = {("demo", "--epochs"): str(DemoSettings().epochs), ("demo", "--results"): DemoSettings().results,
           ("run", "--seed"): str(parse_seeds(None, None)[0])}
    for command in ("run", "sweep", "table", "plot", "report", "export", "compare"):
        out[(command, "--results")] = str(results_folder(None))
    for command in ("table", "plot", "export", "compare"):
        out[(command, "--protocol")] = DEFAULT_PROTOCOL
    for command in ("table", "plot", "report"):
        out[(command, "--suite")] = DEFAULT_SUITE
        out[(command, "--group")] = DEFAULT_GROUP
    return out


def test_every_default_a_help_states_is_the_codes(monkeypatch):
    checked = code_defaults(monkeypatch)
    for (command, flag), value in checked.items():
        assert stated(subcommands()[command], flag) == value, (command, flag)
    for command in ("table", "plot", "export", "compare"):  # a parser default is the code's by construction,
        action = next(a for a in subcommands()[command]._actions if "--protocol" in a.option_strings)
        assert action.default == DEFAULT_PROTOCOL  # ... and this one is the API's too (below)


@pytest.mark.parametrize("function", [harness.table, harness.plot, harness.export, harness.compare, results.table])
def test_the_python_api_has_the_commands_defaults(function):
    params = inspect.signature(function).parameters
    assert params["protocol"].default == DEFAULT_PROTOCOL
    for name in ("suite", "group", "metric", "variant"):
        if name in params:
            assert params[name].default is None  # None: the command's default (DEFAULT_SUITE, DEFAULT_GROUP, ...)
    fmt = next((params[n] for n in ("format", "fmt") if n in params), None)
    if fmt is not None and function is not harness.export:
        table = subcommands()["table"]
        assert fmt.default == next(a for a in table._actions if "--format" in a.option_strings).default


def test_results_table_takes_the_axes_of_the_command():
    """harness.results.table(df, ...) is documented as what `harness table` prints: it takes the same axes."""
    params = inspect.signature(results.table).parameters
    table = subcommands()["table"]
    for flag in ("--suite", "--metric", "--normalized", "--group", "--protocol"):
        action = next(a for a in table._actions if flag in a.option_strings)
        assert action.dest in params, flag
