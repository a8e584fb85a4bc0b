"""harness demo: real work in the first minutes, anywhere, with no network.

It fine-tunes MiniLM-L6 (the `minilm` extra: a real pretrained model shipped on PyPI) on the ASSIN PT-BR
entailment data shipped inside the package (harness/embedded/), then prints the table and writes the
plot, through the same `harness run`, `harness table` and `harness plot` a user runs next. The run is the
registered recipe on the full data with 2 epochs instead of 3, about two and a half minutes on two idle
CPU cores (benchmarks/README.md). Its records go to their own results folder (./results-demo) under
their own variant, so a demo record never mixes with real ones.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import embedded

TASK = "assin-ptbr-rte"
MODEL = "minilm-l6"
RESULTS = "results-demo"


@dataclass(frozen=True)
class DemoSettings:
    epochs: int = 2  # the recipe's 3 minus one: a few minutes on two CPU cores
    limit: int | None = None  # examples per split (class-stratified); None = the full data
    results: str = RESULTS

    def run_argv(self) -> list[str]:
        """The `harness run` command the demo is: the embedded folder is its mirror, so no network is used."""
        limit = ["--limit", str(self.limit)] if self.limit is not None else []
        return ["run", "--task", TASK, "--model", MODEL, "--mirror", str(embedded.ROOT), "--epochs", str(self.epochs),
                *limit, "--results", self.results, "--force"]  # a demo trains every time it is run

    def variant(self) -> str:
        from harness.config import RunConfig
        from harness.record.variants import variant_of

        return variant_of(RunConfig(epochs=self.epochs), self.limit)


def banner(s: DemoSettings) -> str:
    data = (f"{s.limit} examples per split" if s.limit is not None
            else "all of it (2,500 train / 500 validation / 2,000 test pairs)")
    return (f"harness demo: fine-tuning MiniLM-L6 (English, 22M parameters) on ASSIN PT-BR entailment (3 classes), "
            f"from the copy shipped in the package: {data}, the registered recipe with {s.epochs} "
            f"epoch{'s' if s.epochs != 1 else ''}. A demonstration of the pipeline, a few minutes on two CPU cores, "
            f"not a benchmark result; records go to {s.results}/.")


def summary(record, class_names: tuple[str, ...]) -> str:
    """One line that puts the demo's scores beside those of always answering the most frequent class
    on the same test examples: what a model that learned nothing scores."""
    import numpy as np

    from harness.metrics import macro_f1
    from harness.record.predictions import decode_ids
    from harness.record.protocols import DEFAULT_PROTOCOL

    gold = decode_ids(record.test_labels)
    top = int(np.bincount(gold).argmax())
    always = np.full_like(gold, top)
    clean = record.protocols[DEFAULT_PROTOCOL]  # the table's protocol: the epoch picked on validation
    # The task's main metric first (macro-F1 for ASSIN's three unbalanced classes): the one the table shows.
    ours = {"macro_f1": f"macro-F1 {clean.test['macro_f1']:.3f}",
            "accuracy": f"accuracy {100 * clean.test['accuracy']:.2f}%"}
    base = {"macro_f1": f"macro-F1 {macro_f1(always, gold):.3f}",
            "accuracy": f"accuracy {100 * np.mean(always == gold):.2f}%"}
    order = sorted(ours, key=lambda m: m != clean.main)
    return (f"demo result: test {', '.join(ours[m] for m in order)} (epoch picked on validation by {clean.main}); "
            f"always answering {class_names[top]} scores {', '.join(base[m] for m in order)} on the same test "
            f"examples. The full recipe: "
            f"harness run --task {TASK} --model <model>")


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
    from harness.registry.load import load_tasks

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
    print(summary(record, load_tasks()[TASK].label.names))
    return code

