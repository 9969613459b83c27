"""Spike templates for simulation: a parametric family, time stretch, sub-sample shifts.

A template is the wide-band extracellular waveform of one neuron seen on one electrode
(a Utah array's 400 µm pitch means a neuron is seen on a single electrode), ``n`` samples
long with its trough at ``peak_index``. The parametric family is a sum of three Gaussian
bumps: an asymmetric trough, a slower repolarisation peak after it and, for triphasic
spikes, a small positive pre-peak before it. Widths, delays and ratios span the shapes
reported for cortical regular- and fast-spiking units (trough half-width 0.15-0.45 ms,
trough-to-peak 0.25-0.7 ms, peak/trough ratio 0.1-0.6).

Any callable ``template_fn(n_templates, n_samples, rng) -> ndarray (n_templates, n_samples)``
can replace the family (e.g. a trained VAE decoder); :func:`normalise_templates` puts its
output into the same form (extremum -1 or +1 at ``peak_index``, tapered ends).
"""
from __future__ import annotations

import numpy as np
from scipy import signal
from scipy.interpolate import CubicSpline

from ..errors import SpikevaeError


def _bump(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width) ** 2)


def draw_shape_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random parameters of ``n`` parametric spike shapes (times in ms).

    Returns
    -------
    dict of ndarray of shape (n,)
        ``fall_ms``, ``rise_ms`` (trough widths before/after the trough), ``repol_ratio``,
        ``repol_delay_ms``, ``repol_width_ms``, ``pre_ratio`` (0 for biphasic spikes),
        ``pre_delay_ms``, ``pre_width_ms``.
    """
    triphasic = rng.random(n) < 0.4
    return {
        "fall_ms": rng.uniform(0.06, 0.14, n),
        "rise_ms": rng.uniform(0.08, 0.25, n),
        "repol_ratio": rng.uniform(0.1, 0.6, n),
        "repol_delay_ms": rng.uniform(0.25, 0.7, n),
        "repol_width_ms": rng.uniform(0.15, 0.5, n),
        "pre_ratio": np.where(triphasic, rng.uniform(0.05, 0.3, n), 0.0),
        "pre_delay_ms": rng.uniform(0.15, 0.35, n),
        "pre_width_ms": rng.uniform(0.06, 0.12, n),
    }


def parametric_template(t_ms: np.ndarray, p: dict) -> np.ndarray:
    """Evaluate one parametric shape at times ``t_ms`` (ms from the trough); trough depth about 1.

    Parameters
    ----------
    t_ms : ndarray of shape (n,), ms
    p : dict of float
        One set of parameters from :func:`draw_shape_params`.
    """
    width = np.where(t_ms < 0, p["fall_ms"], p["rise_ms"])
    trough = -np.exp(-0.5 * (t_ms / width) ** 2)
    repol = p["repol_ratio"] * _bump(t_ms, p["repol_delay_ms"], p["repol_width_ms"])
    pre = p["pre_ratio"] * _bump(t_ms, -p["pre_delay_ms"], p["pre_width_ms"])
    return trough + repol + pre


def parametric_templates(n_templates: int, n_samples: int, rng: np.random.Generator, *,
                         fs: float = 30000.0, peak_index: int | None = None) -> np.ndarray:
    """``n_templates`` random parametric spike shapes, trough -1 at ``peak_index``.

    Has the ``template_fn`` signature once ``fs`` and ``peak_index`` are bound.

    Returns
    -------
    ndarray of shape (n_templates, n_samples), float64, arbitrary units (trough = -1)
    """
    peak = n_samples // 3 if peak_index is None else int(peak_index)
    params = draw_shape_params(rng, n_templates)
    t_ms = (np.arange(n_samples) - peak) / fs * 1e3
    out = np.stack([parametric_template(t_ms, {k: v[i] for k, v in params.items()})
                    for i in range(n_templates)]) if n_templates else np.zeros((0, n_samples))
    return normalise_templates(out, peak)


def _taper(n: int, peak_index: int, edge: int) -> np.ndarray:
    """1 in the middle, raised-cosine to 0 over ``edge`` samples at each end."""
    w = np.ones(n)
    edge = max(1, min(edge, peak_index, n - peak_index - 1))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    w[:edge] = ramp
    w[n - edge:] = ramp[::-1]
    return w


def normalise_templates(templates: np.ndarray, peak_index: int, taper_samples: int | None = None) -> np.ndarray:
    """Move each template's extremum to ``peak_index``, scale it to ±1 and taper both ends to 0.

    Parameters
    ----------
    templates : ndarray of shape (n, n_samples)
    peak_index : int
    taper_samples : int, optional
        Length of the raised-cosine taper at each end (default n_samples // 10).

    Returns
    -------
    ndarray of shape (n, n_samples), float64
    """
    w = np.asarray(templates, dtype=np.float64)
    if w.ndim != 2:
        raise SpikevaeError(f"templates must be 2-D (n_templates, n_samples), got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise SpikevaeError("templates hold NaN or infinite values; check the template function")
    n = w.shape[1]
    out = np.zeros_like(w)
    taper = _taper(n, peak_index, n // 10 if taper_samples is None else taper_samples)
    for i, row in enumerate(w):
        k = int(np.argmax(np.abs(row)))
        if row[k] == 0:
            raise SpikevaeError(f"template {i} is all zeros; the template function must return spike shapes")
        shifted = np.zeros(n)
        d = peak_index - k
        src = slice(max(0, -d), min(n, n - d))
        shifted[src.start + d:src.stop + d] = row[src]
        out[i] = shifted / abs(row[k]) * taper
    return out


def stretch_template(w: np.ndarray, factor: float, peak_index: int) -> np.ndarray:
    """Stretch a template in time around its peak (factor > 1 widens), by cubic interpolation.

    Returns
    -------
    ndarray of shape (n_samples,), float64, same extremum position; renormalised to |peak| = 1.
    """
    t = np.arange(w.shape[0], dtype=float)
    spline = CubicSpline(t, w, extrapolate=False)
    y = np.nan_to_num(spline(peak_index + (t - peak_index) / factor))
    return normalise_templates(y[None], peak_index)[0]


def shift_bank(w: np.ndarray, n_shifts: int) -> np.ndarray:
    """The template delayed by k / n_shifts samples, for k = 0 .. n_shifts - 1.

    Returns
    -------
    ndarray of shape (n_shifts, n_samples), float64
        Row k is ``w(t - k / n_shifts)`` (cubic interpolation; zero outside the template).
    """
    t = np.arange(w.shape[0], dtype=float)
    spline = CubicSpline(t, w, extrapolate=False)
    rows = [np.nan_to_num(spline(t - k / n_shifts)) for k in range(n_shifts)]
    return np.stack(rows)


def bandpass_response(w: np.ndarray, fs: float, band: tuple[float, float], order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth bandpass of templates, as the sorter's preprocessing applies it.

    The template is zero-padded by 0.1 s on each side so the filter sees an isolated spike.

    Parameters
    ----------
    w : ndarray of shape (..., n_samples)

    Returns
    -------
    ndarray of shape (..., n_samples), float64
        The filtered template on the template's own samples.
    """
    sos = signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    pad = int(0.1 * fs)
    x = np.pad(np.asarray(w, float), [(0, 0)] * (np.ndim(w) - 1) + [(pad, pad)])
    y = signal.sosfiltfilt(sos, x, axis=-1)
    return y[..., pad:pad + np.shape(w)[-1]]
