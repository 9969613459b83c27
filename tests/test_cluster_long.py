"""Refinement on long recordings with slow amplitude drift, on features built by hand.

A unit's features here are its amplitude times a fixed direction plus unit-variance
noise; drift multiplies the amplitude by 1 + a sinusoid of the spike time, so every
expected label is known.
"""
import dataclasses

import numpy as np

from spikevae.cluster.config import RefineConfig
from spikevae.cluster.refine import relabel, split_units, time_overlap

DURATION_S = 1800.0  # 30 minutes


def drifting_unit(rng, n, amp, direction, drift=0.0, period_s=900.0, phase=0.0):
    """Spike times (s) and features (n, 3) of one unit firing as a Poisson process."""
    t = np.sort(rng.uniform(0, DURATION_S, n))
    a = amp * (1 + drift * np.sin(2 * np.pi * t / period_s + phase))
    return t, a[:, None] * np.asarray(direction, float)[None] + rng.normal(size=(n, 3))


def config(**kw):
    return dataclasses.replace(RefineConfig(), **kw)


def test_time_overlap_of_coexisting_and_of_successive_parts():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, DURATION_S, 4000))
    assert time_overlap(t, rng.integers(0, 2, t.size), 60.0) > 0.85  # two parts firing throughout
    assert time_overlap(t, (t > DURATION_S / 2).astype(int), 60.0) < 0.05  # one after the other
    assert time_overlap(t[:10], np.r_[np.zeros(5, int), np.ones(5, int)], 1e4) == 1.0  # one window


def test_a_drifting_unit_is_split_without_times_and_kept_whole_with_them():
    rng = np.random.default_rng(1)
    t, x = drifting_unit(rng, 6000, 12.0, [1, 0.3, 0], drift=0.4)  # amplitude 7-17 noise SD
    labels = np.zeros(t.size, dtype=np.int64)
    cfg = config(split_min_time_overlap=0.5)
    assert split_units(x, labels, cfg, np.random.default_rng(0))[1] >= 1  # the elongated cloud looks bimodal
    assert split_units(x, labels, cfg, np.random.default_rng(0), times=t)[1] == 0


def test_two_coexisting_units_are_still_split_with_times():
    rng = np.random.default_rng(2)
    ta, xa = drifting_unit(rng, 3000, 8.0, [1, 0.3, 0], drift=0.1)
    tb, xb = drifting_unit(rng, 3000, 14.0, [1, 0.3, 0], drift=0.1, phase=2.0)
    x, t = np.vstack([xa, xb]), np.r_[ta, tb]
    new, n = split_units(x, np.zeros(t.size, dtype=np.int64), config(split_min_time_overlap=0.5),
                         np.random.default_rng(0), times=t)
    assert n == 1
    truth = np.r_[np.zeros(3000, int), np.ones(3000, int)]
    agree = max(np.mean(new == truth), np.mean(new == 1 - truth))
    assert agree > 0.95


def test_windowed_relabelling_follows_units_whose_drift_makes_them_overlap():
    rng = np.random.default_rng(3)
    # amplitudes 8 and 14 noise SD drifting together by ±30 %: their clouds overlap over the
    # recording, but at any one time they are at least 4 noise SD apart
    ta, xa = drifting_unit(rng, 3000, 8.0, [1, 0, 0], drift=0.3)
    tb, xb = drifting_unit(rng, 3000, 14.0, [1, 0, 0], drift=0.3)
    x, t = np.vstack([xa, xb]), np.r_[ta, tb]
    truth = np.r_[np.zeros(3000, int), np.ones(3000, int)]
    cfg = config(noise_class=False, gate_p=0.0, min_posterior=0.0)
    whole = relabel(x, truth, cfg, np.random.default_rng(0))
    windowed = relabel(x, truth, config(noise_class=False, gate_p=0.0, min_posterior=0.0, relabel_window_s=60.0),
                       np.random.default_rng(0), times=t)
    assert np.mean(whole == truth) < 0.9
    assert np.mean(windowed == truth) > 0.97


def test_refine_keeps_a_long_drifting_unit_whole_given_the_spike_times():
    from spikevae.cluster.refine import refine

    rng = np.random.default_rng(4)
    t, x = drifting_unit(rng, 8000, 12.0, [1, 0.3, 0], drift=0.4)
    peak = np.full(t.size, -12.0)  # noise σ
    cfg = config(noise_class=False)
    without, _ = refine(x, np.zeros(t.size, dtype=np.int64), peak, cfg, np.random.default_rng(0))
    with_t, st = refine(x, np.zeros(t.size, dtype=np.int64), peak, cfg, np.random.default_rng(0), times=t)
    assert without.max() >= 1  # without times the drift's two extremes become two units
    assert with_t.max() == 0 and st["splits"] == 0
    assert np.mean(with_t == 0) > 0.95
