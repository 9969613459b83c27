"""Throughput of the detect stage (band-pass + detection) and of each detection kernel, with an exact
comparison of the spikes against a saved reference.

The detect stage is timed as the pipeline runs it (``pipeline._detect_stage``: dead-channel check,
band-pass, ``detect_spikes``) on a recording written by ``spikevae simulate``; each repeat reports
wall seconds, x real time and CPU seconds (user + system of this process and of its reaped worker
processes: on a shared machine wall time stretches with the load, CPU time much less). The median
of the repeats is printed last.

``--kernels`` times each kernel of one chunk job (file read, band-pass, find_peaks, align_waveforms,
the whole-chunk threshold mask where the version still builds one,
_clean_noise_windows) summed over the first ``--kernel-chunks`` chunks.

``--save`` writes the spikes of the last repeat (sample_index, electrode, waveforms, noise snippets)
to an ``.npz``; ``--compare`` checks them against such a file: equal indices and electrodes, and the
largest waveform difference (0 = byte-identical).

    spikevae simulate /tmp/sim2 --duration 120 --electrodes 96 --seed 0 --format nsx
    python benchmarks/bench_detect.py /tmp/sim2/recording.ns5 --repeats 3 --save before.npz
    python benchmarks/bench_detect.py /tmp/sim2/recording.ns5 --repeats 3 --compare before.npz
    python benchmarks/bench_detect.py /tmp/sim2/recording.ns5 --kernels --repeats 0
"""
from __future__ import annotations

import argparse
import inspect
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_stage(path: Path, overrides: list[str]):
    from spikevae.params import load_config
    from spikevae.pipeline import _detect_stage, open_input

    cfg = load_config(overrides=overrides)
    rec = open_input(path, cfg)
    t0, c0 = time.perf_counter(), cpu_seconds()
    spikes = _detect_stage(rec, cfg, progress=False)
    return time.perf_counter() - t0, cpu_seconds() - c0, rec.duration_s, spikes


def time_kernels(path: Path, overrides: list[str], n_chunks: int) -> dict[str, float]:
    """Seconds per kernel of the chunk job, summed over the first ``n_chunks`` chunks (serial)."""
    from spikevae import detect as d
    from spikevae.params import load_config
    from spikevae.pipeline import open_input
    from spikevae.preprocess import preprocess
    from spikevae.recording import get_chunk_with_margin

    cfg = load_config(overrides=overrides)
    rec = preprocess(open_input(path, cfg), cfg.preprocess)
    c, fs = cfg.detect, rec.fs
    length, pre = d.ms_to_samples(c.window_ms, fs), d.ms_to_samples(c.pre_ms, fs)
    dead = d.ms_to_samples(c.dead_time_ms, fs)
    noise = d.estimate_noise(rec, c.max_noise_chunks, int(fs // 2))
    thr = (c.threshold * noise).astype(np.float32)
    margin = max(dead, pre + d.ALIGN_PAD, length - pre + d.ALIGN_PAD, length) + 2
    block_len = max(int(round(d.NOISE_BLOCK_S * fs)), 4 * length)
    n_blocks = int(np.ceil(rec.n_samples / block_len))
    n_per_block = int(np.ceil(c.noise_snippets / max(1, n_blocks)))
    active = noise > 0
    mask_arg = "above" in inspect.signature(d._clean_noise_windows).parameters
    tot = dict.fromkeys(("read", "bandpass", "find_peaks", "align_waveforms", "mask", "noise_windows"), 0.0)
    ranges = list(rec.chunks(int(cfg.run.chunk_s * fs)))[:n_chunks]
    raw = rec.parent if hasattr(rec, "parent") and hasattr(rec, "band") else None
    for start, stop in ranges:
        tr = time.perf_counter()
        if raw is not None:  # the file read alone (the band-pass reads it again, with its own margin)
            get_chunk_with_margin(raw, start, stop, margin + rec.margin)
        t0 = time.perf_counter()
        x, left, _ = get_chunk_with_margin(rec, start, stop, margin)
        t1 = time.perf_counter()
        t, ch = d.find_peaks(x, thr, c.polarity, dead)
        t2 = time.perf_counter()
        g = t - left + start
        keep = ((g >= start) & (g < stop) & (g - pre - d.ALIGN_PAD >= 0)
                & (g - pre + length + d.ALIGN_PAD <= rec.n_samples))
        t, ch = t[keep], ch[keep]
        pol = np.full(len(t), -1.0)
        t3 = time.perf_counter()
        d.align_waveforms(x, t, ch, pre, length, c.upsample, pol, c.align_smooth_ms * 1e-3 * fs,
                          c.align_max_shift_ms * 1e-3 * fs)
        t4 = time.perf_counter()
        # before this change the chunk job built the whole mask; after, the function takes the levels
        level = c.threshold * noise
        if mask_arg:
            level = np.abs(x) > level[None, :]
        t5 = time.perf_counter()
        d._clean_noise_windows(x, level, left, start, stop, length, n_per_block, block_len, rec.n_samples, active, 0)
        t6 = time.perf_counter()
        read = t0 - tr if raw is not None else 0.0
        for k, dt in zip(tot, (read, t1 - t0 - read, t2 - t1, t4 - t3, t5 - t4, t6 - t5)):
            tot[k] += dt
    return tot, len(ranges)


def compare(spikes, ref_path: Path) -> None:
    ref = np.load(ref_path)
    same_t = np.array_equal(spikes.sample_index, ref["sample_index"])
    same_e = np.array_equal(spikes.electrode, ref["electrode"])
    print(f"spikes: {spikes.n_spikes} (reference {len(ref['sample_index'])}); sample_index equal: {same_t}; "
          f"electrode equal: {same_e}")
    for name, a, b in (("waveforms", np.asarray(spikes.waveforms), ref["waveforms"]),
                       ("noise_snippets", spikes.noise_snippets, ref["noise_snippets"])):
        if a.shape != b.shape:
            print(f"{name}: shape {a.shape} != reference {b.shape}")
            continue
        diff = np.abs(a.astype(np.float64) - b)
        rel = diff / np.maximum(np.abs(b), 1e-30)
        print(f"{name}: byte-identical {a.tobytes() == b.tobytes()}; max |diff| {diff.max() if diff.size else 0:.3g} µV; "
              f"max relative {rel.max() if rel.size else 0:.3g}; entries differing {int((diff > 0).sum())} of {diff.size}")
    print("noise_electrode equal:", np.array_equal(spikes.noise_electrode, ref["noise_electrode"]))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=1, help="run.n_jobs (default 1: serial)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="configuration override k=v")
    ap.add_argument("--save", type=Path, help="write the spikes of the last repeat to this .npz")
    ap.add_argument("--compare", type=Path, help="compare the spikes of the last repeat with this .npz")
    ap.add_argument("--kernels", action="store_true", help="time each kernel of the chunk job")
    ap.add_argument("--kernel-chunks", type=int, default=30)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = [f"run.n_jobs={args.n_jobs}", *args.overrides]

    if args.kernels:
        tot, n = time_kernels(args.recording, overrides, args.kernel_chunks)
        print(f"kernels over {n} chunks (s): " + ", ".join(f"{k} {v:.3f}" for k, v in tot.items()))
    rows, spikes = [], None
    for i in range(args.repeats):
        wall, cpu, dur, spikes = time_stage(args.recording, overrides)
        rows.append((wall, cpu))
        print(f"repeat {i + 1}: detect {wall:.2f} s wall, {dur / wall:.1f} x real time, {cpu:.2f} CPU s, "
              f"{spikes.n_spikes} spikes", flush=True)
    if rows:
        wall, cpu = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"median of {len(rows)} (n_jobs {args.n_jobs}): {wall:.2f} s wall, {dur / wall:.1f} x real time, "
              f"{cpu:.2f} CPU s, {dur / cpu:.1f} x real time per CPU second")
    if spikes is not None and args.save:
        np.savez(args.save, sample_index=spikes.sample_index, electrode=spikes.electrode,
                 waveforms=np.asarray(spikes.waveforms),
                 noise_snippets=spikes.noise_snippets, noise_electrode=spikes.noise_electrode)
    if spikes is not None and args.compare:
        compare(spikes, args.compare)


if __name__ == "__main__":
    sys.exit(main())
