"""Metrics of one unit's waveforms and amplitudes: SNR, amplitude cutoff, noise cutoff."""
from __future__ import annotations

import numpy as np


def snr(waveforms: np.ndarray, noise_uv: float) -> float:
    """Signal-to-noise ratio: |extremum of the mean waveform| / noise σ of the electrode.

    SpikeInterface's ``snr`` with ``peak_mode="extremum"`` (template amplitude on the main
    channel over its MAD noise level); the noise σ is the electrode's MAD estimate from
    detection (Quiroga et al. 2004).

    Parameters
    ----------
    waveforms : ndarray of shape (n_spikes, n_samples), float32, µV
    noise_uv : float
        Noise standard deviation of the electrode, µV.
    """
    return snr_of_mean(waveforms.mean(axis=0, dtype=np.float64) if waveforms.shape[0] else None, noise_uv)


def snr_of_mean(template: np.ndarray | None, noise_uv: float) -> float:
    """:func:`snr` from the unit's mean waveform (None: no waveforms, NaN)."""
    if template is None or noise_uv <= 0:
        return float("nan")
    return float(np.abs(template).max() / noise_uv)


def amplitude_cutoff(amplitudes: np.ndarray, n_bins: int = 100, smoothing: float = 3.0,
                     min_ratio: float = 5.0) -> float:
    """Estimated fraction of spikes missed below the detection threshold.

    Hill et al. 2011 (J Neurosci 31:8699), as implemented by the Allen Institute
    (``ecephys_spike_sorting`` quality_metrics) and in the form of SpikeInterface 0.105: the
    histogram of |amplitude| (``n_bins`` bins, Gaussian smoothing of ``smoothing`` bins) is
    assumed symmetric about its mode; the mass above the last bin whose height reaches that of
    the lowest-amplitude bin mirrors the mass cut off below threshold. Returns
    ``missed / (n + missed)``, capped at 0.5; NaN when there are fewer than
    ``min_ratio * n_bins`` spikes.

    Parameters
    ----------
    amplitudes : ndarray of shape (n_spikes,), µV (sign ignored)
    """
    from scipy.ndimage import gaussian_filter1d

    amps = np.abs(np.asarray(amplitudes, dtype=np.float64))
    if amps.size == 0 or amps.size / n_bins < min_ratio:
        return float("nan")
    h = np.histogram(amps, n_bins)[0]
    pdf = gaussian_filter1d(h, smoothing, mode="nearest")
    last = np.nonzero(pdf >= pdf[0])[0][-1]
    missed = float(np.sum(pdf[last + 1:]))
    return float(min(missed / (amps.size + missed), 0.5))


def noise_cutoff(amplitudes: np.ndarray, high_quantile: float = 0.25, low_quantile: float = 0.1,
                 n_bins: int = 100) -> float:
    """IBL's noise cutoff: how far the low-amplitude bins stand above the high-amplitude tail.

    International Brain Laboratory 2022, "Spike sorting pipeline for the IBL" (metric
    ``noise_cutoff``), in SpikeInterface 0.105's form: with the |amplitude| histogram
    (``n_bins`` bins), ``(mean(low bins) - mean(high bins)) / std(high bins)``, where low bins
    end below the ``low_quantile`` amplitude and high bins start above the
    ``1 - high_quantile`` amplitude. Large values mean a distribution cut off by the
    threshold. NaN when either bin set is too small or the high bins are constant.
    """
    amps = np.abs(np.asarray(amplitudes, dtype=np.float64))
    if amps.size < 2:
        return float("nan")
    counts, edges = np.histogram(amps, bins=n_bins)
    low = np.nonzero(edges[1:] <= np.quantile(amps, low_quantile))[0]
    high = np.nonzero(edges[:-1] >= np.quantile(amps, 1 - high_quantile))[0]
    if low.size == 0 or high.size < 2 or np.std(counts[high]) == 0:
        return float("nan")
    return float((counts[low].mean() - counts[high].mean()) / np.std(counts[high]))
