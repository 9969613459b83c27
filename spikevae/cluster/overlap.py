"""Overlapping spikes: two units of one electrode firing within about 1 ms.

The detector's dead time keeps one detection for such a pair, and its waveform is
the sum of two templates, which no single unit explains. For every spike whose
residual after the best single template (any unit, any shift within
``max_shift_ms``, fixed amplitude) is larger than noise explains
(``L + min_excess * sqrt(2 L)`` in noise σ², L = waveform length), every pair of
templates of two different units at two shifts at least ``min_pair_shift_ms`` apart
is tried. Energies are measured after noise whitening when the spikes carry noise
snippets, so that they are chi-square counts. When the best pair lowers
the residual energy by at least ``min_gain`` σ² and to at most
``max_residual_fraction`` of the single-template residual, the spike is relabelled with the
template nearest to its own time and the other template becomes an **extra spike**
(new sample index = detection + shift), unless another detection of the electrode
already lies within ``min_separation_ms`` of it.

A cluster made of overlaps (a template that is the sum of two other units'
templates) is dissolved first, so that its spikes are resolved as pairs.

Templates keep their amplitude (no free scale): units of one electrode often differ
mainly in amplitude, and a free scale erases that (issue 7).
"""
from __future__ import annotations

import numpy as np


def unit_templates(wf: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median waveform of each unit: (unit ids (k,), templates (k, L))."""
    units = np.array([u for u in np.unique(labels) if u >= 0], dtype=np.int64)
    if units.size == 0:
        return units, np.zeros((0, wf.shape[1]), dtype=np.float64)
    return units, np.stack([np.median(wf[labels == u], axis=0) for u in units]).astype(np.float64)


def shifted_bank(templates: np.ndarray, max_shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every template at every shift in [-max_shift, max_shift], zero-padded.

    Returns bank (k * n_shifts, L), the template index of each row, and the shift of each row.
    """
    k, length = templates.shape
    shifts = np.arange(-max_shift, max_shift + 1)
    bank = np.zeros((k, shifts.size, length))
    for j, s in enumerate(shifts):
        if s >= 0:
            bank[:, j, s:] = templates[:, :length - s]
        else:
            bank[:, j, :s] = templates[:, -s:]
    return bank.reshape(-1, length), np.repeat(np.arange(k), shifts.size), np.tile(shifts, k)


def forbidden_pairs(row_unit: np.ndarray, row_shift: np.ndarray, min_pair_shift: int) -> np.ndarray:
    """Pairs of bank rows that cannot form an overlap: one unit twice, or two spikes
    closer than ``min_pair_shift`` samples (a same-shaped pair at nearly the same time is
    indistinguishable from one larger spike). Shape (K, K), bool."""
    return (row_unit[:, None] == row_unit[None, :]) | (np.abs(row_shift[:, None] - row_shift[None, :]) < min_pair_shift)


def _best_pairs(c: np.ndarray, energy: np.ndarray, gram: np.ndarray, same_unit: np.ndarray,
                n_first: int | None = None):
    """Best pair (row1, row2) and its residual for each spike: ||x||² - 2c1 - 2c2 + g11 + g22 + 2g12
    (returned without ||x||²).

    The first row is searched among each spike's ``n_first`` best single fits (all rows
    when None), the second among all rows: one member of a real pair is always among
    the best single templates, and this makes the search O(n_first K) instead of O(K²).
    """
    single = energy[None, :] - 2 * c  # (m, K) without ||x||²
    m, k = single.shape
    if n_first is None or n_first >= k:
        first = np.broadcast_to(np.arange(k), (m, k))
    else:
        first = np.argpartition(single, n_first, axis=1)[:, :n_first]
    rows = np.arange(m)[:, None]
    cost = single[rows, first][:, :, None] + single[:, None, :] + 2 * gram[first]
    cost[same_unit[first]] = np.inf
    flat = cost.reshape(m, -1).argmin(1)
    j1, j2 = flat // k, flat % k
    return first[np.arange(m), j1], j2, cost.reshape(m, -1)[np.arange(m), flat]


def composite_units(templates: np.ndarray, max_shift: int, min_pair_shift: int, max_fraction: float = 0.1,
                    whitener: np.ndarray | None = None) -> np.ndarray:
    """Which templates are the sum of two other units' templates (a cluster of overlaps).

    A unit is composite when the best pair of two other units' templates, each at
    any shift, leaves less than ``max_fraction`` of its energy and less than a
    quarter of what the best single other template leaves.

    Returns a boolean array of shape (k,).
    """
    k = templates.shape[0]
    out = np.zeros(k, dtype=bool)
    if k < 3:
        return out
    bank, row_unit, row_shift = shifted_bank(templates, max_shift)
    w = np.eye(templates.shape[1]) if whitener is None else whitener
    bank, templates = bank @ w.T, templates @ w.T
    energy = (bank**2).sum(1)
    gram = bank @ bank.T
    same = forbidden_pairs(row_unit, row_shift, min_pair_shift)
    for u in range(k):
        x = templates[u]
        c = bank @ x
        others = row_unit != u
        r1 = (x @ x) - 2 * c[others] + energy[others]
        a, b, cost = _best_pairs(c[None], energy, gram, same | ~others[:, None] | ~others[None, :])
        r2 = (x @ x) + cost[0]
        out[u] = r2 < max_fraction * (x @ x) and r2 < 0.25 * r1.min()
    return out


#: Spikes whose single-template residuals are computed at once.
RESIDUAL_BLOCK = 8192


def resolve_overlaps(wf: np.ndarray, sample_index: np.ndarray, labels: np.ndarray, fs: float, cfg,
                     whitener: np.ndarray | None = None, batch: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find overlapping pairs on one electrode.

    Parameters
    ----------
    wf : ndarray of shape (n_spikes, L), noise-scaled waveforms (σ = 1)
    sample_index : ndarray of shape (n_spikes,), int64
    labels : ndarray of shape (n_spikes,), int64, -1 unsorted
    fs : float, Hz
    cfg : OverlapConfig
    whitener : ndarray of shape (L, L), optional
        Noise whitening of the noise-scaled waveforms (``W_uv * σ``); residual energies
        are then chi-square counts even for coloured noise.

    Returns
    -------
    labels : ndarray of shape (n_spikes,), int64
        Labels with overlapped spikes relabelled.
    extra_index : ndarray of shape (n_extra,), int64
        Sample index of each extra (second) spike.
    extra_unit : ndarray of shape (n_extra,), int64
        Its unit label.
    """
    labels = labels.copy()
    none = np.zeros(0, dtype=np.int64)
    units, templates = unit_templates(wf, labels)
    if units.size < 2:
        return labels, none, none
    length = wf.shape[1]
    max_shift = max(1, int(round(cfg.max_shift_ms * fs / 1000)))
    min_pair = max(1, int(round(cfg.min_pair_shift_ms * fs / 1000)))
    composite = composite_units(templates, max_shift, min_pair, whitener=whitener)
    if composite.any():
        labels[np.isin(labels, units[composite])] = -1
        units, templates = units[~composite], templates[~composite]
    if units.size < 2:
        return labels, none, none
    w = np.eye(length) if whitener is None else whitener
    bank, row_unit, row_shift = shifted_bank(templates, max_shift)
    bank = bank @ w.T
    energy = (bank**2).sum(1)
    n = wf.shape[0]
    # best single template of every spike, in blocks of rows: the (spikes x templates x shifts) residuals of an
    # hour-long electrode would take hundreds of MB at once (one block: the same arithmetic as before)
    x = wf.astype(np.float64) @ w.T if n <= RESIDUAL_BLOCK else None
    xx, best1, res1 = np.empty(n), np.empty(n, np.int64), np.empty(n)
    for a in range(0, n, RESIDUAL_BLOCK):
        xb = x[a:a + RESIDUAL_BLOCK] if x is not None else wf[a:a + RESIDUAL_BLOCK].astype(np.float64) @ w.T
        xx[a:a + xb.shape[0]] = (xb**2).sum(1)
        r1 = xx[a:a + xb.shape[0], None] - 2 * (xb @ bank.T) + energy[None]
        best1[a:a + xb.shape[0]] = r1.argmin(1)
        res1[a:a + xb.shape[0]] = r1[np.arange(xb.shape[0]), best1[a:a + xb.shape[0]]]
        del r1, xb
    cand = np.flatnonzero(res1 > length + cfg.min_excess * np.sqrt(2 * length))
    if cand.size == 0:
        return labels, none, none
    gram = bank @ bank.T
    same_unit = forbidden_pairs(row_unit, row_shift, min_pair)
    sep = int(round(cfg.min_separation_ms * fs / 1000))
    order = np.argsort(sample_index, kind="stable")
    sorted_t = sample_index[order]
    extra_t, extra_u = [], []
    for start in range(0, cand.size, batch):
        idx = cand[start:start + batch]
        c = (x[idx] if x is not None else wf[idx].astype(np.float64) @ w.T) @ bank.T
        a, b, cost = _best_pairs(c, energy, gram, same_unit, n_first=16)
        res2 = xx[idx] + cost
        for i, ra, rb, r2 in zip(idx, a, b, res2):
            if res1[i] - r2 < cfg.min_gain or r2 > cfg.max_residual_fraction * res1[i]:
                continue
            near, far = (ra, rb) if abs(row_shift[ra]) <= abs(row_shift[rb]) else (rb, ra)
            t_new = sample_index[i] + row_shift[far]
            lo = np.searchsorted(sorted_t, t_new - sep, side="left")
            hi = np.searchsorted(sorted_t, t_new + sep, side="right")
            others = order[lo:hi]
            labels[i] = units[row_unit[near]]
            if np.any(others != i):
                continue
            extra_t.append(t_new)
            extra_u.append(units[row_unit[far]])
    return labels, np.asarray(extra_t, dtype=np.int64), np.asarray(extra_u, dtype=np.int64)
