"""Lazy preprocessing wrappers: zero-phase Butterworth bandpass and common median reference.

Each wrapper is a Recording around a Recording. The bandpass reads each requested
range with a margin on both sides (reflect-padded at the file ends), filters it with the
Butterworth filter applied forwards and backwards, and trims, so chunked output equals
filtering the whole trace. The margin is five periods of the low cutoff (as in
SpikeInterface), 20 ms at 250 Hz.

Forwards-backwards filtering is a convolution with the zero-phase kernel ``h(t) * h(-t)``,
whose frequency response is ``|H(f)|²``. The bandpass applies that response in the frequency
domain (one real FFT of the chunk with its margins, a product, one inverse FFT, in float32):
4-5 times faster than ``scipy.signal.sosfiltfilt`` on 96 channels, with the same output away
from the chunk's ends. The FFT is circular, so the kernel wraps around the chunk's ends
where ``sosfiltfilt`` pads instead; both differences stay inside the margin, which is
discarded (the kernel of the 300-6000 Hz band falls below 1e-5 of its peak within 9 ms and
below 1e-7 within 14 ms; the margin is 17 ms). ``engine="sos"`` keeps ``sosfiltfilt`` as the reference; the tests
check that both agree to float tolerance.

With ``device`` a CUDA device (``preprocess.device = cuda``) the same product runs as torch FFTs
on the GPU (:func:`filtfilt_fft_torch`): the chunk goes to the device, the filtered chunk comes
back, and the output equals the CPU's to float32 rounding. ``run.device`` does not move the
band-pass: the GPU filters a chunk 7 times faster than one CPU core, but detection then runs its
chunks in threads of one process (one CUDA context), and on an H200 machine with 16 cores that
was 3 times slower than 16 worker processes filtering on the CPU (README, "On a GPU").

Bands: 250-7500 Hz is Blackrock's spike band; 250-750 Hz is the band named in the
project's design card; 300-6000 Hz is the common choice of offline sorters.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
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
    device: str = param("cpu", "where the band-pass FFTs run: cpu (scipy), cuda / cuda:N (torch on the GPU; equal "
                               "to float32 rounding; slower than the CPU with 16 cores, may pay with few (not measured): "
                               "README, On a GPU), "
                               "auto (CUDA if present)")

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


def zero_phase_gain(sos: np.ndarray, n_fft: int, fs: float) -> np.ndarray:
    """``|H(f)|²`` of the sections ``sos`` at the frequencies of a real FFT of length ``n_fft``.

    Returns
    -------
    ndarray of shape (n_fft // 2 + 1,), float32
        The gain of the filter applied forwards and backwards at ``k * fs / n_fft`` Hz.
    """
    f = np.arange(n_fft // 2 + 1) * (fs / n_fft)
    _, h = signal.sosfreqz(sos, worN=f, fs=fs)
    return (np.abs(h) ** 2).astype(np.float32)


def filtfilt_fft(x: np.ndarray, gain: np.ndarray, n_fft: int) -> np.ndarray:
    """Zero-phase filtering of ``x`` along its first axis by the gain ``|H|²`` of a real FFT.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_channels), float32
        The traces with their margins; ``n_samples <= n_fft`` (zero-padded to ``n_fft``).
    gain : ndarray of shape (n_fft // 2 + 1,), float32
        :func:`zero_phase_gain` for ``n_fft``.
    n_fft : int

    Returns
    -------
    ndarray of shape (n_samples, n_channels), float32
        Equal to ``sosfiltfilt`` of ``x`` except within the kernel's length of either end.
    """
    n = x.shape[0]
    # One channel per row: FFTs along contiguous rows are ~30 % faster than along the strided axis.
    # The mean is removed first (the band rejects it; this keeps float32 rounding relative to the signal).
    # The rows are zero-padded to n_fft here, in the one copy the transposition makes anyway, rather than
    # by rfft(n=n_fft), which would copy them again.
    xt = np.empty((x.shape[1], n_fft), np.float32)
    np.subtract(x.T, x.mean(axis=0, dtype=np.float64)[:, None], out=xt[:, :n], casting="unsafe")
    xt[:, n:] = 0.0
    spec = sp_fft.rfft(xt, axis=1, overwrite_x=True)
    spec *= gain
    y = sp_fft.irfft(spec, n=n_fft, axis=1, overwrite_x=True)
    return y[:, :n].T


def filtfilt_fft_torch(x: np.ndarray, gain: np.ndarray, n_fft: int, device) -> np.ndarray:
    """:func:`filtfilt_fft` with torch FFTs on ``device`` (a CUDA GPU; the CPU works too, for tests).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_channels)
    gain : ndarray of shape (n_fft // 2 + 1,), float32, or a torch tensor of it on ``device``
    n_fft : int
    device : torch.device

    Returns
    -------
    ndarray of shape (n_samples, n_channels), float32
        Equal to :func:`filtfilt_fft` to float32 rounding.
    """
    import torch

    n = x.shape[0]
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    xt = xt.T  # (channels, samples): each channel's FFT over contiguous samples
    # the mean is removed in float64, as on the CPU, then the rows are zero-padded to n_fft by the FFT
    xd = xt.double()
    xc = (xd - xd.mean(dim=1, keepdim=True)).float()
    spec = torch.fft.rfft(xc, n=n_fft, dim=1)
    g = gain if isinstance(gain, torch.Tensor) else torch.from_numpy(np.asarray(gain, np.float32)).to(device)
    spec *= g
    y = torch.fft.irfft(spec, n=n_fft, dim=1)[:, :n]
    return y.T.contiguous().cpu().numpy()


class BandpassRecording(Recording):
    """Zero-phase Butterworth bandpass of a Recording, computed lazily per chunk.

    Parameters
    ----------
    parent : Recording
    freq_min, freq_max : float
        Cutoffs, Hz; a high cutoff at or above Nyquist gives a high-pass at ``freq_min``.
    order : int, default 3
        Butterworth order (the filter runs forwards and backwards, so the attenuation doubles).
    margin_periods : float, default 5.0
        Samples read on each side of a chunk, in periods of ``freq_min``.
    engine : {"fft", "sos"}, default "fft"
        ``fft``: ``|H|²`` applied by real FFTs (fast); ``sos``: ``scipy.signal.sosfiltfilt``
        (the reference; the same output to float tolerance).
    device : str, default "cpu"
        Where the ``fft`` engine runs: ``cpu`` (scipy), ``cuda`` / ``cuda:N`` (torch on the GPU) or
        ``auto`` (CUDA when torch sees one). Resolved here, so a missing GPU is an error at once.
    """

    ENGINES = ("fft", "sos")

    def __init__(self, parent: Recording, freq_min: float, freq_max: float, order: int = 3,
                 margin_periods: float = 5.0, engine: str = "fft", device: str = "cpu"):
        nyq = parent.fs / 2
        if not 0 < freq_min < freq_max:
            raise SpikevaeConfigError(f"bandpass {freq_min}-{freq_max} Hz: the low cutoff must be positive and below the high cutoff")
        if engine not in self.ENGINES:
            raise SpikevaeConfigError(f"bandpass engine {engine!r} is unknown; use one of {', '.join(self.ENGINES)}")
        if freq_max >= nyq:
            log.warning("high cutoff %.0f Hz is not below Nyquist (%.0f Hz); using a high-pass at %.0f Hz",
                        freq_max, nyq, freq_min)
            self.sos = signal.butter(order, freq_min, btype="highpass", fs=parent.fs, output="sos")
        else:
            self.sos = signal.butter(order, [freq_min, freq_max], btype="bandpass", fs=parent.fs, output="sos")
        self.parent = parent
        self.engine = engine
        self.band = (float(freq_min), float(freq_max))
        self.margin = int(np.ceil(margin_periods * parent.fs / freq_min))
        self._gains: dict[int, np.ndarray] = {}
        self.device = "cpu"
        if (device or "cpu").strip().lower() != "cpu":
            from .device import resolve_device
            from .errors import SpikevaeError

            try:
                self.device = str(resolve_device(device))
            except SpikevaeError as exc:
                reason = str(exc).split(";")[0]  # resolve_device's own advice names --device, not this key
                raise SpikevaeConfigError(f"preprocess.device = {device!r}: {reason}; band-pass on the CPU with "
                                          "--set preprocess.device=cpu") from None
        if self.device != "cpu" and engine != "fft":
            raise SpikevaeConfigError(f"bandpass engine {engine!r} runs on the CPU only; use engine fft on {self.device}")
        self._device_gains: dict = {}  # n_fft -> gain tensor on self.device (not pickled)
        self._init_meta(parent.fs, parent.channel_ids, parent.n_samples, 1.0, 0.0, parent.positions_um,
                        f"bandpass({freq_min:g}-{freq_max:g} Hz) <- {parent.source}")

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if self.engine == "sos":
            return signal.sosfiltfilt(self.sos, x, axis=0)
        n_fft = sp_fft.next_fast_len(x.shape[0], real=True)
        gain = self._gains.get(n_fft)
        if gain is None:
            if len(self._gains) > 8:  # chunk lengths vary only at the end of a recording
                self._gains.clear()
            gain = self._gains[n_fft] = zero_phase_gain(self.sos, n_fft, self.fs)
        if self.device == "cpu":
            return filtfilt_fft(x, gain, n_fft)
        import torch

        dev = torch.device(self.device)
        g = self._device_gains.get(n_fft)
        if g is None:
            if len(self._device_gains) > 8:
                self._device_gains.clear()
            g = self._device_gains[n_fft] = torch.from_numpy(gain).to(dev)
        return filtfilt_fft_torch(x, g, n_fft, dev)

    def __getstate__(self):  # worker processes get the gains as arrays, never tensors on this process's GPU
        state = self.__dict__.copy()
        state["_device_gains"] = {}
        return state

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
        y = self._filter(x)
        return np.ascontiguousarray(y[left:y.shape[0] - right], dtype=np.float32)


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
    out: Recording = BandpassRecording(rec, lo, hi, config.order, config.margin_periods, device=config.device)
    if config.cmr:
        out = CommonMedianRecording(out)
    return out
