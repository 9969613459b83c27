"""Background noise for simulated recordings: 1/f plus white, coloured by a finite FIR filter.

Noise is generated lazily in fixed blocks of ``block`` samples. White Gaussian noise of
block ``j`` comes from ``np.random.default_rng([seed, 7, j])``; the coloured block ``j``
is the FIR filter applied to the last ``taps - 1`` white samples of block ``j - 1``
followed by block ``j`` (FFT convolution of a fixed size). FFT sizes and channel groups are fixed, so every output block is
therefore computed the same way whichever range a caller asks for, so any sample's
value does not depend on how reads are chunked (bit-identical).

Spectrum (power, before the per-electrode scale)::

    S(f) = (1 + (f_c / f) ** a) / (1 + (f / f_lp) ** 2)

with ``f_c`` the corner where the 1/f part equals the white part and ``f_lp`` the
amplifier's anti-aliasing roll-off. The FIR is scaled analytically so that the noise
has σ = 1 after the zero-phase 300-6000 Hz Butterworth bandpass that defines SNR;
each electrode then multiplies it by its own σ in µV.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

from ..recording import Recording

_WHITE_STREAM = 7  # entropy word that separates noise blocks from other random streams
_T_STREAM = 22  # entropy word of the Student-t scales (heavy-tailed noise)


def noise_psd(freqs_hz: np.ndarray, pink_exponent: float, corner_hz: float, lowpass_hz: float) -> np.ndarray:
    """Relative power spectral density S(f) of the simulated noise (white level 1 at mid frequencies)."""
    f = np.maximum(np.asarray(freqs_hz, float), 1.0)
    return (1.0 + (corner_hz / f) ** pink_exponent) / (1.0 + (f / lowpass_hz) ** 2)


def filtered_impulse(h: np.ndarray, fs: float, band: tuple[float, float], order: int = 3) -> np.ndarray:
    """Impulse response of FIR ``h`` followed by the zero-phase bandpass (padded by 0.1 s each side)."""
    sos = signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    pad = int(0.1 * fs)
    return signal.sosfiltfilt(sos, np.pad(h, (pad, pad)))


def colouring_fir(fs: float, taps: int, pink_exponent: float, corner_hz: float, lowpass_hz: float,
                  band: tuple[float, float], order: int = 3) -> np.ndarray:
    """FIR filter whose output, for unit white input, has the spectrum S(f) and σ = 1 in ``band``.

    Frequency sampling of sqrt(S) (zero phase), centred and Hann-windowed, then scaled so
    that the bandpass-filtered output has unit variance (σ² = Σ h_eff², Parseval).

    Returns
    -------
    ndarray of shape (taps,), float64
    """
    freqs = np.fft.rfftfreq(taps, 1.0 / fs)
    h = np.fft.irfft(np.sqrt(noise_psd(freqs, pink_exponent, corner_hz, lowpass_hz)), taps)
    h = np.roll(h, taps // 2) * np.hanning(taps)
    return h / np.sqrt(np.sum(filtered_impulse(h, fs, band, order) ** 2))


class BlockNoise:
    """Coloured Gaussian noise, generated block by block from (seed, block index).

    Parameters
    ----------
    seed : int
    n_channels : int
    fir : ndarray of shape (taps,)
        Colouring filter (unit σ after the SNR bandpass, see :func:`colouring_fir`).
    scale_uv : ndarray of shape (n_channels,), µV
        σ of each channel after the SNR bandpass.
    block : int
        Samples per block (larger than ``taps``).
    common_fraction : float
        Fraction of each channel's variance that is shared by all channels.
    t_dof : float, default 0
        > 2: the white innovations are Student-t with this many degrees of freedom (unit
        variance): Gaussian samples times ``sqrt((ν - 2) / χ²_ν)``, one χ² draw (stream
        ``[seed, 22, j]``) held for ``t_hold`` samples so the heavy tails survive the colouring
        and the spike band's filtering. 0: Gaussian.
    t_hold : int, default 1
        Samples over which one Student-t scale is held.
    """

    #: Channels coloured together; bounds the FFT work arrays (about 2.5 MB per group at 32768 samples).
    GROUP = 8

    def __init__(self, seed: int, n_channels: int, fir: np.ndarray, scale_uv: np.ndarray, block: int,
                 common_fraction: float = 0.0, t_dof: float = 0.0, t_hold: int = 1):
        self.seed, self.n_channels, self.block = int(seed), int(n_channels), int(block)
        self.fir = np.asarray(fir, float)
        self.scale_uv = np.asarray(scale_uv, float)
        self.common_fraction = float(common_fraction)
        self.t_dof, self.t_hold = float(t_dof), max(1, int(t_hold))
        self._n_fft = sp_fft.next_fast_len(self.block + self.fir.shape[0] - 1, real=True)
        self._fir_fft = sp_fft.rfft(self.fir, self._n_fft)
        self._tail: tuple[int, np.ndarray] | None = None  # (j, last taps - 1 white samples of block j)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tail"] = None
        return state

    def _white(self, j: int) -> np.ndarray:
        """White noise of block j (j >= -1), shape (block, n_channels + 1), float32."""
        rng = np.random.default_rng([self.seed, _WHITE_STREAM, j + 1])
        white = rng.standard_normal((self.block, self.n_channels + 1), dtype=np.float32)
        if self.t_dof > 0:
            n_seg = -(-self.block // self.t_hold)
            chi2 = np.random.default_rng([self.seed, _T_STREAM, j + 1]).chisquare(self.t_dof, (n_seg, white.shape[1]))
            scale = np.sqrt((self.t_dof - 2.0) / chi2).astype(np.float32)
            white *= np.repeat(scale, self.t_hold, axis=0)[:self.block]
        return white

    def _colour(self, w: np.ndarray) -> np.ndarray:
        """Valid part of the FIR convolution of w (block + taps - 1, g), float64 (block, g)."""
        k = self.fir.shape[0]
        y = sp_fft.irfft(sp_fft.rfft(w, self._n_fft, axis=0) * self._fir_fft[:, None], self._n_fft, axis=0)
        return y[k - 1:k - 1 + self.block]

    def add_block_uv(self, j: int, out: np.ndarray) -> None:
        """Add the noise of block j (µV) into ``out`` of shape (block, n_channels), float64, in place."""
        k = self.fir.shape[0]
        tail = self._tail[1] if self._tail is not None and self._tail[0] == j - 1 else \
            self._white(j - 1)[self.block - (k - 1):]
        white = self._white(j)
        c = self.common_fraction
        common = self._colour(np.concatenate([tail[:, -1:], white[:, -1:]]).astype(np.float64))[:, 0] \
            if c > 0 else None
        for g in range(0, self.n_channels, self.GROUP):
            cols = slice(g, min(g + self.GROUP, self.n_channels))
            y = self._colour(np.concatenate([tail[:, cols], white[:, cols]]).astype(np.float64))
            y *= np.sqrt(1.0 - c)
            if common is not None:
                y += np.sqrt(c) * common[:, None]
            out[:, cols] += y * self.scale_uv[cols]
        self._tail = (j, white[self.block - (k - 1):].copy())

    def block_uv(self, j: int) -> np.ndarray:
        """Noise of block j, shape (block, n_channels), float64, µV."""
        out = np.zeros((self.block, self.n_channels))
        self.add_block_uv(j, out)
        return out


class RecordedNoise:
    """Noise taken from a real (or any) Recording, tiled in time and over channels.

    Sample ``t`` of channel ``e`` is sample ``t mod n`` of channel ``e mod n_channels``
    of the source, so the noise is as long as the simulation needs. Each block reads
    only its own samples from the source (streamed; the source is never loaded whole).
    """

    def __init__(self, source: Recording, n_channels: int, block: int):
        self.source, self.n_channels, self.block = source, int(n_channels), int(block)
        self.channels = np.arange(n_channels) % source.n_channels

    def add_block_uv(self, j: int, out: np.ndarray) -> None:
        """Add the noise of block j (µV) into ``out`` of shape (block, n_channels), in place."""
        out += self.block_uv(j)

    def block_uv(self, j: int) -> np.ndarray:
        """Noise of block j, shape (block, n_channels), float64, µV."""
        n = self.source.n_samples
        idx = np.arange(j * self.block, (j + 1) * self.block) % n
        out = np.empty((self.block, self.n_channels), np.float64)
        pos = 0
        while pos < self.block:  # contiguous runs of the source, wrapping at its end
            start = int(idx[pos])
            run = min(self.block - pos, n - start)
            out[pos:pos + run] = self.source.get_traces(start, start + run, self.channels)
            pos += run
        return out


class BackgroundRecording(Recording):
    """A recording prepared as simulation background: high-passed, with its own spikes blanked.

    Computed lazily per chunk (reads stream through the source). Samples within
    ``blank`` of a sample whose |value| exceeds ``blank_sd`` robust σ of its channel
    (median |x| / 0.6745 of the high-passed source, measured on its first 10 s) are
    set to 0, so the source's own spikes do not enter the simulation as unscored events.
    A read of ``[start, stop)`` looks ``blank`` samples beyond each end, so the result
    does not depend on how reads are chunked.

    Parameters
    ----------
    source : Recording
    highpass_hz : float
        Cutoff of the high-pass (a bandpass up to 0.45 fs); 0 uses the source as it is.
    blank_sd : float
        Threshold in robust σ; 0 keeps every sample.
    blank : int
        Samples blanked on each side of a sample beyond the threshold.
    """

    #: Channels measured together when the thresholds are set (bounds memory for 96+ channels).
    GROUP = 16

    def __init__(self, source: Recording, highpass_hz: float, blank_sd: float, blank: int):
        from ..preprocess import BandpassRecording

        self.origin = source
        self.parent = BandpassRecording(source, highpass_hz, 0.45 * source.fs) if highpass_hz > 0 else source
        self.blank_sd, self.blank = float(blank_sd), int(blank)
        self._init_meta(source.fs, source.channel_ids, source.n_samples, 1.0, 0.0, source.positions_um,
                        f"background(highpass {highpass_hz:g} Hz, blank {blank_sd:g} sd) <- {source.source}")
        self.threshold_uv = self.blank_sd * self._robust_sigma() if self.blank_sd > 0 else None
        self.blanked_fraction = self._blanked_fraction() if self.blank_sd > 0 else 0.0

    def _robust_sigma(self) -> np.ndarray:
        n = min(self.n_samples, int(10 * self.fs))
        out = np.empty(self.n_channels)
        for g in range(0, self.n_channels, self.GROUP):
            ch = np.arange(g, min(g + self.GROUP, self.n_channels))
            out[ch] = np.median(np.abs(self.parent.get_traces(0, n, ch)), axis=0) / 0.6745
        return np.maximum(out, 1e-6)

    def _blanked_fraction(self) -> float:
        """Fraction of the samples blanked in the first 10 s (all channels)."""
        n = min(self.n_samples, int(10 * self.fs))
        total = 0
        for g in range(0, self.n_channels, self.GROUP):
            ch = np.arange(g, min(g + self.GROUP, self.n_channels))
            total += int((self.get_traces(0, n, ch) == 0).sum())
        return total / max(1, n * self.n_channels)

    def get_traces(self, start=0, stop=None, channels=None):
        stop = self.n_samples if stop is None else min(int(stop), self.n_samples)
        start = max(0, int(start))
        ch = np.arange(self.n_channels) if channels is None else np.asarray(channels, np.int64)
        if self.threshold_uv is None or stop <= start:
            return self.parent.get_traces(start, stop, ch)
        lo, hi = max(0, start - self.blank), min(self.n_samples, stop + self.blank)
        x = self.parent.get_traces(lo, hi, ch)
        hit = (np.abs(x) > self.threshold_uv[ch]).astype(np.uint8)
        if self.blank:
            from scipy.ndimage import maximum_filter1d

            hit = maximum_filter1d(hit, 2 * self.blank + 1, axis=0, mode="constant")
        x[hit.astype(bool)] = 0.0
        return np.ascontiguousarray(x[start - lo:start - lo + stop - start])


def measured_sigma(x: np.ndarray, fs: float, band: tuple[float, float], order: int = 3) -> np.ndarray:
    """Robust σ (median |x| / 0.6745) of each column of ``x`` after the zero-phase bandpass.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_channels), µV

    Returns
    -------
    ndarray of shape (n_channels,), µV
    """
    sos = signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    y = signal.sosfiltfilt(sos, np.asarray(x, float), axis=0)
    return np.median(np.abs(y), axis=0) / 0.6745
