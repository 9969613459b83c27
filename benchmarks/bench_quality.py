"""Benchmark: quality metrics for a 96-electrode Utah-array sorting of ~500k spikes.

Usage::

    python benchmarks/bench_quality.py [--spikes 500000] [--electrodes 96] [--units 3] [--duration 600]

Prints the time of the synthetic set-up, of ``compute_metrics`` (the target is < 60 s on 2
cores) and the peak resident memory of the process.
"""
from __future__ import annotations

import argparse
import resource
import time


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spikes", type=int, default=500_000)
    p.add_argument("--electrodes", type=int, default=96)
    p.add_argument("--units", type=int, default=3, help="units per electrode")
    p.add_argument("--duration", type=float, default=600.0, help="recording length (s)")
    p.add_argument("--unsorted", type=float, default=0.05, help="unsorted events per electrode (fraction)")
    args = p.parse_args(argv)

    from spikevae.quality import compute_metrics
    from spikevae.quality.synthetic import make_units
    from spikevae.quality_config import QualityConfig

    rate = args.spikes / (1 + args.unsorted) / (args.electrodes * args.units * args.duration)
    t0 = time.perf_counter()
    spikes, sorting = make_units(n_electrodes=args.electrodes, units_per_electrode=args.units,
                                 duration_s=args.duration, rate_hz=rate, amplitudes_uv=(40, 160),
                                 contamination=0.02, unsorted_fraction=args.unsorted, seed=1)
    t1 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = compute_metrics(spikes, sorting, QualityConfig(), args.duration)
    t2 = time.perf_counter()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_good = sum(r["good"] for r in metrics)
    print(f"data: {spikes.n_spikes} spikes, {spikes.n_electrodes} electrodes, {len(metrics)} units "
          f"({n_good} good), {args.duration:g} s; set-up {t1 - t0:.1f} s")
    print(f"compute_metrics: {t2 - t1:.1f} s; peak RSS {rss1:.0f} MB (after set-up {rss0:.0f} MB)")


if __name__ == "__main__":
    main()
