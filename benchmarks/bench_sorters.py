"""spikevae against the sorters labs use today, on the same Utah-like ground truth.

Each simulation (``spikevae.synth``: 16 electrodes at 400 µm, 60 s, 2-3 units per
electrode, look-alike units, bursts, background units) is sorted by spikevae's default
pipeline and by the sorters SpikeInterface runs in-process (MountainSort5 through the
``mountainsort5`` package, SpykingCircus2 and Tridesclous2 built in), each with its default
parameters on the raw (unfiltered) traces. Every sorting is scored the same way: SpikeForest
accuracy, ±0.4 ms, after estimating a constant time offset (sorters mark spikes at
different points of the waveform), overall and by SNR band, with the wall time on this
machine. Sorters that are not installed are skipped (``pip install mountainsort5``).

    python benchmarks/bench_sorters.py --seeds 0 1 2 --sorters mountainsort5 spykingcircus2 tridesclous2
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def simulate(seed: int, n_electrodes: int, duration_s: float):
    from spikevae.synth import SimConfig, simulate_recording

    cfg = SimConfig(n_electrodes=n_electrodes, duration_s=duration_s, units_min=2, units_max=3)
    rec, gt = simulate_recording(cfg, seed)
    info = rec.unit_info
    return rec, gt, dict(zip(info.unit_ids.tolist(), info.unit_snr.tolist()))


def run_spikevae(rec, tmp: Path):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    return run_pipeline(rec, load_config(), tmp / "spikevae", report=False).sorting


def unit_electrodes(rec, sample_index: np.ndarray, unit: np.ndarray, n_max: int = 300) -> np.ndarray:
    """Electrode of each spike: its unit's channel of largest mean trough (300-6000 Hz), so that
    units are scored against the ground truth of their own electrode, as spikevae's are."""
    from spikevae.preprocess import PreprocessConfig, preprocess

    x = preprocess(rec, PreprocessConfig()).get_traces(0, rec.n_samples)
    out = np.zeros(sample_index.size, np.int64)
    rng = np.random.default_rng(0)
    for k in np.unique(unit):
        idx = np.flatnonzero(unit == k)
        t = sample_index[rng.choice(idx, min(n_max, idx.size), replace=False)]
        t = t[(t >= 20) & (t < x.shape[0] - 20)]
        if t.size:
            mean = np.mean([x[ti - 20:ti + 20] for ti in t], axis=0)  # (40, channels)
            out[idx] = int(np.argmax(np.abs(mean).max(axis=0)))
    return out


def run_si_sorter(name: str, rec, tmp: Path):
    """A SpikeInterface sorter with default parameters, as a spikevae Sorting."""
    import spikeinterface.core as si
    import spikeinterface.sorters as ss

    from spikevae.objects import Sorting

    traces = rec.get_traces(0, rec.n_samples)
    si_rec = si.NumpyRecording([traces.astype(np.float32)], sampling_frequency=rec.fs,
                               channel_ids=[str(c) for c in rec.channel_ids])
    si_rec.set_channel_locations(np.asarray(rec.positions_um, dtype=float))
    si_rec.set_channel_gains(1.0)
    si_rec.set_channel_offsets(0.0)
    si_rec = si_rec.save(folder=str(tmp / "recording"), format="binary", verbose=False, progress_bar=False)  # sorters need a file
    sorting = ss.run_sorter(name, si_rec, folder=str(tmp / name), remove_existing_folder=True, verbose=False)
    t, u = [], []
    for k, uid in enumerate(sorting.get_unit_ids()):
        st = sorting.get_unit_spike_train(uid, segment_index=0)
        t.append(st)
        u.append(np.full(st.size, k))
    t = np.concatenate(t) if t else np.zeros(0, np.int64)
    u = np.concatenate(u) if u else np.zeros(0, np.int64)
    t = t.astype(np.int64)
    return Sorting(t, unit_electrodes(rec, t, u), u, rec.fs)


def score(gt, sorting, snr: dict) -> dict:
    from spikevae.compare import compare_sortings, estimate_offset
    from spikevae.diagnose import by_snr

    off = estimate_offset(gt, sorting) if sorting.sample_index.size else 0
    sc = compare_sortings(gt, sorting, offset_samples=off)
    return {"mean_accuracy": sc["mean_accuracy"], "n_well_detected": sc["n_well_detected"],
            "n_gt_units": sc["n_gt_units"], "n_sorted_units": sc["n_sorted_units"], "offset": off,
            "by_snr": by_snr(sc, snr)}


def installed(name: str) -> bool:
    if name == "spikevae":
        return True
    try:
        import spikeinterface.sorters as ss

        return name in ss.installed_sorters()
    except ImportError:
        return False


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--electrodes", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--sorters", nargs="+", default=["spikevae", "mountainsort5", "spykingcircus2", "tridesclous2"])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    sorters = [s for s in args.sorters if installed(s)]
    for s in set(args.sorters) - set(sorters):
        print(f"skipping {s}: not installed", file=sys.stderr)
    results = []
    bands = ("<5", "5-8", ">=8")
    print(f"{'seed':<5}{'sorter':<16}{'accuracy':>9}{'well':>7}{'units':>7}" + "".join(f"{b:>7}" for b in bands)
          + f"{'offset':>8}{'seconds':>9}")
    for seed in args.seeds:
        rec, gt, snr = simulate(seed, args.electrodes, args.duration)
        for name in sorters:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                try:
                    sorting = run_spikevae(rec, Path(tmp)) if name == "spikevae" else run_si_sorter(name, rec, Path(tmp))
                except Exception as exc:  # a failing external sorter is reported, not fatal
                    print(f"{seed:<5}{name:<16} failed: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                    continue
                secs = time.perf_counter() - t0
            r = {"seed": seed, "sorter": name, "seconds": secs, **score(gt, sorting, snr)}
            results.append(r)
            print(f"{seed:<5}{name:<16}{r['mean_accuracy']:>9.3f}{r['n_well_detected']:>4}/{r['n_gt_units']:<3}"
                  f"{r['n_sorted_units']:>6}" + "".join(f"{r['by_snr'][b]['mean_accuracy']:>7.3f}" for b in bands)
                  + f"{r['offset']:>8}{secs:>9.1f}", flush=True)
    print("mean over seeds")
    for name in sorters:
        rs = [r for r in results if r["sorter"] == name]
        if not rs:
            continue
        print(f"  {name:<16} accuracy {np.mean([r['mean_accuracy'] for r in rs]):.3f}, well detected "
              f"{sum(r['n_well_detected'] for r in rs)}/{sum(r['n_gt_units'] for r in rs)}, by band "
              + ", ".join(f"{b} {np.nanmean([r['by_snr'][b]['mean_accuracy'] for r in rs]):.3f}" for b in bands)
              + f"; {np.median([r['seconds'] for r in rs]):.1f} s (median)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
