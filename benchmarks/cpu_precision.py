"""bf16 autocast on a CPU: is it faster than fp32, where the CPU computes bf16 natively and where it does not, and
is it the same function within the seed spread?

speed: CPU milliseconds per training step of MiniLM-L6's shape (BERT, hidden 384, 6 layers, 12 heads,
intermediate 1536, vocab 30,522; random weights, batches of 16 x 40 tokens), fp32 and bf16 autocast, interleaved
rounds in one process per setting of oneDNN's instruction set: this CPU as it is, then capped with
ONEDNN_MAX_CPU_ISA at AVX512_CORE (AVX-512 without its bf16 instructions) and at AVX2, where oneDNN emulates bf16
matrix multiplies with fp32 arithmetic. The caps stand for CPUs without native bf16; they leave torch's other
kernels as they are, so a real such CPU may differ somewhat.

    python benchmarks/cpu_precision.py speed --threads 1          # ~3 min (emulated bf16 is slow)
    python benchmarks/cpu_precision.py speed --tiny --steps 2      # smoke (CI)

accuracy: `harness run --seeds N` of one model on one task in fp32 and in bf16 autocast (each into its own results
folder, timed from outside), then each folder's table (both protocols, mean ± 95% interval over the seeds) and,
per protocol, the seed-aware comparison `harness compare` makes (A = fp32, B = bf16), which `harness compare`
itself does not make across precisions (it pairs records of the same precision).

    HF_HUB_OFFLINE=1 python benchmarks/cpu_precision.py accuracy --task assin2 --model minilm-l6 \\
        --mirror ../shared/data/hub --seeds 3 --results benchmarks/out/precision --json benchmarks/out/precision.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ISA_CAPS = {"this CPU": None, "oneDNN capped at AVX512_CORE (no bf16)": "AVX512_CORE",
            "oneDNN capped at AVX2 (no bf16)": "AVX2"}
PRECISIONS = ("fp32", "bf16")


# ------------------------------------------------------------------ speed

def step_times(steps: int, rounds: int, tiny: bool, threads: int) -> dict:
    """Runs in its own process (oneDNN reads its cap once): median CPU ms per step, per precision."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from harness.config import RunConfig
    from harness.finetune.fit import build_optimizer
    from harness.finetune.precision import autocast

    if threads:
        torch.set_num_threads(threads)
    shape = (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=512)
             if tiny else dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=12,
                               vocab_size=30522))
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**shape, num_labels=3))
    model.train()
    optimizer = build_optimizer(model, RunConfig())
    batch = {"input_ids": torch.randint(1, shape["vocab_size"], (16, 40)),
             "attention_mask": torch.ones(16, 40, dtype=torch.int64)}
    labels = torch.randint(0, 3, (16,))
    device = torch.device("cpu")

    def step(cfg):
        optimizer.zero_grad(set_to_none=True)
        with autocast(cfg, device):
            logits = model(**batch).logits.float()
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimizer.step()

    configs = {p: RunConfig(precision=p) for p in PRECISIONS}
    times = {p: [] for p in PRECISIONS}
    for r in range(rounds + 1):  # round 0 warms up
        for p, cfg in configs.items():
            t0 = time.process_time()
            for _ in range(steps):
                step(cfg)
            if r:
                times[p].append((time.process_time() - t0) / steps * 1e3)
    return {"ms_per_step": {p: statistics.median(t) for p, t in times.items()}, "threads": torch.get_num_threads(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def speed(args) -> dict:
    rows = []
    for name, cap in ISA_CAPS.items():
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        if cap:
            env["ONEDNN_MAX_CPU_ISA"] = cap
        cmd = [sys.executable, __file__, "speed", "--one", "--steps", str(args.steps), "--rounds", str(args.rounds),
               "--threads", str(args.threads), *(["--tiny"] if args.tiny else [])]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        rows.append({"setting": name, **json.loads(out.stdout.strip().splitlines()[-1])})
    import torch

    from harness.finetune.precision import cpu_bf16_instructions

    found = cpu_bf16_instructions()
    lines = [f"model: {'tiny BERT' if args.tiny else 'MiniLM-L6 shape (random weights)'}, batch 16 x 40 tokens, "
             f"{args.steps} steps x {args.rounds} rounds, torch {torch.__version__}, threads {rows[0]['threads']}; "
             f"native bf16 here (torch.cpu): {', '.join(found) if found else 'none'}", "",
             "| oneDNN | fp32 ms/step | bf16 ms/step | bf16 / fp32 |", "|---|---|---|---|"]
    for r in rows:
        ms = r["ms_per_step"]
        lines.append(f"| {r['setting']} | {ms['fp32']:.1f} | {ms['bf16']:.1f} | {ms['bf16'] / ms['fp32']:.2f} |")
    print("\n".join(lines))
    return {"rows": rows}


# ------------------------------------------------------------------ accuracy

def run_side(args, precision: str, results: Path) -> dict:
    cmd = [sys.executable, "-m", "harness", "run", "--task", args.task, "--model", args.model, "--seeds",
           str(args.seeds), "--precision", precision, "--results", str(results), "--epochs", str(args.epochs)]
    cmd += (["--mirror", args.mirror] if args.mirror else []) + (["--limit", str(args.limit)] if args.limit else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return {"precision": precision, "wall_s": wall, "command": " ".join(cmd[2:])}


def accuracy(args) -> dict:
    from harness import api
    from harness.aggregate import groups
    from harness.aggregate.compare import compare_groups
    from harness.record.store import scan

    root = Path(args.results)
    sides, found = [], {}
    for precision in PRECISIONS:
        print(f"{precision}: harness run ... --seeds {args.seeds} --precision {precision}", file=sys.stderr,
              flush=True)
        side = run_side(args, precision, root / precision)
        records = [r for r in scan(root / precision)[0] if r.status == "complete" and r.task.name == args.task]
        (group,) = [g for g in groups.groups(records) if g.precision == precision]
        found[precision] = group
        side.update(seeds=sorted(r.seed for r in group.records),
                    peak_rss_mb=max(r.peak_memory.bytes for r in group.records) / 2**20,
                    train_eval_s=sum(r.timings.train_s + r.timings.eval_s for r in group.records),
                    reasons=sorted({r.precision_reason or "" for r in group.records}),
                    accuracy={proto: {r.seed: 100 * r.protocols[proto].test[r.protocols[proto].main]
                                      for r in group.records if r.protocols.get(proto)}
                              for proto in ("published", "clean")})
        sides.append(side)
    out = {"rows": sides, "tables": {}, "compare": {}}
    for side in sides:
        print(f"\n## {side['precision']}: {side['command']}\n(wall {side['wall_s']:.0f} s for {args.seeds} seed(s); "
              f"peak RSS {side['peak_rss_mb']:.0f} MB; {'; '.join(side['reasons'])})")
        for proto in ("published", "clean"):
            text = api.table(root / side["precision"], protocol=proto)
            out["tables"][f"{side['precision']}/{proto}"] = text
            print(f"\n{text}")
    model = found["fp32"].records[0].model.name
    for proto in ("published", "clean"):
        text = compare_groups(found["fp32"], found["bf16"], args.task, f"{model} (fp32)", f"{model} (bf16)", proto)
        out["compare"][proto] = text
        print(f"\n{text}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed", help="ms per training step, fp32 vs bf16, native and emulated bf16")
    s.add_argument("--steps", type=int, default=2, help="steps per round and precision")
    s.add_argument("--rounds", type=int, default=2, help="interleaved rounds after a warm-up round")
    s.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    s.add_argument("--tiny", action="store_true", help="a tiny BERT (smoke test)")
    s.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: measure in this process
    a = sub.add_parser("accuracy", help="harness run in fp32 and in bf16, tables and the seed-aware comparison")
    a.add_argument("--task", default="assin2")
    a.add_argument("--model", default="minilm-l6")
    a.add_argument("--mirror")
    a.add_argument("--seeds", type=int, default=3)
    a.add_argument("--epochs", type=int, default=3)
    a.add_argument("--limit", type=int)
    a.add_argument("--results", required=True, help="records go to RESULTS/fp32 and RESULTS/bf16 (kept: a rerun "
                                                    "skips the seeds already there)")
    for p in (s, a):
        p.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    if args.part == "speed" and args.one:
        print(json.dumps(step_times(args.steps, args.rounds, args.tiny, args.threads)))
        return 0
    figures = speed(args) if args.part == "speed" else accuracy(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), **figures}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
