"""Training throughput of the exact TTL / BERTimbau shapes, seed settings vs ours, and the
full-table wall time estimated from the measured rates.

Random weights (the hub is unreachable), synthetic token ids with each task's length
distribution, and the harness's own `train_fit` (so what is timed is the routine itself):
  seed: fp32, random batches of 16 (padding to the longest of 16 random texts), eval batch 16,
        no TF32, unfused AdamW, full last layer
  ours: bf16 autocast with fp32 master weights, TF32, SDPA, fused AdamW, length-grouped batches,
        eval batch 128, last layer computed only at the pooled position (harness/model/pooled_layer.py)
MFU counts the whole model's FLOPs per real token, as MFU does, so skipped work shows up as a higher MFU.
The seed rows approximate the seed recipe's Trainer loop by our loop with the seed's settings
(the Trainer adds its own per-step overhead, and a checkpoint per epoch, on top).

Length assumptions (tokens, TTL/BERTimbau-like Portuguese tokenizers at ~1.4 tokens per word):
  assin2     measured: words of premise + hypothesis from the real data (../shared mirror) x 1.4 + 4
             (falls back to lognormal median 30 if the mirror is absent)
  faquad-nli lognormal, median 55, sigma 0.45     hatebr lognormal, median 28, sigma 0.7
  imdb       lognormal, median 300, sigma 0.6, truncated at 256 (most reviews hit the cap)
  agnews     lognormal, median 60, sigma 0.35, truncated at 256

    python benchmarks/gpu_throughput.py --json benchmarks/out/gpu.json          # on a GPU, a few minutes
    python benchmarks/gpu_throughput.py --tiny --steps 2 --eval-examples 32     # CPU smoke (CI)
    python benchmarks/gpu_throughput.py --models ttl-160m --tasks assin2 --concurrency 1,2,4
        # several cells on one GPU: k processes at once, aggregate samples/s vs one
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.config import SEED_RECIPE, RunConfig  # noqa: E402
from harness.finetune.fit import train_fit  # noqa: E402
from harness.finetune.objective import Objective  # noqa: E402
from harness.metrics import DEFAULT_METRICS  # noqa: E402
from harness.registry.load import load_tasks  # noqa: E402

CLASSIFY = Objective("classification", DEFAULT_METRICS["classification"])
from harness.data.splits import EncodedSplit  # noqa: E402

# Each task's length model (the benchmark's own: median and spread of tokens per example); sizes,
# classes, carve and max_length come from the registry.
LENGTHS = {"imdb": ("lognormal", 300, 0.6), "faquad-nli": ("lognormal", 55, 0.45), "hatebr": ("lognormal", 28, 0.7),
           "assin2": ("assin2", 30, 0.4), "agnews": ("lognormal", 60, 0.35)}
UNCAPPED = 2048  # tasks without max_length truncate at the model's positions (2048 for TTL)


def task_info() -> dict:
    """name -> train / validation / carve / test sizes, classes, max_length, dist; from tasks/*.yaml."""
    tasks = load_tasks()
    return {name: dict(train=t.sizes["train"], validation=t.sizes.get("validation"),
                       carve=(t.validation_from_train or {}).get("size", 0), test=t.sizes["test"],
                       classes=t.label.num_classes, max_length=t.max_length or UNCAPPED, dist=LENGTHS[name])
            for name, t in tasks.items() if name in LENGTHS}


TASKS = task_info()
EPOCHS = 3
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def model_configs(tiny: bool) -> dict:
    from transformers import BertConfig, LlamaConfig

    if tiny:
        llama = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=2, vocab_size=512)
        bert = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, vocab_size=512)
        return {"ttl-160m": ("decoder", LlamaConfig(**llama, max_position_embeddings=2048, pad_token_id=3)),
                "bertimbau-base": ("encoder", BertConfig(**bert, max_position_embeddings=512, pad_token_id=0))}
    ttl = dict(vocab_size=32000, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
               tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    bert = dict(vocab_size=29794, max_position_embeddings=512, pad_token_id=0, type_vocab_size=2)
    return {
        "ttl-160m": ("decoder", LlamaConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                            num_attention_heads=12, num_key_value_heads=12, **ttl)),
        "ttl-460m": ("decoder", LlamaConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                            num_attention_heads=16, num_key_value_heads=16, **ttl)),
        "bertimbau-base": ("encoder", BertConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                 num_attention_heads=12, **bert)),
        "bertimbau-large": ("encoder", BertConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                                  num_attention_heads=16, **bert)),
    }


def assin2_lengths() -> np.ndarray | None:
    folder = REPO.parent / "shared" / "data" / "hub" / "nilc-nlp" / "assin2" / "data"
    files = sorted(folder.glob("train-*.parquet"))
    if not files:
        return None
    import pyarrow.parquet as pq

    table = pq.read_table(files[0], columns=["premise", "hypothesis"]).to_pydict()
    pairs = zip(table["premise"], table["hypothesis"], strict=True)
    words = np.array([len(p.split()) + len(h.split()) for p, h in pairs])
    return np.ceil(words * 1.4).astype(int) + 4


def sample_lengths(task: str, n: int, rng, cap: int, tiny: bool) -> np.ndarray:
    kind, median, sigma = TASKS[task]["dist"]
    if kind == "assin2":
        measured = assin2_lengths()
        if measured is not None:
            out = rng.choice(measured, size=n)
            return np.minimum(out, cap)
    out = np.exp(rng.normal(math.log(median), sigma, size=n)).astype(int) + 2
    out = np.clip(out, 4, min(cap, TASKS[task]["max_length"]))
    return np.minimum(out, 64) if tiny else out


def synthetic_split(lengths: np.ndarray, classes: int, vocab: int, rng, type_ids: bool) -> EncodedSplit:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(5, vocab, size=int(offsets[-1]), dtype=np.int32)  # never the pad id
    labels = rng.integers(0, classes, size=len(lengths))
    types = np.zeros(int(offsets[-1]), dtype=np.int8) if type_ids else None
    return EncodedSplit(ids, offsets, labels, types)


def non_embedding_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)


def measure(model_name, family, config, task, mode, args, device) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    info = TASKS[task]
    rng = np.random.default_rng(0)
    cap = getattr(config, "max_position_embeddings", 512)
    n_train = 16 * args.steps
    train = synthetic_split(sample_lengths(task, n_train, rng, cap, args.tiny), info["classes"], config.vocab_size,
                            rng, family == "encoder")
    test = synthetic_split(sample_lengths(task, args.eval_examples, rng, cap, args.tiny), info["classes"],
                           config.vocab_size, rng, family == "encoder")
    settings = dict(SEED_RECIPE, save_every_epoch=False) if mode == "seed" else {}
    cfg = RunConfig(epochs=1, device=str(device), **settings)
    config.num_labels = info["classes"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=cfg.attn_implementation)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
    quiet = lambda msg: None  # noqa: E731
    warm = synthetic_split(sample_lengths(task, 48, rng, cap, args.tiny), info["classes"], config.vocab_size, rng,
                           family == "encoder")
    train_fit(model=model, train=warm, validation=None, test=warm, objective=CLASSIFY, cfg=cfg, seed=0,
              pad_id=config.pad_token_id, device=device, label="warm-up", train_set="train", validation_source=None,
              checkpoint_dir=None, log=quiet)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    fit = train_fit(model=model, train=train, validation=None, test=test, objective=CLASSIFY, cfg=cfg,
                    seed=1, pad_id=config.pad_token_id, device=device, label="bench", train_set="train",
                    validation_source=None, checkpoint_dir=None, log=quiet)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    flops = 6 * non_embedding_params(model) * fit.train_tokens_real
    peak_flops = next((v for k, v in PEAK_BF16.items() if k in args.device_name), None)
    return {"model": model_name, "task": task, "mode": mode, "steps": fit.steps,
            "step_ms": 1000 * fit.train_s / fit.steps, "train_samples_per_s": n_train / fit.train_s,
            "real_tokens_per_s": fit.train_tokens_real / fit.train_s,
            "padding_efficiency": fit.train_tokens_real / fit.train_tokens_processed,
            "eval_samples_per_s": len(test) / fit.eval_s,
            "mfu": (flops / fit.train_s / peak_flops) if peak_flops else None,
            "peak_gpu_mem_gib": peak / 2**30 if peak is not None else None}


def estimate_table(rows: list[dict]) -> dict:
    """Full-table wall time (one seed, 3 epochs) from the measured rates and the task sizes."""
    out = {}
    for mode in ("seed", "ours"):
        total = 0.0
        for r in (r for r in rows if r["mode"] == mode):
            info = TASKS[r["task"]]
            fits = [info["train"]]
            if mode == "ours" and info["validation"] is None:  # the clean protocol's second training
                fits.append(info["train"] - info["carve"])
            train_s = sum(EPOCHS * n / r["train_samples_per_s"] for n in fits)
            evaluated = (info["validation"] or (info["carve"] if mode == "ours" else 0)) + info["test"]
            eval_s = EPOCHS * len(fits) * evaluated / r["eval_samples_per_s"]
            total += train_s + eval_s
        out[mode] = total
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="training throughput: seed settings vs ours")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (CPU smoke test)")
    ap.add_argument("--steps", type=int, default=30, help="timed optimizer steps per measurement")
    ap.add_argument("--eval-examples", type=int, default=512)
    ap.add_argument("--models", help="comma-separated subset")
    ap.add_argument("--tasks", help="comma-separated subset")
    ap.add_argument("--modes", default="seed,ours", help="comma-separated: seed, ours")
    ap.add_argument("--concurrency", help="e.g. 1,2,4: run k copies at once (ours, first model and task) and "
                                          "report the aggregate throughput")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if args.concurrency:
        return concurrency(args, argv or sys.argv[1:])

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    configs = model_configs(args.tiny)
    models = args.models.split(",") if args.models else list(configs)
    tasks = args.tasks.split(",") if args.tasks else list(TASKS)
    print(f"device: {args.device_name}; torch {torch.__version__}; {'tiny shapes' if args.tiny else 'exact shapes'}")
    rows = []
    header = (f"{'model':<16} {'task':<11} {'mode':<5} {'step ms':>8} {'samples/s':>10} {'real tok/s':>11} "
              f"{'pad eff':>7} {'eval/s':>8} {'MFU':>6} {'peak GiB':>8}")
    print(header)
    t_all = time.perf_counter()
    for m in models:
        family, config = configs[m]
        for t in tasks:
            pair = {}
            for mode in args.modes.split(","):
                r = measure(m, family, config, t, mode, args, device)
                rows.append(r)
                pair[mode] = r
                mfu = "–" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
                mem = "–" if r["peak_gpu_mem_gib"] is None else f"{r['peak_gpu_mem_gib']:.1f}"
                print(f"{m:<16} {t:<11} {mode:<5} {r['step_ms']:8.1f} {r['train_samples_per_s']:10.1f} "
                      f"{r['real_tokens_per_s']:11.0f} {r['padding_efficiency']:7.3f} {r['eval_samples_per_s']:8.1f} "
                      f"{mfu:>6} {mem:>8}", flush=True)
            if len(pair) == 2:
                ratio = pair["ours"]["real_tokens_per_s"] / pair["seed"]["real_tokens_per_s"]
                print(f"{'':<16} {t:<11} ours/seed training throughput (real tokens/s): {ratio:.2f}x", flush=True)
    complete = set(models) == set(configs) and set(tasks) == set(TASKS) and args.modes == "seed,ours"
    est = estimate_table(rows) if complete else None
    if est:
        print(f"estimated full table (20 cells, 1 seed, 3 epochs): seed settings {est['seed'] / 60:.1f} min, "
              f"ours {est['ours'] / 60:.1f} min (ours includes the clean protocol's second training on IMDB and "
              f"AgNews; 1 cell at a time)")
    print(f"benchmark wall time: {time.perf_counter() - t_all:.0f}s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": args.device_name, "tiny": args.tiny, "steps": args.steps,
                                               "rows": rows, "estimate_s": est}, indent=1) + "\n")
    return 0


def concurrency(args, argv: list[str]) -> int:
    """k copies of one measurement at once (separate processes sharing the device), per k. The copies
    start together; their timed windows overlap only roughly (start-up differs), so this is an estimate."""
    import subprocess
    import tempfile

    model = (args.models or "ttl-160m").split(",")[0]
    task = (args.tasks or "assin2").split(",")[0]
    base = [a for a in argv]
    for flag in ("--concurrency", "--models", "--tasks", "--modes", "--json"):
        while flag in base:
            i = base.index(flag)
            del base[i:i + 2]
    out = []
    print(f"{model} on {task}, ours, k cells at once on one device")
    print(f"{'k':>3} {'aggregate samples/s':>20} {'per cell':>9} {'gain vs k=1':>12}")
    single = None
    with tempfile.TemporaryDirectory() as tmp:
        for k in (int(x) for x in args.concurrency.split(",")):
            files = [Path(tmp) / f"k{k}-{i}.json" for i in range(k)]
            procs = [subprocess.Popen([sys.executable, __file__, *base, "--models", model, "--tasks", task,
                                       "--modes", "ours", "--json", str(f)], stdout=subprocess.DEVNULL)
                     for f in files]
            if any(p.wait() != 0 for p in procs):
                print(f"k={k}: a copy failed (out of memory?)")
                break
            rates = [json.loads(f.read_text())["rows"][0]["train_samples_per_s"] for f in files]
            total = sum(rates)
            single = single or total
            out.append({"k": k, "aggregate_samples_per_s": total, "per_cell": rates, "gain": total / single})
            print(f"{k:>3} {total:20.1f} {total / k:9.1f} {total / single:11.2f}x", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": model, "task": task, "concurrency": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
