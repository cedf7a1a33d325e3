"""Process-wide CPU runtime settings for training, testing and benchmarking.

glibc serves every allocation above its mmap threshold with a fresh ``mmap`` and gives it back on
free, so each large activation tensor of a video network page-faults all over again
(``python benchmarks/allocator.py`` times both settings side by side). ``tune_allocator`` keeps
freed memory in the heap for reuse (the effect jemalloc/tcmalloc are preloaded for in production
PyTorch deployments), all of it: with a cap of 1 GiB, StNet's batch of 8 clips (200 super-images
of 256x256, activations up to 840 MB each) gave back and faulted in its memory every pass: 10.4
against 8.5 s per batch (``actionrec bench --all stnet --batch 8``, 2-core AMD EPYC).
``release_free_memory`` gives it back where a long run must stay flat.
Set ``ACTIONREC_MALLOC=default`` to leave glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@functools.cache
def _glibc():
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None. Found
    once: ``find_library`` runs ``ldconfig``, too slow to repeat on a per-window path."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (musl, macOS): nothing to tune
        return None


def tune_allocator() -> bool:
    """Serve large blocks from the heap and keep freed memory for reuse (a trim threshold of -1:
    glibc never trims on its own); True if applied."""
    libc = _glibc()
    if os.environ.get("ACTIONREC_MALLOC") == "default" or libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``); True if done.

    A long stream of decoded frames interleaved with a network's large activations fragments
    glibc's heap: freed memory stays resident, so a long video's timeline grew the process by
    300 MiB over 20 minutes of 128x128 frames while the memory in use stayed flat; trimming every
    8 windows keeps it flat (every 64 still grew 100 MiB on a loaded CPU; see
    ``tests/engine/test_timeline.py``)."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))
