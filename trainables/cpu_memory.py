"""Keep freed memory in the process's heap on glibc, so the per-step tensors of a CPU training loop (grads, casts,
activations: a few MiB each) reuse warm pages. Without it, whether glibc maps and faults them in afresh every
step depends on the process's history: hundreds of page faults per step for the 2×1024 MLP in a fresh process,
none once glibc's dynamic threshold has grown (BENCHMARKS.md, section 10)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling on 64-bit; larger blocks are still mapped


@functools.cache
def keep_freed_memory() -> bool:
    """Once per process: blocks up to 32 MiB come from the heap and the heap is not trimmed back to the OS (the
    process keeps its peak). Returns False where it does not apply (not glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, TypeError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, 2**30))
