"""Batches: collation, length-grouped order, and the out-of-memory policy."""
import numpy as np
import pytest
import torch
from conftest import encoded_split

from harness.errors import RunFailed
from harness.finetune import batches


def test_collate_pads_right_and_carries_type_ids():
    split = encoded_split([[5, 6, 7], [8]], [1, 0], types=[[0, 0, 1], [0]])
    batch, labels, real, processed = batches.collate(split, np.array([0, 1]), 0, torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert labels.tolist() == [1, 0] and (real, processed) == (4, 6)


def test_length_grouped_batches_cover_everything_with_less_padding():
    rng_lengths = np.random.default_rng(0).integers(5, 200, size=1000)
    grouped = batches.train_batches(rng_lengths, 16, np.random.default_rng(1), grouped=True)
    plain = batches.train_batches(rng_lengths, 16, np.random.default_rng(1), grouped=False)
    for plan in (grouped, plain):
        assert sorted(np.concatenate(plan).tolist()) == list(range(1000))

    def efficiency(batches):
        return sum(rng_lengths[b].sum() for b in batches) / sum(len(b) * rng_lengths[b].max() for b in batches)

    assert efficiency(grouped) > 0.9 > efficiency(plain)


def test_oom_policy_halves_the_micro_batch_until_it_fits():
    calls, events = [], []

    def step(micro):
        calls.append(micro)
        if micro > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    result, micro = batches.step_with_oom_retry(step, 16, events, step_no=7)
    assert (result, micro) == ("ok", 4) and calls == [16, 8, 4]
    assert events == [{"step": 7, "micro_batch": 8}, {"step": 7, "micro_batch": 4}]


def test_oom_policy_gives_up_at_micro_batch_one():
    def step(micro):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RunFailed, match="out of memory at micro-batch 1"):
        batches.step_with_oom_retry(step, 4, [], step_no=1)


def test_other_errors_are_not_swallowed_as_oom():
    def step(micro):
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError):
        batches.step_with_oom_retry(step, 16, [], step_no=1)
