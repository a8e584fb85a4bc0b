"""Issue 24's measurement: the default recipe against the tuned protocol, full fine-tuning and LoRA, real MiniLM-L6 on
real Assin2 (CPU), 3 seeds at each cell's setting, each with its interval, and what each search cost.

    HF_HUB_OFFLINE=1 python benchmarks/tuned.py --mirror /work/shared/data/hub --limit 1500 \\
        --results benchmarks/out/tuned --json benchmarks/out/tuned.json

For each adaptation (full fine-tuning; LoRA r 16): the registered recipe (lr 4e-5) with the final seeds, as
`harness run` does; then `harness tune` with the default grid of that adaptation (full {1e-5, 2e-5, 4e-5, 8e-5};
LoRA {1e-4, 2e-4, 4e-4, 8e-4}), one search seed per candidate (1000), the final seeds at the chosen rate. Every
figure is the task's main metric on test at the epoch picked on validation (the clean protocol; the tuned one reads
the same figures at the chosen rate). It prints the four cells, `harness table --protocol tuned` and the cost table,
and writes the summary as JSON. Runs already done are reused (the harness skips complete records), so an
interrupted measurement, started again, does only what is missing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness  # noqa: E402
import harness.api  # noqa: E402
from harness.aggregate import stats  # noqa: E402
from harness.config import run_config_from  # noqa: E402
from harness.metrics import shown  # noqa: E402
from harness.record.store import read_record, record_path  # noqa: E402
from harness.record.variants import variant_of  # noqa: E402

ADAPTATIONS = {"full": {}, "lora": {"peft": "lora"}}


def cell(results: Path, task, model: str, variant: str, seeds: list[int], main: str) -> dict:
    """Mean ± 95% half-width (n) of the clean protocol's test score over these seeds' records."""
    values = [shown(main, read_record(record_path(results, task, model, variant, s)).protocols["clean"].main_score)
              for s in seeds]
    mean, half, n = stats.mean_ci(values)
    return {"variant": variant, "seeds": seeds, "values": values, "mean": mean, "half": half, "n": n}


def measure(args, name: str, settings: dict, main: str) -> dict:
    common = dict(limit=args.limit, results=args.results, mirror=args.mirror, **settings)
    if args.epochs:
        common["epochs"] = args.epochs
    seeds = list(range(42, 42 + args.seeds))
    t0 = time.perf_counter()
    harness.run(args.task, args.model, seeds=seeds, **common)
    default_s = time.perf_counter() - t0
    grid = {"full": args.full_grid, "lora": args.lora_grid}[name]
    t0 = time.perf_counter()
    result = harness.tune(args.task, args.model, seeds=seeds, grid=[f"lr={grid}"] if grid else None, **common)
    tune_s = time.perf_counter() - t0
    search = result.search
    base = variant_of(run_config_from({k: common.get(k) for k in ("epochs", "peft")}), args.limit)
    out = {"adaptation": name, "default": cell(Path(args.results), args.task, search.model, base, seeds, main),
           "default_wall_s": default_s, "tune_wall_s": tune_s,
           "candidates": [{"learning_rate": c.settings["learning_rate"], "state": c.state, "validation": c.mean}
                          for c in search.candidates],
           "search_cost": {"runs": search.cost.runs, "train_s": search.cost.train_s, "eval_s": search.cost.eval_s,
                           "energy_kwh": search.cost.energy_kwh}}
    if search.choice is not None:
        out["chosen_lr"] = search.choice.settings["learning_rate"]
        out["tuned"] = cell(Path(args.results), args.task, search.model, search.choice.variant, seeds, main)
    return out


def fmt(c: dict | None) -> str:
    if c is None:
        return "–"
    return f"{c['mean']:.2f}" + (f" ± {c['half']:.2f}" if c["half"] is not None else "") + f" (n={c['n']})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mirror", required=True)
    p.add_argument("--results", default="benchmarks/out/tuned")
    p.add_argument("--task", default="assin2")
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--limit", type=int, default=1500, help="examples per split (sized in benchmarks/README.md)")
    p.add_argument("--epochs", type=int, help="(default: the recipe's 3)")
    p.add_argument("--seeds", type=int, default=3, help="final seeds per cell (42, 43, ...)")
    p.add_argument("--full-grid", default="", help="learning rates for full fine-tuning (default: the harness's)")
    p.add_argument("--lora-grid", default="", help="learning rates for LoRA (default: the harness's)")
    p.add_argument("--only", choices=list(ADAPTATIONS), help="one adaptation only")
    p.add_argument("--json", help="write the summary here")
    args = p.parse_args()
    from harness.registry.load import load_tasks

    main_metric = load_tasks()[args.task].main
    rows = [measure(args, name, settings, main_metric) for name, settings in ADAPTATIONS.items()
            if args.only in (None, name)]
    print(f"\n{args.model} on {args.task}, --limit {args.limit}, {args.seeds} seeds per cell; test {main_metric} "
          f"(%), epoch picked on validation; the rate tuned on validation only\n")
    print("| adaptation | default recipe (lr 4e-5) | tuned | chosen lr | search: runs, train + eval s, kWh |")
    print("|---|---|---|---|---|")
    for r in rows:
        c = r["search_cost"]
        energy = f"{c['energy_kwh']:.3g}" if c["energy_kwh"] is not None else "–"
        print(f"| {r['adaptation']} | {fmt(r['default'])} | {fmt(r.get('tuned'))} | {r.get('chosen_lr', '–')} | "
              f"{c['runs']}, {c['train_s'] + c['eval_s']:.0f} s, {energy} |")
    print()
    print(harness.table(args.results, protocol="tuned", suite="all", group="all"))
    print(harness.api.cost_table(args.results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
