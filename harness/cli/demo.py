"""harness demo: real work in the first minutes, anywhere, with no network.

It fine-tunes MiniLM-L6 (the `minilm` extra: a real pretrained model shipped on PyPI) on the ASSIN PT-BR sentence
similarity data shipped inside the package (harness/embedded/: how related two news sentences are, from 1 to 5),
then prints the table and writes the plot, through the same `harness run`, `harness table` and `harness plot` a
user runs next, and ends with those next commands and a verdict: whether the model beat the trivial baseline
(what a predictor that never reads the text scores on the same test pairs), and by how much. The recipe is the
registered one with the changes DemoSettings names (fewer epochs, a higher learning rate: a few minutes on two
CPU cores; benchmarks/README.md has the measured time and margin). Its records go to their own results folder
(./results-demo) under their own variant, so a demo record never mixes with real ones.
"""
from __future__ import annotations

import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.api.common import DEMO_RESULTS

TASK = "assin-ptbr-sts"
MODEL = "minilm-l6"
DATA = "package:harness/embedded"  # the data shipped in the package, as --mirror and records name it
# Beating the baseline "clearly": this share of the way from the baseline to a perfect score, at least. Less is
# no result, whatever the digits say.
CLEAR = 0.10


@dataclass(frozen=True)
class DemoSettings:
    # The registered recipe has 3 epochs at 4e-5; 2 epochs at 1e-4 learn as much in two thirds of the time
    # (benchmarks/README.md, "The demo").
    epochs: int = 2
    learning_rate: float = 1e-4
    limit: int | None = None  # examples per split (stratified by label decile); None = the full data
    results: str = DEMO_RESULTS

    def run_argv(self) -> list[str]:
        """The `harness run` command the demo is: the embedded folder is its mirror, so no network is used."""
        limit = ["--limit", str(self.limit)] if self.limit is not None else []
        return ["run", "--task", TASK, "--model", MODEL, "--mirror", DATA, "--epochs", str(self.epochs),
                "--learning-rate", _rate(self.learning_rate), *limit, "--results", self.results,
                "--force"]  # a demo trains every time it is run

    def variant(self) -> str:
        from harness.config import RunConfig
        from harness.record.variants import variant_of

        return variant_of(RunConfig(epochs=self.epochs, learning_rate=self.learning_rate), self.limit)

    def next_commands(self) -> list[str]:
        """What to run next, exactly as printed (each works on the demo's records as it stands)."""
        folder = shlex.quote(self.results)  # the suite named: the default (ttl) has no demo task
        return [f"harness {command} --results {folder} --suite assin" for command in ("table", "plot", "report")]


def _rate(value: float) -> str:
    """1e-4, not 0.0001 nor 1e-04: as the README and the recipe write learning rates."""
    return f"{value:.0e}".replace("e-0", "e-")


def banner(s: DemoSettings) -> str:
    from harness.config import RunConfig

    data = (f"{s.limit} pairs per split" if s.limit is not None
            else "all of it (2,500 train / 500 validation / 2,000 test pairs)")
    return (f"harness demo: fine-tuning MiniLM-L6 (English, 22M parameters) on ASSIN PT-BR sentence similarity "
            f"(how related two sentences are, from 1 to 5; scored by Pearson's r), from the copy shipped in the "
            f"package: {data}, {s.epochs} epoch{'s' if s.epochs != 1 else ''} at learning rate "
            f"{_rate(s.learning_rate)} (the registered recipe: {RunConfig().epochs} at "
            f"{_rate(RunConfig().learning_rate)}). A few minutes on two CPU cores: every progress line ends with the "
            f"ETA of the whole run, which is nearly all of the demo. A demonstration of the pipeline, not a "
            f"benchmark result; records go to {s.results}/.")


def verdict(record) -> tuple[bool, str]:
    """(clearly above the trivial baseline, one line saying so with the numbers): the task's main metric on test,
    under the protocol the table shows (the epoch picked on validation), against what a predictor that never
    reads the text scores on the same test examples (metrics.trivial_baseline)."""
    from harness import metrics
    from harness.record.predictions import decode_predictions
    from harness.record.protocols import DEFAULT_PROTOCOL

    result = record.protocols[DEFAULT_PROTOCOL]
    metric = metrics.METRICS[result.main]
    gold = decode_predictions(record.test_labels, record.task.type)
    classes = len(((record.task.definition or {}).get("label") or {}).get("names") or []) or None
    base = metrics.trivial_baseline(result.main, gold, classes)
    ours = result.test[result.main]
    gained = metrics.normalized(ours, base, metric.best)  # 0 at the baseline, 1 at a perfect score
    shown, shown_base = metrics.shown(result.main, ours), metrics.shown(result.main, base)
    diff = shown - shown_base
    ratio = f", {ours / base:.2f}x the baseline" if metric.higher_is_better and base > 0 else ""
    numbers = (f"test {metric.display} {shown:.2f} against {shown_base:.2f} for a predictor that never reads the "
               f"text ({diff:+.2f}{' points' if metric.percent else ''}{ratio})")
    who = record.model.display_name
    if not math.isnan(gained) and gained >= CLEAR:
        return True, f"{who} beat the trivial baseline: {numbers}."
    if not math.isnan(gained) and gained > 0:
        return False, (f"{who} did NOT beat the trivial baseline clearly: {numbers}. That is no result: train "
                       f"longer (--epochs {record.hyperparameters.get('epochs', 2) + 1}).")
    return False, (f"{who} did NOT beat the trivial baseline: {numbers}. It learned nothing: that is no result; "
                   f"train longer (--epochs {record.hyperparameters.get('epochs', 2) + 1}).")


def summary(record) -> str:
    """Every test metric of the record beside its trivial baseline, on the same test examples: scores, not yet a
    result (the verdict, the last line, says whether they are one)."""
    from harness import metrics
    from harness.aggregate.frame import trivial_baselines
    from harness.record.predictions import decode_predictions
    from harness.record.protocols import DEFAULT_PROTOCOL

    result = record.protocols[DEFAULT_PROTOCOL]
    base = trivial_baselines(record, decode_predictions(record.test_labels, record.task.type))
    order = sorted(result.test, key=lambda m: m != result.main)  # the main metric first, as the table

    def text(m, value):
        return f"{metrics.METRICS[m].display} {metrics.shown(m, value):.2f}"

    return (f"demo scores (test, epoch picked on validation by {metrics.METRICS[result.main].display}): "
            f"{', '.join(text(m, result.test[m]) for m in order)}; a predictor that never reads the text: "
            f"{', '.join(text(m, base[m]) for m in order if m in base)}.")


def run(settings: DemoSettings, main) -> int:
    """`main` is the CLI entry point: the demo is the user's own commands, run in order."""
    # Nothing the demo uses comes from the hub: say so to the libraries before they are imported, so not
    # even a metadata request leaves the machine.
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    print(banner(settings), file=sys.stderr, flush=True)
    code = main(settings.run_argv())
    if code != 0:
        return code
    from harness.record.store import read_record, record_path

    variant = settings.variant()
    # Its task is in the assin suite, not the default ttl one (the published table's five tasks).
    code = main(["table", "--results", settings.results, "--variant", variant, "--suite", "assin"])
    if code != 0:
        return code
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("harness demo: no plot: matplotlib is missing (pip install 'poeta-harness[plot]')", file=sys.stderr)
    else:
        code = main(["plot", "--results", settings.results, "--variant", variant, "--suite", "assin"])
    record = read_record(record_path(Path(settings.results), TASK, MODEL, variant, 42))
    print(summary(record))
    print("next: " + "\n      ".join(settings.next_commands()))
    beat, line = verdict(record)
    print(line)
    return code
