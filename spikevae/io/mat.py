"""MATLAB ``.mat`` recordings and ground truths (Wave_clus / Quiroga, CBP demo, hc-1 extracts).

MATLAB v5 files cannot be read lazily, so the whole variable is loaded: meant for the
short benchmark recordings that circulate as ``.mat`` (a 5-minute 4-channel file at
24 kHz is 115 MB as float64). Longer recordings belong in NSx, raw binary or HDF5.
MATLAB v7.3 files (``save -v7.3``) are HDF5 inside: their traces are read lazily through
h5py, chunk by chunk (MATLAB stores arrays column-major, so h5py sees every array
transposed: a MATLAB ``data`` of n_samples x n_channels is an HDF5 dataset of
n_channels x n_samples); the same keys as v5 apply.

Recording keys: the traces are the first of ``data``, ``traces``, ``x`` (1-D, or 2-D with
time along the longer axis); the sampling rate comes from ``sr``/``fs`` (Hz) or ``dt``
(s), else from ``input.fs``. Values are taken as µV times ``input.gain_uv``.

Ground-truth keys (:func:`read_mat_ground_truth`): ``true_spike_times`` with
``true_spike_class`` (Quiroga/CBP), or ``spike_times`` with ``spike_class``, or ``ec_st``
with ``label`` (hc-1 extract: only label 1, the intracellularly identified cell, is a unit).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..objects import Sorting
from ..recording import Recording

TRACE_KEYS = ("data", "traces", "x")


def is_v73(path: Path) -> bool:
    """Whether ``path`` is a MATLAB v7.3 (HDF5) file rather than v5."""
    import h5py

    try:
        return h5py.is_hdf5(path)
    except OSError:
        return False


def _load(path: Path, lazy: bool = False) -> dict:
    """Variables of a .mat file, as arrays in MATLAB's shape. With ``lazy``, the large numeric
    variables of a v7.3 file stay on disk as h5py datasets (HDF5's transposed shape), and the
    open file is under ``"__h5file__"``: the caller closes it."""
    if is_v73(path):
        return _load_v73(path, lazy)
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise RecordingError(f"{path}: not a readable .mat file ({exc})") from None


#: v7.3 variables larger than this many values are left on disk (read lazily).
LAZY_VALUES = 1 << 16


def _load_v73(path: Path, lazy: bool) -> dict:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RecordingError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({exc})") from None
    out = {}
    for k, v in f.items():
        if not isinstance(v, h5py.Dataset) or v.dtype.kind not in "iuf":
            continue  # structs, cells and strings are not traces or spike times
        out[k] = v if lazy and v.size > LAZY_VALUES else np.asarray(v[()]).T  # MATLAB shape (column-major on disk)
    if lazy:
        out["__h5file__"] = f
    else:
        f.close()
    return out


def mat_fs(m: dict, fallback: float = 0.0) -> float:
    """Sampling rate in Hz from ``sr``/``fs``/``dt`` keys, else ``fallback``."""
    for k in ("sr", "fs", "Fs", "samplingInterval"):
        if k in m:
            return float(np.asarray(m[k]).ravel()[0])
    if "dt" in m:
        return 1.0 / float(np.asarray(m["dt"]).ravel()[0])
    return float(fallback)


class MatRecording(Recording):
    """Traces from a MATLAB ``.mat`` file: v5 loaded whole, v7.3 read lazily (see the module docstring)."""

    def __init__(self, path, fs: float = 0.0, gain_uv: float = 1.0, offset_uv: float = 0.0):
        path = Path(path)
        m = _load(path, lazy=True)
        key = next((k for k in TRACE_KEYS if k in m), None)
        if key is None:
            names = [k for k in m if not k.startswith("__")]
            raise RecordingError(f"{path}: no traces found; expected a variable named {', '.join(TRACE_KEYS)}; "
                                 f"the file holds {', '.join(names)}")
        rate = mat_fs(m, fs)
        if rate <= 0:
            raise RecordingError(f"{path}: no sampling rate in the file (sr, fs or dt); pass it with --fs")
        self.path, self.key, self._h5 = path, key, None
        x = m[key]
        shape = x.shape[::-1] if "__h5file__" in m and not isinstance(x, np.ndarray) else np.shape(x)
        self.time_axis = 0 if len(shape) == 1 or 1 in shape or shape[0] >= shape[1] else 1  # in MATLAB's shape
        n_samples = max(shape) if len(shape) == 1 or 1 in shape else shape[self.time_axis]
        n_channels = 1 if len(shape) == 1 or 1 in shape else shape[1 - self.time_axis]
        self._data = None
        if isinstance(x, np.ndarray):  # v5, or a small v7.3 variable: in memory as (samples, channels)
            x = x.reshape(-1, 1) if n_channels == 1 else (x if self.time_axis == 0 else x.T)
            self._data = np.ascontiguousarray(x)
        if "__h5file__" in m:
            m["__h5file__"].close()
        self._init_meta(rate, [str(i) for i in range(n_channels)], n_samples, gain_uv, offset_uv, source=str(path))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"] = None  # a worker process reopens the file
        return state

    def _read_raw(self, start, stop, channels):
        if self._data is not None:
            return self._data[start:stop][:, channels]
        if self._h5 is None:
            import h5py

            self._h5 = h5py.File(self.path, "r")
        ds = self._h5[self.key]  # HDF5 shape = MATLAB shape reversed
        if ds.ndim == 1 or 1 in ds.shape:
            x = np.asarray(ds[()]).reshape(-1, 1)[start:stop]
        elif self.time_axis == 0:  # MATLAB (samples, channels) -> HDF5 (channels, samples)
            x = ds[:, start:stop].T
        else:
            x = ds[start:stop, :]
        return x[:, channels]


def read_mat_ground_truth(path, fs: float = 0.0) -> Sorting:
    """A ground-truth Sorting from a ``.mat`` file (keys in the module docstring)."""
    path = Path(path)
    m = _load(path)
    rate = mat_fs(m, fs)
    if rate <= 0:
        raise RecordingError(f"{path}: no sampling rate in the file (sr, fs or dt); pass it with --gt-fs")
    for tkey, ukey in (("true_spike_times", "true_spike_class"), ("spike_times", "spike_class"), ("ec_st", "label")):
        if tkey in m:
            t = np.asarray(m[tkey]).ravel().astype(np.int64)
            u = np.asarray(m[ukey]).ravel().astype(np.int64) if ukey in m else np.ones_like(t)
            if tkey == "ec_st":  # only the identified cell is ground truth
                t, u = t[u == 1], u[u == 1]
            if t.size != u.size:
                raise RecordingError(f"{path}: {tkey} has {t.size} entries but {ukey} has {u.size}")
            order = np.argsort(t, kind="stable")
            return Sorting(t[order], np.zeros(t.size, np.int64), u[order], rate)
    raise RecordingError(f"{path}: no ground truth found; expected true_spike_times/true_spike_class, "
                         "spike_times/spike_class or ec_st/label")
