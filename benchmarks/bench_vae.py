"""Speed of the VAE features: training time, embedding throughput, peak memory.

Trains ``VAEFeatures`` with the default settings on ``--n`` waveforms of 48 samples
(synthetic: simulated spike shapes of several amplitudes on 16 electrodes plus white
noise, with background-noise snippets for the default corruption), then embeds them.

    python benchmarks/bench_vae.py                  # 100k waveforms, device auto
    python benchmarks/bench_vae.py --device cuda --check-cpu   # also compare CUDA and CPU embeddings

Peak memory is the process's maximum resident set size (and, on CUDA, the peak
allocated GPU memory). Timings depend on how busy the machine is: say so when quoting.
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time

import numpy as np


def synthetic_spikes(n: int, n_electrodes: int = 16, n_samples: int = 48, seed: int = 0):
    """Spikes of 12 shapes x amplitudes on ``n_electrodes`` electrodes with white noise (σ 6-12 µV)."""
    from spikevae.objects import Spikes
    from spikevae.synth import parametric_templates

    rng = np.random.default_rng(seed)
    temps = parametric_templates(12, n_samples, rng, fs=30000.0, peak_index=15)
    temps = temps / np.abs(temps).max(axis=1, keepdims=True)
    unit = rng.integers(0, len(temps), n)
    el = rng.integers(0, n_electrodes, n)
    sigma = rng.uniform(6, 12, n_electrodes)
    amp = rng.uniform(4, 15, len(temps))[unit] * sigma[el]
    wf = temps[unit] * amp[:, None] + rng.normal(size=(n, n_samples)) * sigma[el][:, None]
    snip = rng.normal(size=(300 * n_electrodes, n_samples)) * np.repeat(sigma, 300)[:, None]
    return Spikes(np.arange(n) * 50, el, wf.astype(np.float32), wf[:, 15], sigma, 30000.0, 15,
                  [str(i) for i in range(n_electrodes)], snip, np.repeat(np.arange(n_electrodes), 300))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="number of waveforms")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--set", dest="sets", nargs="*", default=[], metavar="KEY=VALUE",
                   help="VAEConfig overrides, e.g. kind=beta_vae epochs=5")
    p.add_argument("--check-cpu", action="store_true", help="also embed on the CPU and report the largest difference")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from spikevae.config import parse_override, set_value
    from spikevae.features.vae import VAEConfig, VAEFeatures

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = VAEConfig(device=args.device)
    for s in args.sets:
        set_value(cfg, *parse_override(s))
    spikes = synthetic_spikes(args.n)
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    f = VAEFeatures(cfg).fit(spikes)
    t_train = time.perf_counter() - t0
    f.transform(spikes.subset(np.arange(min(1000, spikes.n_spikes))))  # warm-up
    if f.device_.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    emb = f.transform(spikes)
    if f.device_.type == "cuda":
        torch.cuda.synchronize()
    t_embed = time.perf_counter() - t0
    h = f.history_
    print(f"device {f.device_} ({torch.cuda.get_device_name(f.device_) if f.device_.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {os.cpu_count()} CPUs visible")
    print(f"config: kind={cfg.kind} arch={cfg.arch} latent={cfg.latent_dim} channels={cfg.channels} "
          f"n_blocks={cfg.n_blocks} hidden={cfg.hidden} batch={cfg.batch_size} corruption={cfg.corruption}")
    print(f"training: {args.n} waveforms, {len(h)} epochs ({f.step_} steps), {t_train:.1f} s "
          f"({np.mean([e['seconds'] for e in h]):.2f} s/epoch), final val loss {h[-1]['val_total']:.3f}")
    print(f"embedding: {emb.n_spikes} spikes in {t_embed:.2f} s = {emb.n_spikes / t_embed:,.0f} spikes/s")
    print(f"peak memory: {peak_rss_mb():.0f} MB resident (before training {rss0:.0f} MB)"
          + (f", {torch.cuda.max_memory_allocated(f.device_) / 2**20:.0f} MB GPU" if f.device_.type == "cuda" else ""))
    if args.check_cpu and f.device_.type != "cpu":
        with tempfile.TemporaryDirectory() as d:
            f.save(os.path.join(d, "m"))
            cpu = VAEFeatures.load(os.path.join(d, "m"), device="cpu").transform(spikes).features
        diff = np.abs(cpu - emb.features).max()
        print(f"CUDA vs CPU embedding: max |difference| {diff:.2e} (feature scale {np.abs(cpu).max():.2f})")


if __name__ == "__main__":
    main()
