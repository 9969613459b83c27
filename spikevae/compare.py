"""Scoring a sorting against ground truth, as SpikeForest does.

Each ground-truth unit is matched one to one to a sorted unit by the Hungarian
algorithm on the agreement score; per ground-truth unit
``accuracy = TP / (TP + FN + FP)``, ``precision = TP / (TP + FP)``,
``recall = TP / (TP + FN)``, where a true positive is a sorted spike within
``tol_ms`` (0.4 ms by default) of a ground-truth spike, each spike matched at most once
(Magland et al. 2020, SpikeForest). A unit is "well detected" at accuracy ≥ 0.8.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .execution import release_memory
from .objects import Sorting, SortingFile

WELL_DETECTED = 0.8


def match_times(a: np.ndarray, b: np.ndarray, tol: int) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of two sorted event-time arrays within ``tol`` samples.

    Greedy in time order, taking the nearest unmatched partner, which is optimal for
    events sparser than the tolerance.

    Returns
    -------
    ia, ib : ndarray of int64
        Indices into ``a`` and ``b`` of the matched pairs.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.size == 0 or b.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    oa, ob = np.argsort(a, kind="stable"), np.argsort(b, kind="stable")
    sa, sb = a[oa], b[ob]
    # candidate pairs (i, j) with |sa[i] - sb[j]| <= tol, sorted by distance
    lo = np.searchsorted(sb, sa - tol, side="left")
    hi = np.searchsorted(sb, sa + tol, side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ii = np.repeat(np.arange(sa.size), counts)
    jj = np.concatenate([np.arange(l, h) for l, h in zip(lo[counts > 0], hi[counts > 0])])
    d = np.abs(sa[ii] - sb[jj])
    order = np.lexsort((ii, d))
    used_a = np.zeros(sa.size, bool)
    used_b = np.zeros(sb.size, bool)
    out_a, out_b = [], []
    for k in order:
        i, j = ii[k], jj[k]
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            out_a.append(i)
            out_b.append(j)
    return oa[np.asarray(out_a, np.int64)], ob[np.asarray(out_b, np.int64)]


#: Spikes (of the ground truth and the sorting together) whose times one batch of electrodes gathers
#: when two sortings are compared: memory holds one batch's, not every spike's.
SCORE_BATCH = 1 << 21
#: Spikes read or sliced at a time in each pass over a sorting.
PASS_BLOCK = 1 << 18


def _blocks(s, offset: int = 0):
    """``(sample_index + offset, electrode, unit)`` of ``s`` (a Sorting in memory, or a
    :class:`~spikevae.objects.SortingFile` read from its file) a block at a time."""
    if isinstance(s, SortingFile):
        for t, e, u in s.blocks(PASS_BLOCK):
            yield (t + offset if offset else t), e, u
        return
    for a in range(0, s.sample_index.size, PASS_BLOCK):
        b = a + PASS_BLOCK
        t = s.sample_index[a:b]
        yield (t + offset if offset else t), s.electrode[a:b], s.unit[a:b]


def _census(s) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Sorted unit ids of ``s`` (without -1), each unit's electrode (the most common of its spikes; the
    lowest of a tie) and spike count, and whether any spike has an electrode other than 0: one pass of
    counts per (unit, electrode) pair, nothing per spike."""
    counts: dict[int, int] = {}
    nonzero = False
    for _, e, u in _blocks(s):
        if e.size and e.min() < 0:
            raise ValueError(f"electrode indices must be >= 0, got {int(e.min())}")
        nonzero = nonzero or bool(np.any(e != 0))
        key = (u.astype(np.int64) << 32) | e.astype(np.int64)  # electrode indices are >= 0 and < 2**32
        k, c = np.unique(key[u >= 0], return_counts=True)
        for kk, cc in zip(k.tolist(), c.tolist()):
            counts[kk] = counts.get(kk, 0) + cc
    per_unit: dict[int, list] = {}
    for kk in sorted(counts):  # by unit, then electrode: the first largest count is the lowest electrode
        u, e, c = kk >> 32, kk & 0xFFFFFFFF, counts[kk]
        best = per_unit.setdefault(u, [e, 0, 0])
        best[2] += c
        if c > best[1]:
            best[0], best[1] = e, c
    ids = np.array(sorted(per_unit), dtype=np.int64)
    elec = np.array([per_unit[u][0] for u in ids.tolist()], dtype=np.int64)
    n = np.array([per_unit[u][2] for u in ids.tolist()], dtype=np.int64)
    return ids, elec, n, nonzero


def _unit_times(s, units: np.ndarray, offset: int = 0) -> dict[int, np.ndarray]:
    """Sorted spike times of each unit of ``units`` (one pass over ``s``): only their times are kept,
    gathered per unit block by block (no index or copy of the batch's spikes beside them)."""
    want = np.sort(np.asarray(units, dtype=np.int64))
    if want.size == 0:
        return {}
    parts: dict[int, list] = {int(x): [] for x in want.tolist()}
    for t, _, u in _blocks(s, offset):
        pos = np.minimum(np.searchsorted(want, u), want.size - 1)
        hit = np.flatnonzero(want[pos] == u)
        if hit.size == 0:
            continue
        unit_pos = pos[hit]
        order = np.argsort(unit_pos, kind="stable")
        hit, unit_pos = hit[order], unit_pos[order]
        starts = np.r_[0, np.flatnonzero(np.diff(unit_pos)) + 1]
        for a, b in zip(starts, np.r_[starts[1:], hit.size]):
            parts[int(want[unit_pos[a]])].append(t[hit[a:b]])
    out = {}
    for x, pieces in parts.items():
        times = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
        if times.size > 1 and np.any(times[1:] < times[:-1]):  # a file need not be in time order
            times.sort(kind="stable")
        out[x] = times
    return out


def _batches(blocks: list, n_gt: dict, n_s: dict, limit: int) -> list[list]:
    """``blocks`` (one ``(gt units, sorted units)`` pair per electrode) in batches of at most ``limit``
    spikes of both sides (an electrode with more is a batch of its own)."""
    out, size = [[]], 0
    for g_units, s_units in blocks:
        n = sum(n_gt[g] for g in g_units) + sum(n_s[u] for u in s_units)
        if out[-1] and size + n > limit:
            out.append([])
            size = 0
        out[-1].append((g_units, s_units))
        size += n
    return out if out[-1] else []


def _agreement(gt, sorting, tol: int, use_electrodes: bool | None, offset: int = 0):
    """:func:`agreement_matrix`, with each side's unit electrodes: ``(gt_ids, gt_electrode, sorted_ids,
    sorted_electrode, n_match, n_gt, n_sorted)``."""
    gt_ids, g_el, n_gt, nonzero = _census(gt)
    s_ids, s_el, n_s, _ = _census(sorting)
    m = np.zeros((gt_ids.size, s_ids.size), dtype=np.int64)
    use_elec = nonzero if use_electrodes is None else use_electrodes
    g_elec = dict(zip(gt_ids.tolist(), g_el.tolist()))
    s_elec = dict(zip(s_ids.tolist(), s_el.tolist()))
    g_pos = {int(g): i for i, g in enumerate(gt_ids)}
    s_pos = {int(u): j for j, u in enumerate(s_ids)}
    if use_elec:  # a neuron is seen on one electrode: units of other electrodes cannot match it
        blocks = [([g for g in g_elec if g_elec[g] == e], [u for u in s_elec if s_elec[u] == e])
                  for e in sorted(set(g_elec.values()))]
        batches = _batches([(g, u) for g, u in blocks if g and u], dict(zip(gt_ids.tolist(), n_gt.tolist())),
                           dict(zip(s_ids.tolist(), n_s.tolist())), SCORE_BATCH)
    else:
        batches = [[(list(g_elec), list(s_elec))]]
    for batch in batches:
        g_batch = np.array([g for g_units, _ in batch for g in g_units], dtype=np.int64)
        s_batch = np.array([u for _, s_units in batch for u in s_units], dtype=np.int64)
        if not g_batch.size or not s_batch.size:
            continue
        gtt, srt = _unit_times(gt, g_batch, offset), _unit_times(sorting, s_batch)
        for g_units, s_units in batch:
            for g in g_units:
                lo, hi = gtt[g][0] - tol, gtt[g][-1] + tol
                for u in s_units:
                    t = srt[u]
                    t = t[(t >= lo) & (t <= hi)]
                    if t.size:
                        m[g_pos[g], s_pos[u]] = match_times(gtt[g], t, tol)[0].size
        del gtt, srt
        release_memory()  # the batch's freed blocks go back to the OS before the next batch's
    return gt_ids, g_el, s_ids, s_el, m, n_gt, n_s


def agreement_matrix(gt, sorting, tol: int, use_electrodes: bool | None = None, offset: int = 0):
    """Matched-spike counts between every ground-truth and sorted unit.

    Units on different electrodes never match when ``use_electrodes`` is true; None (default)
    uses electrodes when the ground truth has any electrode other than 0. ``gt`` and ``sorting``
    are :class:`~spikevae.objects.Sorting` objects or :class:`~spikevae.objects.SortingFile` files;
    ``offset`` is added to the ground-truth times. With electrodes, spike times are gathered for a
    batch of electrodes at a time (:data:`SCORE_BATCH` spikes), one pass over each side per batch:
    memory holds one batch's times, not an index or a copy of every spike.

    Returns
    -------
    gt_ids, sorted_ids : ndarray
    n_match : ndarray of shape (n_gt, n_sorted), int
    n_gt, n_sorted : ndarray of spike counts per unit
    """
    gt_ids, _, s_ids, _, m, n_gt, n_s = _agreement(gt, sorting, tol, use_electrodes, offset)
    return gt_ids, s_ids, m, n_gt, n_s


def compare_sortings(gt: Sorting | SortingFile, sorting: Sorting | SortingFile, tol_ms: float = 0.4, offset_samples: int = 0,
                     use_electrodes: bool | None = None) -> dict:
    """Score ``sorting`` against ground truth ``gt``.

    Parameters
    ----------
    gt, sorting : Sorting or SortingFile
        Ground truth and the sorting to score, at the same sampling rate (a
        :class:`~spikevae.objects.SortingFile` is read a block at a time, never held whole).
    tol_ms : float, default 0.4
        Matching tolerance in ms.
    offset_samples : int, default 0
        Added to the ground-truth times before matching (for ground truths that mark the
        spike onset rather than the peak; see :func:`estimate_offset`).
    use_electrodes : bool, optional
        Match only units on the same electrode (None: when the ground truth has electrodes).
        False scores by times alone, so units on different electrodes may then match.

    Returns
    -------
    dict with ``mean_accuracy``, ``median_accuracy``, ``n_gt_units``, ``n_well_detected``,
    ``n_sorted_units``, ``tol_ms``, ``offset_samples`` and ``units``: one dict per
    ground-truth unit (``gt_unit``, ``sorted_unit`` (-1 if unmatched), ``electrode``,
    ``n_gt``, ``n_sorted``, ``tp``, ``fn``, ``fp``, ``accuracy``, ``precision``, ``recall``).
    """
    if abs(gt.fs - sorting.fs) > 1e-6 * gt.fs:
        from .errors import SpikevaeError

        raise SpikevaeError(f"ground truth is at {gt.fs:g} Hz but the sorting at {sorting.fs:g} Hz; they must match")
    tol = int(round(tol_ms * 1e-3 * gt.fs))
    gt_ids, g_el, s_ids, _, m, n_gt, n_s = _agreement(gt, sorting, tol, use_electrodes, int(offset_samples))
    acc_mat = m / np.maximum(n_gt[:, None] + n_s[None, :] - m, 1)
    rows, cols = linear_sum_assignment(-acc_mat) if m.size else (np.zeros(0, int), np.zeros(0, int))
    match = {int(r): int(c) for r, c in zip(rows, cols) if m[r, c] > 0}
    g_elec = dict(zip(gt_ids.tolist(), g_el.tolist()))
    units = []
    for i, g in enumerate(gt_ids):
        j = match.get(i)
        tp = int(m[i, j]) if j is not None else 0
        ns = int(n_s[j]) if j is not None else 0
        fn, fp = int(n_gt[i]) - tp, ns - tp
        units.append({
            "gt_unit": int(g), "sorted_unit": int(s_ids[j]) if j is not None else -1,
            "electrode": g_elec[int(g)], "n_gt": int(n_gt[i]), "n_sorted": ns, "tp": tp, "fn": fn, "fp": fp,
            "accuracy": tp / max(tp + fn + fp, 1), "precision": tp / max(tp + fp, 1) if ns else 0.0,
            "recall": tp / max(int(n_gt[i]), 1),
        })
    acc = np.array([u["accuracy"] for u in units])
    return {
        "mean_accuracy": float(acc.mean()) if acc.size else 0.0,
        "median_accuracy": float(np.median(acc)) if acc.size else 0.0,
        "n_gt_units": int(gt_ids.size), "n_sorted_units": int(s_ids.size),
        "n_well_detected": int((acc >= WELL_DETECTED).sum()),
        "tol_ms": tol_ms, "offset_samples": int(offset_samples), "units": units,
    }


NO_ELECTRODE = ("{name} has no electrode per unit; give --recording REC or --run OUT so it can be inferred, "
                "or compare without electrodes with --ignore-electrodes")


def has_electrodes(s: Sorting) -> bool:
    """Whether ``s`` knows each unit's electrode (``params["electrode_source"]`` is not None;
    sortings made in Python without that key count as knowing it)."""
    return s.params.get("electrode_source", "file") is not None


def electrode_policy(a: Sorting, b: Sorting, *, ignore: bool = False, ground_truth: bool = True,
                     names=("the ground truth", "this sorting")) -> bool | None:
    """The ``use_electrodes`` argument for scoring ``b`` against ``a``, or an error when one side lacks them.

    With a ground truth ``a``, electrodes are used as :func:`agreement_matrix` always did (when
    the ground truth has an electrode other than 0); between two sortings, when both have them.

    Raises
    ------
    SpikevaeError
        When ``a`` would use electrodes that the other side does not have (and not ``ignore``).
    """
    from .errors import SpikevaeError

    if ignore:
        return False
    if ground_truth:
        if np.any(a.electrode != 0) and has_electrodes(a) and not has_electrodes(b):
            raise SpikevaeError(NO_ELECTRODE.format(name=names[1]))
        return None
    if has_electrodes(a) != has_electrodes(b):
        raise SpikevaeError(NO_ELECTRODE.format(name=names[1] if has_electrodes(a) else names[0]))
    return has_electrodes(a)


def agreement(a: Sorting, b: Sorting, tol_ms: float = 0.4, use_electrodes: bool = True) -> dict:
    """Agreement between two sortings of one recording (two sorters, or two runs).

    Units are matched one to one by the Hungarian algorithm on the agreement
    ``n_common / (n_a + n_b - n_common)`` (the accuracy formula of :func:`compare_sortings`,
    symmetric in ``a`` and ``b``).

    Returns
    -------
    dict with ``n_units_a``, ``n_units_b``, ``n_spikes_a``, ``n_spikes_b`` (sorted spikes),
    ``n_common_spikes`` (matched spikes of matched pairs), ``n_matched`` (pairs with any
    common spike), ``n_agree`` (pairs with agreement ≥ 0.8), ``mean_agreement_a``,
    ``mean_agreement_b`` (over all units of each side, unmatched = 0), ``n_nonzero_pairs``
    (pairs of the agreement matrix with a common spike), ``tol_ms``, and ``units_a`` /
    ``units_b``: per unit its ``unit``, ``electrode``, ``n_spikes``, ``match`` (-1 if none),
    ``n_common``, ``agreement`` and ``best_agreement`` (its highest agreement with any unit,
    matched or not).
    """
    from .errors import SpikevaeError

    if abs(a.fs - b.fs) > 1e-6 * a.fs:
        raise SpikevaeError(f"the first sorting is at {a.fs:g} Hz but the second at {b.fs:g} Hz; they must match")
    tol = int(round(tol_ms * 1e-3 * a.fs))
    a_ids, a_el, b_ids, b_el, m, n_a, n_b = _agreement(a, b, tol, use_electrodes)
    acc = m / np.maximum(n_a[:, None] + n_b[None, :] - m, 1)
    rows, cols = linear_sum_assignment(-acc) if m.size else (np.zeros(0, int), np.zeros(0, int))
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if m[r, c] > 0]
    side_a = _side(a_ids, a_el, b_ids, n_a, m, acc, {r: c for r, c in pairs})
    side_b = _side(b_ids, b_el, a_ids, n_b, m.T, acc.T, {c: r for r, c in pairs})
    return {
        "n_units_a": int(a_ids.size), "n_units_b": int(b_ids.size),
        "n_spikes_a": int(n_a.sum()), "n_spikes_b": int(n_b.sum()),
        "n_common_spikes": int(sum(m[r, c] for r, c in pairs)), "n_matched": len(pairs),
        "n_agree": int(sum(acc[r, c] >= WELL_DETECTED for r, c in pairs)),
        "n_nonzero_pairs": int((m > 0).sum()),
        "mean_agreement_a": float(np.mean([u["agreement"] for u in side_a])) if side_a else 0.0,
        "mean_agreement_b": float(np.mean([u["agreement"] for u in side_b])) if side_b else 0.0,
        "tol_ms": tol_ms, "use_electrodes": bool(use_electrodes), "units_a": side_a, "units_b": side_b,
    }


def _side(ids, elec, other_ids, n, m, acc, match: dict) -> list[dict]:
    out = []
    for i, u in enumerate(ids):
        j = match.get(i)
        out.append({"unit": int(u), "electrode": int(elec[i]), "n_spikes": int(n[i]),
                    "match": int(other_ids[j]) if j is not None else -1,
                    "n_common": int(m[i, j]) if j is not None else 0,
                    "agreement": float(acc[i, j]) if j is not None else 0.0,
                    "best_agreement": float(acc[i].max()) if acc.shape[1] else 0.0})
    return out


def format_agreement(d: dict, names=("A", "B")) -> str:
    """A terminal table of :func:`agreement`: the summary, then one row per unit of the first sorting."""
    a, b = names
    lines = [f"{a}: {d['n_units_a']} units, {d['n_spikes_a']} spikes | {b}: {d['n_units_b']} units, "
             f"{d['n_spikes_b']} spikes | matched {d['n_matched']}, agreement ≥{WELL_DETECTED} {d['n_agree']} | "
             f"spikes in common {d['n_common_spikes']} | mean agreement {a} {d['mean_agreement_a']:.3f}, "
             f"{b} {d['mean_agreement_b']:.3f}"]
    lines.append(f"{'unit_' + a:>7} {'elec':>4} {'n':>6} {'unit_' + b:>7} {'common':>6} {'agree':>6} {'best':>6}")
    for u in d["units_a"]:
        lines.append(f"{u['unit']:>7} {u['electrode']:>4} {u['n_spikes']:>6} {u['match']:>7} "
                     f"{u['n_common']:>6} {u['agreement']:>6.3f} {u['best_agreement']:>6.3f}")
    return "\n".join(lines)


def estimate_offset(gt: Sorting, sorting: Sorting, max_ms: float = 3.0) -> int:
    """The constant shift (samples) to add to ground-truth times that best aligns them with the sorting.

    Uses the histogram of (sorted - gt) time differences within ``max_ms`` over all
    spikes (all units pooled), and returns its mode.
    """
    w = int(round(max_ms * 1e-3 * gt.fs))
    a, b = np.sort(gt.sample_index), np.sort(sorting.sample_index)
    if a.size == 0 or b.size == 0:
        return 0
    lo = np.searchsorted(b, a - w)
    hi = np.searchsorted(b, a + w, side="right")
    diffs = np.concatenate([b[l:h] - t for t, l, h in zip(a, lo, hi)]) if a.size else np.zeros(0)
    if diffs.size == 0:
        return 0
    hist = np.bincount((diffs + w).astype(np.int64), minlength=2 * w + 1)
    return int(np.argmax(hist) - w)


def load_ground_truth(path, fs: float = 0.0) -> Sorting:
    """Ground truth from a ``.npz`` in the sorting layout or a ``.mat`` (see :mod:`spikevae.io.mat`)."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".mat":
        from .errors import SpikevaeError
        from .io.mat import read_mat_ground_truth

        if not Path(path).exists():
            raise SpikevaeError(f"{path}: file not found; pass a ground-truth .npz or .mat file")
        return read_mat_ground_truth(path, fs)
    return Sorting.load_npz(path)


def open_ground_truth(path, fs: float = 0.0):
    """:func:`load_ground_truth`, except that a ``.npz`` of integer arrays is opened as a
    :class:`~spikevae.objects.SortingFile`, which scoring reads a block at a time instead of holding."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".mat":
        return load_ground_truth(path, fs)
    return SortingFile.open(path)


def spike_times_past(s, n_samples: int) -> tuple[int, int, int]:
    """How many spikes of ``s`` (Sorting or SortingFile) lie at or past sample ``n_samples``, how many
    spikes it has, and its last spike's sample (one pass)."""
    late = n = 0
    last = -1
    for t, _, _ in _blocks(s):
        late += int(np.count_nonzero(t >= n_samples))
        n += t.size
        if t.size:
            last = max(last, int(t.max()))
    return late, n, last


def format_scores(scores: dict, label: str = "") -> str:
    """A terminal table of per-unit scores."""
    lines = [f"{label}mean accuracy {scores['mean_accuracy']:.3f} | well detected (≥{WELL_DETECTED}) "
             f"{scores['n_well_detected']}/{scores['n_gt_units']} | sorted units {scores['n_sorted_units']}"]
    lines.append(f"{'gt_unit':>7} {'elec':>4} {'sorted':>6} {'n_gt':>6} {'acc':>6} {'prec':>6} {'recall':>6}")
    for u in scores["units"]:
        lines.append(f"{u['gt_unit']:>7} {u['electrode']:>4} {u['sorted_unit']:>6} {u['n_gt']:>6} "
                     f"{u['accuracy']:>6.3f} {u['precision']:>6.3f} {u['recall']:>6.3f}")
    return "\n".join(lines)
