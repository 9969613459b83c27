"""Accuracy of the default pipeline on every ground-truth set, for each filter band.

Prints, per set and band: detected spikes, the detection ceiling (each detected spike
given the label of the ground-truth spike it matches), and the sorting's mean accuracy
and well-detected units (accuracy >= 0.8), for every feature method asked for.

    python benchmarks/bench_accuracy.py                     # all sets, three bands, PCA
    python benchmarks/bench_accuracy.py --bands offline --methods pca,vae --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import gt_sets  # noqa: E402

from spikevae.compare import compare_sortings, estimate_offset  # noqa: E402
from spikevae.diagnose import by_snr, ground_truth_labels  # noqa: E402
from spikevae.objects import Sorting  # noqa: E402
from spikevae.params import load_config  # noqa: E402
from spikevae.pipeline import run_pipeline  # noqa: E402


def detection_ceiling(spikes, gt: Sorting, offset: int) -> dict:
    """Score of the sorting that labels each detected spike with its matching ground-truth unit."""
    shifted = Sorting(gt.sample_index + offset, gt.electrode, gt.unit, gt.fs)
    lab = ground_truth_labels(spikes, shifted)  # -1 where no ground-truth spike matches
    return compare_sortings(shifted, Sorting(spikes.sample_index, spikes.electrode, lab, gt.fs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bands", default="offline,blackrock,card")
    ap.add_argument("--methods", default="pca")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--sets", default="", help="only these set names (comma separated prefixes)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra key=value overrides")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    methods = args.methods.split(",")
    sets = gt_sets.all_sets(tuple(int(s) for s in args.seeds.split(",") if s), args.electrodes, args.duration)
    if args.sets:
        sets = [s for s in sets if any(s.name.startswith(p) for p in args.sets.split(","))]
    rows = []
    print(f"{'set':<22} {'band':<10} {'spikes':>7} {'ceiling':>8} " +
          " ".join(f"{m + ' acc':>9} {m + ' well':>9}" for m in methods) + "  by SNR (<5 | 5-8 | >=8)  seconds")
    for s in sets:
        for band in args.bands.split(","):
            overrides = [f"preprocess.band={band}", f"features.method={methods[0]}",
                         f"features.also={json.dumps(methods[1:])}"] + s.overrides + args.overrides
            cfg = load_config(overrides=overrides)
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                r = run_pipeline(s.recording, cfg, tmp, report=False)
                secs = time.perf_counter() - t0
                r = r.in_memory()  # the waveforms and features, before their run folder goes
            off = estimate_offset(s.gt, r.sorting) if s.estimate_offset else 0
            ceil = detection_ceiling(r.spikes, s.gt, off)
            sc = {m: compare_sortings(s.gt, so, offset_samples=off) for m, so in r.sortings.items()}
            snr = by_snr(sc[methods[0]], s.unit_snr)
            row = {"set": s.name, "band": band, "spikes": r.spikes.n_spikes, "ceiling": ceil["mean_accuracy"],
                   "ceiling_by_snr": by_snr(ceil, s.unit_snr), "seconds": secs, "offset": off,
                   "n_gt_units": ceil["n_gt_units"],
                   **{f"{m}_acc": sc[m]["mean_accuracy"] for m in methods},
                   **{f"{m}_well": sc[m]["n_well_detected"] for m in methods}, "by_snr": snr}
            rows.append(row)
            snr_txt = " | ".join(f"{v['mean_accuracy']:.2f} ({v['n_units']})" for v in snr.values()) if snr else "-"
            print(f"{s.name:<22} {band:<10} {r.spikes.n_spikes:>7} {ceil['mean_accuracy']:>8.3f} " +
                  " ".join(f"{sc[m]['mean_accuracy']:>9.3f} {sc[m]['n_well_detected']:>4}/{sc[m]['n_gt_units']:<4}"
                           for m in methods) + f"  {snr_txt}  {secs:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
