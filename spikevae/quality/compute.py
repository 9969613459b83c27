"""compute_metrics: every quality metric of every unit of a sorting (the orchestrator).

Spike-train metrics use all spikes of the Sorting. Waveform, amplitude and distance metrics
use the spikes that are also in ``Spikes``, matched by (sample_index, electrode): overlap
resolution can add spikes to a Sorting that detection did not cut.

Distance metrics are computed per electrode, a unit against the other spikes of its
electrode, in one shared feature space (PCA of the electrode's noise-scaled waveforms unless
``features`` is given), so that sortings made from different features are judged alike.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import SpikevaeConfigError
from ..execution import map_threads, release_memory, spill
from ..execution.memory import LOOP_TRIM_BYTES
from ..objects import Sorting, Spikes, group_indices, in_time_order, label_dtype

#: Spikes compared at a time (no boolean array the length of the recording).
BLOCK = 1 << 20
from ..quality_config import QualityConfig
from ..recording import electrode_positions
from . import amplitude as amp
from . import isolation as iso
from . import spiketrain as st
from .labels import failed_rules

log = logging.getLogger(__name__)

#: Metric columns, in table order (``good`` comes last).
METRIC_COLUMNS = (
    "unit", "electrode", "channel_id", "x_um", "y_um", "n_spikes", "n_spikes_matched", "firing_rate_hz", "amplitude_uv",
    "snr", "isi_violations_ratio", "isi_violations_rate", "isi_violations_count", "rp_contamination",
    "rp_violations", "sliding_rp_violation", "presence_ratio", "amplitude_cutoff", "noise_cutoff",
    "isolation_distance", "l_ratio", "d_prime", "silhouette", "nn_hit_rate", "nn_miss_rate", "good",
)


def match_spikes(spikes: Spikes, sorting: Sorting) -> np.ndarray:
    """Index into ``spikes`` of each spike of ``sorting`` (-1 where it has none).

    Spikes are matched exactly on (sample_index, electrode).

    Returns
    -------
    ndarray of shape (sorting.n_spikes,), int32 (int64 past 2**31 spikes: half the memory per spike)
    """
    n, m = spikes.sample_index.size, sorting.sample_index.size
    out = spill.full(m, -1, np.int32 if n < 2**31 else np.int64)  # in the run's spill folder, if any
    if n == 0:
        return out
    # a run's own sorting starts with the detected spikes in their order: those need no search
    head = m >= n and _starts_with_spikes(spikes, sorting)
    start = n if head else 0
    if head:
        for i in range(0, n, BLOCK):
            out[i:min(i + BLOCK, n)] = np.arange(i, min(i + BLOCK, n), dtype=out.dtype)
    if start == m:
        return out
    t, e = spikes.sample_index, spikes.electrode
    if in_time_order(t, None):  # detection's order (or any with times that never decrease)
        out[start:] = _match_in_detection_order(t, e, sorting.sample_index[start:], sorting.electrode[start:])
        return out
    out[start:] = _match_by_electrode(t, e, sorting.sample_index[start:], sorting.electrode[start:])
    return out


class SpikeMatch:
    """Which detected spike each entry of ``sorting`` is, ``match[sel]`` (-1: none), as
    :func:`match_spikes` gives it but without an index per spike for a run's own sorting: its first
    ``spikes.n_spikes`` entries are the spikes in their order and its overlap extras none of them, so
    entry ``i`` is spike ``i`` or none."""

    def __init__(self, spikes: Spikes, sorting: Sorting):
        self.n = spikes.n_spikes
        own = sorting.starts_with(spikes) and not np.any(_match_tail(spikes, sorting, self.n) >= 0)
        self.index = None if own else match_spikes(spikes, sorting)

    def __getitem__(self, sel) -> np.ndarray:
        if self.index is not None:
            return self.index[sel]
        sel = np.asarray(sel)
        return np.where(sel < self.n, sel, -1).astype(sel.dtype, copy=False)


def spike_units(spikes: Spikes, sorting: Sorting, match: np.ndarray | None = None) -> np.ndarray:
    """Unit of each spike of ``spikes`` under ``sorting`` (-1: unsorted or absent), int32 unless the ids
    need more; ``match`` is :func:`match_spikes` of the two when the caller has it. Filled a block of
    sorted spikes at a time: no mask or copy the length of the recording."""
    n = spikes.n_spikes
    if _starts_with_spikes(spikes, sorting, match):
        # a run's own sorting: its first n entries are the spikes in their order, and the overlap extras
        # after them are no detected spike, so the labels are the sorting's own (a read-only view, no copy)
        tail = match[n:] if match is not None else _match_tail(spikes, sorting, n)
        if not np.any(tail >= 0):
            lab = sorting.unit[:n].view()
            lab.flags.writeable = False
            return lab
    m = match_spikes(spikes, sorting) if match is None else match
    lab = spill.full(spikes.n_spikes, -1, label_dtype(sorting.unit))
    block = 1 << 20
    for i in range(0, m.size, block):
        mb = m[i:i + block]
        ok = mb >= 0
        lab[mb[ok]] = sorting.unit[i:i + block][ok]
    return lab


def _starts_with_spikes(spikes: Spikes, sorting: Sorting, match: np.ndarray | None = None) -> bool:
    """Whether ``sorting``'s first entries are ``spikes``, in their order (a run's own sorting)."""
    n = spikes.n_spikes
    if match is None:
        return sorting.starts_with(spikes)
    return match.size >= n and all(np.array_equal(match[i:min(i + BLOCK, n)], np.arange(i, min(i + BLOCK, n)))
                                   for i in range(0, n, BLOCK))


def _match_tail(spikes: Spikes, sorting: Sorting, n: int) -> np.ndarray:
    """:func:`match_spikes` of ``sorting``'s entries from ``n`` on (the overlap extras of a run's sorting)."""
    tail = Sorting(sorting.sample_index[n:], sorting.electrode[n:], sorting.unit[n:], sorting.fs)
    return match_spikes(spikes, tail)


def _match_by_electrode(t: np.ndarray, e: np.ndarray, t_q: np.ndarray, e_q: np.ndarray) -> np.ndarray:
    """Index of each (t_q, e_q) among spikes in any order (-1: none; the first of equal spikes), one
    electrode at a time: an int32 index of the spikes, not an int64 key and sort of every spike."""
    found = np.full(t_q.size, -1, dtype=np.int32 if t.size < 2**31 else np.int64)
    mine = group_indices(e)
    for el, q in group_indices(e_q).items():
        rows = mine.get(el)
        if rows is None:
            continue
        ts = t[rows]
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        pos = np.minimum(np.searchsorted(ts, t_q[q]), ts.size - 1)
        hit = ts[pos] == t_q[q]
        found[q[hit]] = rows[order[pos[hit]]]
    return found


#: Queries matched at a time by :func:`_match_in_detection_order`.
QUERY_BLOCK = 1 << 18


def _match_in_detection_order(t: np.ndarray, e: np.ndarray, t_q: np.ndarray, e_q: np.ndarray) -> np.ndarray:
    """Index of each (t_q, e_q) among spikes whose times never decrease (-1: none; the first of equal
    spikes), without a key per spike: the spikes at the same sample are found by time, then the electrode
    is compared among those few. Queries are taken a block at a time (their candidates' arrays are int64)."""
    found, block = np.full(t_q.size, -1, dtype=np.int32 if t.size < 2**31 else np.int64), QUERY_BLOCK
    for a in range(0, t_q.size, block):
        tq, eq = t_q[a:a + block], e_q[a:a + block]
        lo, hi = np.searchsorted(t, tq, side="left"), np.searchsorted(t, tq, side="right")
        n_cand = hi - lo
        if not n_cand.any():
            continue
        which = np.repeat(np.arange(tq.size), n_cand)
        rows = lo[which] + (np.arange(which.size) - np.repeat(np.cumsum(n_cand) - n_cand, n_cand))
        hit = e[rows] == eq[which]
        which, rows = which[hit], rows[hit]
        first = np.unique(which, return_index=True)[1]  # candidates in row order: the first hit of each query
        found[a + which[first]] = rows[first]
    return found


def _train_metrics(times: np.ndarray, fs: float, n_samples: int, duration_s: float, cfg: QualityConfig) -> dict:
    row = {"n_spikes": int(times.size), "firing_rate_hz": st.firing_rate(times.size, duration_s)}
    row |= st.isi_violations(times, fs, duration_s, cfg.refractory_ms, cfg.censored_ms)
    row["rp_contamination"], row["rp_violations"] = st.rp_contamination(
        times, fs, n_samples, cfg.refractory_ms, cfg.censored_ms)
    row["sliding_rp_violation"] = st.sliding_rp_violation(
        times, fs, duration_s, cfg.sliding_rp_bin_ms, cfg.sliding_rp_max_ms, cfg.sliding_rp_exclude_ms)
    row["presence_ratio"] = st.presence_ratio(times, n_samples, fs, cfg.presence_bin_s)
    return row


def _amplitude_metrics(spikes: Spikes, idx: np.ndarray, electrode: int, cfg: QualityConfig) -> dict:
    a = spikes.amplitude_uv[idx]
    return {
        "n_spikes_matched": int(idx.size),
        "amplitude_uv": float(np.median(a)) if a.size else float("nan"),
        "snr": amp.snr_of_mean(_mean_waveform(spikes, idx), float(spikes.noise_uv[electrode])),
        "amplitude_cutoff": amp.amplitude_cutoff(a, cfg.amplitude_cutoff_bins, cfg.amplitude_cutoff_smoothing,
                                                 cfg.amplitude_cutoff_min_ratio),
        "noise_cutoff": amp.noise_cutoff(a),
    }


#: Waveforms averaged at once for a unit's mean (a larger unit is summed block by block).
MEAN_BLOCK = 65536


def _mean_waveform(spikes: Spikes, idx: np.ndarray) -> np.ndarray | None:
    """Mean (float64) of the waveforms ``idx``, read a block at a time; None when there are none."""
    if idx.size == 0:
        return None
    if idx.size <= MEAN_BLOCK:
        return spikes.waveforms[idx].mean(axis=0, dtype=np.float64)
    total = sum(spikes.waveforms[idx[i:i + MEAN_BLOCK]].sum(axis=0, dtype=np.float64)
                for i in range(0, idx.size, MEAN_BLOCK))
    return total / idx.size


def electrode_space(spikes: Spikes, idx: np.ndarray, n_components: int, features: np.ndarray | None = None) -> np.ndarray:
    """The shared feature space of the spikes ``idx`` of one electrode.

    Parameters
    ----------
    spikes : Spikes
    idx : ndarray of shape (m,), int
        Indices of the electrode's spikes.
    n_components : int
        Principal components of the noise-scaled waveforms (when ``features`` is None).
    features : ndarray of shape (n_spikes, d), optional
        Precomputed features of all spikes; used as they are.

    Returns
    -------
    ndarray of shape (m, k), float64
    """
    if features is not None:
        return np.asarray(features[idx], dtype=np.float64)
    sigma = max(float(spikes.noise_uv[spikes.electrode[idx[0]]]), 1e-6) if idx.size else 1.0
    w = np.asarray(spikes.waveforms[np.asarray(idx)], dtype=np.float32)  # an index array picks a copy: scaled in place
    w /= sigma
    return iso.electrode_pca(w, n_components)


def _isolation_metrics(x: np.ndarray, labels: np.ndarray, units: list[int], cfg: QualityConfig) -> dict:
    """Distance metrics of each unit of one electrode; ``labels`` < 0 are unsorted spikes."""
    keep = labels >= 0 if not cfg.include_unsorted else np.ones(labels.shape, bool)
    x, labels = x[keep], np.where(labels[keep] < 0, -1, labels[keep])
    nn = iso.nearest_neighbour_rates(x, labels, units, cfg.nn_neighbors, cfg.nn_max_spikes)
    cluster_ids = np.unique(labels)
    centroids = {int(c): x[labels == c].mean(axis=0) for c in cluster_ids}
    out = {}
    for u in units:
        own, other = x[labels == u], x[labels != u]
        others = np.array([c for k, c in centroids.items() if k != u]).reshape(-1, x.shape[1])
        dist, l_ratio = iso.mahalanobis_metrics(own, other)
        out[u] = {"isolation_distance": dist, "l_ratio": l_ratio, "d_prime": iso.d_prime(own, other),
                  "silhouette": iso.simplified_silhouette(own, others),
                  "nn_hit_rate": nn[u][0], "nn_miss_rate": nn[u][1]}
    return out


def _unit_rows(spikes: Spikes, sorting: Sorting, match: "SpikeMatch", pos: np.ndarray, fs: float, n_samples: int,
               duration_s: float, config) -> dict[int, dict]:
    """Each sorted unit's electrode, position, spike-train and amplitude metrics."""
    rows: dict[int, dict] = {}
    for k, (u, sel) in enumerate(group_indices(sorting.unit).items()):
        if k % 16 == 15:  # the units' freed blocks go back to the OS as the loop goes, not at the stage's end
            release_memory(LOOP_TRIM_BYTES)
        if u < 0:
            continue
        e = int(np.bincount(sorting.electrode[sel]).argmax())
        times = np.sort(sorting.sample_index[sel])
        idx = match[sel]
        idx = idx[(idx >= 0) & (sorting.electrode[sel] == e)]
        rows[u] = {"unit": u, "electrode": e, "channel_id": str(spikes.channel_ids[e]) if e < spikes.n_electrodes else ""}
        if e < spikes.n_electrodes:
            rows[u] |= {"x_um": float(pos[e, 0]), "y_um": float(pos[e, 1])}
        rows[u] |= _train_metrics(times, fs, n_samples, duration_s, config)
        rows[u] |= _amplitude_metrics(spikes, idx, e, config)
    return rows


def compute_metrics(spikes: Spikes, sorting: Sorting, config: QualityConfig, duration_s: float,
                    features: np.ndarray | None = None, positions_um=None, n_jobs: int | None = None) -> list[dict]:
    """Quality metrics of every unit of ``sorting``, with the ``good`` label.

    Parameters
    ----------
    spikes : Spikes
        The detected spikes the sorting was made from (waveforms in µV, noise σ per electrode).
    sorting : Sorting
        Unit labels (-1 = unsorted). Spikes absent from ``spikes`` count for the spike-train
        metrics only.
    config : QualityConfig
    duration_s : float
        Recording duration in seconds (> 0).
    features : ndarray of shape (spikes.n_spikes, d), optional
        A shared feature space to use instead of per-electrode PCA of the scaled waveforms.
    positions_um : array-like of shape (spikes.n_electrodes, 2), µm, optional
        Electrode positions (``recording_info["positions_um"]``) for the ``x_um``/``y_um``
        columns; NaN when not given.
    n_jobs : int, optional
        Threads over electrodes for the isolation metrics (the same values as one thread);
        default ``config.n_jobs``.

    Returns
    -------
    list of dict
        One dict per unit (ascending unit id) with the keys of :data:`METRIC_COLUMNS`;
        undefined metrics are NaN. ``good`` is a bool under ``config.preset``.

    Raises
    ------
    ValueError
        For a non-positive duration or features whose row count differs from the spikes.
    SpikevaeConfigError
        When the censored period is not shorter than the refractory period.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0 (got {duration_s})")
    if config.censored_ms >= config.refractory_ms:
        raise SpikevaeConfigError(
            f"quality.censored_ms={config.censored_ms} must be shorter than quality.refractory_ms="
            f"{config.refractory_ms}; the censored period is the part of the refractory period no sorter can fill")
    if features is not None and np.shape(features)[0] != spikes.n_spikes:
        raise ValueError(f"features have {np.shape(features)[0]} rows but there are {spikes.n_spikes} spikes")
    fs = float(sorting.fs)
    n_samples = int(round(duration_s * fs))
    match = SpikeMatch(spikes, sorting)
    spike_unit = spike_units(spikes, sorting, match.index)

    rows = _unit_rows(spikes, sorting, match, electrode_positions(positions_um, spikes.n_electrodes), fs,
                      n_samples, duration_s, config)  # its unit groups (4 bytes a spike) are gone when it returns
    electrodes = []
    for e, idx in group_indices(spikes.electrode).items():
        units = sorted({int(u) for u in np.unique(spike_unit[idx]) if u >= 0 and rows.get(int(u), {}).get("electrode") == e})
        if units:
            electrodes.append((idx, units))

    def isolation(item):  # the subsample is made here, so only the electrodes in work hold one
        idx, units = item
        release_memory(LOOP_TRIM_BYTES)
        if idx.size > config.isolation_max_spikes:  # the same proportions of every unit, in a bounded space
            idx = idx[np.linspace(0, idx.size - 1, config.isolation_max_spikes).astype(np.int64)]
        return _isolation_metrics(electrode_space(spikes, idx, config.n_components, features), spike_unit[idx],
                                  units, config)

    for found in map_threads(isolation, electrodes, config.n_jobs if n_jobs is None else n_jobs):
        for u, vals in found.items():
            rows[u] |= vals

    out = []
    for u in sorted(rows):
        row = {k: rows[u].get(k, math.nan) for k in METRIC_COLUMNS if k != "good"}
        row["good"] = not failed_rules(row, config.preset)
        out.append(row)
    log.info("quality: %d units, %d good (%s preset)", len(out), sum(r["good"] for r in out), config.preset)
    return out
