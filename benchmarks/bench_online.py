"""Online classification with a finished run's model: agreement with the offline sort, throughput, chunk latency.

A Utah-like simulation (96 electrodes by default) is sorted offline; ``classify_recording`` then
labels (a) the same recording, chunk by chunk, with the run's model and no refitting, and (b) a
second session of the same array a "day" later (units drifted by ``--drift``, some gone or new),
which is also sorted offline for reference. Agreement = share of the offline-sorted spikes that
the online pass gives the matching unit (offline units mapped to online units by majority).
Latency = seconds from a filtered chunk to its labels (detection, alignment, features, classes);
"with read" adds reading and filtering the chunk.

    python benchmarks/bench_online.py                     # 96 electrodes x 30 s, 1 s chunks
    python benchmarks/bench_online.py --electrodes 16 --duration 20 --chunk-s 0.5
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spikevae.online import agreement_with, classify_recording, load_online_model
from spikevae.params import load_config
from spikevae.pipeline import run_pipeline
from spikevae.synth import SimConfig
from spikevae.tracking.simulate import simulate_sessions


def _row(name: str, res, offline, model) -> str:
    s = res.summary(model.channel_ids)
    a = agreement_with(offline, res.sorting)
    lat, tot = s["chunk_latency_ms"], s["chunk_latency_with_read_ms"]
    return (f"| {name} | {a['agreement']:.3f} | {a['found']:.3f} | {s['n_sorted']} / {s['n_spikes']} | "
            f"{s['n_no_known_unit']} | {s['spikes_per_s']:.0f} | {lat['median']:.1f} / {lat['p95']:.1f} | "
            f"{tot['median']:.1f} / {tot['p95']:.1f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--electrodes", type=int, default=96)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--chunk-s", type=float, default=1.0)
    ap.add_argument("--drift", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--features", default="pca", choices=("pca", "vae"))
    args = ap.parse_args(argv)
    sims = simulate_sessions(SimConfig(n_electrodes=args.electrodes, duration_s=args.duration), 2, args.drift,
                             args.seed, turnover=0.2)
    cfg = load_config(overrides=["cluster.n_jobs=1", "run.n_jobs=1", f"features.method={args.features}"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        day0 = run_pipeline(sims[0].recording, cfg, Path(tmp) / "day0", report=False)
        day1 = run_pipeline(sims[1].recording, cfg, Path(tmp) / "day1", report=False)
        t_sort = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = load_online_model(Path(tmp) / "day0")
        t_load = time.perf_counter() - t0
        same = classify_recording(model, sims[0].recording, args.chunk_s)
        rows.append(_row("same recording (session 0)", same, day0.sorting, model))
        nxt = classify_recording(model, sims[1].recording, args.chunk_s)
        rows.append(_row(f"next session (drift {args.drift:g})", nxt, day1.sorting, model))
    print(f"{args.electrodes} electrodes x {args.duration:g} s, {args.chunk_s:g} s chunks, features {args.features}; "
          f"offline sorts {t_sort:.0f} s (both), model rebuilt in {t_load:.2f} s")
    print("| recording | agreement with offline | found | sorted / spikes | no known unit | spikes/s | "
          "chunk latency median / p95 (ms) | with read + filter (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    lat = same.latency_s * 1e3
    print(f"\nchunk latency over {lat.size} chunks: min {lat.min():.1f} ms, max {lat.max():.1f} ms; "
          f"{int((lat < 100).sum())} of {lat.size} under 100 ms")
    print(f"unsorted spikes of no known unit per electrode, next session: "
          f"{np.bincount(nxt.sorting.electrode[nxt.reason == 2], minlength=args.electrodes).tolist()}")


if __name__ == "__main__":
    main()
