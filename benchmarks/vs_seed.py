"""The harness against the seed recipe: same model, task, data and seeds, one after the other.

Each side runs in its own subprocess (so peak memory is its own), timed from outside (imports and
start-up included), and the figures are printed side by side and written as JSON.

    HF_HUB_OFFLINE=1 python benchmarks/vs_seed.py --task assin2 --model minilm-l6 \
        --mirror ../shared/data/hub --seeds 1 --json benchmarks/out/vs_seed.json

--ablate adds harness runs with one lever turned back to the seed's setting each, to say which
lever gave how much (`--ablate fp32 fast-dropout` runs only those; the keys are ABLATIONS'). The harness
side runs with --precision auto: bf16 autocast on a CPU that computes bf16 natively (the `prec` column says which ran).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ABLATIONS = {  # key -> (what the row says, the harness flags that put one lever back to the seed recipe's setting)
    "length-grouped": ("random batches (no length grouping)", ["--no-length-grouped"]),
    "eval-batch": ("eval batch 16", ["--eval-batch-size", "16"]),
    "fused-adamw": ("unfused AdamW", ["--no-fused-adamw"]),
    "pooled-last-layer": ("full last layer", ["--no-pooled-last-layer"]),
    "fp32": ("fp32 (no bf16 autocast)", ["--precision", "fp32"]),
    "fast-dropout": ("torch's dropout masks", ["--no-fast-dropout"]),
    "keep-freed-memory": ("glibc's allocator defaults", ["--no-keep-freed-memory"]),
    "used-embedding-rows": ("every embedding row a gradient", ["--no-used-embedding-rows"]),
}


def _run(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall


def run_seed(args, seed: int, env: dict, workdir: Path) -> dict:
    out = workdir / f"seed-{seed}.json"
    cmd = [sys.executable, str(HERE / "seed_recipe.py"), "--task", args.task, "--model", args.model,
           "--epochs", str(args.epochs), "--seed", str(seed), "--json", str(out)]
    cmd += (["--mirror", args.mirror] if args.mirror else []) + (["--limit", str(args.limit)] if args.limit else [])
    wall = _run(cmd, env)
    f = json.loads(out.read_text())
    return {"accuracy_published": 100 * f["best_test_accuracy"], "accuracy_clean": None, "wall_s": wall,
            "train_eval_s": f["train_and_eval_s"], "real_tokens_per_s": f["train_tokens_real"] / f["train_and_eval_s"],
            "padding_efficiency": f["padding_efficiency"], "peak_rss_mb": f["peak_rss_bytes"] / 2**20,
            "precision": "fp32"}  # the Trainer's default


def run_harness(args, seed: int, env: dict, workdir: Path, extra: list[str], tag: str) -> dict:
    results = workdir / f"results-{tag}"
    cmd = [sys.executable, "-m", "harness", "run", "--task", args.task, "--model", args.model,
           "--epochs", str(args.epochs), "--seed", str(seed), "--results", str(results), *extra]
    cmd += (["--mirror", args.mirror] if args.mirror else []) + (["--limit", str(args.limit)] if args.limit else [])
    wall = _run(cmd, env)
    rec = json.loads(next(results.rglob(f"seed{seed}.json")).read_text())
    pub, clean = rec["protocols"]["published"], rec["protocols"]["clean"]
    busy = rec["timings"]["train_s"] + rec["timings"]["eval_s"]
    # Every epoch's test predictions, hashed: two harness versions that agree here trained bit for bit alike.
    predictions = "|".join(e["test_predictions"] for f in rec["fits"] for e in f["epochs"])
    return {"accuracy_published": 100 * _test_accuracy(pub),
            "accuracy_clean": 100 * _test_accuracy(clean) if clean else None, "wall_s": wall,
            "test_predictions_sha256": hashlib.sha256(predictions.encode()).hexdigest(),
            "train_eval_s": busy, "real_tokens_per_s": rec["tokens"]["train_real"] / busy,
            "padding_efficiency": rec["tokens"]["padding_efficiency"],
            "peak_rss_mb": rec["peak_memory"]["bytes"] / 2**20, "tokenization_cache_hit": rec["data_cache"]["hit"],
            "precision": rec.get("precision")}


def _test_accuracy(result: dict) -> float:
    """A protocol result's test accuracy: schema 3 holds a mapping of metrics, schema 2 (the harness before
    issue 13, for A/B runs against an older checkout) a field."""
    return result["test"]["accuracy"] if "test" in result else result["test_accuracy"]


def _fmt(v, spec=".2f"):
    return "–" if v is None else format(v, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="harness vs the seed recipe")
    ap.add_argument("--task", default="assin2")
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--mirror")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="seeds 42, 43, ...")
    ap.add_argument("--ablate", nargs="*", choices=sorted(ABLATIONS), metavar="LEVER",
                    help=f"also run the harness with each lever turned off (all, or those named: "
                         f"{', '.join(ABLATIONS)})")
    ap.add_argument("--harness-only", action="store_true",
                    help="skip the seed recipe (e.g. to compare two harness versions on the same data)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env["HARNESS_CACHE"] = str(workdir / "cache")  # a cold tokenization cache for the first harness run
        for seed in range(42, 42 + args.seeds):
            if not args.harness_only:
                print(f"seed {seed}: seed recipe ...", file=sys.stderr, flush=True)
                rows.append({"seed": seed, "side": "seed recipe", **run_seed(args, seed, env, workdir)})
            print(f"seed {seed}: harness ...", file=sys.stderr, flush=True)
            rows.append({"seed": seed, "side": "harness", **run_harness(args, seed, env, workdir, [], "harness")})
            if args.ablate is not None:
                for key in args.ablate or ABLATIONS:
                    name, flags = ABLATIONS[key]
                    print(f"seed {seed}: harness with {name} ...", file=sys.stderr, flush=True)
                    tag = "abl-" + key
                    rows.append({"seed": seed, "side": f"harness, {name}",
                                 **run_harness(args, seed, env, workdir, flags, tag)})

    seed_walls = {r["seed"]: r["wall_s"] for r in rows if r["side"] == "seed recipe"}
    for r in rows:
        r["wall_ratio_vs_seed"] = r["wall_s"] / seed_walls[r["seed"]] if r["seed"] in seed_walls else None
    header = (f"{'seed':<5} {'side':<44} {'prec':>5} {'acc pub':>8} {'acc clean':>9} {'wall s':>8} {'ratio':>6} "
              f"{'real tok/s':>10} {'pad eff':>7} {'peak MB':>8}  predictions")
    print(f"task {args.task}, model {args.model}, epochs {args.epochs}, limit {args.limit or 'full'}")
    print(header)
    for r in rows:
        print(f"{r['seed']:<5} {r['side']:<44} {r['precision'] or '?':>5} {_fmt(r['accuracy_published']):>8} "
              f"{_fmt(r['accuracy_clean']):>9} "
              f"{r['wall_s']:8.1f} {_fmt(r['wall_ratio_vs_seed']):>6} {r['real_tokens_per_s']:10.0f} "
              f"{r['padding_efficiency']:7.3f} {r['peak_rss_mb']:8.0f}  {r.get('test_predictions_sha256', '')[:12]}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
