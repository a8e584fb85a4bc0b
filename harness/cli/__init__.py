"""The `harness` command line: argument parsing, then calls to the Python API (harness/api/).
May import every other part of the package; nothing imports it but __main__ and the console script."""
from harness.cli.commands import main

__all__ = ["main"]
