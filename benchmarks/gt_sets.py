"""Ground-truth sets for benchmarks: the sample data, Utah-like simulations, and ../shared/data.

Each loader returns a :class:`GTSet`: a Recording, the ground truth Sorting, the SNR of each
ground-truth unit (None where unknown), configuration overrides the set needs (sampling
rate, polarity) and whether ground-truth times need an offset estimate (onset vs peak).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikevae.objects import Sorting
from spikevae.recording import ArrayRecording, Recording

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@dataclass
class GTSet:
    name: str
    recording: Recording
    gt: Sorting
    unit_snr: dict | None = None
    overrides: list = field(default_factory=list)
    estimate_offset: bool = False


def sample_data() -> GTSet | None:
    from spikevae.io import open_recording
    from spikevae.synth import read_ground_truth

    p = ROOT / "sample_data" / "sample.ns5"
    if not p.exists():
        return None
    gt, info = read_ground_truth(ROOT / "sample_data" / "sample_gt.npz")
    snr = dict(zip(info["unit_ids"].tolist(), info["unit_snr"].tolist())) if "unit_snr" in info else None
    return GTSet("sample_data", open_recording(p), gt, snr)


def simulation(seed: int, n_electrodes: int = 16, duration_s: float = 60.0, **sim) -> GTSet:
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=n_electrodes, duration_s=duration_s, **sim), seed=seed)
    info = rec.unit_info
    return GTSet(f"sim_utah{n_electrodes}_s{seed}", rec, gt, dict(zip(info.unit_ids.tolist(), info.unit_snr.tolist())))


def quiroga() -> GTSet | None:
    """Quiroga 2004 C_Easy1_noise015, 5 s at 10 kHz, 3 units, positive spikes, onset times."""
    from scipy.io import loadmat

    p = SHARED / "quiroga2004_cbp_excerpt" / "C_Easy1_noise015_5sec.mat"
    if not p.exists():
        return None
    m = loadmat(p)
    x = m["data"].ravel().astype(np.float32)
    fs = 1.0 / float(m["dt"].item())
    t = m["true_spike_times"].ravel().astype(np.int64)
    y = m["true_spike_class"].ravel().astype(np.int64)
    gt = Sorting(t, np.zeros_like(t), y, fs)
    # arbitrary units: scale to µV-like numbers so thresholds read naturally
    rec = ArrayRecording(x[:, None] * 100.0, fs, source=str(p))
    return GTSet("quiroga_easy1_015", rec, gt, None, ["detect.polarity=pos"], estimate_offset=True)


def harris() -> GTSet | None:
    """Harris 2000 d533101, 5 s tetrode at 10 kHz; one intracellularly identified unit (11 spikes)."""
    from scipy.io import loadmat

    p = SHARED / "harris2000_hc1_d533101" / "harris_d533101_5sec.mat"
    if not p.exists():
        return None
    m = loadmat(p)
    x = m["data"].astype(np.float32)
    if x.shape[0] < x.shape[1]:
        x = x.T
    fs = 1.0 / float(m["dt"].item())
    t = m["true_spike_times"].ravel().astype(np.int64)
    gt = Sorting(t, np.zeros_like(t), np.zeros_like(t), fs)
    rec = ArrayRecording(x - np.median(x, axis=0), fs, source=str(p))
    return GTSet("harris_d533101_5s", rec, gt, None, [], estimate_offset=True)


def all_sets(seeds=(0, 1, 2), n_electrodes: int = 16, duration_s: float = 60.0) -> list[GTSet]:
    sets = [sample_data()] + [simulation(s, n_electrodes, duration_s) for s in seeds] + [quiroga(), harris()]
    return [s for s in sets if s is not None]
