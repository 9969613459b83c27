"""VAE accuracy on recordings with more spikes than the small ground-truth sets.

The sets of ``gt_sets`` (sample data, 16-electrode simulations) hold ~20k spikes, fewer
than ``features.vae.max_train_spikes``: a training subsample cap never acts on them. This
runs the same diagnosis as ``bench_gt_diagnosis.py`` (ceiling, probe, sorting before and
after refinement) on 96-electrode simulations (~90k spikes per minute), where it does, and
prints the VAE training time with it.

    python benchmarks/bench_vae_large.py --seeds 0 1 --set features.vae.num_threads=1
    python benchmarks/bench_vae_large.py --set features.vae.max_train_spikes=200000   # the old cap
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_gt_diagnosis  # noqa: E402
import gt_sets  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[0], help="simulation seeds")
    p.add_argument("--electrodes", type=int, default=96)
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--methods", nargs="+", default=["vae"])
    p.add_argument("--set", dest="overrides", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rows = []
    for seed in args.seeds:
        s = gt_sets.simulation(seed, args.electrodes, args.duration)
        t0 = time.perf_counter()
        new = bench_gt_diagnosis.diagnose_set(s, args.methods, args.overrides)
        for r in new:
            r["t_total_s"] = time.perf_counter() - t0
        rows += new
        print("\n".join(bench_gt_diagnosis.format_rows(new).splitlines()[1:-1])
              + f"   ({new[0]['n_spikes']} spikes, pipeline {new[0]['t_pipeline_s']:.0f} s)", flush=True)
    print()
    print(bench_gt_diagnosis.format_rows(rows))
    for m in args.methods:
        acc = [r["after"]["mean_accuracy"] for r in rows if r["features"] == m]
        print(f"{m}: mean accuracy after refinement over {len(acc)} sets: {sum(acc) / len(acc):.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
