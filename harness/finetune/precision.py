"""Precision: what `precision` means on a device, why, and the autocast that applies it.

bf16 is autocast with fp32 master weights (weights, gradients and AdamW state stay fp32; matrix multiplies run
in bf16). `auto` picks it where bf16 is computed natively: on CUDA, and on a CPU with avx512_bf16 or AMX-BF16
as torch detects them. Elsewhere a CPU emulates bf16 (converting to fp32 and back around fp32 arithmetic),
which is slower than fp32 itself, so `auto` stays fp32 there. The reason goes into the record.
"""
from __future__ import annotations

from harness.config import RunConfig

# The x86 instructions with which a CPU computes bf16 dot products natively (torch.cpu.get_capabilities()'s names).
NATIVE_BF16_CPU = ("avx512_bf16", "amx_bf16")
# Model types (config.model_type) whose forward fails under bf16 autocast in transformers 5: auto keeps them in fp32.
FAILS_UNDER_BF16 = {
    # DisentangledSelfAttention adds its fp32 q_bias to the query (fp32 by promotion), then fills the bf16 scores
    # with torch.finfo(query.dtype).min, which bf16 cannot hold: "value cannot be converted to type c10::BFloat16".
    "deberta": "DeBERTa v1's attention fails under bf16 autocast in transformers",
}


def cpu_bf16_instructions() -> tuple[str, ...] | None:
    """Which of NATIVE_BF16_CPU this CPU has, as torch detects them (cpuinfo); None where this torch cannot tell."""
    import torch

    if hasattr(torch.cpu, "get_capabilities"):  # torch >= 2.10
        capabilities = torch.cpu.get_capabilities()
        return tuple(name for name in NATIVE_BF16_CPU if capabilities.get(name))
    if hasattr(torch.cpu, "_is_avx512_bf16_supported"):  # older torch: AVX512-BF16 only (every AMX CPU has it)
        return ("avx512_bf16",) if torch.cpu._is_avx512_bf16_supported() else ()
    return None


def precision_and_reason(cfg: RunConfig, device, model_type: str | None = None) -> tuple[str, str]:
    """("bf16" or "fp32", why): what `precision` means on this device for this kind of model."""
    if cfg.precision != "auto":
        return cfg.precision, f"asked for: precision {cfg.precision}"
    if model_type in FAILS_UNDER_BF16:
        return "fp32", f"auto: fp32, {FAILS_UNDER_BF16[model_type]}"
    if device.type == "cuda":
        return "bf16", "auto: bf16 autocast on CUDA"
    if device.type != "cpu":
        return "fp32", f"auto: fp32 on {device.type}"
    found = cpu_bf16_instructions()
    if found is None:
        return "fp32", "auto: fp32, this torch cannot tell whether the CPU computes bf16 natively"
    if found:
        return "bf16", f"auto: bf16 autocast, the CPU computes bf16 natively ({', '.join(found)})"
    return "fp32", (f"auto: fp32, the CPU has no {' or '.join(NATIVE_BF16_CPU)} (bf16 would be emulated, "
                    f"slower than fp32)")


def resolved_precision(cfg: RunConfig, device) -> str:
    """What `precision` means on this device: "bf16" (autocast, fp32 master weights) or "fp32"."""
    return precision_and_reason(cfg, device)[0]


def autocast(cfg: RunConfig, device):
    """bf16 autocast where `precision` resolves to bf16 on this device; a context that changes nothing elsewhere."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolved_precision(cfg, device) == "bf16")
