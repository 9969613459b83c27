"""Give memory the process has freed back to the operating system between stages.

A run allocates and frees many mid-sized arrays (per chunk, per electrode, per block of
waveforms). glibc's allocator keeps freed heap memory for reuse, so the resident size of a
long run creeps up with the recording although little of it is in use: on a 20-minute,
96-electrode recording, detection left 280 MB resident of which 60 MB were live arrays.
:func:`release_memory` (``malloc_trim``) hands the free part back; elsewhere it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only (not macOS, musl, Windows)
    except OSError:
        return None


def release_memory() -> bool:
    """Return freed heap memory to the OS; True when the platform's allocator could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
