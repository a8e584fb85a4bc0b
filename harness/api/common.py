"""What every API function shares: where results live, and how notices reach the user."""
from __future__ import annotations

import os
import sys
from pathlib import Path

RESULTS_ENV = "HARNESS_RESULTS"
DEMO_RESULTS = "results-demo"  # where `harness demo` writes, apart from real results


def results_folder(results: str | Path | None = None) -> Path:
    """The results folder: as given, else $HARNESS_RESULTS, else ./results."""
    return Path(results or os.environ.get(RESULTS_ENV) or "results")


def say(message: str) -> None:
    """A notice or progress line: stderr, as on the command line (stdout holds what a command prints)."""
    print(message, file=sys.stderr, flush=True)
