"""Synthetic spikes with known units, for tests, benchmarks and report demos of quality metrics.

The units follow the assumptions the metrics are built on: Poisson trains with a refractory
period (optionally contaminated by a refractory-free Poisson process), fixed biphasic
templates, and white Gaussian noise of known σ. This is not a recording simulator (see
``spikevae.synth``); it makes the Spikes and Sorting objects the quality stage consumes.
"""
from __future__ import annotations

import numpy as np

from ..objects import Sorting, Spikes


def _template(n_samples: int, peak_index: int, width: float, rng: np.random.Generator) -> np.ndarray:
    """A negative-going biphasic spike of unit peak magnitude at ``peak_index``."""
    t = np.arange(n_samples) - peak_index
    trough = -np.exp(-0.5 * (t / width) ** 2)
    rebound = 0.35 * np.exp(-0.5 * ((t - 3 * width - rng.uniform(2, 6)) / (2 * width)) ** 2)
    w = trough + rebound
    return w / np.abs(w[peak_index])


def poisson_train(rate_hz: float, n_samples: int, fs: float, refractory_s: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson spike train (samples) with a dead time of ``refractory_s`` after each spike."""
    mean_isi = max(1.0 / rate_hz - refractory_s, 1e-4)
    n = int(rate_hz * n_samples / fs * 1.2) + 10
    isi = refractory_s + rng.exponential(mean_isi, n)
    t = np.cumsum(isi) * fs
    return t[t < n_samples].astype(np.int64)


def make_units(n_electrodes: int = 4, units_per_electrode: int = 2, duration_s: float = 120.0, fs: float = 30000.0,
               rate_hz: float = 8.0, amplitudes_uv=(60.0, 150.0), noise_uv: float = 10.0,
               contamination: float = 0.0, unsorted_fraction: float = 0.0, n_samples: int = 48,
               peak_index: int = 15, seed: int = 0) -> tuple[Spikes, Sorting]:
    """Spikes and a Sorting whose units are known.

    Parameters
    ----------
    n_electrodes, units_per_electrode : int
        Units are numbered electrode by electrode (unit ids unique across the array).
    duration_s, fs : float
        Recording length (s) and sampling rate (Hz).
    rate_hz : float
        Firing rate of each unit.
    amplitudes_uv : (low, high)
        Peak amplitudes of the units of an electrode are spread evenly over this range (µV).
    noise_uv : float
        σ of the white noise added to every waveform (also ``Spikes.noise_uv``).
    contamination : float
        Fraction of extra spikes from a refractory-free Poisson process added to each unit.
    unsorted_fraction : float
        Extra noise events per electrode (label -1), as a fraction of its sorted spikes.
    n_samples, peak_index : int
        Waveform length and peak position.
    seed : int

    Returns
    -------
    spikes : Spikes
    sorting : Sorting
        Same spikes, in the same order; ``unit`` = -1 for the unsorted events.
    """
    rng = np.random.default_rng(seed)
    total = int(duration_s * fs)
    times, electrodes, units, waves = [], [], [], []
    unit_id = 0
    for e in range(n_electrodes):
        amps = np.linspace(amplitudes_uv[0], amplitudes_uv[1], units_per_electrode)
        n_e = 0
        for a in amps:
            tr = poisson_train(rate_hz, total, fs, 2e-3, rng)
            if contamination > 0:
                extra = rng.integers(0, total, int(contamination * tr.size))
                tr = np.sort(np.concatenate([tr, extra]))
            tmpl = a * _template(n_samples, peak_index, rng.uniform(2.0, 5.0), rng)
            scale = rng.normal(1.0, 0.05, tr.size)[:, None].astype(np.float32)
            waves.append(scale * tmpl.astype(np.float32))
            times.append(tr), electrodes.append(np.full(tr.size, e)), units.append(np.full(tr.size, unit_id))
            unit_id += 1
            n_e += tr.size
        n_u = int(unsorted_fraction * n_e)
        if n_u:
            times.append(rng.integers(0, total, n_u)), electrodes.append(np.full(n_u, e))
            units.append(np.full(n_u, -1))
            waves.append(rng.normal(0, 2 * noise_uv, (n_u, 1)).astype(np.float32) * _template(
                n_samples, peak_index, 3.0, rng).astype(np.float32))
    t, el, u = np.concatenate(times), np.concatenate(electrodes), np.concatenate(units)
    w = np.concatenate(waves) + rng.normal(0, noise_uv, (t.size, n_samples)).astype(np.float32)
    order = np.lexsort((el, t))
    t, el, u, w = t[order], el[order], u[order], w[order]
    # Two spikes of one electrode at the same sample cannot both be detected: keep the first.
    keep = np.ones(t.size, bool)
    keep[1:] = ~((t[1:] == t[:-1]) & (el[1:] == el[:-1]))
    t, el, u, w = t[keep], el[keep], u[keep], w[keep]
    spikes = Spikes(t, el, w, w[:, peak_index].copy(), np.full(n_electrodes, noise_uv, np.float32), fs, peak_index,
                    np.array([f"ch{i + 1}" for i in range(n_electrodes)]))
    return spikes, Sorting(t, el, u, fs, {"source": "spikevae.quality.synthetic", "seed": seed})
