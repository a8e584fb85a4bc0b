"""Batches: which examples form each training batch, how a batch becomes padded tensors, and the
out-of-memory policy that splits a batch into micro-batches without changing the update."""
from __future__ import annotations

import numpy as np

from harness.data.splits import EncodedSplit
from harness.errors import RunFailed
from harness.finetune import distributed as dist_mod

GROUPING_WINDOW = 50  # batches per window sorted by length: long enough to group, short enough to stay random


def train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, grouped: bool) -> list[np.ndarray]:
    """Random batches; with grouping, each window of GROUPING_WINDOW batches is sorted by length
    before it is cut, so a batch holds texts of similar length, and the batches are then shuffled."""
    perm = rng.permutation(len(lengths))
    if not grouped:
        return [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
    window = batch_size * GROUPING_WINDOW
    batches = []
    for w in range(0, len(perm), window):
        chunk = perm[w:w + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(split: EncodedSplit, idx: np.ndarray, pad_id: int, device):
    """(inputs on device, labels on device, real tokens, processed tokens incl. padding)."""
    import torch

    lengths = split.lengths[idx]
    width = int(lengths.max())
    ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    types = np.zeros((len(idx), width), dtype=np.int64) if split.type_ids is not None else None
    for row, i in enumerate(idx):
        a, b = split.offsets[i], split.offsets[i + 1]
        ids[row, :b - a] = split.ids[a:b]
        mask[row, :b - a] = 1
        if types is not None:
            types[row, :b - a] = split.type_ids[a:b]
    pin = device.type == "cuda"
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if types is not None:
        batch["token_type_ids"] = torch.from_numpy(types)
    batch = {k: (v.pin_memory() if pin else v).to(device, non_blocking=pin) for k, v in batch.items()}
    labels = split.labels[idx]
    if labels.dtype.kind == "f":  # regression targets meet float32 outputs in the loss
        labels = labels.astype(np.float32)
    labels = torch.from_numpy(labels).to(device, non_blocking=pin)
    return batch, labels, int(lengths.sum()), len(idx) * width


# ------------------------------------------------------------------ out of memory policy

def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def halve_micro_batch(micro: int) -> int | None:
    """The next micro-batch after an out-of-memory error (accumulation doubles), or None at 1."""
    return None if micro <= 1 else micro // 2


def step_with_oom_retry(step, micro: int, events: list, step_no: int, on_oom=None, retry: bool = True):
    """Run step(micro); on out-of-memory, halve the micro-batch (the effective batch is unchanged) and
    retry the same step; give up at micro-batch 1. Returns (result, micro) so later steps keep the size.
    retry=False (data-parallel runs, where one rank can't retry alone) turns an OOM into a failed run."""
    while True:
        try:
            return step(micro), micro
        except Exception as exc:
            if not is_oom(exc):
                raise
            if not retry:
                raise RunFailed(f"out of memory at step {step_no} with {dist_mod.world_size()} processes; "
                                f"pass a smaller --micro-batch-size") from None
            smaller = halve_micro_batch(micro)
            if smaller is None:
                raise RunFailed(f"out of memory at micro-batch 1 (step {step_no}); use a smaller model, "
                                f"a shorter max_length or a larger GPU") from None
            events.append({"step": step_no, "micro_batch": smaller})
            if on_oom is not None:
                on_oom()
            micro = smaller
