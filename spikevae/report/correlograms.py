"""Auto- and cross-correlograms of spike trains: histograms of spike-time differences.

What a person curating units looks at: the auto-correlogram of a unit shows its refractory
dip, the cross-correlogram of two look-alike units of one electrode shows whether they are one
neuron (a dip at 0 as well) or two. Computed with ``searchsorted`` on sorted trains, in chunks,
so memory stays bounded whatever the firing rates.
"""
from __future__ import annotations

import numpy as np

#: Pairs of spikes handled at once (bounds the memory of one chunk, ~8 bytes each).
MAX_PAIRS = 2_000_000


def bin_edges_ms(window_ms: float = 50.0, bin_ms: float = 1.0) -> np.ndarray:
    """Edges of the correlogram bins, ms: ``-window_ms, ..., +window_ms`` in steps of ``bin_ms``."""
    n = int(round(2 * window_ms / bin_ms))
    return -window_ms + bin_ms * np.arange(n + 1)


def correlogram(t1: np.ndarray, t2: np.ndarray, fs: float, window_ms: float = 50.0, bin_ms: float = 1.0,
                auto: bool = False) -> np.ndarray:
    """Counts of spike-time differences ``t2[j] - t1[i]`` in bins of ``bin_ms`` within ±``window_ms``.

    Parameters
    ----------
    t1, t2 : ndarray of shape (n1,), (n2,), int
        Spike times, samples (sorted or not).
    fs : float
        Sampling rate, Hz.
    window_ms, bin_ms : float
        Half-width of the correlogram and bin width, ms. Bin ``k`` holds differences ``d`` (ms)
        with ``edges[k] <= d < edges[k + 1]`` (see :func:`bin_edges_ms`).
    auto : bool
        ``t1`` and ``t2`` are the same train: each spike's pair with itself is not counted.

    Returns
    -------
    ndarray of shape (2 * window_ms / bin_ms,), int64
    """
    edges = bin_edges_ms(window_ms, bin_ms)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    a = np.sort(np.asarray(t1, dtype=np.int64))
    b = np.sort(np.asarray(t2, dtype=np.int64))
    if a.size == 0 or b.size == 0:
        return counts
    w = window_ms * fs / 1000.0
    lo = np.searchsorted(b, a - w, side="left")
    hi = np.searchsorted(b, a + w, side="left")
    n_pairs = hi - lo
    ends = np.cumsum(n_pairs)
    start = 0
    while start < a.size:
        stop = max(int(np.searchsorted(ends, ends[start] - n_pairs[start] + MAX_PAIRS, side="right")), start + 1)
        counts += _chunk_counts(a[start:stop], b, lo[start:stop], n_pairs[start:stop], start, fs, edges, auto)
        start = stop
    return counts


def _chunk_counts(a, b, lo, n_pairs, offset, fs, edges, auto) -> np.ndarray:
    """Histogram of the differences of spikes ``a`` (indices ``offset...``) with their neighbours in ``b``."""
    total = int(n_pairs.sum())
    if total == 0:
        return np.zeros(edges.size - 1, dtype=np.int64)
    i = np.repeat(np.arange(a.size), n_pairs)
    j = lo[i] + (np.arange(total) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs))
    d_ms = (b[j] - a[i]) * (1000.0 / fs)
    if auto:
        d_ms = d_ms[j != i + offset]
    k = np.floor((d_ms - edges[0]) / (edges[1] - edges[0])).astype(np.int64)
    k = k[(k >= 0) & (k < edges.size - 1)]
    return np.bincount(k, minlength=edges.size - 1)
