"""Issue 13's measurement: real MiniLM-L6 on assin2-sts, assin-ptbr-rte and assin-ptbr-sts (full real data, the
registered recipe: 3 epochs, seed 42), beside the trivial baseline of every metric on the same test labels.

    python benchmarks/assin_tasks.py --results DIR --mirror /work/shared/data/hub      # print the figures

It reads the records `harness run` wrote (the commands are in benchmarks/README.md) and prints, per task, each
metric of both protocols, the baseline (metrics.trivial_baseline: what a predictor that never reads the text
scores) and the run's wall time. With --baselines-only it prints the baselines from the data alone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import metrics  # noqa: E402
from harness.data.splits import load_raw  # noqa: E402
from harness.record.store import read_record, record_path  # noqa: E402
from harness.registry.load import load_tasks  # noqa: E402

TASKS = ("assin2-sts", "assin-ptbr-rte", "assin-ptbr-sts")
MODEL = "minilm-l6"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--results", default="results")
    p.add_argument("--mirror", required=True)
    p.add_argument("--baselines-only", action="store_true")
    args = p.parse_args()
    tasks = load_tasks()
    for name in TASKS:
        task = tasks[name]
        gold = load_raw(task, args.mirror)[0]["test"].labels
        k = task.label.num_classes or None
        base = {m: metrics.trivial_baseline(m, gold, k) for m in task.metrics}
        path = record_path(Path(args.results), name, MODEL, "default", 42)
        print(f"{name} (main {task.main}; {len(gold)} test examples)")
        record = None if args.baselines_only or not path.is_file() else read_record(path)
        if record is None:
            print("  no record" + ("" if args.baselines_only else f" at {path}"))
        for m in task.metrics:
            ours = "" if record is None else "  ".join(
                f"{p} {metrics.shown(m, r.test[m]):7.2f} (epoch {r.epoch})"
                for p, r in record.protocols.items() if r is not None)
            print(f"  {m:<12} baseline {metrics.shown(m, base[m]):7.2f}  {ours}")
        if record is not None:
            print(f"  wall {record.timings.total_s:.0f} s (train {record.timings.train_s:.0f} s), {record.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
