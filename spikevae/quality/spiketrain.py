"""Metrics of one unit's spike train: rate, presence, refractory-period violations.

Each function takes the sorted spike times of one unit in samples (int64) and returns plain
floats. Definitions follow the cited papers as implemented in SpikeInterface 0.105
(``spikeinterface.metrics.quality.misc_metrics``), so the two agree to float precision
(checked in ``tests/test_quality_spikeinterface.py``).
"""
from __future__ import annotations

import math

import numpy as np


def firing_rate(n_spikes: int, duration_s: float) -> float:
    """Mean firing rate in Hz: spike count over recording duration."""
    return float(n_spikes) / duration_s if duration_s > 0 else float("nan")


def presence_ratio(times: np.ndarray, n_samples: int, fs: float, bin_s: float = 60.0) -> float:
    """Fraction of whole ``bin_s`` bins of the recording that hold at least one spike.

    Siegle et al. 2021 (Allen Brain Observatory) and SpikeInterface's ``presence_ratio``:
    the recording is cut into ``floor(duration / bin_s)`` whole bins from sample 0 (a final
    partial bin is ignored); NaN when the recording is shorter than one bin.

    Parameters
    ----------
    times : ndarray of shape (n_spikes,), int64, samples
    n_samples : int
        Length of the recording in samples.
    fs : float
        Sampling rate in Hz.
    bin_s : float, default 60
        Bin length in seconds.
    """
    bin_n = int(bin_s * fs)
    if n_samples < bin_n or times.size == 0:
        return float("nan")
    edges = np.arange(0, n_samples // bin_n * bin_n + 1, bin_n)
    counts, _ = np.histogram(times, bins=edges)
    return float(np.count_nonzero(counts) / (len(edges) - 1))


def isi_violations(times: np.ndarray, fs: float, duration_s: float,
                   refractory_ms: float = 1.5, censored_ms: float = 0.0) -> dict:
    """ISI violations after Hill et al. 2011 (J Neurosci 31:8699), as in SpikeInterface.

    A violation is an inter-spike interval shorter than the refractory period. With N spikes,
    T the duration, n_v violations, tau_r and tau_c the refractory and censored periods:

    - ``isi_violations_ratio = (n_v / (2 N (tau_r - tau_c))) / (N / T)``, the rate of the
      hypothetical contaminating neuron relative to the unit's rate (Allen's ``isi_viol``);
    - ``isi_violations_rate = n_v / T`` in Hz;
    - ``isi_violations_count = n_v``.

    Returns
    -------
    dict with keys isi_violations_ratio, isi_violations_rate, isi_violations_count
    """
    n = times.size
    if n == 0:
        return {"isi_violations_ratio": float("nan"), "isi_violations_rate": float("nan"),
                "isi_violations_count": 0}
    isi_s = np.diff(times) / fs
    n_v = int(np.count_nonzero(isi_s < refractory_ms / 1000.0))
    violation_time = 2 * n * (refractory_ms - censored_ms) / 1000.0
    ratio = (n_v / violation_time) / (n / duration_s)
    return {"isi_violations_ratio": float(ratio), "isi_violations_rate": n_v / duration_s,
            "isi_violations_count": n_v}


def _pair_lags(times: np.ndarray, max_lag: int) -> np.ndarray:
    """Lags t_j - t_i (samples) of every ordered pair i < j with lag <= max_lag."""
    out = []
    shift = 1
    while shift < times.size:
        d = times[shift:] - times[:-shift]
        d = d[d <= max_lag]
        if d.size == 0:
            break
        out.append(d)
        shift += 1
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def rp_contamination(times: np.ndarray, fs: float, n_samples: int,
                     refractory_ms: float = 1.5, censored_ms: float = 0.0) -> tuple[float, int]:
    """Refractory-period contamination of Llobet et al. 2022 (bioRxiv 2022.02.08.479192).

    Counts every pair of spikes closer than tau_r (n_v; three spikes within tau_r make three
    violations) and solves for the contaminating fraction C::

        C = 1 - sqrt(1 - n_v (T - 2 N tau_c) / (N^2 (tau_r - tau_c)))

    (1 when the root is imaginary), with times in samples as in SpikeInterface's
    ``rp_contamination``.

    Returns
    -------
    contamination : float in [0, 1], NaN for fewer than 2 spikes
    n_violations : int
    """
    n = times.size
    t_r = int(round(refractory_ms * fs * 1e-3))
    t_c = int(round(censored_ms * fs * 1e-3))
    n_v = int(_pair_lags(times, t_r).size)
    if n <= 1:
        return float("nan"), n_v
    denom = 1 - n_v * (n_samples - 2 * n * t_c) / (n**2 * (t_r - t_c))
    return (1.0 if denom < 0 else 1 - math.sqrt(denom)), n_v


def sliding_rp_violation(times: np.ndarray, fs: float, duration_s: float, bin_ms: float = 0.25,
                         max_ref_ms: float = 10.0, exclude_below_ms: float = 0.5) -> float:
    """Sliding refractory-period contamination (IBL 2022; Steinmetz lab ``slidingRefractory``).

    The positive half of the autocorrelogram (bins of ``round(bin_ms * fs)`` samples) is
    accumulated over refractory periods up to ``max_ref_ms``. For each tested contamination c
    (0.5 % to 35 % in 0.5 % steps) and refractory period tau, the observed count is compared
    with a Poisson law of mean ``2 tau / T * N_c (N_b + (N_c - 1) / 2)`` (Llobet et al. 2022,
    N_c = c N, N_b = (1 - c) N), as in SpikeInterface 0.105. Returns the smallest c that some
    tau > ``exclude_below_ms`` rejects with more than 90 % confidence; NaN when none does
    (the unit fails the test).
    """
    from scipy.stats import poisson

    n = times.size
    if n == 0:
        return float("nan")
    bin_n = max(int(round(fs * bin_ms * 1e-3)), 1)
    bin_s = bin_n / fs
    n_bins = int(max_ref_ms / 1000 / bin_s)
    lags = _pair_lags(times, n_bins * bin_n)
    # A zero lag falls in the first positive bin from both sides of the correlogram.
    counts = np.bincount(lags // bin_n, minlength=n_bins + 1)[:n_bins]
    counts[0] += np.count_nonzero(lags == 0)
    edges = np.arange(1, n_bins + 1) * bin_s
    centers = edges - bin_s / 2
    cont = np.arange(0.5, 35.5, 0.5)[:, None] / 100
    n_c, n_b = n * cont, n * (1 - cont)
    expected = 2 * edges[None, :] / duration_s * n_c * (n_b + (n_c - 1) / 2)
    conf = 1 - poisson.cdf(np.cumsum(counts)[None, :], expected)
    rows = np.nonzero((conf[:, centers > exclude_below_ms / 1000] > 0.9).any(axis=1))[0]
    return float(cont[rows[0], 0]) if rows.size else float("nan")
