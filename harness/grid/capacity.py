"""How many cells fit on one GPU at once (harness sweep --jobs auto).

A cell's memory is its weights (fp32 master weights: 4 bytes a parameter; QLoRA's 4-bit NF4 with double
quantisation: 4.127 bits), a gradient and AdamW's two moments for every *trainable* parameter (12 bytes:
LoRA keeps none for the frozen weights), and activations. Small models leave an H100 mostly idle, so
several processes share it.
"""
from __future__ import annotations

from dataclasses import dataclass

ACTIVATION_MARGIN = 4 * 2**30  # batch 16 x up to 512 tokens under bf16 autocast, plus the CUDA context
FP32_ACTIVATION_FACTOR = 2  # without autocast, activations are twice as wide
WEIGHT_BYTES = 4
NF4_BYTES = 4.127 / 8  # QLoRA paper: 4 bits plus 0.127 bits of double-quantised block constants
TRAINING_STATE_BYTES = 12  # fp32 gradient + AdamW's two fp32 moments
MAX_CELLS = 8
USABLE_SHARE = 0.9  # of the free GPU memory: the rest absorbs fragmentation and other processes' growth


@dataclass
class Footprint:
    total: int  # parameters as trained (adapters included)
    trainable: int  # those with a gradient and optimizer state
    quantized: int = 0  # those stored in 4 bits (QLoRA: the backbone's linear weights)


def footprint(where: str, revision: str | None, cfg) -> Footprint:
    """Exact parameter counts from the config alone (the model is built on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from harness.model import adapters

    config = AutoConfig.from_pretrained(where, revision=revision)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    if cfg.peft == "none":
        return Footprint(total=total, trainable=total)
    targets = set(adapters.resolve_targets(model, cfg.lora_targets))
    linears = [m for name, m in adapters.backbone(model).named_modules()
               if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    lora = sum(cfg.lora_r * (m.in_features + m.out_features) for m in linears)
    head = sum(p.numel() for name in adapters.head_modules(model) for p in getattr(model, name).parameters())
    quantized = 0
    if cfg.peft == "qlora":  # bitsandbytes quantises the linear layers, not embeddings or norms
        quantized = sum(m.weight.numel() for m in adapters.backbone(model).modules() if isinstance(m, torch.nn.Linear))
    return Footprint(total=total + lora, trainable=lora + head, quantized=quantized)


def cell_bytes(fp: Footprint, bf16: bool = True) -> int:
    weights = (fp.total - fp.quantized) * WEIGHT_BYTES + fp.quantized * NF4_BYTES
    activations = ACTIVATION_MARGIN * (1 if bf16 else FP32_ACTIVATION_FACTOR)
    return int(weights + fp.trainable * TRAINING_STATE_BYTES + activations)


def cells_for(free_bytes: int, needs: list[int]) -> int:
    """Cells at once, from the free memory and each model's need in bytes (the largest decides)."""
    return max(1, min(MAX_CELLS, int(USABLE_SHARE * free_bytes) // max(needs)))


def cells_per_gpu(model_args: list[str], models: dict, mirror: str | None, cfg) -> int:
    import torch

    if not torch.cuda.is_available():
        return 1
    from harness.finetune.precision import resolved_precision
    from harness.model.loading import model_location
    from harness.registry.load import resolve_model

    bf16 = resolved_precision(cfg, torch.device("cuda")) == "bf16"
    needs = [cell_bytes(footprint(*model_location(resolve_model(m, models), mirror), cfg), bf16)
             for m in set(model_args)]
    free, _ = torch.cuda.mem_get_info()
    return cells_for(free, needs)
