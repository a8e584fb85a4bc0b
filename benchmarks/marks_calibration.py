"""How often the table marks a bold where there is nothing to mark: simulated columns of equally good models
through the table's own code (harness/aggregate/table.py, marks.py), at scale.

Each column holds models from one fine-tuning procedure, right on different test examples (rho 0.7: other
architectures of the same accuracy; tests/simulated.py is the model), so any bold is a false positive. Printed
per setting: the share of columns with a bold when the records hold their test predictions (the marks use
`harness compare`'s seed-aware test) and when they do not (Welch's t-test on the per-seed values), and for the
Average column of tables whose rows ran unequal seed sets. A calibrated rule gives about 5% with two models
and less with more (bold must beat every other cell).

    python benchmarks/marks_calibration.py                 # about 3 minutes on 2 CPU cores
    python benchmarks/marks_calibration.py --columns 200   # a quick look
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import simulated as sim  # noqa: E402  (the simulated runs of the test suite, at scale)

from harness.aggregate.table import SeedScore  # noqa: E402


def column_rate(models: int, seeds: int, examples: int, columns: int, predictions: bool, seed: int) -> float:
    rng = np.random.default_rng(seed)
    bold = sum(sim.has_bold(sim.table(sim.seed_scores(sim.correctness(rng, models, seeds, examples, rho=0.7),
                                                       predictions=predictions)))
               for _ in range(columns))
    return bold / columns


def average_rate(tables: int, examples: int, predictions: bool, seed: int) -> float:
    """Two equal models on three tasks; X ran 3, 3, 5 seeds, Y 5, 5, 3: the Average column's bold share."""
    rng = np.random.default_rng(seed)
    tasks, bold = ("a", "b", "c"), 0
    for _ in range(tables):
        scores = []
        for task, counts in zip(tasks, ([3, 5], [3, 5], [5, 3]), strict=True):
            runs = sim.correctness(rng, 2, counts, examples, rho=0.7)
            scores += [SeedScore(**{**s.__dict__, "task": task}) for s in sim.seed_scores(runs, task, predictions)]
        bold += sim.has_bold(sim.table(scores, tasks), "average")
    return bold / tables


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", type=int, default=1000, help="simulated columns (tables) per setting")
    ap.add_argument("--examples", type=int, default=500, help="test examples per task")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    se = 100 * (0.05 * 0.95 / args.columns) ** 0.5
    print(f"{args.columns} columns per setting, {args.examples} test examples, equal models (rho 0.7); a true 5% "
          f"reads 5.0 ± {2 * se:.1f} (2 SE)")
    print(f"{'setting':<44} {'seed-aware %':>12} {'Welch %':>8} {'seconds':>8}")
    rows = []
    for models in (2, 4):
        for seeds in (3, 5):
            t0 = time.perf_counter()
            aware = column_rate(models, seeds, args.examples, args.columns, True, 10 * models + seeds)
            welch = column_rate(models, seeds, args.examples, args.columns, False, 10 * models + seeds)
            rows.append({"setting": f"{models} models x {seeds} seeds, one column", "seed_aware": aware,
                         "welch": welch, "seconds": time.perf_counter() - t0})
    t0 = time.perf_counter()
    rows.append({"setting": "Average of 3 tasks, seeds X 3/3/5, Y 5/5/3",
                 "seed_aware": average_rate(args.columns, args.examples, True, 99),
                 "welch": average_rate(args.columns, args.examples, False, 99), "seconds": time.perf_counter() - t0})
    for r in rows:
        print(f"{r['setting']:<44} {100 * r['seed_aware']:12.1f} {100 * r['welch']:8.1f} {r['seconds']:8.0f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
