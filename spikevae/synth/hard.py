"""Hard cases for linear features: shape change, mains interference, fast (overlapping) units.

All are off by default (:class:`SimConfig` settings) and each draws from its own entropy
word, so a simulation without them is bit-identical to one made before they existed:

- **shape change** (``shape_burst``, ``shape_drift``): every spike carries a shape level
  s in [0, 1]. At level s the unit's template is widened in time by ``1 + shape_width·s``
  and its repolarisation lobe (the part after the extremum with the opposite sign) shrunk
  by ``1 - shape_repol·s``, its extremum kept. Spike k of a burst gets
  ``min(1, k·shape_burst)``; a slow sinusoid (period ``shape_drift_period_s`` to 3x, random
  phase, stream ``[seed, 21, row]``) adds up to ``shape_drift``. Levels are quantised to
  ``shape_levels`` precomputed template banks. Ground-truth times and the realised SNR use
  the unchanged shape (a widened spike is smaller after the bandpass).
- **line noise** (``line_noise_uv``): ``A_e Σ_k (1/k) sin(2π k f t + φ_ek)`` for k = 1 ..
  1 + ``line_harmonics``, A_e = ``line_noise_uv`` × U(0.5, 1.5) and phases from stream
  ``[seed, 23]``; a pure function of the absolute sample, so chunking does not change it.
- **fast units** (``overlap_fraction``): on that fraction of the electrodes (stream
  ``[seed, 24]``) every scored unit fires at ``overlap_rate_hz_min..max`` (log-uniform),
  so spikes of one electrode often overlap.

Heavy-tailed (Student-t) background noise lives in :class:`.noise.BlockNoise`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .config import SimConfig
from .templates import shift_bank, stretch_template
from .units import UnitTable

SHAPE_STREAM, LINE_STREAM, OVERLAP_STREAM = 21, 23, 24


def shape_enabled(cfg: SimConfig) -> bool:
    """True when spikes change shape (within bursts or over the session)."""
    return cfg.shape_burst > 0 or cfg.shape_drift > 0


def changed_template(w: np.ndarray, level: float, peak_index: int, width: float, repol: float) -> np.ndarray:
    """Template ``w`` (n_samples,) µV at shape ``level`` in [0, 1]: wider, smaller repolarisation, same extremum.

    Returns
    -------
    ndarray of shape (n_samples,), float64, µV; ``w`` itself (a copy) at level 0
    """
    if level <= 0:
        return np.array(w, dtype=np.float64)
    y = stretch_template(w, 1.0 + width * level, peak_index)
    sign = np.sign(y[peak_index])
    after = np.arange(y.shape[0]) > peak_index
    y[after & (np.sign(y) == -sign)] *= 1.0 - repol * level
    return y * (w[peak_index] / y[peak_index])


def shape_banks(cfg: SimConfig, units: UnitTable) -> np.ndarray:
    """Sub-sample banks of every unit at every shape level.

    Returns
    -------
    ndarray of shape (n_units, shape_levels, n_shifts, n_samples), float32, µV
        Level 0 equals ``units.banks_uv``.
    """
    levels = np.linspace(0.0, 1.0, cfg.shape_levels)
    out = np.empty((units.n_units, levels.size, cfg.subsample_shifts, units.n_samples), np.float32)
    for row in range(units.n_units):
        out[row, 0] = units.banks_uv[row]
        for i, s in enumerate(levels[1:], start=1):
            w = changed_template(units.templates_uv[row], s, units.peak_index, cfg.shape_width, cfg.shape_repol)
            out[row, i] = shift_bank(w, cfg.subsample_shifts)
    return out


def shape_levels(cfg: SimConfig, seed: int, row: int, t_s: np.ndarray, burst_index: np.ndarray) -> np.ndarray:
    """Quantised shape level (0 .. shape_levels - 1) of each spike of unit ``row``.

    Parameters
    ----------
    t_s : ndarray of shape (n,), s
        Spike times.
    burst_index : ndarray of shape (n,), int
        Place of each spike in its burst (0 = not a burst follower).

    Returns
    -------
    ndarray of shape (n,), int16
    """
    rng = np.random.default_rng([seed, SHAPE_STREAM, row])
    period = cfg.shape_drift_period_s * rng.uniform(1, 3)
    phase = rng.uniform(0, 2 * np.pi)
    s = np.minimum(1.0, cfg.shape_burst * burst_index)
    s = s + cfg.shape_drift * 0.5 * (1 - np.cos(2 * np.pi * t_s / period + phase))
    return np.round(np.clip(s, 0.0, 1.0) * (cfg.shape_levels - 1)).astype(np.int16)


def with_fast_units(cfg: SimConfig, units: UnitTable, seed: int, n_electrodes: int) -> UnitTable:
    """``units`` with the scored units of a random ``overlap_fraction`` of the electrodes made fast."""
    if cfg.overlap_fraction <= 0:
        return units
    rng = np.random.default_rng([seed, OVERLAP_STREAM])
    chosen = rng.random(n_electrodes) < cfg.overlap_fraction
    fast = np.exp(rng.uniform(np.log(cfg.overlap_rate_hz_min), np.log(cfg.overlap_rate_hz_max), units.n_units))
    sel = chosen[units.electrode] & units.scored
    return dataclasses.replace(units, rate_hz=np.where(sel, fast, units.rate_hz))


class LineNoise:
    """Mains interference and its harmonics, a pure function of the absolute sample (see module docstring).

    Parameters
    ----------
    cfg : SimConfig
    seed : int
    n_channels : int
    """

    def __init__(self, cfg: SimConfig, seed: int, n_channels: int):
        rng = np.random.default_rng([seed, LINE_STREAM])
        self.block, self.fs = int(cfg.block_samples), float(cfg.fs)
        k = np.arange(1, cfg.line_harmonics + 2, dtype=float)
        self.freqs_hz = cfg.line_freq_hz * k
        amp = cfg.line_noise_uv * rng.uniform(0.5, 1.5, n_channels)
        self.amp_uv = amp[None, :] / k[:, None]  # (n_harmonics, n_channels)
        self.phase = rng.uniform(0, 2 * np.pi, (k.size, n_channels))

    def add_block_uv(self, j: int, out: np.ndarray) -> None:
        """Add the line noise of block j (µV) into ``out`` of shape (block, n_channels), in place."""
        t = (j * self.block + np.arange(self.block)) / self.fs
        for f, a, ph in zip(self.freqs_hz, self.amp_uv, self.phase):
            out += a * np.sin(2 * np.pi * f * t[:, None] + ph)


class NoiseSum:
    """Several noise sources added block by block (all with the same ``block``)."""

    def __init__(self, parts):
        self.parts = list(parts)
        self.block = self.parts[0].block

    def add_block_uv(self, j: int, out: np.ndarray) -> None:
        for p in self.parts:
            p.add_block_uv(j, out)
