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

Large arrays freed inside a stage are another matter. glibc serves an allocation from the heap
unless it is larger than a threshold; by default that threshold starts at 128 kB and rises, each
time the process frees a larger mapped block, towards 32 MB, and the heap shrinks whenever
twice the threshold lies free at its top. :func:`return_large_arrays` fixes both, one of two ways:

- on (every stage but detection, and the clustering's workers): arrays from
  :data:`LARGE_ARRAY_BYTES` (4 MB: per-spike columns, an electrode's waveforms or features)
  get a mapping of their own, handed back to the OS the moment they are freed, so a stage's peak
  is what it holds rather than the heap it has grown;
- off (detection, :func:`spikevae.detect.detect_spikes`, and the workers it forks; a feature
  method's fit, under :func:`heap_kept`): arrays under :data:`HEAP_ARRAY_BYTES` come from the
  heap and the heap keeps its free top, so the buffers that every chunk or training step
  allocates anew are reused instead of mapped and zeroed again.

Measured on 96 electrodes × 60 min (2 cores, two runs of each alternated with the code before):
peak resident memory of the main process 579 / 575 → 538 / 543 MB, with the workers 1033 / 1024 →
935 / 968 MB, CPU 471 / 448 → 440 / 429 s (detection 189 / 165 → 161 / 158 s); detection alone on
10 min, four runs each, 31 → 25 CPU s (median). A 256 kB threshold everywhere, detection's buffers
included, cost detection more than half again its CPU (one run: 384 against 238 s).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools


#: ``mallopt``'s parameter number for the most heaps (arenas) glibc makes for threads.
M_ARENA_MAX = -8
#: ``mallopt``'s parameter numbers for the size from which an allocation gets its own mapping, and for the
#: free space at the heap's top beyond which the heap shrinks.
M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1
#: Arrays from this size on get their own mapping under :func:`return_large_arrays`.
LARGE_ARRAY_BYTES = 4 << 20
#: The threshold otherwise: the ceiling of glibc's own rising one (``DEFAULT_MMAP_THRESHOLD_MAX``, 64-bit).
HEAP_ARRAY_BYTES = 32 << 20


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


#: Loops that trim as they go (:func:`release_memory` with ``min_free``) do so once the heap holds this much
#: free memory: trimming at every step hands back pages that the next step faults in again (on the 10-min
#: report, 100 trims cost 0.5-0.9 s of 5.5 s); waiting for much more lets an hours-long loop's heap grow.
LOOP_TRIM_BYTES = 32 << 20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_free_bytes() -> int | None:
    """Free bytes inside the main heap (glibc's ``mallinfo2``), or None where the allocator cannot say."""
    info = getattr(_libc(), "mallinfo2", None)  # glibc >= 2.33
    if info is None:
        return None
    info.restype = _Mallinfo2
    return int(info().fordblks)


def release_memory(min_free: int = 0) -> bool:
    """Return freed heap memory to the OS; True when the platform's allocator could be asked.

    With ``min_free`` (a loop's :data:`LOOP_TRIM_BYTES`), only when the heap holds at least that much
    free memory, where the allocator can tell.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    if min_free:
        free = heap_free_bytes()
        if free is not None and free < min_free:
            return True
    trim(0)
    return True


#: The mode last set by :func:`return_large_arrays` (None: glibc's own, never set here).
_mode: bool | None = None


def return_large_arrays(on: bool = True) -> bool:
    """With ``on``, arrays of :data:`LARGE_ARRAY_BYTES` or more get a mapping of their own, returned to
    the OS when freed, so a stage's peak memory is what it holds, not the heap it has grown; with
    ``on=False``, arrays under :data:`HEAP_ARRAY_BYTES` come from the heap and are reused (faster for
    work that allocates the same buffers over and over). glibc only; True when the allocator accepted it."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None or _malloc_trim() is None:  # not glibc: nothing to set
        return False
    global _mode
    threshold = LARGE_ARRAY_BYTES if on else HEAP_ARRAY_BYTES
    # the heap keeps twice the threshold free at its top, as glibc's own rising threshold does: else every
    # array freed there shrinks the heap and the next one grows it again through fresh, zeroed pages
    ok = bool(mallopt(M_MMAP_THRESHOLD, threshold) and mallopt(M_TRIM_THRESHOLD, 2 * threshold))
    if ok:
        _mode = bool(on)
    return ok


@contextlib.contextmanager
def heap_kept():
    """``return_large_arrays(False)`` inside (work that allocates the same buffers over and over, such as a
    network's training steps), then the mode set before, if :func:`return_large_arrays` had set one."""
    before = _mode
    return_large_arrays(False)
    try:
        yield
    finally:
        if before:
            return_large_arrays(True)
