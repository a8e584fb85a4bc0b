"""How many cells fit on one GPU at once (harness sweep --jobs auto).

A cell's memory is dominated by fp32 weights, gradients and AdamW's two moments (16 bytes a
parameter) plus activations; small models leave an H100 mostly idle, so several processes share it.
"""
from __future__ import annotations

ACTIVATION_MARGIN = 4 * 2**30  # batch 16 x up to 512 tokens under bf16 autocast, plus the CUDA context
BYTES_PER_PARAM = 16
MAX_CELLS = 8
USABLE_SHARE = 0.9  # of the free GPU memory: the rest absorbs fragmentation and other processes' growth


def parameter_count(where: str, revision: str | None = None) -> int:
    """Exact parameter count from the config alone (the model is built on the meta device)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(where, revision=revision)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def cells_for(free_bytes: int, params: list[int]) -> int:
    need = max(params) * BYTES_PER_PARAM + ACTIVATION_MARGIN
    return max(1, min(MAX_CELLS, int(USABLE_SHARE * free_bytes) // need))


def cells_per_gpu(model_args: list[str], models: dict, mirror: str | None) -> int:
    import torch

    if not torch.cuda.is_available():
        return 1
    from .models import model_location
    from .registry import resolve_model

    params = [parameter_count(*model_location(resolve_model(m, models), mirror)) for m in set(model_args)]
    free, _ = torch.cuda.mem_get_info()
    return cells_for(free, params)
