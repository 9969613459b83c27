"""Noise whitening of spike waveforms, per electrode.

The noise of a band-passed recording is correlated in time, so the Euclidean
distance between two waveforms over-weights the slow, shared directions of the
noise. With the temporal noise covariance ``C`` of an electrode (estimated from
its spike-free snippets, ``Spikes.noise_snippets``), ``W = C^(-1/2)`` maps the
noise to white noise of unit variance: after whitening, a squared distance is a
chi-square count in units of noise. ``W`` is the symmetric (ZCA) root, so a
whitened waveform keeps its time axis and its peak where it was.

The covariance is shrunk towards ``tr(C)/L * I`` (``shrinkage``, a fraction), and
electrodes with fewer than ``min_snippets`` snippets use the covariance pooled
over all electrodes (in units of each electrode's σ), rescaled by their own σ;
electrodes without any snippets fall back to dividing by σ.
"""
from __future__ import annotations

import logging

import numpy as np

from .objects import Spikes

log = logging.getLogger(__name__)


def _inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 1e-12 * max(vals.max(), 1e-12))
    return (vecs / np.sqrt(vals)) @ vecs.T


def _shrink(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    length = cov.shape[0]
    return (1 - shrinkage) * cov + shrinkage * (np.trace(cov) / length) * np.eye(length)


def noise_covariances(spikes: Spikes, shrinkage: float = 0.1, min_snippets: int | None = None) -> dict[int, np.ndarray]:
    """Regularised temporal noise covariance of every electrode, µV².

    Parameters
    ----------
    spikes : Spikes
        With ``noise_snippets`` (n_snippets, L) µV and ``noise_electrode``.
    shrinkage : float, default 0.1
        Weight of ``tr(C)/L * I`` in the regularised covariance.
    min_snippets : int, optional
        Electrodes with fewer snippets use the pooled covariance (default: 2 L).

    Returns
    -------
    dict electrode index -> ndarray of shape (L, L), float64, µV²
    """
    length = spikes.n_samples
    min_snippets = 2 * length if min_snippets is None else min_snippets
    sigma = np.maximum(spikes.noise_uv.astype(np.float64), 1e-6)
    if spikes.noise_snippets is None or spikes.noise_snippets.shape[0] == 0:
        return {e: sigma[e] ** 2 * np.eye(length) for e in range(spikes.n_electrodes)}
    if spikes.noise_snippets.shape[1] != length:
        raise ValueError(f"noise snippets have {spikes.noise_snippets.shape[1]} samples but waveforms {length}")
    snip = spikes.noise_snippets.astype(np.float64)
    el = spikes.noise_electrode
    if el.min() < 0 or el.max() >= spikes.n_electrodes:
        raise ValueError(f"noise_electrode holds indices outside 0..{spikes.n_electrodes - 1}")
    pooled_scaled = snip / sigma[el][:, None]
    pooled = _shrink(pooled_scaled.T @ pooled_scaled / len(snip), shrinkage)
    out = {}
    for e in range(spikes.n_electrodes):
        s = snip[el == e]
        if s.shape[0] >= min_snippets:
            out[e] = _shrink(s.T @ s / s.shape[0], shrinkage)
        else:
            out[e] = sigma[e] ** 2 * pooled
    return out


def noise_whitener(spikes: Spikes, shrinkage: float = 0.1, min_snippets: int | None = None) -> dict[int, np.ndarray]:
    """Per-electrode whitening matrices ``W = C^(-1/2)`` (ZCA), µV⁻¹.

    Returns
    -------
    dict electrode index -> ndarray of shape (L, L), float64; ``W @ waveform_uv`` has
    white noise of unit variance.
    """
    return {e: _inverse_sqrt(c) for e, c in noise_covariances(spikes, shrinkage, min_snippets).items()}


def whiten_waveforms(spikes: Spikes, whitener: dict[int, np.ndarray] | None = None, **kwargs) -> np.ndarray:
    """Noise-whitened waveforms, dimensionless (noise σ = 1 and white).

    Parameters
    ----------
    spikes : Spikes
    whitener : dict, optional
        From :func:`noise_whitener`; computed from ``spikes`` when not given.
    **kwargs
        Passed to :func:`noise_whitener` (``shrinkage``, ``min_snippets``).

    Returns
    -------
    ndarray of shape (n_spikes, n_samples), float32
    """
    w = whitener if whitener is not None else noise_whitener(spikes, **kwargs)
    out = np.empty(spikes.waveforms.shape, dtype=np.float32)
    for e in np.unique(spikes.electrode):
        m = spikes.electrode == e
        out[m] = spikes.waveforms[m].astype(np.float64) @ w[int(e)].T
    return out
