"""Throughput of each pipeline stage on a simulated 96-electrode Utah recording.

Writes the recording as a Blackrock .ns5 file (so reading goes through neo), then runs
the default pipeline and prints, per stage, seconds, x-real-time (recording seconds per
wall-clock second) and peak resident memory.

    python benchmarks/bench_pipeline.py --duration 60 [--electrodes 96] [--methods pca]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from spikevae.params import load_config
from spikevae.pipeline import run_pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--electrodes", type=int, default=96)
    ap.add_argument("--methods", default="pca")
    ap.add_argument("--report", action="store_true", help="include quality metrics and the HTML report")
    ap.add_argument("--keep", default="", help="keep the output folder here")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from spikevae.io.nsx_write import write_nsx
    from spikevae.synth import SimConfig, simulate_recording

    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        rec, gt = simulate_recording(SimConfig(n_electrodes=args.electrodes, duration_s=args.duration), seed=0)
        t0 = time.perf_counter()
        path = Path(tmp) / "bench.ns5"
        write_nsx(path, rec)
        print(f"simulated and wrote {path.name}: {args.electrodes} electrodes x {args.duration:g} s "
              f"({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        cfg = load_config(overrides=[f"features.method={methods[0]}", f"features.also={json.dumps(methods[1:])}",
                                     *args.overrides])
        out = args.keep or str(Path(tmp) / "out")
        t0 = time.perf_counter()
        r = run_pipeline(path, cfg, out, gt=gt, report=args.report)
        total = time.perf_counter() - t0
    print(f"{'stage':<16} {'seconds':>8} {'x-real-time':>12} {'peak RSS MB':>12}")
    for name, t in r.timings.items():
        xrt = args.duration / t["seconds"] if t["seconds"] > 0 else float("inf")
        print(f"{name:<16} {t['seconds']:>8.2f} {xrt:>12.1f} {t['peak_rss_mb']:>12.0f}")
    print(f"{'total':<16} {total:>8.2f} {args.duration / total:>12.1f}")
    print(f"spikes {r.spikes.n_spikes}, units {len(r.sorting.unit_ids)}; " +
          ", ".join(f"{m}: mean accuracy {s['mean_accuracy']:.3f}, well detected {s['n_well_detected']}/{s['n_gt_units']}"
                    for m, s in r.scores.items()))


if __name__ == "__main__":
    main()
