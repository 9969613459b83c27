"""The Recording contract: lazy multichannel traces in µV, read by sample range.

A source implements its metadata and :meth:`Recording._read_raw`; the public
:meth:`Recording.get_traces` clips bounds, maps channels, reads, and applies gain and
offset in exactly one place (as neo's ``rescale_signal_raw_to_float`` does).
Preprocessing wrappers (``preprocess.py``) are Recordings around a Recording.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .errors import RecordingError


class Recording:
    """Base class of every trace source and wrapper.

    Attributes
    ----------
    fs : float
        Sampling rate in Hz.
    channel_ids : ndarray of shape (n_channels,), str
    positions_um : ndarray of shape (n_channels, 2), float, µm
    n_samples : int
    gain_uv : ndarray of shape (n_channels,), float
        µV per raw unit.
    offset_uv : ndarray of shape (n_channels,), float
        µV added after scaling.
    source : str
        Where the traces come from (file path or wrapper chain).
    electrode_labels : list of (dict or None), one per channel, or None
        Set by :func:`spikevae.io.probe.apply_map`: electrode id, bank, pin and label
        of each channel's electrode (None for a channel the map does not place).
    electrode_map : str
        The electrode map file the positions come from ("" = default grid).
    """

    fs: float
    channel_ids: np.ndarray
    positions_um: np.ndarray
    n_samples: int
    gain_uv: np.ndarray
    offset_uv: np.ndarray
    source: str = ""
    electrode_labels: list | None = None
    electrode_map: str = ""

    def _init_meta(self, fs, channel_ids, n_samples, gain_uv=1.0, offset_uv=0.0, positions_um=None, source=""):
        self.fs = float(fs)
        self.channel_ids = np.asarray(channel_ids).astype(str)
        n_ch = len(self.channel_ids)
        self.n_samples = int(n_samples)
        self.gain_uv = np.broadcast_to(np.asarray(gain_uv, dtype=np.float64), (n_ch,)).copy()
        self.offset_uv = np.broadcast_to(np.asarray(offset_uv, dtype=np.float64), (n_ch,)).copy()
        self.positions_um = default_positions(n_ch) if positions_um is None else np.asarray(positions_um, float)
        self.source = str(source)

    @property
    def n_channels(self) -> int:
        return int(len(self.channel_ids))

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def _read_raw(self, start: int, stop: int, channels: np.ndarray) -> np.ndarray:
        """Raw samples (n, len(channels)) in the source's dtype; bounds already clipped."""
        raise NotImplementedError

    def _scale(self, raw: np.ndarray, channels: np.ndarray) -> np.ndarray:
        # one pass (cast and product in float32: the same values as casting first, without the copy)
        out = np.multiply(raw, self.gain_uv[channels].astype(np.float32), dtype=np.float32)
        off = self.offset_uv[channels]
        if np.any(off):
            out += off.astype(np.float32)
        return out

    def get_traces(self, start: int = 0, stop: int | None = None, channels=None) -> np.ndarray:
        """Traces of samples ``[start, stop)`` in µV.

        Parameters
        ----------
        start, stop : int
            Sample range; clipped to the recording.
        channels : array-like of int, optional
            Channel indices (default: all).

        Returns
        -------
        ndarray of shape (stop - start, n_channels), float32, µV
        """
        stop = self.n_samples if stop is None else stop
        start, stop = max(0, int(start)), min(self.n_samples, int(stop))
        idx = np.arange(self.n_channels) if channels is None else np.asarray(channels, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_channels):
            raise RecordingError(f"{self.source}: channel index out of range 0..{self.n_channels - 1}")
        if stop <= start:
            return np.zeros((0, idx.size), dtype=np.float32)
        return self._scale(self._read_raw(start, stop, idx), idx)

    def chunks(self, chunk_samples: int) -> Iterator[tuple[int, int]]:
        """Successive ``(start, stop)`` ranges covering the recording."""
        for s in range(0, self.n_samples, int(chunk_samples)):
            yield s, min(s + int(chunk_samples), self.n_samples)

    def describe(self) -> dict:
        """Plain facts about the recording, for ``spikevae info`` and the run store."""
        return {
            "source": self.source, "fs": self.fs, "n_channels": self.n_channels,
            "n_samples": self.n_samples, "duration_s": round(self.duration_s, 3),
            "channel_ids": self.channel_ids.tolist(),
            "gain_uv": sorted(set(np.round(self.gain_uv, 6).tolist())),
            "positions_um": np.round(self.positions_um, 3).tolist(),
        } | ({"electrode_map": self.electrode_map, "electrode_labels": self.electrode_labels}
             if self.electrode_labels is not None else {})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.n_channels} channels, {self.fs:g} Hz, "
                f"{self.duration_s:.2f} s, {self.source})")


class ChannelSubset(Recording):
    """A Recording restricted to some channels (by index)."""

    def __init__(self, parent: Recording, channels):
        self.parent = parent
        self.index = np.asarray(channels, dtype=np.int64)
        self._init_meta(parent.fs, parent.channel_ids[self.index], parent.n_samples,
                        1.0, 0.0, parent.positions_um[self.index], parent.source)
        if parent.electrode_labels is not None:
            self.electrode_labels = [parent.electrode_labels[i] for i in self.index]
            self.electrode_map = parent.electrode_map

    def get_traces(self, start=0, stop=None, channels=None):
        idx = self.index if channels is None else self.index[np.asarray(channels, dtype=np.int64)]
        return self.parent.get_traces(start, stop, idx)

    def _read_raw(self, start: int, stop: int, channels: np.ndarray) -> np.ndarray:
        return self.parent._read_raw(start, stop, self.index[np.asarray(channels, dtype=np.int64)])


def get_chunk_with_margin(rec: Recording, start: int, stop: int, margin: int, channels=None) -> tuple[np.ndarray, int, int]:
    """Traces of ``[start - margin, stop + margin)`` with reflect padding at the file ends.

    Returns
    -------
    traces : ndarray of shape (stop - start + 2 * margin, n_channels), float32
    left, right : int
        Number of margin samples before and after the requested range (always ``margin``).
    """
    lo, hi = max(0, start - margin), min(rec.n_samples, stop + margin)
    x = rec.get_traces(lo, hi, channels)
    pad_l, pad_r = margin - (start - lo), margin - (hi - stop)
    if pad_l or pad_r:
        mode = "reflect" if x.shape[0] > max(pad_l, pad_r) else "edge"
        x = np.pad(x, ((pad_l, pad_r), (0, 0)), mode=mode)
    return x, margin, margin


def default_positions(n_channels: int, pitch_um: float = 400.0) -> np.ndarray:
    """Electrode positions on a square grid (Utah layout spacing), row by row."""
    side = int(np.ceil(np.sqrt(max(n_channels, 1))))
    i = np.arange(n_channels)
    return np.stack([(i % side) * pitch_um, (i // side) * pitch_um], axis=1).astype(float)


def electrode_positions(positions_um, n_electrodes: int) -> np.ndarray:
    """Positions of ``n_electrodes`` electrodes as an array, NaN where unknown.

    Parameters
    ----------
    positions_um : array-like of shape (n_electrodes, 2), µm, or None
        E.g. ``recording_info["positions_um"]`` (a list, NaN for unplaced channels).
    n_electrodes : int

    Returns
    -------
    ndarray of shape (n_electrodes, 2), float64, µm
        All NaN when ``positions_um`` is None or holds another number of rows (e.g. a
        sorting of channel groups).
    """
    pos = np.full((int(n_electrodes), 2), np.nan)
    arr = np.asarray([] if positions_um is None else positions_um, dtype=float).reshape(-1, 2)
    if arr.shape[0] == pos.shape[0]:
        pos[:] = arr
    return pos


def utah_positions(rows: int = 10, cols: int = 10, pitch_um: float = 400.0, drop_corners: bool = True) -> np.ndarray:
    """Positions of a Utah array: a rows x cols grid, without the 4 corners by default (96 for 10 x 10)."""
    pts = [(c * pitch_um, r * pitch_um) for r in range(rows) for c in range(cols)
           if not (drop_corners and r in (0, rows - 1) and c in (0, cols - 1))]
    return np.asarray(pts, dtype=float)


class ArrayRecording(Recording):
    """An in-memory recording (tests, simulations, small files)."""

    def __init__(self, traces_uv: np.ndarray, fs: float, channel_ids=None, positions_um=None, source="array"):
        self.traces = np.asarray(traces_uv, dtype=np.float32)
        if self.traces.ndim != 2:
            raise RecordingError("traces must be 2-D (n_samples, n_channels)")
        n, c = self.traces.shape
        ids = np.arange(c).astype(str) if channel_ids is None else channel_ids
        self._init_meta(fs, ids, n, 1.0, 0.0, positions_um, source)

    def _read_raw(self, start, stop, channels):
        return self.traces[start:stop][:, channels]
