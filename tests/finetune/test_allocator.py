"""The allocator while a cell trains: memory a step frees stays in the process for the next one (no page faults
to fill it again), and afterwards the process's allocator is as it was and the kept memory is handed back.
Each check runs in a fresh interpreter: glibc's state is the process's, and the tests before would leave theirs
(a heap grown by a cell trained in-process serves large tensors from its free chunks, where they stay resident)."""
import subprocess
import sys

import pytest
import torch

from harness.finetune import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="glibc's mallopt only")
MIB = 64


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _kept_after_free() -> float:
    """The share of a large tensor's pages still resident after it is freed (as a step's gradient is)."""
    before = _rss()
    x = torch.empty(MIB * 2**18).fill_(1.0)
    filled = _rss()
    del x
    return (_rss() - before) / (filled - before)


def _mapped_apart() -> bool:
    """Whether a large tensor gets its own mapping (glibc's mmap), outside the heap."""
    x = torch.empty(MIB * 2**18)
    with open("/proc/self/maps") as f:
        heaps = [[int(a, 16) for a in line.split()[0].split("-")] for line in f if line.rstrip().endswith("[heap]")]
    return not any(lo <= x.data_ptr() < hi for lo, hi in heaps)


def _in_a_fresh_process(check: str) -> None:
    code = f"import runpy; runpy.run_path({__file__!r})[{check!r}]()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _kept_within_and_handed_back_after():
    assert _kept_after_free() < 0.1 and _mapped_apart()  # glibc's default: mapped apart, returned when freed
    with allocator.keep_freed_memory() as active:
        assert active
        assert _kept_after_free() > 0.9
        kept = _rss()
    assert _rss() < kept - MIB * 2**20 / 2  # handed back on the way out (malloc_trim)
    assert _kept_after_free() < 0.1 and _mapped_apart()  # and glibc's defaults are back


def _turned_off_it_changes_nothing():
    with allocator.keep_freed_memory(False) as active:
        assert not active
        assert _kept_after_free() < 0.1


def test_freed_memory_is_kept_within_and_handed_back_after():
    _in_a_fresh_process("_kept_within_and_handed_back_after")


def test_turned_off_it_changes_nothing():
    _in_a_fresh_process("_turned_off_it_changes_nothing")
