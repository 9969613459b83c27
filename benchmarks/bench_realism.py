"""Realism of VAE-generated waveforms: classifier two-sample AUC and PCA-Fréchet distance.

For each recording: bandpass + detect, train a VAE (default config) on 80 % of the
waveforms, and compare the held-out 20 % (real) against

- VAE prior samples (z ~ N(0, I), decoded),
- VAE aggregate-posterior samples (one Gaussian fitted to the latents of all training
  spikes, instead of the prior),
- VAE per-unit samples (a Gaussian fitted to the latents of each ground-truth or
  sorted unit's training spikes, in proportion to unit size; simulations only),
- the Gaussian-PCA baseline (a Gaussian fitted to the training waveforms in PCA space, 8
  components), and a full-covariance Gaussian over all L samples,
- each of the above "+ background": plus a random background-noise snippet of the
  recording (decoded waveforms are the decoder's mean, without the noise real spikes
  carry), and the VAE rows "+ residual": plus a random reconstruction residual of a
  training spike (the noise the latents do not carry; ``spikevae generate --noise residual``),
- white noise N(0, 1) (sanity check: AUC ≈ 1),
- a subset of the real training waveforms (real vs real: AUC ≈ 0.5, Fréchet ≈ 0).

All in noise-σ units. AUC 0.5 = indistinguishable; the Fréchet distance is d² in
the first 5 principal components of the real set.

    nice python benchmarks/bench_realism.py                  # simulation + sample_data/sample.ns5
    nice python benchmarks/bench_realism.py --no-sample --duration 30
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def simulated_spikes(n_electrodes: int, duration_s: float, seed: int):
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.preprocess import PreprocessConfig, preprocess
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=n_electrodes, duration_s=duration_s), seed=seed)
    spikes = detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig())
    return spikes, gt


def recording_spikes(path: Path):
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.io import open_recording
    from spikevae.preprocess import PreprocessConfig, preprocess

    return detect_spikes(preprocess(open_recording(path), PreprocessConfig()), DetectConfig())


def unit_labels(spikes, gt) -> np.ndarray:
    """Ground-truth unit of each detected spike (-1 if none within 0.5 ms on the same electrode)."""
    from spikevae.compare import match_times

    labels = np.full(spikes.n_spikes, -1)
    tol = int(round(0.0005 * spikes.fs))
    for el in np.unique(spikes.electrode):
        sp = np.flatnonzero(spikes.electrode == el)
        g = np.flatnonzero(gt.electrode == el)
        if g.size == 0:
            continue
        a, b = match_times(spikes.sample_index[sp], gt.sample_index[g], tol)
        labels[sp[a]] = gt.unit[g[b]]
    return labels


def per_unit_samples(gen, train, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    from spikevae.generate import sample_unit

    units, counts = np.unique(labels, return_counts=True)  # -1 (no ground-truth match) is one more group
    keep = counts >= 10
    units, counts = units[keep], counts[keep]
    alloc = np.maximum(1, np.round(n * counts / counts.sum()).astype(int))
    out = [sample_unit(gen, train.subset(np.flatnonzero(labels == u)), k, seed + i)[0]
           for i, (u, k) in enumerate(zip(units, alloc))]
    return np.concatenate(out)


def evaluate(name: str, spikes, labels, args) -> list[tuple]:
    import tempfile

    from spikevae.features.vae import VAEFeatures
    from spikevae.generate import (add_noise, load_generator, noise_bank_sigma, residual_bank, sample_prior,
                                   sample_unit)
    from spikevae.realism import classifier_two_sample_auc, frechet_distance_pca, gaussian_pca_baseline

    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(spikes.n_spikes)
    n_test = int(0.2 * spikes.n_spikes)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    train = spikes.subset(train_idx)
    t0 = time.time()
    ex = VAEFeatures({"device": "cpu", "num_threads": 1}).fit(train)
    t_train = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        ex.save(Path(tmp) / "model")
        gen = load_generator(Path(tmp) / "model")
    real_train, real = train.scaled_waveforms(), spikes.subset(test_idx).scaled_waveforms()
    n = len(real)
    bank, resid = noise_bank_sigma(spikes), residual_bank(gen, train)
    fakes = {"VAE prior": sample_prior(gen, n, args.seed),
             "VAE agg-posterior Gauss": sample_unit(gen, train, n, args.seed)[0]}
    if labels is not None:
        fakes["VAE per-unit"] = per_unit_samples(gen, train, labels[train_idx], n, args.seed)
    fakes["Gaussian-PCA baseline"] = gaussian_pca_baseline(real_train, n, args.seed)
    for key in list(fakes):
        fakes[key + " + background"] = add_noise(fakes[key], bank, args.seed + 1)
        if key.startswith("VAE"):
            fakes[key + " + residual"] = add_noise(fakes[key], resid, args.seed + 1)
    fakes["Gaussian full-cov (L-dim)"] = gaussian_pca_baseline(real_train, n, args.seed, n_components=real.shape[1])
    fakes["white noise"] = rng.standard_normal(real.shape)
    fakes["real (train subset)"] = real_train[rng.choice(len(real_train), min(n, len(real_train)), replace=False)]
    rows = []
    for label, fake in fakes.items():
        rows.append((name, label, classifier_two_sample_auc(real, fake, seed=args.seed),
                     frechet_distance_pca(real, fake), len(real), len(fake)))
    print(f"# {name}: {spikes.n_spikes} spikes ({len(train_idx)} train / {n_test} held out), "
          f"VAE trained in {t_train:.0f} s, {len(ex.history_)} epochs", flush=True)
    return rows


def main(argv=None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--electrodes", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-sample", action="store_true", help="skip sample_data/sample.ns5")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    rows = []
    spikes, gt = simulated_spikes(args.electrodes, args.duration, args.seed)
    rows += evaluate(f"sim {args.electrodes} el {args.duration:g} s", spikes, unit_labels(spikes, gt), args)
    sample = ROOT / "sample_data" / "sample.ns5"
    if not args.no_sample and sample.exists():
        rows += evaluate("sample.ns5", recording_spikes(sample), None, args)
    print(f"\n{'data':<22} {'generator':<36} {'C2ST AUC':>9} {'Fréchet d²':>11} {'n real':>7} {'n fake':>7}")
    for data, gen, auc, fd, nr, nf in rows:
        print(f"{data:<22} {gen:<36} {auc:9.3f} {fd:11.3f} {nr:7d} {nf:7d}")


if __name__ == "__main__":
    main()
