"""Dropout on CPU with masks drawn by numpy's PCG64 instead of torch's generator: the same dropout, faster.

On a CPU that is not Intel's, torch draws a dropout mask one number at a time (bernoulli_ takes its MKL path on
Intel CPUs only): about 6 ns an element on this AMD EPYC, on one thread whatever the thread count. PCG64's bulk
output is several times faster. The function is torch's: each element kept with probability 1 - p (to 2^-32),
kept values multiplied by 1 / (1 - p) computed in the tensor's dtype (as torch's dropout rounds it in bf16), and
the backward pass multiplies by that same mask. The random numbers are others (another random path, as with
pooled_layer.py), and a seed still fixes them: each mask's PCG64 seed is drawn from torch's generator, which the
run seeds; masks under PCG64_FROM elements stay torch's (cheaper there). Two places: nn.Dropout modules
(embeddings, hidden states, the classifier, LoRA's adapters; install()), and the dropout of attention
probabilities, which scaled_dot_product_attention applies inside: under
attention_dropout(), a call with dropout on CPU tensors runs torch's own math form of the function (the one torch
runs on CPU whenever dropout is on: q, k, v in fp32, scores, the mask added, softmax, dropout, times v, back to
the input dtype) with the mask drawn here. CUDA tensors keep torch's kernels.
"""
from __future__ import annotations

import contextlib
import inspect
import math

import numpy as np

# Masks smaller than this stay torch's: drawing a PCG64 mask has a fixed cost (about 35 us here) that torch's
# generator only exceeds from about 4,096 elements on (a MiniLM batch's hidden states: 16 x 40 x 384).
PCG64_FROM = 4096
# PCG64 outputs drawn and compared at a time (512 KiB): the draws stay in a core's L2 cache between being written
# and being compared. Drawn at once, a mask's draws went to memory and back: 2.1 ns an element in a training step
# against 1.2 ns in chunks. The same stream, so the same mask either way.
DRAWS_PER_CHUNK = 1 << 16


def _dropout_class():
    import torch

    class PCG64Dropout(torch.nn.Dropout):
        """nn.Dropout whose CPU masks come from numpy's PCG64 (see the module docstring)."""

        def forward(self, x):
            if not self.training or self.p == 0 or not x.is_cpu or x.numel() < PCG64_FROM:
                return super().forward(x)
            if self.p == 1:
                return x.mul_(0) if self.inplace else x * 0
            noise = keep_mask(x.shape, self.p).to(x.dtype).div_(1 - self.p)  # as torch: 0 or 1/(1-p), in x's dtype
            return x.mul_(noise) if self.inplace else x * noise

    return PCG64Dropout


_CLASS = None


def dropout_class():
    global _CLASS
    if _CLASS is None:
        _CLASS = _dropout_class()
    return _CLASS


def keep_mask(shape, p: float):
    """A bool tensor of `shape`, each element True with probability 1 - p; seeded from torch's generator."""
    import torch

    seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    n = int(np.prod(shape, dtype=np.int64))
    bits = np.random.PCG64(seed)
    threshold = np.uint32(min(round(p * 2**32), 2**32 - 1))
    keep = np.empty(n, dtype=bool)
    step = 2 * DRAWS_PER_CHUNK  # elements per chunk: even, so only the last chunk leaves a half of a draw unused
    for start in range(0, n, step):
        stop = min(start + step, n)
        # Little-endian 32-bit halves of PCG64's 64-bit outputs: the same mask on every platform.
        draws = bits.random_raw((stop - start + 1) // 2).view("<u4")[:stop - start]
        np.greater_equal(draws, threshold, out=keep[start:stop])
    return torch.from_numpy(keep).view(shape)


def install(model) -> int:
    """Swap every plain nn.Dropout of the model for the PCG64 one (in place); returns how many."""
    import torch

    cls, swapped = dropout_class(), 0
    for module in model.modules():
        if type(module) is torch.nn.Dropout:
            module.__class__ = cls
            swapped += 1
    return swapped


# ------------------------------------------------------------------ attention probabilities

def attention_dropout(enabled: bool = True):
    """A context in which scaled_dot_product_attention with dropout on CPU draws its mask with keep_mask."""
    return _attention_mode()() if enabled else contextlib.nullcontext()


def attention(query, key, value, attn_mask, dropout_p: float, scale: float | None, keep=None):
    """torch's math form of scaled_dot_product_attention on CPU (aten _scaled_dot_product_attention_math: reduced
    precision computed in fp32, q and k each scaled by sqrt(scale), a boolean mask as -inf, _safe_softmax's
    zeros for queries that may attend to nothing), with
    the dropout mask `keep` (default: drawn by keep_mask) applied as torch's dropout applies one."""
    import torch

    dtype = query.dtype
    with torch.autocast("cpu", enabled=False):  # torch's own form runs below autocast
        if dtype in (torch.float16, torch.bfloat16):
            query, key, value = query.float(), key.float(), value.float()
        root = math.sqrt(scale if scale is not None else 1 / math.sqrt(query.size(-1)))
        scores = (query * root) @ (key.transpose(-2, -1) * root)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                attn_mask = torch.zeros((), dtype=scores.dtype).masked_fill(~attn_mask, float("-inf"))
            scores = scores + attn_mask.to(scores.dtype)
        probs = torch.softmax(scores, -1)
        if attn_mask is not None:
            # _safe_softmax's rule: a query whose scores are all -inf attends to nothing (zeros, not NaN). With finite
            # q and k those are the rows the mask blocks entirely, found on the mask (batch x 1 x 1 x keys in BERT)
            # instead of on the scores (batch x heads x queries x keys: 2% of a training step).
            blocked = (attn_mask == float("-inf")).all(-1, keepdim=True)
            if bool(blocked.any()):
                probs = probs.masked_fill(blocked, 0.0)
        keep = keep_mask(probs.shape, dropout_p) if keep is None else keep
        noise = keep.to(probs.dtype).div_(1 - dropout_p)
        return ((probs * noise) @ value).to(dtype)


def _sdpa_signature(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                    enable_gqa=False):
    """torch.nn.functional.scaled_dot_product_attention's parameters, to bind a call's arguments."""


_SDPA = inspect.signature(_sdpa_signature)
_MODE = None


def _attention_mode():
    global _MODE
    if _MODE is not None:
        return _MODE
    import torch
    from torch.overrides import TorchFunctionMode

    sdpa = torch.nn.functional.scaled_dot_product_attention

    class AttentionDropout(TorchFunctionMode):
        """Routes scaled_dot_product_attention calls with dropout on CPU to attention(); passes every other call on."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is sdpa:
                call = _SDPA.bind(*args, **kwargs).arguments
                q, k, v = call["query"], call["key"], call["value"]
                if (call.get("dropout_p", 0.0) > 0 and q.is_cpu and not call.get("is_causal")
                        and not call.get("enable_gqa") and q.dim() == k.dim() == v.dim() == 4
                        and q.shape[:-1].numel() * k.size(-2) >= PCG64_FROM):
                    return attention(q, k, v, call.get("attn_mask"), call["dropout_p"], call.get("scale"))
            return func(*args, **kwargs)

    _MODE = AttentionDropout
    return _MODE
