"""MATLAB ``.mat`` recordings and ground truths (Wave_clus / Quiroga, CBP demo, hc-1 extracts).

MATLAB v5 files cannot be read lazily, so the whole variable is loaded: meant for the
short benchmark recordings that circulate as ``.mat`` (a 5-minute 4-channel file at
24 kHz is 115 MB as float64). Longer recordings belong in NSx, raw binary or HDF5.

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


def _load(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except NotImplementedError:
        raise RecordingError(f"{path}: MATLAB v7.3 file; it is HDF5 inside: convert it to the spikevae HDF5 "
                             "layout (see README) or read it with --format hdf5 after renaming") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise RecordingError(f"{path}: not a readable .mat file ({exc})") from None


def mat_fs(m: dict, fallback: float = 0.0) -> float:
    """Sampling rate in Hz from ``sr``/``fs``/``dt`` keys, else ``fallback``."""
    for k in ("sr", "fs", "Fs", "samplingInterval"):
        if k in m:
            return float(np.asarray(m[k]).ravel()[0])
    if "dt" in m:
        return 1.0 / float(np.asarray(m["dt"]).ravel()[0])
    return float(fallback)


class MatRecording(Recording):
    """Traces from a MATLAB v5 ``.mat`` file (loaded whole; see the module docstring)."""

    def __init__(self, path, fs: float = 0.0, gain_uv: float = 1.0, offset_uv: float = 0.0):
        path = Path(path)
        m = _load(path)
        key = next((k for k in TRACE_KEYS if k in m), None)
        if key is None:
            names = [k for k in m if not k.startswith("__")]
            raise RecordingError(f"{path}: no traces found; expected a variable named {', '.join(TRACE_KEYS)}; "
                                 f"the file holds {', '.join(names)}")
        x = np.asarray(m[key])
        if x.ndim == 1 or 1 in x.shape:
            x = x.reshape(-1, 1)
        elif x.shape[0] < x.shape[1]:
            x = x.T
        rate = mat_fs(m, fs)
        if rate <= 0:
            raise RecordingError(f"{path}: no sampling rate in the file (sr, fs or dt); pass it with --fs")
        self._data = np.ascontiguousarray(x)
        self._init_meta(rate, [str(i) for i in range(x.shape[1])], x.shape[0], gain_uv, offset_uv,
                        source=str(path))

    def _read_raw(self, start, stop, channels):
        return self._data[start:stop][:, channels]


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
