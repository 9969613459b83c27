"""Scoring tracks against simulated identities (``tracking_truth.csv``).

Each session's sorted units are first mapped to ground-truth units by spikevae's own scoring
(:func:`spikevae.compare.compare_sortings`: Hungarian matching on the SpikeForest agreement,
±0.4 ms); a sorted unit takes the identity of its matched ground-truth unit when at least
``min_precision`` of its spikes are that unit's (it is mostly that neuron), other sorted units
have none. A *true link* joins two sorted units of
consecutive sessions with the same identity; a predicted link is *correct* when both ends
have that same identity and *wrong* when at least one end has an identity and they differ
(links between two units without identity are not judged). Precision = correct / judged
links, recall = correct / true links.
"""
from __future__ import annotations

import numpy as np

from ..compare import compare_sortings, match_times
from ..objects import Sorting, Spikes
from .track import TrackResult


def truth_labels(spikes: Spikes, gt: Sorting, tol_ms: float = 0.4) -> np.ndarray:
    """The ground-truth unit of every detected spike (matched on its electrode within ``tol_ms``;
    -1 for detections of no ground-truth spike): an oracle sorting, to test tracking apart from sorting.

    Returns
    -------
    ndarray of shape (spikes.n_spikes,), int64
    """
    tol = int(round(tol_ms * 1e-3 * spikes.fs))
    out = np.full(spikes.n_spikes, -1, np.int64)
    for e in np.unique(spikes.electrode):
        mine = np.flatnonzero(spikes.electrode == e)
        g = np.flatnonzero(gt.electrode == e)
        ia, ib = match_times(spikes.sample_index[mine], gt.sample_index[g], tol)
        out[mine[ia]] = gt.unit[g[ib]]
    return out


def sorted_identities(sorting: Sorting, gt: Sorting, identity_of_gt: dict[int, int],
                      min_precision: float = 0.5) -> dict[int, int]:
    """``sorted unit -> identity`` for the sorted units matched to a ground-truth unit that makes up at
    least ``min_precision`` of their spikes (``identity_of_gt`` maps the session's ground-truth unit ids
    to identities)."""
    scores = compare_sortings(gt, sorting)
    return {u["sorted_unit"]: identity_of_gt[u["gt_unit"]] for u in scores["units"]
            if u["sorted_unit"] >= 0 and u["precision"] >= min_precision and u["gt_unit"] in identity_of_gt}


def score_links(result: TrackResult, identities: list[dict[int, int]], present: list[set] | None = None) -> dict:
    """Precision and recall of the links of ``result`` against the identities of each session's units.

    Parameters
    ----------
    result : TrackResult
    identities : list of dict
        Per session, ``sorted unit -> identity`` (:func:`sorted_identities`).
    present : list of set, optional
        Per session, the identities of every neuron the session holds (sorted or not): a unit has
        *vanished* when its identity is absent from the next session. Default: the identities of
        the next session's identified units.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``n_true``, ``n_predicted`` (judged), ``n_correct``, ``n_unjudged``,
        ``n_vanished`` (identified units whose neuron is gone from the next session) and
        ``vanished_left_unmatched`` (of those, how many no unit of the next session was linked to).
    """
    true = set()
    for s in range(1, len(identities)):
        inv = {}
        for u, ident in identities[s - 1].items():
            inv.setdefault(ident, []).append(u)
        for u, ident in identities[s].items():
            for v in inv.get(ident, []):
                true.add((s, v, u))
    correct = judged = unjudged = 0
    linked_from = set()
    for s, prev, unit in result.links():
        linked_from.add((s, prev))
        a, b = identities[s - 1].get(prev), identities[s].get(unit)
        if a is None and b is None:
            unjudged += 1
            continue
        judged += 1
        correct += int(a is not None and a == b)
    vanished = kept_apart = 0
    for s in range(1, len(identities)):
        later = present[s] if present is not None else set(identities[s].values())
        for u, ident in identities[s - 1].items():
            if ident not in later:
                vanished += 1
                kept_apart += int((s, u) not in linked_from)
    return {"precision": correct / judged if judged else float("nan"),
            "recall": correct / len(true) if true else float("nan"),
            "n_true": len(true), "n_predicted": judged, "n_correct": correct, "n_unjudged": unjudged,
            "n_vanished": vanished, "vanished_left_unmatched": kept_apart}


def score_runs(run_dirs, truth_csv, result: TrackResult, sorting: str | None = None) -> dict:
    """Score the tracks of run folders of simulated sessions (:func:`score_links`).

    The ground truth of session k is ``session_<k>/ground_truth.npz`` beside ``truth_csv``, as
    ``spikevae simulate --sessions N`` writes them.

    Raises
    ------
    SpikevaeError
        When a session's ground truth is missing.
    """
    from pathlib import Path

    from ..errors import SpikevaeError
    from ..store import RunStore
    from .session import load_session
    from .simulate import read_tracking_truth

    truth = read_tracking_truth(truth_csv)
    identities = []
    for k, run in enumerate(run_dirs):
        gt_path = Path(truth_csv).parent / f"session_{k}" / "ground_truth.npz"
        if not gt_path.is_file():
            raise SpikevaeError(f"{gt_path}: no ground truth for session {k}; pass the tracking_truth.csv that "
                                "`spikevae simulate --sessions N` wrote beside its session folders")
        method = sorting or load_session(run).config.get("features", {}).get("method", "pca")
        s = RunStore(run).load_sorting(method)
        identities.append(sorted_identities(s, Sorting.load_npz(gt_path),
                                            {g: i for (sess, g), i in truth.items() if sess == k}))
    present = [{i for (sess, _), i in truth.items() if sess == k} for k in range(len(run_dirs))]
    return score_links(result, identities, present)
