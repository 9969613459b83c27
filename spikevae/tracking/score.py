"""Scoring tracks against simulated identities (``tracking_truth.csv``).

Each session's sorted units are first mapped to ground-truth units by spikevae's own scoring
(:func:`spikevae.compare.compare_sortings`: Hungarian matching on the SpikeForest agreement,
±0.4 ms); a sorted unit whose matched ground-truth unit reaches ``min_accuracy`` takes that
unit's identity, other sorted units have none. A *true link* joins two sorted units of
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
                      min_accuracy: float = 0.5) -> dict[int, int]:
    """``sorted unit -> identity`` for the sorted units that match a ground-truth unit with at least
    ``min_accuracy`` (``identity_of_gt`` maps the session's ground-truth unit ids to identities)."""
    scores = compare_sortings(gt, sorting)
    return {u["sorted_unit"]: identity_of_gt[u["gt_unit"]] for u in scores["units"]
            if u["sorted_unit"] >= 0 and u["accuracy"] >= min_accuracy and u["gt_unit"] in identity_of_gt}


def score_links(result: TrackResult, identities: list[dict[int, int]]) -> dict:
    """Precision and recall of the links of ``result`` against the identities of each session's units.

    Parameters
    ----------
    result : TrackResult
    identities : list of dict
        Per session, ``sorted unit -> identity`` (:func:`sorted_identities`).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``n_true``, ``n_predicted`` (judged), ``n_correct``, ``n_unjudged``,
        ``n_vanished`` (identified units with no identified successor) and ``vanished_left_unmatched``
        (of those, how many no unit of the next session was linked to).
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
        later = set(identities[s].values())
        for u, ident in identities[s - 1].items():
            if ident not in later:
                vanished += 1
                kept_apart += int((s, u) not in linked_from)
    return {"precision": correct / judged if judged else float("nan"),
            "recall": correct / len(true) if true else float("nan"),
            "n_true": len(true), "n_predicted": judged, "n_correct": correct, "n_unjudged": unjudged,
            "n_vanished": vanished, "vanished_left_unmatched": kept_apart}
