"""``DiskWaveforms``: the waveforms of a run's spikes, read from disk when they are used.

The waveforms of an hour of a 96-electrode recording take gigabytes; the other per-spike
arrays (time, electrode, amplitude, features, labels) take a tenth of that. So the run keeps
the waveforms in ``OUT/waveforms.h5``, one dataset per electrode (:mod:`.writer`), and a
``DiskWaveforms`` stands in for the ``(n_spikes, n_samples)`` array in :class:`~spikevae.objects.Spikes`:
indexing it (a slice, an index array, a boolean mask, with or without a column) reads only
those rows, electrode by electrode, in blocks; subsetting it (:meth:`take`) reads nothing.
Every stage reads per electrode or in blocks of rows, so the peak memory of a run does not grow
with the waveforms. ``np.asarray`` still gives the whole array (for small runs and old code).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Rows read from one electrode's dataset at a time (about 25 MB of 48-sample waveforms).
READ_BLOCK_ROWS = 1 << 17


def _integers(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind not in "iu":
        if a.size and not np.array_equal(a, np.round(a)):
            raise ValueError(f"{name} must hold integers")
        a = a.astype(np.int64)
    return a


def dataset_name(electrode: int) -> str:
    """Name of electrode ``electrode``'s dataset in the waveform file."""
    return f"e{int(electrode)}"


class DiskWaveforms:
    """A read-only ``(n_spikes, n_samples)`` float32 array whose rows live in a waveform file.

    Parameters
    ----------
    path : path
        The waveform file (``waveforms.h5``, written by :class:`~.writer.WaveformWriter`).
    electrode : ndarray of shape (n_spikes,), int
        Electrode of each row (which dataset holds it).
    row : ndarray of shape (n_spikes,), int
        Row of each spike inside its electrode's dataset.
    n_samples : int
        Samples per waveform.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, path, electrode, row, n_samples: int):
        self.path = Path(path)
        # any integer arrays, not copied (detection's spikes share their electrode array with it)
        self.electrode = _integers(electrode, "electrode")
        self.row = _integers(row, "row")
        if self.electrode.shape != self.row.shape or self.electrode.ndim != 1:
            raise ValueError(f"electrode {self.electrode.shape} and row {self.row.shape} must be 1-D and equal")
        self.n_samples = int(n_samples)

    # -- array protocol ----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.row.shape[0]), self.n_samples)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self.read(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        rows, cols = (key if isinstance(key, tuple) else (key, slice(None)))
        if isinstance(key, tuple) and len(key) != 2:
            raise IndexError(f"DiskWaveforms takes 1 or 2 indices, got {len(key)}")
        if isinstance(rows, (int, np.integer)):
            return self.read(np.array([rows]), cols)[0]
        return self.read(self._positions(rows), cols)

    def _positions(self, rows) -> np.ndarray:
        n = len(self)
        if isinstance(rows, slice):
            return np.arange(n)[rows]
        sel = np.asarray(rows)
        if sel.dtype == bool:
            if sel.shape != (n,):
                raise IndexError(f"boolean index of shape {sel.shape} for {n} rows")
            return np.flatnonzero(sel)
        sel = sel.astype(np.int64, copy=False)
        if sel.size and (sel.min() < -n or sel.max() >= n):
            raise IndexError(f"index out of range for {n} rows")
        return np.where(sel < 0, sel + n, sel)

    def take(self, rows, electrode=None) -> "DiskWaveforms":
        """The rows ``rows`` (mask, index array or slice) as another DiskWaveforms; reads nothing.

        ``electrode``: the selected rows' electrodes when the caller has them already (Spikes pass
        their own, so the two keep sharing one array)."""
        from ..execution.spill import take  # a mask or index's copies go to the run's spill folder, if any

        if not isinstance(rows, slice) and np.asarray(rows).dtype == bool and np.shape(rows) != (len(self),):
            raise IndexError(f"boolean index of shape {np.shape(rows)} for {len(self)} rows")
        return DiskWaveforms(self.path, take(self.electrode, rows) if electrode is None else electrode,
                             take(self.row, rows), self.n_samples)

    # -- reading -------------------------------------------------------------------------
    def read(self, positions: np.ndarray, cols=slice(None)) -> np.ndarray:
        """Rows ``positions`` (indices into this array, any order), columns ``cols``, as float32."""
        positions = np.asarray(positions, dtype=np.int64).ravel()
        width = len(np.arange(self.n_samples)[cols]) if not isinstance(cols, (int, np.integer)) else None
        out = np.empty((positions.size,) if width is None else (positions.size, width), dtype=np.float32)
        if positions.size == 0:
            return out
        el = self.electrode[positions]
        order = np.argsort(el, kind="stable")
        bounds = np.flatnonzero(np.diff(el[order])) + 1
        if not self.path.is_file():
            from ..errors import SpikevaeError

            raise SpikevaeError(f"{self.path}: this file of the run (the spikes' waveforms or features) is gone (was its "
                                "run folder removed?); keep the run folder while its spikes or embeddings are used, or "
                                "call .in_memory() on them (or on the run's result) first")
        with h5py.File(self.path, "r") as f:
            for part in np.split(order, bounds):
                ds = f[dataset_name(int(el[part[0]]))]
                self._read_electrode(ds, self.row[positions[part]], part, out, cols)
        return out

    @staticmethod
    def _read_electrode(ds, rows: np.ndarray, dest: np.ndarray, out: np.ndarray, cols) -> None:
        """Fill ``out[dest]`` with ``ds[rows, cols]``, reading contiguous blocks of the dataset."""
        order = np.argsort(rows, kind="stable")
        rows, dest = rows[order], dest[order]
        i = 0
        while i < rows.size:
            lo = int(rows[i])
            hi = min(lo + READ_BLOCK_ROWS, ds.shape[0])
            j = int(np.searchsorted(rows, hi, side="left"))
            block = ds[lo:int(rows[j - 1]) + 1]
            out[dest[i:j]] = block[rows[i:j] - lo][:, cols] if not isinstance(cols, (int, np.integer)) \
                else block[rows[i:j] - lo, cols]
            i = j

    def blocks(self, rows_per_block: int = READ_BLOCK_ROWS):
        """``(start, stop, waveforms)`` for consecutive blocks of rows, in order."""
        for start in range(0, len(self), rows_per_block):
            stop = min(start + rows_per_block, len(self))
            yield start, stop, self.read(np.arange(start, stop))

    def __reduce__(self):  # pickled by path and indices (worker processes and Dask tasks read the file)
        return (DiskWaveforms, (str(self.path), self.electrode, self.row, self.n_samples))

    def __repr__(self) -> str:
        return f"DiskWaveforms({len(self)} x {self.n_samples} float32 in {self.path})"
