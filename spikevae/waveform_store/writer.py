"""``WaveformWriter``: stream waveforms into a run's waveform file, electrode by electrode.

Detection hands over each chunk's waveforms as it finishes them; the writer appends them to
one resizable, chunked HDF5 dataset per electrode (buffering a few thousand rows per
electrode, so the file is written in large blocks) and returns where each row went. The
file is written under a temporary name and moved into place by :meth:`WaveformWriter.close`,
so a killed run never leaves a half-written waveform file under the real name.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .array import DiskWaveforms, dataset_name

#: Rows buffered per electrode before they are appended to its dataset.
BUFFER_ROWS = 4096
#: HDF5 chunk (rows) of each electrode's dataset.
CHUNK_ROWS = 1024


class WaveformWriter:
    """Append waveforms per electrode to ``path``; :meth:`close` makes the file and returns nothing.

    Parameters
    ----------
    path : path
        Final name of the waveform file (written as a temporary beside it until :meth:`close`).
    n_electrodes, n_samples : int
        Electrodes (datasets ``e0`` .. ``e{n-1}``) and samples per waveform.
    attrs : dict, optional
        File attributes (the run sets ``hash``, the cache key of the spikes they belong to).
    """

    def __init__(self, path, n_electrodes: int, n_samples: int, attrs: dict | None = None):
        self.path = Path(path)
        self.n_electrodes, self.n_samples = int(n_electrodes), int(n_samples)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self._file = h5py.File(self.tmp, "w")
        for k, v in (attrs or {}).items():
            self._file.attrs[k] = v
        self._file.attrs["n_samples"] = self.n_samples
        self._count = np.zeros(self.n_electrodes, dtype=np.int64)  # rows handed in per electrode
        self._written = np.zeros(self.n_electrodes, dtype=np.int64)  # rows in the datasets
        self._buffers: dict[int, list[np.ndarray]] = {}
        self._buffered = np.zeros(self.n_electrodes, dtype=np.int64)

    def append(self, electrode: np.ndarray, waveforms: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Add ``waveforms`` (n, n_samples) of electrodes ``electrode`` (n,); returns each one's row
        inside its electrode's dataset (rows are numbered in the order they were appended).

        ``rows``, when given, are the rows to put them at instead: increasing within each electrode and
        past the rows already there; the rows skipped are zeros. (The features of a subset of stored
        waveforms are written at the waveforms' own rows, so that both files share one row map.)
        """
        electrode = np.asarray(electrode, dtype=np.int64)
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape != (electrode.size, self.n_samples):
            raise ValueError(f"waveforms {waveforms.shape} do not match {electrode.size} spikes x {self.n_samples}")
        if rows is not None and np.shape(rows) != electrode.shape:
            raise ValueError(f"rows {np.shape(rows)} do not match {electrode.size} spikes")
        row = np.empty(electrode.size, dtype=np.int64)
        if electrode.size == 0:
            return row
        order = np.argsort(electrode, kind="stable")
        bounds = np.flatnonzero(np.diff(electrode[order])) + 1
        for part in np.split(order, bounds):
            e = int(electrode[part[0]])
            data = waveforms[part]
            if rows is None:
                row[part] = self._count[e] + np.arange(part.size)
            else:
                at = np.asarray(rows)[part].astype(np.int64) - self._count[e]
                if at[0] < 0 or np.any(np.diff(at) <= 0):
                    raise ValueError(f"rows of electrode {e} must increase past the {self._count[e]} written")
                if at[-1] + 1 != part.size:  # rows skipped: zeros between
                    data = np.zeros((int(at[-1]) + 1, self.n_samples), np.float32)
                    data[at] = waveforms[part]
                row[part] = self._count[e] + at
            self._count[e] += data.shape[0]
            self._buffers.setdefault(e, []).append(data)
            self._buffered[e] += data.shape[0]
            if self._buffered[e] >= BUFFER_ROWS:
                self._flush(e)
        return row

    def _flush(self, e: int) -> None:
        parts = self._buffers.pop(e, [])
        if not parts:
            return
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        name = dataset_name(e)
        if name not in self._file:
            self._file.create_dataset(name, shape=(0, self.n_samples), maxshape=(None, self.n_samples),
                                      dtype=np.float32, chunks=(CHUNK_ROWS, self.n_samples))
        ds = self._file[name]
        n = int(self._written[e])
        ds.resize(n + data.shape[0], axis=0)
        ds[n:] = data
        self._written[e] += data.shape[0]
        self._buffered[e] = 0

    def close(self) -> None:
        """Write what is buffered, create the empty electrodes' datasets, and move the file into place."""
        for e in list(self._buffers):
            self._flush(e)
        for e in range(self.n_electrodes):
            if dataset_name(e) not in self._file:
                self._file.create_dataset(dataset_name(e), shape=(0, self.n_samples),
                                          maxshape=(None, self.n_samples), dtype=np.float32,
                                          chunks=(CHUNK_ROWS, self.n_samples))
        self._file.attrs["done"] = True
        self._file.close()
        with open(self.tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file (after an error)."""
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - already closed or broken: removing it is all that is left
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "WaveformWriter":
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def write_waveforms(path, electrode: np.ndarray, waveforms, n_electrodes: int, attrs: dict | None = None,
                    block: int = 1 << 16) -> DiskWaveforms:
    """Write in-memory (or another file's) waveforms to a waveform file at ``path``; returns them on disk."""
    electrode = np.asarray(electrode)
    n_samples = int(waveforms.shape[1])
    rows = np.empty(electrode.size, dtype=np.int32)  # 4 bytes a spike: no electrode holds 2**31 rows
    with WaveformWriter(path, n_electrodes, n_samples, attrs) as w:
        for a in range(0, electrode.size, block):
            b = min(a + block, electrode.size)
            rows[a:b] = w.append(electrode[a:b], np.asarray(waveforms[a:b], dtype=np.float32))
    return DiskWaveforms(path, electrode, rows, n_samples)


def file_attrs(path) -> dict:
    """The attributes of a waveform file ({} when it is missing or unreadable)."""
    try:
        with h5py.File(path, "r") as f:
            return dict(f.attrs)
    except (OSError, KeyError):
        return {}
