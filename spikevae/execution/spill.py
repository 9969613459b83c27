"""Per-spike arrays of a run kept in files of its output folder, memory-mapped, not in the heap.

Every stage works per electrode or a block at a time, but a few arrays span the whole recording:
each spike's time, electrode, amplitude, waveform row and unit (24 bytes a spike), the index of
each electrode's or unit's spikes (4 bytes), and the columns that detection and the clustering
assemble. On 96 electrodes they grow by about 200 MB an hour of recording. Held in the heap, they
must all fit in memory; a batch system that limits a job's memory (SLURM's ``--mem`` is a memory
cgroup) kills a run of many hours for them.

Inside :func:`spill_to` (``run_pipeline`` opens it on the output folder) such arrays, from
:data:`SPILL_BYTES` on, are made in unnamed files there and memory-mapped (:func:`disk_empty`,
:func:`full`, :func:`take`, :class:`Column`). They are plain numpy arrays to the code that uses them. Their
pages are the kernel's page cache: resident while memory is plentiful, written back and dropped
when it is short, read again when used. What the process itself must hold (its anonymous memory)
then no longer grows with the recording by them. The files are removed by the kernel as soon as
the last array using one is gone (on Windows: when it is closed); a killed run's leftovers are in
``OUT/.spill.tmp``, which the next run in that folder removes (:meth:`spikevae.store.RunStore.recover`).
Outside :func:`spill_to` (the library used from Python, tests, workers) every array is an ordinary
in-memory one, so results are the same with and without it.
"""
from __future__ import annotations

import contextlib
import contextvars
import mmap
import tempfile
from pathlib import Path

import numpy as np

#: Arrays from this size on are made in the spill folder (smaller ones cost more in mappings than they save).
SPILL_BYTES = 8 << 20
#: The spill folder's name inside an output folder (a ``.*.tmp`` name: :meth:`RunStore.recover` removes it).
SPILL_DIR = ".spill.tmp"

_folder: contextvars.ContextVar[Path | None] = contextvars.ContextVar("spikevae_spill_folder", default=None)


@contextlib.contextmanager
def spill_to(out_dir):
    """Make large per-spike arrays in ``out_dir/.spill.tmp`` inside this block (see the module's text).
    The folder is removed at the end unless an array still maps one of its files (on Windows). Where
    ``out_dir`` is not an existing folder (a command given a run folder that is not there, which then
    says so), nothing is created and arrays stay in memory."""
    if not Path(out_dir).is_dir():
        yield None
        return
    folder = Path(out_dir) / SPILL_DIR
    folder.mkdir(exist_ok=True)
    token = _folder.set(folder)
    try:
        yield folder
    finally:
        _folder.reset(token)
        with contextlib.suppress(OSError):
            folder.rmdir()  # empty on POSIX (files are unlinked when made)


def spill_folder() -> Path | None:
    """The folder large arrays are made in now, or None (in memory)."""
    return _folder.get()


def disk_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, memory-mapped from an unnamed file of the spill folder when it is
    :data:`SPILL_BYTES` or larger and :func:`spill_to` is active (its contents start as zeros)."""
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    folder = _folder.get()
    if folder is None or nbytes < SPILL_BYTES:
        return np.empty(shape, dtype)
    with tempfile.TemporaryFile(dir=folder, prefix="spill-") as f:  # unlinked at once on POSIX
        f.truncate(nbytes)  # sparse: disk blocks are taken as pages are written
        buf = mmap.mmap(f.fileno(), nbytes)  # keeps its own handle on the file once f is closed
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def is_mapped(a) -> bool:
    """Whether the numpy array ``a`` lies in a memory-mapped file (made here, or an ``np.memmap``)."""
    base = a
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap):
            return True
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer keeps a view of the buffer it was given
        base = base.obj
    return isinstance(base, mmap.mmap)


def full(shape, value, dtype) -> np.ndarray:
    """``np.full`` as a :func:`disk_empty` array."""
    out = disk_empty(shape, dtype)
    out[...] = value
    return out


def take(a, sel, block: int = 1 << 20) -> np.ndarray:
    """``a[sel]`` for a boolean mask or an index array into a :func:`disk_empty` array, a block of the
    selection at a time (no in-memory copy of the whole first); a slice gives ``a[sel]``, a view."""
    a = np.asarray(a)
    if isinstance(sel, slice):
        return a[sel]
    sel = np.asarray(sel)
    if sel.dtype == bool:
        if sel.shape[0] != a.shape[0]:
            raise IndexError(f"boolean index of length {sel.shape[0]} for an array of length {a.shape[0]}")
        out = disk_empty((int(np.count_nonzero(sel)),) + a.shape[1:], a.dtype)
        at = 0
        for i in range(0, sel.shape[0], block):
            part = a[i:i + block][sel[i:i + block]]
            out[at:at + part.shape[0]] = part
            at += part.shape[0]
        return out
    out = disk_empty(sel.shape + a.shape[1:], a.dtype)
    flat = sel.reshape(-1)
    view = out.reshape((flat.size,) + a.shape[1:])
    for i in range(0, flat.size, block):
        view[i:i + block] = a[flat[i:i + block]]
    return out


class Column:
    """A 1-D array built by appending pieces (a chunk's spikes at a time), held in memory until it
    reaches :data:`SPILL_BYTES`, then written to an unnamed file of the spill folder as it grows.
    :meth:`finish` returns the whole: the file memory-mapped, or the pieces joined in memory."""

    def __init__(self, dtype, width: tuple = ()):
        self.dtype = np.dtype(dtype)
        self.width = tuple(width)
        self._pieces: list[np.ndarray] = []
        self._held = 0
        self._file = None
        self.size = 0

    def append(self, piece) -> None:
        piece = np.ascontiguousarray(piece, dtype=self.dtype)
        if piece.shape[1:] != self.width:
            raise ValueError(f"piece of shape {piece.shape} does not fit a column of rows {self.width}")
        self.size += piece.shape[0]
        if self._file is not None:
            self._file.write(piece.tobytes())
            return
        self._pieces.append(piece)
        self._held += piece.nbytes
        folder = _folder.get()
        if folder is not None and self._held >= SPILL_BYTES:
            self._file = tempfile.TemporaryFile(dir=folder, prefix="spill-")
            for p in self._pieces:
                self._file.write(p.tobytes())
            self._pieces, self._held = [], 0

    def finish(self) -> np.ndarray:
        """The column (writable). The column is emptied."""
        shape = (self.size,) + self.width
        if self._file is None:  # each piece dropped once copied: the pieces and the whole are not both held
            from .memory import release_memory

            out, pieces, at = np.empty(shape, self.dtype), self._pieces, 0
            self._pieces, self._held, self.size = [], 0, 0
            for i in range(len(pieces)):
                p, pieces[i] = pieces[i], None
                out[at:at + p.shape[0]] = p
                at += p.shape[0]
                if i % 512 == 511:
                    release_memory()
            return out
        f, self._file, self.size = self._file, None, 0
        nbytes = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        with f:
            f.flush()
            buf = mmap.mmap(f.fileno(), nbytes) if nbytes else None
        return np.frombuffer(buf, dtype=self.dtype).reshape(shape) if buf is not None else np.empty(shape, self.dtype)

    def __len__(self) -> int:
        return self.size


__all__ = ["Column", "SPILL_BYTES", "disk_empty", "full", "is_mapped", "spill_folder", "spill_to", "take"]
