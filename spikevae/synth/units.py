"""Which units a simulated array holds: electrodes, templates, SNRs, rates, hard cases.

Each electrode gets ``units_min..units_max`` scored units and ``background_min..background_max``
unscored background units (SNR below 2, not in the ground truth). On a fraction of the
electrodes that hold two or more scored units (``hard_fraction``) the units look alike:
the later ones are time-stretched copies (by at most ``hard_stretch``) of the first, with
peak amplitudes 10-20 % apart (``hard_amp_step_min..max``), the case where clustering on
one electrode is hardest. SNRs of other scored units are log-uniform in [snr_min, snr_max],
so about a quarter lie at 3-5 with the defaults.

A unit's amplitude (µV per template unit) is set so that the extremum of its template
after the SNR bandpass equals SNR x the electrode's noise σ after the same bandpass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SimConfig
from .templates import bandpass_response, normalise_templates, shift_bank, stretch_template


@dataclass
class UnitTable:
    """Every simulated unit, scored and background (rows in the same order in each array).

    Attributes
    ----------
    electrode : ndarray of shape (n_units,), int64
    scored : ndarray of shape (n_units,), bool
        False for background units (absent from the ground truth).
    hard : ndarray of shape (n_units,), bool
        True for units on a look-alike electrode.
    snr_requested : ndarray of shape (n_units,), float64
    rate_hz : ndarray of shape (n_units,), float64
        Requested mean rate.
    templates_uv : ndarray of shape (n_units, n_samples), float64, µV
        Wide-band templates (extremum at ``peak_index``), scaled to the requested SNR.
    banks_uv : ndarray of shape (n_units, n_shifts, n_samples), float64, µV
        Templates delayed by k / n_shifts samples.
    filtered_banks_uv : ndarray of shape (n_units, n_shifts, n_samples), float64, µV
        The banks after the SNR bandpass.
    gt_offset : ndarray of shape (n_units, n_shifts), int64
        Sample of the filtered extremum inside the template window, per shift: the ground
        truth time of a spike is its window start plus this offset.
    sign : ndarray of shape (n_units,), float64
        -1 for negative (trough) spikes, +1 for positive ones.
    peak_index : int
    """

    electrode: np.ndarray
    scored: np.ndarray
    hard: np.ndarray
    snr_requested: np.ndarray
    rate_hz: np.ndarray
    templates_uv: np.ndarray
    banks_uv: np.ndarray
    filtered_banks_uv: np.ndarray
    gt_offset: np.ndarray
    sign: np.ndarray
    peak_index: int

    @property
    def n_units(self) -> int:
        return int(self.electrode.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.templates_uv.shape[1])


def _loguniform(rng, lo, hi, n=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _electrode_plan(cfg: SimConfig, n_electrodes: int, rng: np.random.Generator) -> list[dict]:
    """Per scored/background unit: electrode, scored, hard, SNR, rate, look-alike parent and stretch."""
    plan = []
    for e in range(n_electrodes):
        n_units = int(rng.integers(cfg.units_min, cfg.units_max + 1))
        n_bg = int(rng.integers(cfg.background_min, cfg.background_max + 1))
        hard = n_units >= 2 and rng.random() < cfg.hard_fraction
        if hard:
            steps = 1 + rng.uniform(cfg.hard_amp_step_min, cfg.hard_amp_step_max, n_units - 1)
            top = max(cfg.snr_max / np.prod(steps), cfg.snr_min)
            snrs = _loguniform(rng, cfg.snr_min, top) * np.concatenate([[1.0], np.cumprod(steps)])
        else:
            snrs = _loguniform(rng, cfg.snr_min, cfg.snr_max, n_units)
        first = len(plan)
        for i in range(n_units):
            stretch = 1 + rng.uniform(-cfg.hard_stretch, cfg.hard_stretch) if hard and i else 1.0
            plan.append(dict(electrode=e, scored=True, hard=hard, snr=float(snrs[i]),
                             parent=first if hard and i else None, stretch=stretch))
        for _ in range(n_bg):
            plan.append(dict(electrode=e, scored=False, hard=False, parent=None, stretch=1.0,
                             snr=float(rng.uniform(cfg.background_snr_min, cfg.background_snr_max))))
    for p in plan:
        p["rate"] = float(_loguniform(rng, cfg.rate_min_hz, cfg.rate_max_hz))
    return plan


def design_units(cfg: SimConfig, n_electrodes: int, noise_sigma_uv: np.ndarray, rng: np.random.Generator,
                 template_fn) -> UnitTable:
    """Draw the units of a simulated array.

    Parameters
    ----------
    cfg : SimConfig
    n_electrodes : int
    noise_sigma_uv : ndarray of shape (n_electrodes,), µV
        Noise σ of each electrode after the SNR bandpass.
    rng : numpy.random.Generator
    template_fn : callable ``(n_templates, n_samples, rng) -> ndarray (n_templates, n_samples)``

    Returns
    -------
    UnitTable
    """
    plan = _electrode_plan(cfg, n_electrodes, rng)
    n_samples = int(round(cfg.template_ms * cfg.fs / 1e3))
    peak = int(round(cfg.template_pre_ms * cfg.fs / 1e3))
    raw = np.asarray(template_fn(len(plan), n_samples, rng), dtype=float) if plan else np.zeros((0, n_samples))
    base = normalise_templates(raw.reshape(len(plan), n_samples), peak)
    for i, p in enumerate(plan):
        if p["parent"] is not None:
            base[i] = stretch_template(base[p["parent"]], p["stretch"], peak)
    band = (cfg.snr_band_low_hz, cfg.snr_band_high_hz)
    sign = np.sign(base[np.arange(len(plan)), peak]) if plan else np.zeros(0)
    filt = bandpass_response(base, cfg.fs, band)
    filt_peak = np.abs((filt * sign[:, None]).max(axis=1)) if plan else np.zeros(0)
    electrode = np.array([p["electrode"] for p in plan], dtype=np.int64)
    snr = np.array([p["snr"] for p in plan], dtype=float)
    scale = snr * np.asarray(noise_sigma_uv, float)[electrode] / np.maximum(filt_peak, 1e-12)
    templates = base * scale[:, None]
    banks = np.stack([shift_bank(w, cfg.subsample_shifts) for w in templates]) if plan else \
        np.zeros((0, cfg.subsample_shifts, n_samples))
    fbanks = bandpass_response(banks, cfg.fs, band)
    gt_offset = (fbanks * sign[:, None, None]).argmax(axis=2).astype(np.int64)
    return UnitTable(
        electrode=electrode, scored=np.array([p["scored"] for p in plan], dtype=bool),
        hard=np.array([p["hard"] for p in plan], dtype=bool), snr_requested=snr,
        rate_hz=np.array([p["rate"] for p in plan], dtype=float), templates_uv=templates,
        banks_uv=banks, filtered_banks_uv=fbanks, gt_offset=gt_offset, sign=sign, peak_index=peak,
    )
