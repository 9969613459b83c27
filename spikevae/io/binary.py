"""Raw binary recordings: a header of ``header_bytes``, then samples in C order.

The layout is that of Kilosort's ``.dat``/``.bin`` files and SpikeInterface's
``BinaryRecordingExtractor``: ``(n_samples, n_channels)`` interleaved, one dtype, no
per-sample timestamps. The file does not say its sampling rate, channel count or gain,
so the user gives them; a size that does not fit is reported with the counts that would.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..recording import Recording

log = logging.getLogger(__name__)

#: Sample types a raw binary file may hold.
RAW_DTYPES = ("int16", "uint16", "int32", "uint32", "int8", "uint8", "float32", "float64")

#: Channel counts worth suggesting when a size does not fit (Utah arrays, common probes).
_COMMON_COUNTS = (96, 128, 64, 32, 16, 192, 256, 384, 8, 4, 1)


def _check_dtype(dtype: str, path: Path) -> np.dtype:
    if str(dtype) not in RAW_DTYPES:
        raise RecordingError(f"{path}: unknown raw sample type {dtype!r}; set input.dtype (--dtype) to one of "
                             f"{', '.join(RAW_DTYPES)}")
    return np.dtype(dtype)


def size_hint(data_bytes: int, n_channels: int, dtype: np.dtype) -> str:
    """Channel counts and dtypes that would divide ``data_bytes`` exactly (for error messages)."""
    # every common count that fits, smallest first, so the true one is never cut from the list
    counts = sorted(c for c in _COMMON_COUNTS if data_bytes % (c * dtype.itemsize) == 0 and c != n_channels)
    sizes = [k for k in (2, 4, 1, 8) if k != dtype.itemsize and data_bytes % (n_channels * k) == 0]
    others = ["/".join(d for d in RAW_DTYPES if np.dtype(d).itemsize == k) for k in sizes]
    parts = []
    if counts:
        parts.append(f"with {dtype.name} it fits {', '.join(map(str, counts))} channels")
    if others:
        parts.append(f"with {n_channels} channels it fits dtype {', '.join(others)}")
    return ("; " + "; ".join(parts)) if parts else "; check input.header_bytes too"


class BinaryRecording(Recording):
    """A raw binary file read through ``np.memmap``, lazily.

    Parameters
    ----------
    path : str or Path
    fs : float
        Sampling rate in Hz (required: the file does not store it).
    n_channels : int
        Number of interleaved channels (required).
    dtype : str
        Sample type, one of :data:`RAW_DTYPES` (default ``"int16"``).
    gain_uv, offset_uv : float
        µV per raw unit and µV added after scaling (defaults 1 and 0).
    header_bytes : int
        Bytes to skip before the first sample (default 0).
    channel_ids : sequence of str, optional
        Names of the channels (default ``"0"``, ``"1"`` ...).
    n_samples : int, optional
        Read at most this many samples (the data of a container format that ends early).

    Raises
    ------
    RecordingError
        When the file is missing or empty, ``fs`` or ``n_channels`` is missing, the
        dtype is unknown, or the data size is not a multiple of
        ``n_channels * itemsize`` (the message names channel counts and dtypes that fit).
    """

    def __init__(self, path, fs: float, n_channels: int, dtype: str = "int16", gain_uv: float = 1.0,
                 offset_uv: float = 0.0, header_bytes: int = 0, channel_ids=None, n_samples: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise RecordingError(f"{self.path}: file not found; check the path")
        if not fs or fs <= 0:
            raise RecordingError(f"{self.path}: a raw binary file does not store its sampling rate; "
                                 "pass --fs (Hz) or set input.fs, e.g. input.fs = 30000")
        if not n_channels or n_channels <= 0:
            raise RecordingError(f"{self.path}: a raw binary file does not store its channel count; "
                                 "pass --n-channels or set input.n_channels, e.g. input.n_channels = 96")
        self.dtype = _check_dtype(dtype, self.path)
        self.header_bytes = int(header_bytes)
        self.file_bytes = self.path.stat().st_size
        data_bytes = self.file_bytes - self.header_bytes
        frame = int(n_channels) * self.dtype.itemsize
        if data_bytes <= 0:
            raise RecordingError(f"{self.path}: no samples after the {self.header_bytes}-byte header "
                                 f"(file has {self.file_bytes} bytes); check the file and input.header_bytes")
        if n_samples is not None:  # a file cut short inside a container format: read what is there
            data_bytes = min(data_bytes, int(n_samples) * frame)
        if data_bytes % frame:
            raise RecordingError(
                f"{self.path}: {data_bytes} data bytes is not a multiple of n_channels x itemsize = "
                f"{n_channels} x {self.dtype.itemsize} = {frame} bytes, so the channel count or dtype is wrong"
                + size_hint(data_bytes, int(n_channels), self.dtype))
        if np.any(np.asarray(gain_uv) <= 0):
            raise RecordingError(f"{self.path}: input.gain_uv = {np.min(gain_uv):g} µV per unit; a gain must be positive "
                                 "(a negative one would invert every spike): pass --gain-uv with the amplifier's "
                                 "µV per bit, and set detect.polarity for positive-going spikes")
        self._memmap = None
        ids = np.arange(n_channels).astype(str) if channel_ids is None else channel_ids
        self._init_meta(fs, ids, data_bytes // frame, gain_uv, offset_uv, source=str(self.path))
        self._check_dtype_plausible()

    def _check_dtype_plausible(self, n: int = 20000) -> None:
        """Refuse integer data whose values look like another sample type read with the wrong dtype.

        Float32 samples read as int16 put each float's sign-and-exponent half in every other
        sample: half the values sit near the type's limits, which no amplifier produces.
        """
        if self.dtype.kind not in "iu" or self.dtype.itemsize > 2:
            return
        x = np.asarray(self._map()[: min(self.n_samples, max(1, n // self.n_channels))], dtype=np.float64)
        info = np.iinfo(self.dtype)
        centre = (float(info.max) + float(info.min)) / 2
        far = np.abs(x - centre) > 0.5 * (info.max - centre)
        if x.size >= 100 and far.mean() > 0.3:
            raise RecordingError(
                f"{self.path}: {100 * far.mean():.0f} % of the first samples lie near the limits of {self.dtype.name}, "
                "as when the file holds another sample type (float32?); check --dtype and --n-channels")

    def _map(self) -> np.memmap:
        if self._memmap is None:
            self._memmap = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.header_bytes,
                                     shape=(self.n_samples, self.n_channels), order="C")
        return self._memmap

    def __getstate__(self):
        # A pickled memmap would copy the whole file; workers map it again instead.
        state = self.__dict__.copy()
        state["_memmap"] = None
        return state

    def _read_raw(self, start, stop, channels):
        block = self._map()[start:stop]
        if channels.size == self.n_channels and np.array_equal(channels, np.arange(self.n_channels)):
            return np.array(block)
        return block[:, channels]

    def describe(self) -> dict:
        info = super().describe()
        info.update({"reader": "raw binary", "dtype": self.dtype.name, "header_bytes": self.header_bytes,
                     "file_bytes": self.file_bytes, "offset_uv": sorted(set(self.offset_uv.tolist()))})
        return info
