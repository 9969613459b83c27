"""Where a sorting loses accuracy, on ground truth: detection ceiling and supervised probe.

Three sortings of the same detected spikes are scored with
:func:`spikevae.compare.compare_sortings` (SpikeForest accuracy, ±0.4 ms):

* **detection ceiling**: every detected spike labelled with the ground-truth unit
  whose spike it matches within ``tol_ms`` on that unit's electrode (one to one);
  what a perfect clustering of these detections would score;
* **supervised probe**: a linear discriminant per electrode, trained on those labels
  in the run's feature space (spikes without a match form a "noise" class, which
  predicts unsorted) and evaluated by 5-fold cross-validation; about what the
  features allow a clustering to reach;
* **sorting**: the sorting itself.

Each is also averaged by ground-truth SNR band (< 5, 5-8, >= 8) when the ground
truth gives ``unit_snr``. Every clustering change is judged by how much of the
probe it reaches (issue 7).
"""
from __future__ import annotations

import logging

import numpy as np

from .compare import compare_sortings, match_times
from .objects import Embedding, Sorting, Spikes

log = logging.getLogger(__name__)

#: SNR bands (lower bound inclusive, upper exclusive) of the diagnosis.
SNR_BANDS = (("<5", 0.0, 5.0), ("5-8", 5.0, 8.0), (">=8", 8.0, np.inf))
NOISE = -1


def ground_truth_labels(spikes: Spikes, gt: Sorting, tol_ms: float = 0.4) -> np.ndarray:
    """The ground-truth unit of each detected spike, or -1 where none matches.

    Each ground-truth unit's spikes are matched one to one with the detected spikes
    of its electrode (all detected spikes when the ground truth has no electrodes)
    within ``tol_ms``. A detected spike matched by two units keeps the closer one.

    Returns
    -------
    ndarray of shape (n_spikes,), int64
    """
    tol = int(round(tol_ms * 1e-3 * spikes.fs))
    labels = np.full(spikes.n_spikes, NOISE, dtype=np.int64)
    dist = np.full(spikes.n_spikes, np.iinfo(np.int64).max)
    use_elec = bool(np.any(gt.electrode != 0)) or spikes.n_electrodes == 1
    for g, e in gt.unit_electrode().items():
        gt_t = np.sort(gt.sample_index[gt.unit == g])
        cand = np.flatnonzero(spikes.electrode == e) if use_elec else np.arange(spikes.n_spikes)
        ig, idet = match_times(gt_t, spikes.sample_index[cand], tol)
        d = np.abs(gt_t[ig] - spikes.sample_index[cand[idet]])
        better = d < dist[cand[idet]]
        labels[cand[idet[better]]] = g
        dist[cand[idet[better]]] = d[better]
    return labels


def supervised_probe(features: np.ndarray, electrode: np.ndarray, labels: np.ndarray,
                     n_folds: int = 5, seed: int = 0, window: np.ndarray | None = None) -> np.ndarray:
    """Cross-validated linear-discriminant predictions per electrode (or per electrode and time window).

    Parameters
    ----------
    features : ndarray of shape (n_spikes, d)
    electrode : ndarray of shape (n_spikes,)
    labels : ndarray of shape (n_spikes,), int; -1 = noise (a class of its own)
    n_folds : int, default 5
    window : ndarray of shape (n_spikes,), int, optional
        Each spike's time window: one discriminant per electrode and window, so a unit whose
        waveform drifts is separated as well as the clusters of each window allow.

    Returns
    -------
    ndarray of shape (n_spikes,), int64: predicted unit (-1 for the noise class)
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import KFold

    pred = np.full(labels.shape, NOISE, dtype=np.int64)
    x = np.asarray(features, dtype=np.float64)
    group = np.asarray(electrode, dtype=np.int64)
    if window is not None:
        group = group * (int(np.max(window)) + 1) + np.asarray(window, dtype=np.int64)
    for e in np.unique(group):
        idx = np.flatnonzero(group == e)
        classes = np.unique(labels[idx])
        if classes.size < 2 or idx.size < 2 * n_folds:
            pred[idx] = classes[0] if classes.size == 1 else NOISE
            continue
        for train, test in KFold(n_folds, shuffle=True, random_state=seed).split(idx):
            y = labels[idx[train]]
            if np.unique(y).size < 2:
                pred[idx[test]] = y[0]
                continue
            lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=1e-4).fit(x[idx[train]], y)
            pred[idx[test]] = lda.predict(x[idx[test]])
    return pred


def by_snr(scores: dict, unit_snr: dict | None) -> dict:
    """Mean accuracy and unit count per SNR band."""
    if not unit_snr:
        return {}
    out = {}
    for name, lo, hi in SNR_BANDS:
        acc = [u["accuracy"] for u in scores["units"] if lo <= unit_snr.get(u["gt_unit"], np.nan) < hi]
        out[name] = {"mean_accuracy": float(np.mean(acc)) if acc else float("nan"), "n_units": len(acc)}
    return out


def _summary(scores: dict, unit_snr: dict | None, elapsed: float | None = None) -> dict:
    d = {"mean_accuracy": scores["mean_accuracy"], "n_well_detected": scores["n_well_detected"],
         "n_gt_units": scores["n_gt_units"], "by_snr": by_snr(scores, unit_snr), "units": scores["units"]}
    if elapsed is not None:
        d["elapsed_s"] = elapsed
    return d


def diagnose(spikes: Spikes, embedding: Embedding, sorting: Sorting, gt: Sorting,
             gt_unit_snr: dict | None = None, tol_ms: float = 0.4) -> dict:
    """Detection ceiling, supervised probe and the sorting's scores, overall and by SNR band.

    Parameters
    ----------
    spikes : Spikes
        The run's detected spikes.
    embedding : Embedding
        The features the sorting was made from (same spikes, same order).
    sorting : Sorting
    gt : Sorting
        Ground truth.
    gt_unit_snr : dict unit id -> SNR, optional
        For the SNR bands (the ground-truth file's ``unit_snr``).
    tol_ms : float, default 0.4

    Returns
    -------
    dict with ``ceiling``, ``probe``, ``sorting`` (each: ``mean_accuracy``,
    ``n_well_detected``, ``n_gt_units``, ``by_snr``, ``units``), ``fraction_of_probe``
    (overall and per band), ``n_detected``, ``n_matched``, ``unmatched_sorted_fraction``
    (of the detections that match no ground-truth spike, the fraction the sorting put
    in a unit: noise crossings and background units it absorbed) and ``tol_ms``.
    """
    import time

    if embedding.n_spikes != spikes.n_spikes:
        raise ValueError(f"embedding has {embedding.n_spikes} rows but there are {spikes.n_spikes} spikes")
    snr = {int(k): float(v) for k, v in (gt_unit_snr or {}).items()}
    labels = ground_truth_labels(spikes, gt, tol_ms)
    ceiling = compare_sortings(gt, Sorting(spikes.sample_index, spikes.electrode, labels, spikes.fs), tol_ms)
    t0 = time.perf_counter()
    pred = supervised_probe(embedding.features, spikes.electrode, labels)
    probe_t = time.perf_counter() - t0
    probe = compare_sortings(gt, Sorting(spikes.sample_index, spikes.electrode, pred, spikes.fs), tol_ms)
    own = compare_sortings(gt, sorting, tol_ms)
    unit = sorting.unit[: spikes.n_spikes] if sorting.unit.shape[0] >= spikes.n_spikes else None
    unmatched = labels < 0
    noise_sorted = (float(np.mean(unit[unmatched] >= 0)) if unit is not None and unmatched.any() else float("nan"))
    out = {"ceiling": _summary(ceiling, snr), "probe": _summary(probe, snr, probe_t), "sorting": _summary(own, snr),
           "n_detected": spikes.n_spikes, "n_matched": int((labels >= 0).sum()), "tol_ms": tol_ms,
           "feature_method": embedding.method, "unmatched_sorted_fraction": noise_sorted}
    frac = {"all": own["mean_accuracy"] / probe["mean_accuracy"] if probe["mean_accuracy"] > 0 else float("nan")}
    for band, v in out["sorting"]["by_snr"].items():
        p = out["probe"]["by_snr"][band]["mean_accuracy"]
        frac[band] = v["mean_accuracy"] / p if p and p > 0 else float("nan")
    out["fraction_of_probe"] = frac
    return out


def format_diagnosis(d: dict) -> str:
    """A table: rows ceiling / probe / sorting / sorting÷probe, columns all and SNR bands."""
    bands = list(d["sorting"]["by_snr"])
    head = f"{'':<20}{'all':>8}" + "".join(f"{'SNR ' + b:>10}" for b in bands)
    lines = [f"diagnosis ({d.get('feature_method', '?')} features; {d['n_matched']}/{d['n_detected']} "
             f"detections match a ground-truth spike)", head]
    for key, name in (("ceiling", "detection ceiling"), ("probe", "supervised probe"), ("sorting", "sorting")):
        r = d[key]
        lines.append(f"{name:<20}{r['mean_accuracy']:>8.3f}" + "".join(
            f"{r['by_snr'][b]['mean_accuracy']:>10.3f}" for b in bands))
    f = d["fraction_of_probe"]
    lines.append(f"{'sorting / probe':<20}{f['all']:>7.0%} " + "".join(f"{f[b]:>9.0%} " for b in bands))
    if bands:
        lines.append(f"{'units':<20}{d['sorting']['n_gt_units']:>8}" + "".join(
            f"{d['sorting']['by_snr'][b]['n_units']:>10}" for b in bands))
    ns = d.get("unmatched_sorted_fraction", float("nan"))
    if np.isfinite(ns):
        lines.append(f"detections matching no ground-truth spike put into a unit: {ns:.0%}")
    return "\n".join(lines)


def load_ground_truth(path) -> tuple[Sorting, dict | None]:
    """A ground-truth Sorting and its per-unit SNR (None when the file has no ``unit_snr``)."""
    gt = Sorting.load_npz(path)
    with np.load(path, allow_pickle=False) as z:
        if "unit_snr" in z.files and "unit_ids" in z.files:
            return gt, dict(zip(z["unit_ids"].astype(int).tolist(), z["unit_snr"].astype(float).tolist()))
    return gt, None


def diagnose_run(out_dir, gt_path, method: str | None = None, echo=None, tol_ms: float = 0.4) -> dict:
    """:func:`diagnose` on a run folder's spikes, features and sorting (``method``: pca, vae;
    default: the run's main feature method). ``echo`` (e.g. ``click.echo``) prints the table."""
    from .store import load_embedding, load_run_info, load_sorting, load_spikes

    if method is None:
        info = load_run_info(out_dir)
        method = (info.get("config") or {}).get("features", {}).get("method") or info["sortings"][0]
    gt, snr = load_ground_truth(gt_path)
    d = diagnose(load_spikes(out_dir), load_embedding(out_dir, method), load_sorting(out_dir, method), gt, snr, tol_ms)
    if echo is not None:
        echo(format_diagnosis(d))
    return d
