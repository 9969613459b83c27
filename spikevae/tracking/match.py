"""Linking the units of two sessions on one electrode: distributions, distances, assignment.

Each unit is summarised by a Gaussian fit to its spikes in the shared feature space. Slow
drift is allowed for by widening each Gaussian along the directions in which drift moves the
unit: the feature-space change of its mean waveform under a small amplitude scaling and a
small time stretch (computed through the model itself, so it holds for PCA and the VAE alike),
with standard deviations ``drift`` and ``drift / 2`` (relative change per session). Two units
are then compared by

- ``bhattacharyya``: the Bhattacharyya coefficient ``exp(-D_B)``, the overlap of the two
  widened distributions (1 for identical ones, 0 for disjoint ones), or
- ``wasserstein``: ``exp(-W2^2 / (2 s^2))`` with W2 the 2-Wasserstein distance between the
  widened Gaussians and ``s^2`` the mean of their largest variances;

and the baseline ``correlation``: the Pearson correlation of the two mean waveforms (µV),
the manual practice and the core of UnitMatch's similarity score (van Beest et al. 2024).

The units of consecutive sessions are assigned one to one by the Hungarian algorithm on
``-log p``, where leaving a unit unmatched counts as a link of probability ``threshold`` and
pairs below it are never linked, so units can vanish and appear.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

METHODS = ("bhattacharyya", "wasserstein", "correlation")


@dataclass
class UnitStats:
    """What the matcher knows of one sorted unit of one session.

    Attributes
    ----------
    unit : int
        Unit id in the session's sorting.
    electrode : int
    n_spikes : int
    mean : ndarray of shape (d,)
        Mean of the unit's features.
    cov : ndarray of shape (d, d)
        Covariance of the features, regularised.
    drift_cov : ndarray of shape (d, d)
        Covariance of the allowed drift over one session.
    waveform_uv : ndarray of shape (n_samples,), µV
        Mean waveform.
    """

    unit: int
    electrode: int
    n_spikes: int
    mean: np.ndarray
    cov: np.ndarray
    drift_cov: np.ndarray
    waveform_uv: np.ndarray


def gaussian_fit(x: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) of the rows of ``x``, with ``reg`` x mean variance (at least
    0.01, in feature units squared) added to the diagonal so that small units stay invertible."""
    d = x.shape[1]
    mean = x.mean(0)
    cov = np.cov(x, rowvar=False).reshape(d, d) if x.shape[0] > 1 else np.zeros((d, d))
    return mean, cov + max(reg * np.trace(cov) / d, 1e-2) * np.eye(d)


def _logdet(a: np.ndarray) -> float:
    return float(np.linalg.slogdet(a)[1])


def bhattacharyya_distance(ma, ca, mb, cb) -> float:
    """Bhattacharyya distance between N(ma, ca) and N(mb, cb)."""
    c = 0.5 * (ca + cb)
    delta = ma - mb
    return float(delta @ np.linalg.solve(c, delta) / 8 + 0.5 * (_logdet(c) - 0.5 * _logdet(ca) - 0.5 * _logdet(cb)))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (a + a.T))
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def wasserstein_distance2(ma, ca, mb, cb) -> float:
    """Squared 2-Wasserstein distance between N(ma, ca) and N(mb, cb)."""
    rb = _sqrtm(cb)
    cross = _sqrtm(rb @ ca @ rb)
    return float(np.sum((ma - mb) ** 2) + np.trace(ca + cb - 2 * cross))


def pair_probability(a: UnitStats, b: UnitStats, method: str) -> float:
    """How likely units ``a`` and ``b`` (consecutive sessions, one electrode) are one neuron, in [0, 1]."""
    if method == "correlation":
        r = np.corrcoef(a.waveform_uv, b.waveform_uv)[0, 1]
        return float(max(r, 0.0)) if np.isfinite(r) else 0.0
    drift = 0.5 * (a.drift_cov + b.drift_cov)
    ca, cb = a.cov + drift, b.cov + drift
    if method == "bhattacharyya":
        return float(np.exp(-bhattacharyya_distance(a.mean, ca, b.mean, cb)))
    if method == "wasserstein":
        s2 = 0.5 * (np.linalg.eigvalsh(ca)[-1] + np.linalg.eigvalsh(cb)[-1])
        return float(np.exp(-wasserstein_distance2(a.mean, ca, b.mean, cb) / (2 * s2)))
    from ..errors import SpikevaeConfigError

    raise SpikevaeConfigError(f"--method {method}: use one of {', '.join(METHODS)}")


def probability_matrix(before: list[UnitStats], after: list[UnitStats], method: str) -> np.ndarray:
    """``pair_probability`` of every unit of ``before`` with every unit of ``after``, shape (n_before, n_after)."""
    return np.array([[pair_probability(a, b, method) for b in after] for a in before]).reshape(len(before), len(after))


def assign(prob: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """One-to-one links maximising the product of the link probabilities, with ``threshold`` as the
    probability of leaving a unit of the first session unmatched.

    Pairs below ``threshold`` are never linked; a pair is linked only when that beats leaving its
    first unit unmatched, jointly over the electrode's units (Hungarian algorithm on ``-log p``,
    augmented with one "unmatched" option per unit).

    Returns
    -------
    list of (row, column, probability)
    """
    n_a, n_b = prob.shape
    if n_a == 0 or n_b == 0:
        return []
    big = 1e6
    with np.errstate(divide="ignore"):
        cost = np.where(prob >= threshold, -np.log(np.maximum(prob, 1e-300)), big)
        stay = -np.log(threshold) if threshold > 0 else big / 2
    aug = np.full((n_a + n_b, n_b + n_a), big)
    aug[:n_a, :n_b] = cost
    aug[:n_a, n_b:][np.diag_indices(n_a)] = stay  # a unit of the first session left unmatched
    aug[n_a:, :n_b][np.diag_indices(n_b)] = 0.0  # a unit of the second session that starts a track
    aug[n_a:, n_b:] = 0.0
    rows, cols = linear_sum_assignment(aug)
    return [(int(r), int(c), float(prob[r, c])) for r, c in zip(rows, cols)
            if r < n_a and c < n_b and prob[r, c] >= threshold and cost[r, c] < big]
