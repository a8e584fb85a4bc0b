"""What fits where: the per-cell GPU memory estimate `harness sweep --jobs auto` uses (harness/grid/capacity.py), for
TTL-160m, TTL-460m and a 7B Llama (Gervásio 7B's shape), under full fine-tuning, LoRA r 16 and QLoRA r 16.

An estimate from parameter counts (models built on the meta device from their configs: nothing is downloaded
or allocated), not a measurement: weights 4 bytes a parameter (4.127 bits for QLoRA's quantised linears),
12 bytes per trainable parameter (gradient, AdamW's two moments), 4 GiB of activations under bf16 autocast.

    python benchmarks/capacity_table.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# /work/shared/reference/tasks-and-models.md (TTL) and models.yaml's gervasio-7b-ptbr entry (LLaMA-2 7B shape).
SHAPES = {
    "TTL-160m": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                     num_key_value_heads=12),
    "TTL-460m": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                     num_key_value_heads=16),
    "7B Llama (Gervásio 7B's shape)": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                           num_attention_heads=32, num_key_value_heads=32),
}
SETTINGS = {"full fine-tuning": dict(), "LoRA r 16": dict(peft="lora"), "QLoRA r 16": dict(peft="qlora")}


def main() -> int:
    from transformers import LlamaConfig

    from harness.config import RunConfig
    from harness.grid.capacity import cell_bytes, footprint

    gib = 2**30
    lines = ["| model (classifier, 2 labels) | parameters | " + " | ".join(SETTINGS) + " |",
             "|---|---|" + "---|" * len(SETTINGS)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in SHAPES.items():
            folder = Path(tmp) / name.split()[0]
            LlamaConfig(**shape, vocab_size=32000, tie_word_embeddings=False, pad_token_id=3,
                        num_labels=2).save_pretrained(folder)
            cells = []
            for settings in SETTINGS.values():
                fp = footprint(str(folder), None, RunConfig(**settings))
                cells.append(f"{cell_bytes(fp) / gib:.1f} GiB ({fp.trainable / 1e6:,.1f}M trainable)")
            total = footprint(str(folder), None, RunConfig()).total
            lines.append(f"| {name} | {total / 1e9:.2f} B | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
