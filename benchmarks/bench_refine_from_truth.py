"""Where the refinement settles when it starts from the ground truth.

The clustering benchmark (``bench_cluster.py``) measures how much of the supervised probe
an unsupervised sorting reaches. This script asks the complementary question: is the
true partition a stable point of the refinement at all? Each electrode's detections are
labelled with their ground-truth units (unmatched detections unsorted), and then:

* ``relabel``: discriminant relabelling only (3 rounds), without and with the noise class
  (the synthetic noise crossings are the noise class's training data; the true
  unmatched detections are never used);
* ``refine``: the full refinement (split, merge, relabel) from the truth, and with the
  merge or the split step switched off;
* ``EM from truth``: a full-covariance Gaussian mixture initialised at the true classes
  (noise class included) and run to convergence: where maximum likelihood takes them.

If the refinement from the truth ends where it ends from the unsupervised start, the
remaining gap to the probe is in the decisions of the refinement (what it merges), not
in the initial clustering.

    python benchmarks/bench_refine_from_truth.py --seeds 0 1 2 3 4 --cache /tmp/spikevae-bench
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster import embed, simulate_and_detect  # noqa: E402


def em_from_truth(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels after EM of a full-covariance mixture started at the true classes (-1 a class too)."""
    from sklearn.mixture import GaussianMixture

    classes = np.unique(labels)
    d = x.shape[1]
    means = np.stack([x[labels == c].mean(0) for c in classes])
    prec = np.stack([np.linalg.inv(np.cov(x[labels == c].T) + 1e-3 * np.eye(d)) if (labels == c).sum() > d
                     else np.eye(d) for c in classes])
    w = np.array([(labels == c).mean() for c in classes])
    gm = GaussianMixture(len(classes), covariance_type="full", reg_covar=1e-3, weights_init=w,
                         means_init=means, precisions_init=prec).fit(x)
    comp = gm.predict(x)
    # each component keeps the class it started from
    return np.where(classes[comp] >= 0, classes[comp], -1)


def run_seed(seed: int, args) -> dict:
    from spikevae.cluster import ClusterConfig
    from spikevae.cluster.refine import refine, relabel
    from spikevae.compare import compare_sortings
    from spikevae.config import parse_override, set_value
    from spikevae.diagnose import diagnose, ground_truth_labels
    from spikevae.objects import Sorting

    spikes, gt, snr, _ = simulate_and_detect(seed, args.electrodes, args.duration, args.cache)
    emb, _ = embed(spikes, "pca", args.n_components, seed)
    x = emb.features.astype(np.float64)
    truth = ground_truth_labels(spikes, gt)
    peak = spikes.scaled_waveforms()[:, spikes.peak_index]
    noise = {int(e): emb.noise_features[emb.noise_electrode == e].astype(np.float64)
             for e in np.unique(emb.noise_electrode)} if emb.noise_features is not None else {}
    duration = (spikes.sample_index.max() - spikes.sample_index.min() + 1) / spikes.fs

    def variant(fn) -> float:
        out = np.full(spikes.n_spikes, -1, dtype=np.int64)
        for e in np.unique(spikes.electrode):
            idx = np.flatnonzero(spikes.electrode == e)
            lab = fn(int(e), idx)
            out[idx] = np.where(lab >= 0, lab + 1000 * int(e), -1)
        return compare_sortings(gt, Sorting(spikes.sample_index, spikes.electrode, out, spikes.fs))["mean_accuracy"]

    def prior(e, idx):
        return float(np.clip(emb.noise_rate_hz[e] * duration / idx.size, 1e-3, 0.9))

    def relabel_rounds(with_noise):
        def fn(e, idx):
            cfg = ClusterConfig().refine
            lab = truth[idx].copy()
            for _ in range(3):
                lab = relabel(x[idx], lab, cfg, np.random.default_rng(e), noise_x=noise.get(e) if with_noise else None,
                              noise_prior=prior(e, idx) if with_noise else None)
            return lab
        return fn

    def refine_from_truth(overrides):
        def fn(e, idx):
            cfg = ClusterConfig().refine
            for o in overrides:
                set_value(cfg, *parse_override(o))
            lab, _ = refine(x[idx], truth[idx], peak[idx], cfg, np.random.default_rng(e),
                            noise_x=noise.get(e), noise_prior=prior(e, idx))
            return lab
        return fn

    diag = diagnose(spikes, emb, Sorting(spikes.sample_index, spikes.electrode, truth, spikes.fs), gt, snr)
    rows = {
        "detection ceiling (truth)": diag["ceiling"]["mean_accuracy"],
        "supervised probe": diag["probe"]["mean_accuracy"],
        "relabel x3 from truth": variant(relabel_rounds(False)),
        "relabel x3 from truth + noise class": variant(relabel_rounds(True)),
        "refine from truth": variant(refine_from_truth([])),
        "refine from truth, no merge": variant(refine_from_truth(["merge=false"])),
        "refine from truth, no split": variant(refine_from_truth(["split=false"])),
        "refine from truth, neither": variant(refine_from_truth(["merge=false", "split=false"])),
        "EM from truth (noise as a class)": variant(lambda e, idx: em_from_truth(x[idx], truth[idx])),
    }
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--electrodes", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--n-components", type=int, default=5)
    p.add_argument("--cache", type=Path, default=None, help="folder to cache simulated detections")
    args = p.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, args))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[-1].items()), flush=True)
    probe = np.mean([r["supervised probe"] for r in results])
    print(f"mean over seeds {args.seeds}")
    for k in results[0]:
        v = np.mean([r[k] for r in results])
        print(f"  {k:<40} {v:.3f}  ({v / probe:.0%} of the probe)")


if __name__ == "__main__":
    main()
