"""The C allocator while a cell trains (glibc only): memory freed in one step is kept for the next.

glibc serves large allocations (above a threshold of 128 KiB to 32 MiB that it adjusts as it goes) with fresh
pages from the kernel and hands them back on free. A training step frees and allocates the same large tensors
every step (gradients, activations, the embedding's dense gradient), so each step would pay the page faults and
the kernel's zeroing again. With mmap off and trimming raised, freed memory stays in the heap and is reused.
The settings go back to glibc's defaults afterwards and the free memory is handed back (malloc_trim), so a
process that calls the API keeps glibc's settings as they were (the heap a cell grew stays, its free pages handed
back, and glibc's dynamic mmap threshold stays off).
Elsewhere (musl, macOS, Windows) nothing changes.
"""
from __future__ import annotations

import contextlib

# mallopt parameters and glibc's defaults (malloc.h, mallopt(3)).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
KEEP_UP_TO = 2**30  # free memory at the top of the heap kept, rather than trimmed after every free


def _glibc():
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (raises AttributeError where the C library is not glibc)
        return libc
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True):
    """Within: freed memory is reused by the process rather than returned to the kernel (glibc)."""
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
