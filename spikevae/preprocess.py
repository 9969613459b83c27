"""Lazy preprocessing wrappers: zero-phase Butterworth bandpass and common median reference.

Each wrapper is a Recording around a Recording. The bandpass reads each requested
range with a margin on both sides (reflect-padded at the file ends), filters forwards
and backwards (``scipy.signal.sosfiltfilt``) and trims, so chunked output equals
filtering the whole trace. The margin is five periods of the low cutoff (as in
SpikeInterface), 20 ms at 250 Hz.

Bands: 250-7500 Hz is Blackrock's spike band; 250-750 Hz is the band named in the
project's design card; 300-6000 Hz is the common choice of offline sorters.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import signal

from .config import param
from .errors import SpikevaeConfigError
from .recording import Recording, get_chunk_with_margin

log = logging.getLogger(__name__)

#: Named bands, (low Hz, high Hz).
BAND_PRESETS = {
    "blackrock": (250.0, 7500.0),
    "card": (250.0, 750.0),
    "offline": (300.0, 6000.0),
}


@dataclass
class PreprocessConfig:
    band: str = param("offline", "named band (blackrock 250-7500 Hz, card 250-750 Hz, offline 300-6000 Hz) or custom",
                      choices=("blackrock", "card", "offline", "custom"))
    freq_min: float = param(300.0, "low cutoff when band = custom", unit="Hz", low=0.1)
    freq_max: float = param(6000.0, "high cutoff when band = custom", unit="Hz", low=1)
    order: int = param(3, "Butterworth order (applied forwards and backwards)", low=1, high=10)
    margin_periods: float = param(5.0, "filter margin in periods of the low cutoff", low=1, high=50)
    cmr: bool = param(False, "subtract the median across channels at each sample (common median reference)")

    def check(self, prefix: str = "") -> None:
        """The custom band must be a band: low cutoff below high cutoff (checked even when a preset
        is chosen, so a file that sets both the wrong way round is caught before it is used)."""
        if self.freq_min >= self.freq_max:
            raise SpikevaeConfigError(
                f"{prefix}freq_min = {self.freq_min:g} Hz is not below {prefix}freq_max = {self.freq_max:g} Hz; "
                "swap them (a bandpass keeps the frequencies between its low and high cutoff)")

    def band_hz(self) -> tuple[float, float]:
        if self.band == "custom":
            return float(self.freq_min), float(self.freq_max)
        return BAND_PRESETS[self.band]


class BandpassRecording(Recording):
    """Zero-phase Butterworth bandpass of a Recording, computed lazily per chunk."""

    def __init__(self, parent: Recording, freq_min: float, freq_max: float, order: int = 3,
                 margin_periods: float = 5.0):
        nyq = parent.fs / 2
        if not 0 < freq_min < freq_max:
            raise SpikevaeConfigError(f"bandpass {freq_min}-{freq_max} Hz: the low cutoff must be positive and below the high cutoff")
        if freq_max >= nyq:
            log.warning("high cutoff %.0f Hz is not below Nyquist (%.0f Hz); using a high-pass at %.0f Hz",
                        freq_max, nyq, freq_min)
            self.sos = signal.butter(order, freq_min, btype="highpass", fs=parent.fs, output="sos")
        else:
            self.sos = signal.butter(order, [freq_min, freq_max], btype="bandpass", fs=parent.fs, output="sos")
        self.parent = parent
        self.band = (float(freq_min), float(freq_max))
        self.margin = int(np.ceil(margin_periods * parent.fs / freq_min))
        self._init_meta(parent.fs, parent.channel_ids, parent.n_samples, 1.0, 0.0, parent.positions_um,
                        f"bandpass({freq_min:g}-{freq_max:g} Hz) <- {parent.source}")

    def get_traces(self, start=0, stop=None, channels=None):
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        start = max(0, int(start))
        if stop <= start:
            n_ch = self.n_channels if channels is None else len(channels)
            return np.zeros((0, n_ch), np.float32)
        x, left, right = get_chunk_with_margin(self.parent, start, stop, self.margin, channels)
        from .io import check_finite

        # check only the samples read from the file, not their reflections in the edge padding
        lo, hi = max(0, start - self.margin), min(self.parent.n_samples, stop + self.margin)
        pad = self.margin - (start - lo)
        check_finite(x[pad:pad + hi - lo], self.parent, lo, channels)
        y = signal.sosfiltfilt(self.sos, x, axis=0)
        return y[left:y.shape[0] - right].astype(np.float32)


class CommonMedianRecording(Recording):
    """Subtract, at each sample, the median across channels."""

    def __init__(self, parent: Recording):
        self.parent = parent
        self._init_meta(parent.fs, parent.channel_ids, parent.n_samples, 1.0, 0.0, parent.positions_um,
                        f"cmr <- {parent.source}")

    def get_traces(self, start=0, stop=None, channels=None):
        x = self.parent.get_traces(start, stop)
        x = x - np.median(x, axis=1, keepdims=True)
        return x if channels is None else x[:, np.asarray(channels, dtype=np.int64)]


def preprocess(rec: Recording, config: PreprocessConfig) -> Recording:
    """The preprocessing chain of a config: bandpass, then optional common median reference."""
    lo, hi = config.band_hz()
    out: Recording = BandpassRecording(rec, lo, hi, config.order, config.margin_periods)
    if config.cmr:
        out = CommonMedianRecording(out)
    return out
