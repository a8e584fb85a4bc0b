"""Data-parallel training of one cell over several processes (one per GPU; gloo on CPU).

Launched by `harness run --processes N` (which re-runs itself under torch.distributed.run), by
`torchrun`, or by `accelerate launch -m harness run ...`: all of them set RANK / WORLD_SIZE /
LOCAL_RANK. Every process builds the same batch plan from the seed and takes its share of each
global batch, so the effective batch and the results schema are those of a single process; only
rank 0 writes the record.
"""
from __future__ import annotations

import os

import numpy as np


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device_type: str):
    """Join the process group (once); returns this process's device."""
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def wrap(model, device):
    """DistributedDataParallel over the process group; the model itself on one process."""
    if world_size() == 1:
        return model
    import torch

    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                     else None)


# The helpers below are no-ops on one process, so the training loop reads the same either way.

def shard(idx: np.ndarray) -> np.ndarray:
    """This rank's part of a global batch (strided, so lengths stay balanced)."""
    return idx[rank()::world_size()]


def gather_predictions(preds: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """Every rank predicted the examples `mine`; return the full prediction array on every rank."""
    if world_size() == 1:
        return preds
    import torch.distributed as dist

    parts = [None] * world_size()
    dist.all_gather_object(parts, (mine, preds[mine]))
    for idx, values in parts:
        preds[idx] = values
    return preds


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64)."""
    if world_size() == 1:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def launch_command(processes: int, argv: list[str]) -> list[str]:
    """The torch.distributed.run command that runs this `harness run` on N processes."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "harness", *argv]
