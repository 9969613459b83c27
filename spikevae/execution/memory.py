"""Give memory the process has freed back to the operating system between stages.

A run allocates and frees many mid-sized arrays (per chunk, per electrode, per block of
waveforms). glibc's allocator keeps freed heap memory for reuse, so the resident size of a
long run creeps up with the recording although little of it is in use: on a 20-minute,
96-electrode recording, detection left 280 MB resident of which 60 MB were live arrays.
:func:`release_memory` (``malloc_trim``) hands the free part back; elsewhere it does nothing.

Threads get a heap (arena) of their own from glibc, and what they free there is not handed back:
after the quality metrics of a 60-minute run ran in two threads, 87 MB stayed resident.
:func:`one_heap_for_threads` (``mallopt(M_ARENA_MAX, 1)``) makes new threads share the main heap,
which ``malloc_trim`` does empty.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


#: ``mallopt``'s parameter number for the most heaps (arenas) glibc makes for threads.
M_ARENA_MAX = -8


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _malloc_trim():
    return getattr(_libc(), "malloc_trim", None)  # glibc only (not macOS, musl, Windows)


@functools.lru_cache(maxsize=1)
def one_heap_for_threads() -> bool:
    """Make threads started from now on allocate from the main heap (glibc; once per process), so that
    :func:`release_memory` can return what they free. True when the allocator accepted it."""
    mallopt = getattr(_libc(), "mallopt", None)
    return bool(mallopt is not None and _malloc_trim() is not None and mallopt(M_ARENA_MAX, 1))


def release_memory() -> bool:
    """Return freed heap memory to the OS; True when the platform's allocator could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
