"""VAE speed on a realistic spike set: training time, embedding throughput, peak memory.

The spikes come from a simulated 96-electrode Utah recording (``spikevae.synth``),
band-passed and detected with the pipeline defaults, and are cached as an ``.npz`` so
later runs skip the simulation. ``--n`` waveforms are taken (the first ones in time);
the recording is made long enough to hold them. Training uses the default
``VAEConfig`` (plus ``--set`` overrides) on the CPU; embedding is timed on all ``--n``
waveforms and reported in waveforms per minute (the issue-14 targets: training on
200k waveforms in < 1 min, embedding >= 1M waveforms/min, on 2 cores).

    python benchmarks/bench_vae_speed.py                        # 200k waveforms, torch default threads
    python benchmarks/bench_vae_speed.py --threads 2 --set epochs=5
    python benchmarks/bench_vae_speed.py --profile /tmp/vae     # pyinstrument of fit: /tmp/vae.html (+ .txt)
    python benchmarks/bench_vae_speed.py --lazy                 # waveforms as a memory map (.npy): checks
                                                                # that fit/transform read them in blocks

Accuracy is not measured here: use ``benchmarks/bench_gt_diagnosis.py --methods vae``.
Timings depend on how busy the machine is (load average printed): say so when quoting.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def simulated_spikes(n: int, n_electrodes: int, seed: int, cache: Path):
    """At least ``n`` detected spikes of a simulated Utah recording (cached in ``cache``)."""
    from spikevae.objects import Spikes

    if not cache.exists():
        from spikevae.detect import detect_spikes
        from spikevae.params import load_config
        from spikevae.preprocess import preprocess
        from spikevae.synth import SimConfig, simulate_recording

        cfg = load_config()
        # ~900 detections per electrode-minute at the defaults; 20 % margin
        duration = max(10.0, 60.0 * 1.2 * n / (n_electrodes * 900.0))
        t0 = time.perf_counter()
        rec, _ = simulate_recording(SimConfig(n_electrodes=n_electrodes, duration_s=duration), seed=seed)
        sp = detect_spikes(preprocess(rec, cfg.preprocess), cfg.detect, chunk_s=cfg.run.chunk_s, seed=seed,
                           n_jobs=cfg.run.n_jobs)
        print(f"simulated and detected {duration:.0f} s x {n_electrodes} electrodes: {sp.n_spikes} spikes "
              f"in {time.perf_counter() - t0:.0f} s")
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, sample_index=sp.sample_index, electrode=sp.electrode, waveforms=sp.waveforms,
                 amplitude_uv=sp.amplitude_uv, noise_uv=sp.noise_uv, fs=sp.fs, peak_index=sp.peak_index,
                 channel_ids=np.asarray(sp.channel_ids), noise_snippets=sp.noise_snippets,
                 noise_electrode=sp.noise_electrode)
    z = np.load(cache)
    if len(z["sample_index"]) < n:
        raise SystemExit(f"{cache} holds {len(z['sample_index'])} spikes < --n {n}; delete it to simulate more")
    return Spikes(z["sample_index"][:n], z["electrode"][:n], z["waveforms"][:n], z["amplitude_uv"][:n],
                  z["noise_uv"], float(z["fs"]), int(z["peak_index"]), list(z["channel_ids"]),
                  z["noise_snippets"], z["noise_electrode"])


def as_memmap(spikes, folder: Path):
    """``spikes`` with its waveforms as a read-only memory map, as an on-disk store would give."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "waveforms.npy"
    np.save(path, spikes.waveforms)
    spikes.waveforms = np.load(path, mmap_mode="r")
    return spikes


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="number of waveforms")
    p.add_argument("--electrodes", type=int, default=96)
    p.add_argument("--seed", type=int, default=0, help="simulation seed")
    p.add_argument("--cache", type=Path, default=Path("/tmp/spikevae_bench_vae_speed"),
                   help="folder for the cached spikes")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--set", dest="sets", nargs="*", default=[], metavar="KEY=VALUE",
                   help="VAEConfig overrides, e.g. epochs=5 batch_size=1024")
    p.add_argument("--lazy", action="store_true", help="waveforms as a memory-mapped .npy file")
    p.add_argument("--profile", default=None, metavar="PREFIX", help="pyinstrument profile of fit to PREFIX.html/.txt")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from spikevae.config import parse_override, set_value
    from spikevae.features.vae import VAEConfig, VAEFeatures

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = VAEConfig(device="cpu")
    for s in args.sets:
        set_value(cfg, *parse_override(s))
    spikes = simulated_spikes(args.n, args.electrodes, args.seed,
                              args.cache / f"spikes_{args.electrodes}el_s{args.seed}_{args.n}.npz")
    if args.lazy:
        spikes = as_memmap(spikes, args.cache / "lazy")
    rss0 = peak_rss_mb()
    load0 = os.getloadavg()[0]
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    t0 = time.perf_counter()
    f = VAEFeatures(cfg).fit(spikes)
    t_train = time.perf_counter() - t0
    if profiler is not None:
        profiler.stop()
        Path(args.profile + ".html").write_text(profiler.output_html())
        Path(args.profile + ".txt").write_text(profiler.output_text(unicode=False, color=False))
    rss_train = peak_rss_mb()
    f.transform(spikes.subset(np.arange(min(1000, spikes.n_spikes))))  # warm-up
    t0 = time.perf_counter()
    emb = f.transform(spikes)
    t_embed = time.perf_counter() - t0
    h = f.history_
    res = {"n": args.n, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_before": load0,
           "load_after": os.getloadavg()[0], "train_s": t_train, "epochs": len(h), "steps": f.step_,
           "final_val_total": h[-1]["val_total"] if h else None, "embed_s": t_embed,
           "embed_per_min": emb.n_spikes / t_embed * 60.0, "peak_rss_mb": peak_rss_mb(),
           "rss_before_mb": rss0, "rss_after_train_mb": rss_train,
           "config": {k: getattr(cfg, k) for k in ("kind", "channels", "hidden", "latent_dim", "epochs", "batch_size",
                                                   "lr", "max_train_spikes", "corruption", "num_threads")}}
    print(f"torch {torch.__version__}, {res['threads']} threads, {res['cpus']} CPUs visible, "
          f"load average {load0:.1f} -> {res['load_after']:.1f}; config {res['config']}")
    print(f"training: {args.n} waveforms, {len(h)} epochs ({f.step_} steps), {t_train:.1f} s, "
          f"final val loss {res['final_val_total']:.3f}")
    print(f"embedding: {emb.n_spikes} waveforms in {t_embed:.2f} s = {res['embed_per_min'] / 1e6:.2f} M waveforms/min")
    print(f"peak memory: {res['peak_rss_mb']:.0f} MB resident (before training {rss0:.0f} MB, "
          f"after training {rss_train:.0f} MB)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
