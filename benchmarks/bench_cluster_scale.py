"""Clustering time at array scale: 96 electrodes x 10 minutes of spikes (about a million).

The detections of a 16-electrode Utah-like simulation (``bench_cluster.simulate_and_detect``)
are resampled onto ``--electrodes`` electrodes, ``--per-electrode`` spikes each, with
spike times spread over ``--duration`` seconds; features are that simulation's PCA
features (with a little jitter so no two spikes coincide) and its noise class. Prints
the wall time of ``cluster_spikes`` (initial mixture, refinement, overlaps) and the mean
time per electrode of each step.

    python benchmarks/bench_cluster_scale.py --electrodes 96 --per-electrode 10000 --n-jobs 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster import cluster_config, embed, simulate_and_detect  # noqa: E402


def main(argv=None) -> None:
    from spikevae.cluster import cluster_spikes
    from spikevae.objects import Embedding, Spikes

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--electrodes", type=int, default=96)
    p.add_argument("--per-electrode", type=int, default=10000)
    p.add_argument("--duration", type=float, default=600.0, help="seconds the spike times spread over")
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--cache", type=Path, default=None, help="folder to cache the simulated detections")
    p.add_argument("--set", nargs="*", default=[], help="cluster config overrides")
    args = p.parse_args(argv)

    src, _, _, _ = simulate_and_detect(0, 16, 60.0, args.cache)
    emb, _ = embed(src, "pca", 5, 0)
    rng = np.random.default_rng(0)
    n_el, per = args.electrodes, args.per_electrode
    idx = np.concatenate([rng.choice(np.flatnonzero(src.electrode == e % 16), per) for e in range(n_el)])
    electrode = np.repeat(np.arange(n_el), per)
    fs = src.fs
    times = np.concatenate([np.sort(rng.choice(int(args.duration * fs), per, replace=False)) for _ in range(n_el)])
    noise_rows = [np.flatnonzero(src.noise_electrode == e % 16) for e in range(n_el)]
    spikes = Spikes(times, electrode, src.waveforms[idx], src.amplitude_uv[idx],
                    src.noise_uv[np.arange(n_el) % 16], fs, src.peak_index, [str(i) for i in range(n_el)],
                    src.noise_snippets[np.concatenate(noise_rows)],
                    np.concatenate([np.full(r.size, e) for e, r in enumerate(noise_rows)]))
    x = emb.features[idx] + 0.05 * rng.normal(size=(idx.size, emb.features.shape[1])).astype(np.float32)
    nf_rows = [np.flatnonzero(emb.noise_electrode == e % 16) for e in range(n_el)]
    # the source's noise rate was per 60 s; the resampled electrodes hold `per` spikes over `duration`
    rate = emb.noise_rate_hz[np.arange(n_el) % 16] * (per / np.bincount(src.electrode, minlength=16)[np.arange(n_el) % 16]) \
        * 60.0 / args.duration
    emb_big = Embedding(x, "pca", noise_features=emb.noise_features[np.concatenate(nf_rows)],
                        noise_electrode=np.concatenate([np.full(r.size, e) for e, r in enumerate(nf_rows)]),
                        noise_rate_hz=rate)
    cfg = cluster_config("mixture", True, [f"n_jobs={args.n_jobs}"] + args.set)
    t0 = time.perf_counter()
    sorting = cluster_spikes(spikes, emb_big, cfg)
    dt = time.perf_counter() - t0
    st = sorting.params["electrodes"].values()
    print(f"{n_el} electrodes x {per} spikes = {idx.size} spikes: {dt:.1f} s with n_jobs={args.n_jobs} "
          f"({len(sorting.unit_ids)} units); per electrode: initial {np.mean([s['t_initial_s'] for s in st]):.2f} s, "
          f"refine {np.mean([s['t_refine_s'] for s in st]):.2f} s, total {np.mean([s['t_total_s'] for s in st]):.2f} s")


if __name__ == "__main__":
    main()
