"""One model sharded over several processes (`--sharding fsdp` with `--processes N`): torch's FSDP2.

Data-parallel training (DDP) keeps a full copy of the weights, gradients and AdamW state on every GPU;
FSDP2 (`torch.distributed.fsdp.fully_shard`) keeps 1/N of each, gathers a layer's weights just before
the layer runs and scatters its gradients right after, so a model N times too large for one GPU trains.
Each transformer block is its own unit (one block's weights are whole at a time), then the root.
The batches, loss scaling and record are those of data-parallel training; only the wrapping, the
evaluation (every process runs the same number of forward passes, since each one gathers weights)
and the checkpoints (gathered to rank 0) differ. Works with gloo on CPU too (the tests run it there).
"""
from __future__ import annotations

import math


def shard(model):
    """Shard the model in place over the default process group; returns it."""
    from torch.distributed.fsdp import fully_shard

    for block in transformer_blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model


def transformer_blocks(model) -> list:
    """The repeated layers of a transformers model (the ones gradient checkpointing works on)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def is_sharded(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule) or any(isinstance(m, FSDPModule) for m in model.modules())


def forward_passes(examples: int, world: int, batch: int) -> int:
    """Evaluation forward passes every process runs: those of the largest share (rank 0's, shares being
    strided); a process with fewer examples runs the rest on a dummy batch."""
    return math.ceil(math.ceil(examples / world) / batch)


def save(model, folder, is_main: bool) -> None:
    """Save a checkpoint (a peft model saves its adapters and head); every process calls this. A sharded model's
    full state is gathered to rank 0 first; otherwise rank 0 saves its own copy."""
    if not is_sharded(model):
        if is_main:
            model.save_pretrained(folder)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if is_main:
        model.save_pretrained(folder, state_dict=state)
