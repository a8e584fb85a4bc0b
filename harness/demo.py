"""harness demo: real work in the first minutes, anywhere, with no network.

It fine-tunes MiniLM-L6 (the `minilm` extra: a real pretrained model shipped on PyPI) on the ASSIN PT-BR
entailment data shipped inside the package (harness/embedded/), then prints the table and writes the
plot, through the same `harness run`, `harness table` and `harness plot` a user runs next. To take a few
minutes on two CPU cores it trains on a class-stratified subset for fewer epochs with a larger learning
rate; that makes it a demonstration of the pipeline, not a benchmark number. The subset and settings
make their own variant, in their own results folder (./results-demo), so a demo record never mixes with
real ones.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import embedded

TASK = "assin-ptbr-rte"
MODEL = "minilm-l6"
RESULTS = "results-demo"


@dataclass(frozen=True)
class DemoSettings:
    limit: int = 800  # examples per split (train 800, validation 500, test 800), class-stratified
    epochs: int = 2
    learning_rate: float = 1e-4  # higher than the recipe's 4e-5: few steps to learn in
    batch_size: int = 8
    warmup_ratio: float = 0.1
    results: str = RESULTS

    def run_argv(self) -> list[str]:
        """The `harness run` command the demo is: the embedded folder is its mirror, so no network is used."""
        return ["run", "--task", TASK, "--model", MODEL, "--mirror", str(embedded.ROOT),
                "--limit", str(self.limit), "--epochs", str(self.epochs),
                "--learning-rate", str(self.learning_rate), "--batch-size", str(self.batch_size),
                "--warmup-ratio", str(self.warmup_ratio), "--results", self.results]


def banner(s: DemoSettings) -> str:
    return (f"harness demo: fine-tuning MiniLM-L6 (English, 22M parameters) on ASSIN PT-BR entailment "
            f"(3 classes), from the copy shipped in the package: {s.limit} examples per split, {s.epochs} "
            f"epoch{'s' if s.epochs != 1 else ''}, learning rate {s.learning_rate:g}, batch {s.batch_size}. A demonstration of the pipeline "
            f"on two CPU cores in a few minutes, not a benchmark result; records go to {s.results}/.")


def summary(record, class_names: tuple[str, ...]) -> str:
    """One line that puts the demo's scores beside those of always answering the most frequent class
    on the same test subset: what a model that learned nothing scores."""
    import numpy as np

    from .scores import decode_ids, macro_f1

    gold = decode_ids(record.test_labels)
    top = int(np.bincount(gold).argmax())
    always = np.full_like(gold, top)
    pub = record.protocols["published"]
    return (f"demo result: test accuracy {100 * pub.test_accuracy:.2f}%, macro-F1 {pub.test_macro_f1:.3f} (best "
            f"epoch on test); always answering {class_names[top]} scores {100 * np.mean(always == gold):.2f}%, "
            f"macro-F1 {macro_f1(always, gold, len(class_names)):.3f} on this test subset. Next: harness run "
            f"--task {TASK} --model <model> trains on the full data.")


def run(settings: DemoSettings, main) -> int:
    """`main` is the CLI entry point: the demo is the user's own commands, run in order."""
    print(banner(settings), file=sys.stderr, flush=True)
    code = main(settings.run_argv())
    if code != 0:
        return code
    from .record import read_record, record_path, variant_name
    from .registry import load_tasks

    variant = variant_name(_overrides(settings), settings.limit)
    code = main(["table", "--results", settings.results, "--variant", variant])
    if code != 0:
        return code
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("harness demo: no plot: matplotlib is missing (pip install 'poeta-harness[plot]')", file=sys.stderr)
    else:
        code = main(["plot", "--results", settings.results, "--variant", variant])
    record = read_record(record_path(Path(settings.results), TASK, MODEL, variant, 42))
    print(summary(record, load_tasks()[TASK].label.names))
    return code


def _overrides(s: DemoSettings) -> dict:
    from .config import RunConfig

    return RunConfig(learning_rate=s.learning_rate, epochs=s.epochs, batch_size=s.batch_size,
                     warmup_ratio=s.warmup_ratio).recipe_overrides()
