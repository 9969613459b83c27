"""Clustering a long recording's electrode in overlapping time windows, linked into units.

Over an hour a Utah electrode moves a little against the tissue and its units' amplitudes
drift slowly (issue 13). Clustered as one cloud, each unit is stretched along its amplitude
direction and neighbouring units of the electrode merge into one smeared cloud. Within a few
minutes a unit stays put, as in a short recording. So a long electrode is cut into windows of
``window_s`` seconds that overlap by ``overlap`` of their length; each window is
clustered like a short recording (initial clusterer, refinement, overlaps), and the units of
consecutive windows are linked by the spikes both windows clustered: the share of spikes two
units have in common (Jaccard index over the overlap) is the link probability, assigned one to
one by :func:`spikevae.tracking.match.assign` with ``link_threshold`` (a unit without a link
starts a new unit). Linked chains share one label. Each spike keeps the label of the window
whose centre part holds it (the overlap is cut at its middle), and so does each extra
overlap spike. With ``refine_linked`` (the default; wired in :mod:`spikevae.cluster.run`)
the windows skip overlap resolution, and the linked labels are refined once more over the
whole electrode, merges tested on the pair's spikes in two consecutive windows
(:func:`spikevae.cluster.refine.local_pair`), so that the pieces of a unit that one window cut
apart join again while drifting neighbours stay apart; overlaps are resolved after that.

Measured in ``spikevae/cluster/config.py``'s notes (``benchmarks/bench_duration.py``).

Recordings (electrodes' spike spans) shorter than ``min_windows`` windows are clustered in one
piece, exactly as without windows.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..tracking.match import assign


def window_bounds(t_min: float, t_max: float, window_s: float, overlap: float,
                  min_windows: float) -> np.ndarray:
    """Start and end (s) of each window covering [t_min, t_max], shape (n_windows, 2).

    Windows are ``window_s`` long and start every ``window_s * (1 - overlap)`` seconds; the last
    one ends at ``t_max`` (so it overlaps its predecessor by at least ``overlap``). A span shorter
    than ``min_windows * window_s`` (or ``window_s <= 0``) gives one window: the whole span.
    """
    span = t_max - t_min
    if window_s <= 0 or span < min_windows * window_s:
        return np.array([[t_min, t_max]], dtype=np.float64)
    step = window_s * (1.0 - overlap)
    n = int(np.ceil((span - window_s) / step)) + 1
    starts = t_min + step * np.arange(n, dtype=np.float64)
    starts[-1] = t_max - window_s
    return np.stack([starts, starts + window_s], axis=1)


def window_rows(t: np.ndarray, bounds: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The spikes each window clusters and the window that owns each spike.

    Parameters
    ----------
    t : ndarray of shape (n,), spike times (s), sorted or not
    bounds : ndarray of shape (n_windows, 2), from :func:`window_bounds`

    Returns
    -------
    rows : list of ndarray of int64
        Indices of the spikes in each window (start <= t < end; the last window includes its end).
    owner : ndarray of shape (n,), int64
        The window whose centre part holds each spike: two consecutive windows share their
        overlap at its midpoint.
    """
    n_win = bounds.shape[0]
    rows = []
    for w, (lo, hi) in enumerate(bounds):
        inside = (t >= lo) & ((t < hi) if w < n_win - 1 else (t <= hi))
        rows.append(np.flatnonzero(inside))
    return rows, owner_window(t, bounds)


def link_probability(labels_a: np.ndarray, labels_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jaccard index of every unit pair of two clusterings of the same spikes.

    Parameters
    ----------
    labels_a, labels_b : ndarray of shape (m,), int
        Two windows' labels of the spikes both clustered (-1 unsorted).

    Returns
    -------
    prob : ndarray of shape (k_a, k_b)
        |a ∩ b| / |a ∪ b| for unit a of the first window and b of the second.
    units_a, units_b : ndarray of int64
        The unit ids of the rows and columns.
    """
    units_a = np.unique(labels_a[labels_a >= 0])
    units_b = np.unique(labels_b[labels_b >= 0])
    prob = np.zeros((units_a.size, units_b.size))
    if units_a.size == 0 or units_b.size == 0:
        return prob, units_a, units_b
    ia = np.searchsorted(units_a, labels_a)
    ib = np.searchsorted(units_b, labels_b)
    both = (labels_a >= 0) & (labels_b >= 0)
    inter = np.zeros_like(prob)
    np.add.at(inter, (ia[both], ib[both]), 1.0)
    size_a = np.bincount(ia[labels_a >= 0], minlength=units_a.size).astype(np.float64)
    size_b = np.bincount(ib[labels_b >= 0], minlength=units_b.size).astype(np.float64)
    union = size_a[:, None] + size_b[None, :] - inter
    prob = np.divide(inter, union, out=prob, where=union > 0)
    return prob, units_a, units_b


def chain_units(window_labels: list[np.ndarray], rows: list[np.ndarray], n: int,
                threshold: float) -> tuple[list[dict[int, int]], int]:
    """Link the units of consecutive windows into chains that share one global unit id.

    Parameters
    ----------
    window_labels : list of ndarray
        Each window's labels of its spikes (``rows[w]``), local ids >= 0, -1 unsorted.
    rows : list of ndarray of int64
        The electrode's spikes in each window.
    n : int
        Spikes on the electrode.
    threshold : float
        Smallest Jaccard index of a link (:func:`spikevae.tracking.match.assign`).

    Returns
    -------
    maps : list of dict
        Per window, local unit id -> global unit id (in order of first appearance).
    n_links : int
        Links made between consecutive windows.
    """
    maps: list[dict[int, int]] = []
    next_id, n_links = 0, 0
    for w, lab in enumerate(window_labels):
        mine = {}
        if w > 0:
            shared_a, shared_b = _shared(rows[w - 1], rows[w], n)
            prob, ua, ub = link_probability(window_labels[w - 1][shared_a], lab[shared_b])
            for r, c, _ in assign(prob, threshold):
                if int(ua[r]) in maps[w - 1]:
                    mine[int(ub[c])] = maps[w - 1][int(ua[r])]
                    n_links += 1
        for u in np.unique(lab[lab >= 0]):
            if int(u) not in mine:  # no link: a new unit
                mine[int(u)] = next_id
                next_id += 1
        maps.append(mine)
    return maps, n_links


def _shared(rows_a: np.ndarray, rows_b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``rows_a`` and in ``rows_b`` of the spikes both contain, in the same order."""
    in_b = np.full(n, -1, dtype=np.int64)
    in_b[rows_b] = np.arange(rows_b.size)
    pos_b = in_b[rows_a]
    keep = pos_b >= 0
    return np.flatnonzero(keep), pos_b[keep]


def cluster_in_windows(t: np.ndarray, bounds: np.ndarray, cluster_rows: Callable, threshold: float,
                       fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Cluster each window with ``cluster_rows`` and link the windows into one labelling.

    Parameters
    ----------
    t : ndarray of shape (n,), spike times (s)
    bounds : ndarray of shape (n_windows, 2), from :func:`window_bounds` (at least 2 windows)
    cluster_rows : callable
        ``cluster_rows(w, rows)`` clusters the spikes ``rows`` as window ``w`` and returns an
        object with ``labels`` (local ids, -1 unsorted), ``extra_index`` (sample indices),
        ``extra_unit`` and ``stats`` (an :class:`spikevae.cluster.run.ElectrodeResult`).
    threshold : float
        Link threshold (Jaccard index).
    fs : float
        Sampling rate (Hz), to place the extra spikes' sample indices in windows.

    Returns
    -------
    labels : ndarray of shape (n,), int64, global unit ids (-1 unsorted)
    extra_index, extra_unit : ndarray of int64
        Extra overlap spikes kept (those in the centre part of the window that found them),
        in order of windows.
    stats : dict
        Counts summed over windows, plus ``n_windows`` and ``window_links``.
    """
    n = t.shape[0]
    rows, owner = window_rows(t, bounds)
    results = [cluster_rows(w, r) for w, r in enumerate(rows)]
    maps, n_links = chain_units([res.labels for res in results], rows, n, threshold)
    labels = np.full(n, -1, dtype=np.int64)
    extra_t, extra_u = [], []
    for w, (r, res, m) in enumerate(zip(rows, results, maps)):
        keep = owner[r] == w
        labels[r[keep]] = _to_global(res.labels[keep], m)
        own_extra = owner_window(res.extra_index / fs, bounds) == w
        extra_t.append(np.asarray(res.extra_index, dtype=np.int64)[own_extra])
        extra_u.append(_to_global(np.asarray(res.extra_unit)[own_extra], m))
    labels, extra_u = _compact(labels, np.concatenate(extra_u))
    stats = _sum_stats([res.stats for res in results])
    stats.update(n_windows=int(bounds.shape[0]), window_links=int(n_links))
    return labels, np.concatenate(extra_t), extra_u, stats


def owner_window(t: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The window whose centre part holds each time ``t`` (s): consecutive windows share their
    overlap at its midpoint."""
    cuts = 0.5 * (bounds[1:, 0] + bounds[:-1, 1])
    return np.searchsorted(cuts, t, side="right").astype(np.int64)


def _compact(labels: np.ndarray, extra_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ids made consecutive from 0 in order of id (a unit that owns no detected spike, as
    when it lived only in a window's overlap, vanishes; its extra spikes become -1)."""
    ids = np.unique(labels[labels >= 0])
    new_id = np.full(int(max(labels.max(initial=-1), extra_unit.max(initial=-1))) + 2, -1, dtype=np.int64)
    new_id[ids] = np.arange(ids.size)
    return new_id[labels], new_id[extra_unit]


def _to_global(local: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    out = np.full(local.shape, -1, dtype=np.int64)
    for u, g in mapping.items():
        out[local == u] = g
    return out


def _sum_stats(stats: list[dict]) -> dict:
    """Numeric counts summed over windows (``t_*`` times too); other entries dropped."""
    out: dict = {}
    for s in stats:
        for k, v in s.items():
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
    return {k: (int(v) if float(v).is_integer() and not k.startswith("t_") else float(v)) for k, v in out.items()}
