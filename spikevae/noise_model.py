"""Threshold crossings of pure noise, synthesised from each electrode's noise statistics.

A threshold detector also fires on noise: at 3.5 σ a 300-6000 Hz band fires a few
times per second per electrode, and small background units add crossings that look
much the same. Left to itself the clustering puts these detections into a unit of
their own or, worse, into the smallest real unit of the electrode (on the Utah-like
simulations, about 250 false positives per electrode per minute). The refinement's
discriminant therefore gets a *noise class*: waveforms of what a threshold crossing
of pure noise looks like on that electrode, embedded by the same feature extractor.
Spikes the discriminant gives to the noise class stay unsorted.

The noise is modelled as a stationary Gaussian process with the autocovariance of the
electrode's spike-free snippets (``Spikes.noise_snippets``, in units of the electrode's
noise σ). A crossing is drawn conditionally: the value at the peak from the normal
tail beyond the threshold, the other samples from their Gaussian law given that value,
and draws in which another sample within the dead time is more extreme than the peak
are rejected (the detector would have aligned on that one). On a recording of pure
noise the synthesised crossings match the detected ones (mean waveform and amplitude
distribution, ``tests/test_noise_model.py``).
"""
from __future__ import annotations

import logging

import numpy as np

from .objects import Spikes

log = logging.getLogger(__name__)


def noise_autocovariance(snippets: np.ndarray) -> np.ndarray:
    """Toeplitz autocovariance matrix (L, L) of stationary noise from snippets (n, L), made positive definite."""
    from scipy.linalg import toeplitz

    s = np.asarray(snippets, dtype=np.float64)
    s = s - s.mean()
    length = s.shape[1]
    acf = np.array([np.mean(s[:, : length - lag] * s[:, lag:]) for lag in range(length)])
    cov = toeplitz(acf)
    w, v = np.linalg.eigh(cov)
    return (v * np.maximum(w, 1e-6 * max(w.max(), 1e-12))) @ v.T


def sample_crossings(cov: np.ndarray, peak_index: int, threshold: float, n: int, exclusion: int,
                     rng: np.random.Generator, max_tries: int = 20) -> np.ndarray:
    """Negative threshold crossings of the Gaussian process with covariance ``cov``.

    Parameters
    ----------
    cov : ndarray of shape (L, L)
        Noise covariance (units of σ²).
    peak_index : int
        Sample where the crossing's extremum sits.
    threshold : float
        Positive threshold; the value at ``peak_index`` is below ``-threshold``.
    n : int
        Number of waveforms.
    exclusion : int
        No other sample within this many samples of the peak is lower than the peak.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (m, L), m <= n (fewer only if the rejection rate is extreme)
    """
    from scipy import stats

    length = cov.shape[0]
    p = peak_index
    rest = np.r_[0:p, p + 1:length]
    sd = np.sqrt(cov[p, p])
    gain = cov[rest, p] / cov[p, p]
    cond = cov[np.ix_(rest, rest)] - np.outer(cov[rest, p], cov[p, rest]) / cov[p, p]
    chol = np.linalg.cholesky(cond + 1e-9 * np.trace(cond) / max(len(rest), 1) * np.eye(len(rest)))
    lo, hi = max(0, p - exclusion), min(length, p + exclusion + 1)
    out, have = [], 0
    for _ in range(max_tries):
        m = 2 * (n - have) + 16
        xp = stats.truncnorm.rvs(-np.inf, -threshold / sd, size=m, random_state=rng) * sd
        x = np.empty((m, length))
        x[:, p] = xp
        x[:, rest] = xp[:, None] * gain[None, :] + rng.standard_normal((m, len(rest))) @ chol.T
        x = x[x[:, lo:hi].min(axis=1) >= xp]
        out.append(x)
        have += x.shape[0]
        if have >= n:
            break
    return np.concatenate(out)[:n] if out else np.zeros((0, length))


def crossing_rate_hz(cov: np.ndarray, threshold: float, fs: float, polarity: str = "neg") -> float:
    """Expected rate of threshold crossings of stationary Gaussian noise (Rice's formula).

    ``nu = fs / (2 pi) * sqrt(2 (1 - rho_1)) * exp(-u^2 / 2)`` per polarity, with
    ``rho_1`` the lag-1 autocorrelation and ``u`` the threshold over the noise standard
    deviation (``cov`` in units of the detection σ). On the Utah-like simulations it
    predicts the number of detections that match no unit within about 10 %; on pure
    noise it overestimates the detections by 5-20 % (the detector's dead time and its
    discrete sampling merge or miss some crossings).
    """
    sd = float(np.sqrt(cov[0, 0]))
    rho1 = float(cov[0, 1] / cov[0, 0]) if cov.shape[0] > 1 else 0.0
    u = threshold / sd
    rate = fs / (2 * np.pi) * np.sqrt(max(2.0 * (1.0 - rho1), 0.0)) * np.exp(-0.5 * u * u)
    return float(rate * (2 if polarity == "both" else 1))


def noise_crossings(spikes: Spikes, threshold: float, polarity: str = "neg", n_per_electrode: int = 500,
                    dead_time_ms: float = 0.5, seed: int = 0) -> tuple[Spikes, np.ndarray]:
    """Synthetic threshold crossings of pure noise on every electrode that has noise snippets.

    Parameters
    ----------
    spikes : Spikes
        The detected spikes; their ``noise_snippets`` give each electrode's noise.
    threshold : float
        Detection threshold in noise σ (``detect.threshold``).
    polarity : {"neg", "pos", "both"}
        Detection polarity (``detect.polarity``); "both" draws half of each sign.
    n_per_electrode : int
    dead_time_ms : float
        The detector's dead time (the synthesised peak is the extremum within it).
    seed : int

    Returns
    -------
    crossings : Spikes
        Waveforms in µV aligned like the detections (peak at ``spikes.peak_index``),
        ``sample_index`` 0, no noise snippets. Empty when there are no snippets.
    rate_hz : ndarray of shape (n_electrodes,)
        Expected rate of noise crossings per electrode (:func:`crossing_rate_hz`; NaN
        for electrodes without snippets).
    """
    if polarity not in ("neg", "pos", "both"):
        raise ValueError(f"polarity must be neg, pos or both, got {polarity!r}")
    length = spikes.n_samples
    wfs, elec = [], []
    rate = np.full(spikes.n_electrodes, np.nan)
    if spikes.noise_snippets is not None and n_per_electrode > 0:
        rng = np.random.default_rng([seed, 7411])
        exclusion = max(1, int(round(dead_time_ms * 1e-3 * spikes.fs)))
        sigma = np.maximum(spikes.noise_uv.astype(np.float64), 1e-6)
        for e in range(spikes.n_electrodes):
            snip = spikes.noise_snippets[spikes.noise_electrode == e]
            if snip.shape[0] < 10 or snip.shape[1] != length:
                continue
            cov = noise_autocovariance(snip / sigma[e])
            rate[e] = crossing_rate_hz(cov, threshold, spikes.fs, polarity)
            x = sample_crossings(cov, spikes.peak_index, threshold, n_per_electrode, exclusion, rng)
            if polarity == "pos":
                x = -x
            elif polarity == "both":
                x[: x.shape[0] // 2] *= -1
            wfs.append(x * sigma[e])
            elec.append(np.full(x.shape[0], e, dtype=np.int64))
    if not wfs:
        log.info("no noise snippets: the clustering gets no noise class")
    w = np.concatenate(wfs).astype(np.float32) if wfs else np.zeros((0, length), np.float32)
    el = np.concatenate(elec) if elec else np.zeros(0, np.int64)
    crossings = Spikes(np.zeros(el.size, np.int64), el, w, w[:, spikes.peak_index] if el.size else np.zeros(0),
                       spikes.noise_uv, spikes.fs, spikes.peak_index, spikes.channel_ids)
    return crossings, rate
