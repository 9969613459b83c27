"""Benchmark: quality metrics for a 96-electrode Utah-array sorting of ~500k spikes.

Usage::

    python benchmarks/bench_quality.py [--spikes 500000] [--electrodes 96] [--units 3] [--duration 600]
    python benchmarks/bench_quality.py --presets RUN_DIR [RUN_DIR ...]

Prints the time of the synthetic set-up, of ``compute_metrics`` (the target is < 60 s on 2
cores) and the peak resident memory of the process. With ``--report DIR`` it also renders the
HTML report of two sortings of the same spikes ("pca": the true units; "vae": the first two
units of every electrode merged) with per-electrode PCA embeddings, and prints its render time
and size.

``--presets`` judges the good-label presets against ground truth instead: for each run folder
of ``spikevae run --gt`` (``metrics.json`` and ``scores.json``), how many units each preset
calls good, what fraction of them match a ground-truth unit, and how many of the units sorted
with accuracy >= 0.8 it keeps (the measurement quoted in ``spikevae/quality/labels.py``), e.g.::

    spikevae simulate sim --duration 120 --electrodes 32 --seed 3
    spikevae run sim/recording.ns5 -o run --gt sim/ground_truth.npz
    python benchmarks/bench_quality.py --presets run
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
    p.add_argument("--report", default=None, metavar="DIR", help="also write DIR/report.html and time it")
    p.add_argument("--jobs", type=int, default=1, help="processes drawing the report's electrode figures")
    p.add_argument("--presets", nargs="+", default=None, metavar="RUN_DIR",
                   help="judge the good-label presets against the ground-truth scores of these run folders")
    args = p.parse_args(argv)
    if args.presets:
        for run_dir in args.presets:
            bench_presets(run_dir)
        return

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
    c1 = time.process_time()
    metrics = compute_metrics(spikes, sorting, QualityConfig(), args.duration)
    t2, c2 = time.perf_counter(), time.process_time()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_good = sum(r["good"] for r in metrics)
    print(f"data: {spikes.n_spikes} spikes, {spikes.n_electrodes} electrodes, {len(metrics)} units "
          f"({n_good} good), {args.duration:g} s; set-up {t1 - t0:.1f} s")
    print(f"compute_metrics: {t2 - t1:.1f} s wall, {c2 - c1:.1f} s CPU; peak RSS {rss1:.0f} MB (after set-up {rss0:.0f} MB)")
    if args.report:
        bench_report(spikes, sorting, metrics, args.duration, args.report, args.jobs)


def bench_report(spikes, sorting, metrics, duration_s: float, out_dir: str, n_jobs: int = 1) -> None:
    """Render the report of two sortings of ``spikes``; print render time, size and peak memory."""
    import numpy as np

    from spikevae.objects import Embedding, Sorting
    from spikevae.quality import compute_metrics
    from spikevae.quality.isolation import electrode_pca
    from spikevae.quality_config import QualityConfig
    from spikevae.report import ReportContext, write_report

    feats = np.zeros((spikes.n_spikes, 3), np.float32)
    scaled = spikes.scaled_waveforms()
    for e in range(spikes.n_electrodes):
        i = np.nonzero(spikes.electrode == e)[0]
        feats[i] = electrode_pca(scaled[i], 3)
    first_of_el = sorting.unit - sorting.unit % 3 if sorting.unit.size else sorting.unit
    merged = np.where((sorting.unit >= 0) & (sorting.unit % 3 == 1), first_of_el, sorting.unit)
    other = Sorting(sorting.sample_index, sorting.electrode, merged, sorting.fs)
    ctx = ReportContext(spikes=spikes, sortings={"pca": sorting, "vae": other},
                        embeddings={"pca": Embedding(feats, "pca"), "vae": Embedding(feats[:, ::-1], "vae")},
                        metrics={"pca": metrics, "vae": compute_metrics(spikes, other, QualityConfig(), duration_s)},
                        recording_info={"source": "synthetic", "fs": spikes.fs, "n_channels": spikes.n_electrodes,
                                        "duration_s": duration_s}, n_jobs=n_jobs)
    from pathlib import Path

    t0, c0 = time.perf_counter(), time.process_time()
    path = write_report(Path(out_dir) / "report.html", ctx)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"report: {path} {path.stat().st_size / 1e6:.1f} MB, rendered in {dt:.1f} s wall ({cpu:.1f} s CPU in this "
          f"process) with {n_jobs} process(es); "
          f"peak RSS {rss:.0f} MB")


def bench_presets(run_dir: str) -> None:
    """Print, per preset, good units and how they relate to the ground-truth accuracy of the run."""
    import json
    from pathlib import Path

    import numpy as np

    from spikevae.quality import PRESETS, is_good

    run = Path(run_dir)
    rows = [{k: float("nan") if v is None else v for k, v in r.items()}
            for r in json.loads((run / "metrics.json").read_text())["units"]]
    scores = json.loads((run / "scores.json").read_text())
    method = next(iter(scores))
    acc = {u["sorted_unit"]: u["accuracy"] for u in scores[method]["units"] if u["sorted_unit"] >= 0}
    n_well = sum(a >= 0.8 for a in acc.values())
    print(f"{run} ({method}): {len(rows)} units, {n_well} sorted with ground-truth accuracy >= 0.8")
    for preset in PRESETS:
        good = [r["unit"] for r in rows if is_good(r, preset)]
        a = np.array([acc.get(u, 0.0) for u in good])
        matched = np.mean([u in acc for u in good]) if good else float("nan")
        print(f"  {preset:9s} good {len(good):3d}; matching a ground-truth unit {matched:.0%}; "
              f"accuracy >= 0.8 among good {np.mean(a >= 0.8) if good else float('nan'):.0%}; "
              f"keeps {int(np.sum(a >= 0.8))}/{n_well} of the well-sorted units")


if __name__ == "__main__":
    main()
