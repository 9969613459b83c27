"""The ``good`` label: named rule sets over the quality metrics.

A preset is a list of rules ``(metric, operator, threshold, nan_passes)``. A unit is good when
every rule passes. ``nan_passes`` says what a metric that could not be computed means: for the
published presets a missing value fails, as in the papers' filters; the spikevae preset lets
through only values that are undefined for a benign reason (recording shorter than one presence
bin, too few spikes for an amplitude histogram, no other spikes on the electrode).

Presets
-------
allen
    Allen Brain Observatory Visual Coding Neuropixels default unit filter (Siegle et al. 2021,
    Nature 592:86; AllenSDK "quality metrics" tutorial): isi_violations_ratio < 0.5,
    amplitude_cutoff < 0.1, presence_ratio > 0.9.
ibl
    International Brain Laboratory 2022, "Spike sorting pipeline for the IBL" (single-unit
    label): sliding refractory-period contamination <= 10 % at 90 % confidence
    (sliding_rp_violation <= 0.1; NaN = test failed), noise_cutoff < 5, median amplitude
    >= 50 µV.
spikevae
    Our default for Utah arrays: n_spikes >= 50, snr >= 3 (detection is ~99 % complete from
    SNR 3, see design.md), rp_contamination <= 0.1 (Llobet et al. 2022), presence_ratio >= 0.8,
    amplitude_cutoff <= 0.1, noise_cutoff < 2 (rejects clusters cut by the detection threshold:
    threshold crossings of noise, or a unit's low-amplitude fringe) and nn_hit_rate >= 0.9
    (Chung et al. 2017). Measured on simulated Utah recordings with ground truth
    (``spikevae simulate``, PCA sorting): with seed 3 (32 electrodes, 120 s) 30 of 87 units are
    good, 80 % of them match a ground-truth unit and 19 of the 20 units sorted with accuracy
    >= 0.8 are good; on seed 4 (24 electrodes, 180 s, not used to choose the thresholds) 17 of
    75 units are good, 88 % match a ground-truth unit (the others may match the simulation's
    unscored background units) and all 12 units with accuracy >= 0.8 are good. The allen
    preset keeps 15/20 and 8/12 of those, the ibl preset 11/20 and 5/12.
"""
from __future__ import annotations

import math
import operator

from ..errors import SpikevaeConfigError

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

PRESETS: dict[str, list[tuple[str, str, float, bool]]] = {
    "allen": [
        ("isi_violations_ratio", "<", 0.5, False),
        ("amplitude_cutoff", "<", 0.1, False),
        ("presence_ratio", ">", 0.9, False),
    ],
    "ibl": [
        ("sliding_rp_violation", "<=", 0.1, False),
        ("noise_cutoff", "<", 5.0, False),
        ("abs_amplitude_uv", ">=", 50.0, False),
    ],
    "spikevae": [
        ("n_spikes", ">=", 50, False),
        ("snr", ">=", 3.0, False),
        ("rp_contamination", "<=", 0.1, False),
        ("presence_ratio", ">=", 0.8, True),
        ("amplitude_cutoff", "<=", 0.1, True),
        ("noise_cutoff", "<", 2.0, False),
        ("nn_hit_rate", ">=", 0.9, True),
    ],
}


def _value(row: dict, metric: str) -> float:
    if metric == "abs_amplitude_uv":
        return abs(row["amplitude_uv"])
    return row[metric]


def failed_rules(row: dict, preset: str) -> list[str]:
    """The rules of ``preset`` that the unit ``row`` fails, as readable strings (empty = good)."""
    if preset not in PRESETS:
        raise SpikevaeConfigError(f"quality.preset={preset!r}: not one of {', '.join(PRESETS)}")
    failed = []
    for metric, op, thr, nan_passes in PRESETS[preset]:
        v = _value(row, metric)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            if not nan_passes:
                failed.append(f"{metric} undefined")
        elif not _OPS[op](v, thr):
            failed.append(f"{metric} {v:.3g} not {op} {thr:g}")
    return failed


def is_good(row: dict, preset: str) -> bool:
    """Whether the unit ``row`` (a metrics dict) passes every rule of ``preset``."""
    return not failed_rules(row, preset)


def describe_preset(preset: str) -> str:
    """The rules of a preset as one line, e.g. for the report."""
    return " and ".join(f"{m} {op} {thr:g}" for m, op, thr, _ in PRESETS[preset])
