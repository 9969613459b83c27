"""Spike trains: Poisson firing with a refractory period, optional bursts, amplitude factors.

A train is a renewal process whose inter-spike interval is the refractory period plus an
exponential interval, so that (with bursts) its mean rate is the requested rate. A spike
starts a burst with probability ``burst_prob``: 1 to ``burst_max_spikes`` extra spikes
follow at intervals drawn in [isi_min, isi_max], each smaller than the one before by
``burst_decay`` (the amplitude decrement of complex-spike bursts). Every spike carries an
amplitude factor: burst decay x (1 + jitter N(0, 1)) x slow sinusoidal drift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TrainParams:
    """How one unit fires (all times in seconds)."""

    rate_hz: float
    refractory_s: float
    burst_prob: float = 0.0
    burst_max_spikes: int = 1
    burst_isi_s: tuple[float, float] = (0.0025, 0.008)
    burst_decay: float = 1.0
    amp_jitter: float = 0.0
    drift_frac: float = 0.0
    drift_period_s: float = 600.0
    drift_phase: float = 0.0


def _renewal(rate_hz: float, refractory_s: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Times of a refractory Poisson process with mean rate ``rate_hz`` on [0, duration_s)."""
    mean_isi = 1.0 / rate_hz
    free = max(mean_isi - refractory_s, 1e-6)
    n = int(duration_s / mean_isi * 1.2) + 20
    t = rng.uniform(0, mean_isi) + np.cumsum(refractory_s + rng.exponential(free, n))
    while t[-1] < duration_s:
        more = t[-1] + np.cumsum(refractory_s + rng.exponential(free, n))
        t = np.concatenate([t, more])
    return t[t < duration_s]


def draw_train(p: TrainParams, duration_s: float, rng: np.random.Generator, with_burst_index: bool = False):
    """Spike times and amplitude factors of one unit.

    Parameters
    ----------
    with_burst_index : bool, default False
        Also return each spike's place in its burst (the random draws are the same either way).

    Returns
    -------
    times_s : ndarray of shape (n_spikes,), float64, s, sorted, no interval below the refractory period
    amp : ndarray of shape (n_spikes,), float64, amplitude factor (about 1)
    burst_index : ndarray of shape (n_spikes,), int64, only with ``with_burst_index``
        0 for a spike that does not follow inside a burst, k for the k-th extra spike of a burst.
    """
    extra_mean = p.burst_prob * (1 + p.burst_max_spikes) / 2
    base = _renewal(p.rate_hz / (1 + extra_mean), p.refractory_s, duration_s, rng)
    times, decay, index = [base], [np.ones(base.shape[0])], [np.zeros(base.shape[0], np.int64)]
    starts = base[rng.random(base.shape[0]) < p.burst_prob]
    if starts.size:
        n_extra = rng.integers(1, p.burst_max_spikes + 1, starts.size)
        for k in range(1, int(n_extra.max()) + 1):
            sel = n_extra >= k
            isi = rng.uniform(*p.burst_isi_s, (sel.sum(), k)).sum(axis=1)
            times.append(starts[sel] + isi)
            decay.append(np.full(sel.sum(), p.burst_decay ** k))
            index.append(np.full(sel.sum(), k, np.int64))
    t, d, b = np.concatenate(times), np.concatenate(decay), np.concatenate(index)
    order = np.argsort(t, kind="stable")
    t, d, b = t[order], d[order], b[order]
    keep = _refractory_mask(t, p.refractory_s) & (t < duration_s)
    t, d, b = t[keep], d[keep], b[keep]
    jitter = 1 + p.amp_jitter * rng.standard_normal(t.shape[0])
    drift = 1 + p.drift_frac * np.sin(2 * np.pi * t / p.drift_period_s + p.drift_phase)
    amp = np.clip(d * jitter * drift, 0.2, None)
    return (t, amp, b) if with_burst_index else (t, amp)


def _refractory_mask(t: np.ndarray, refractory_s: float) -> np.ndarray:
    """Keep each spike only if it comes at least ``refractory_s`` after the last kept spike."""
    keep = np.ones(t.shape[0], bool)
    close = np.flatnonzero(np.diff(t) < refractory_s) + 1
    if close.size == 0:
        return keep
    # A spike right after a kept one with a large gap is always kept, so only the spikes
    # in ``close`` need the greedy decision.
    for i in close:
        j = i - 1
        while not keep[j]:
            j -= 1
        if t[i] - t[j] < refractory_s:
            keep[i] = False
    return keep
