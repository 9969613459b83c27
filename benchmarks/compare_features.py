"""PCA vs AE vs VAE vs β-VAE features, with and without denoising, on simulated Utah ground truth.

Ground-truth sets come from ``benchmarks/gt_sets.py`` (simulations, the sample data,
../shared/data). Every variant sees the same detected spikes, the same clustering
(``spikevae.cluster.cluster_spikes`` with the default ClusterConfig) and the same
scoring (``spikevae.compare.compare_sortings``, SpikeForest accuracy, ±0.4 ms).
Prints a Markdown table: mean accuracy and well-detected units (accuracy ≥ 0.8),
overall and per SNR band (< 5, 5-8, ≥ 8; realised SNR of the simulation).

Usage (small; about 5 minutes on 2 shared CPU cores)::

    python benchmarks/compare_features.py --electrodes 16 --duration 60 --seeds 0 1
    python benchmarks/compare_features.py --sets sim sample quiroga --snr-min 3 --snr-max 8
    python benchmarks/compare_features.py --variants pca ae ae+bg --json out.json

Variant names: ``pca`` (``pca:dN`` for N components); ``raw`` (all samples, a reference); ``ae``, ``vae``, ``beta_vae`` (no corruption); ``+bg`` background
noise, ``+gauss`` Gaussian, ``+drop`` drop-out; ``@dual`` the dual-branch architecture;
``:dN`` latent size N (e.g. ``ae+bg:d5``); ``,key=value`` (last) any other VAEConfig setting
(e.g. ``vae+bg,noise_scale=0.5``). ``vade`` is the clustering-aware VAE (features.method =
vade; its network is ``vae+bg`` unless written as ``vade/<vae variant>``, e.g. ``vade/vae+bg:d6``;
``,key=value`` then sets VaDEConfig keys, e.g. ``vade,epochs=20``).

Hard-case sets (one simulation per ``--seeds`` seed, each with one hard case of
``spikevae.synth.hard`` on): ``shape`` (shape change in bursts, burst_prob 0.2, and drift),
``heavy`` (Student-t noise, 5 degrees of freedom, and 60 Hz line noise with harmonics),
``overlap`` (half of the electrodes with fast units). ``--net-seeds`` trains every learned
variant with each network seed; the tables give mean ± standard deviation over them::

    python benchmarks/compare_features.py --sets sim shape heavy overlap --variants pca vae+bg vade --net-seeds 0 1
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

BANDS = (("<5", 0.0, 5.0), ("5-8", 5.0, 8.0), (">=8", 8.0, np.inf))
DEFAULT_VARIANTS = ("pca", "ae", "ae+bg", "vae", "vae+bg", "beta_vae", "beta_vae+bg")
THREADS = 1  # set from --threads
CORRUPTION = {"bg": "background", "gauss": "gaussian", "drop": "dropout"}


def vae_config(name: str, seed: int):
    """The VAEConfig of a variant name such as ``beta_vae+bg@dual:d5``."""
    from spikevae.config import parse_override, set_value
    from spikevae.features.vae import VAEConfig

    cfg = VAEConfig(seed=seed, device="cpu", num_threads=THREADS)
    name, *sets = name.split(",")
    for item in sets:
        set_value(cfg, *parse_override(item))
    if ":d" in name:
        name, d = name.split(":d")
        cfg.latent_dim = int(d)
    if "@" in name:
        name, cfg.arch = name.split("@")
    kind, _, corr = name.partition("+")
    cfg.kind = kind
    cfg.corruption = CORRUPTION[corr] if corr else "none"
    return cfg


class RawFeatures:
    """The noise-scaled waveforms themselves (all L samples): a reference, not a proposal."""

    def fit(self, spikes):
        return self

    def transform(self, spikes):
        from spikevae.objects import Embedding

        return Embedding(spikes.scaled_waveforms(), "raw", {})


HARD_CASES = {
    "shape": {"burst_prob": 0.2, "shape_burst": 0.4, "shape_drift": 0.5, "shape_drift_period_s": 60.0},
    "heavy": {"noise_t_dof": 5.0, "line_noise_uv": 40.0},
    "overlap": {"overlap_fraction": 0.5},
}


def vade_config(name: str, seed: int):
    """The VaDEConfig of a variant name such as ``vade``, ``vade/vae+bg:d6`` or ``vade,epochs=20``."""
    from spikevae.config import parse_override, set_value
    from spikevae.features.vade import VaDEConfig

    name, *sets = name.split(",")
    net = name.partition("/")[2] or "vae+bg"
    cfg = VaDEConfig(net=vae_config(net, seed))
    for item in sets:
        set_value(cfg, *parse_override(item))
    return cfg


def is_learned(name: str) -> bool:
    return not (name == "raw" or name.startswith("pca"))


def make_extractor(name: str, seed: int):
    from spikevae.features import PCAFeatures, PCAParams
    from spikevae.features.vade import VaDEFeatures
    from spikevae.features.vae import VAEFeatures

    if name.startswith("vade"):
        return VaDEFeatures(vade_config(name, seed))
    if name == "raw":
        return RawFeatures()
    if name.startswith("pca"):
        k = int(name.split(":d")[1]) if ":d" in name else 5
        return PCAFeatures(PCAParams(n_components=k, seed=seed))
    return VAEFeatures(vae_config(name, seed))


def load_sets(names, seeds, n_electrodes, duration_s, snr_min, snr_max):
    """The ground-truth sets asked for (``sim`` = one simulation per seed), skipping absent ones."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gt_sets

    out = []
    for name in names:
        if name == "sim" or name in HARD_CASES:
            for seed in seeds:
                s = gt_sets.simulation(seed, n_electrodes, duration_s, snr_min=snr_min, snr_max=snr_max,
                                       **HARD_CASES.get(name, {}))
                s.name = f"{s.name}_snr{snr_min:g}-{snr_max:g}" + (f"_{name}" if name != "sim" else "")
                out.append(s)
        else:
            s = {"sample": gt_sets.sample_data, "quiroga": gt_sets.quiroga, "harris": gt_sets.harris}[name]()
            if s is None:
                logging.warning("ground-truth set %s not found: skipped", name)
            else:
                out.append(s)
    return out


def detect(gts, seed: int):
    """Spikes of a ground-truth set with the default preprocessing and detection (plus the set's overrides)."""
    from spikevae.compare import estimate_offset
    from spikevae.detect import detect_spikes
    from spikevae.objects import Sorting
    from spikevae.params import load_config
    from spikevae.preprocess import preprocess

    cfg = load_config(overrides=gts.overrides)
    spikes = detect_spikes(preprocess(gts.recording, cfg.preprocess), cfg.detect, seed=seed)
    offset = 0
    if gts.estimate_offset:
        offset = estimate_offset(gts.gt, Sorting(spikes.sample_index, spikes.electrode,
                                                 np.zeros(spikes.n_spikes, np.int64), spikes.fs))
    return spikes, offset, cfg.detect


def score(gt, sorting, snr: dict | None, offset: int) -> dict:
    from spikevae.compare import compare_sortings

    res = compare_sortings(gt, sorting, offset_samples=offset)
    acc = {u["gt_unit"]: u["accuracy"] for u in res["units"]}
    out = {"all": [float(a) for a in acc.values()]}
    for band, lo, hi in BANDS:
        out[band] = [float(a) for u, a in acc.items() if snr is not None and lo <= snr[u] < hi]
    return out


def probe(spikes, emb, gt, offset: int) -> list[float]:
    """Per-unit accuracy of a cross-validated LDA trained on the true labels in this feature space."""
    from spikevae.compare import compare_sortings
    from spikevae.diagnose import ground_truth_labels, supervised_probe
    from spikevae.objects import Sorting

    shifted = Sorting(gt.sample_index + offset, gt.electrode, gt.unit, gt.fs)
    labels = ground_truth_labels(spikes, shifted)
    pred = supervised_probe(emb.features, spikes.electrode, labels)
    res = compare_sortings(shifted, Sorting(spikes.sample_index, spikes.electrode, pred, spikes.fs))
    return [float(u["accuracy"]) for u in res["units"]]


def run(args) -> list[dict]:
    import torch

    from spikevae.cluster import ClusterConfig, cluster_spikes
    from spikevae.features.base import embed_noise_class
    from spikevae.features.config import FeaturesConfig

    global THREADS
    THREADS = args.threads
    torch.set_num_threads(args.threads)
    rows = []
    for gts in load_sets(args.sets, args.seeds, args.electrodes, args.duration, args.snr_min, args.snr_max):
        t0 = time.perf_counter()
        seed = args.seeds[0]
        spikes, offset, det = detect(gts, seed)
        logging.info("%s: %d spikes, %d GT units, %.0f s to detect", gts.name, spikes.n_spikes,
                     len(gts.gt.unit_ids), time.perf_counter() - t0)
        for name in args.variants:
            for net_seed in (args.net_seeds if is_learned(name) else args.net_seeds[:1]):
                t0 = time.perf_counter()
                ex = make_extractor(name, net_seed).fit(spikes)
                emb = embed_noise_class(ex, spikes, ex.transform(spikes), FeaturesConfig().noise_crossings,
                                        det.threshold, det.polarity, det.dead_time_ms, seed)  # as the pipeline does
                t_feat = time.perf_counter() - t0
                sorting = cluster_spikes(spikes, emb, ClusterConfig())
                rows.append({"set": gts.name, "variant": name, "net_seed": net_seed, "n_spikes": spikes.n_spikes,
                             "features_s": t_feat, "total_s": time.perf_counter() - t0,
                             "probe": probe(spikes, emb, gts.gt, offset),
                             **score(gts.gt, sorting, gts.unit_snr, offset)})
                r = rows[-1]
                logging.info("%s %-14s seed %d: mean acc %.3f (probe %.3f), features %.0f s, total %.0f s", gts.name,
                             name, net_seed, np.mean(r["all"]), np.mean(r["probe"]), t_feat, r["total_s"])
    return rows


def _spread(values) -> str:
    """``mean ± sd`` over network seeds (just the mean for one)."""
    v = [x for x in values if np.isfinite(x)]
    if not v:
        return "-"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def table(rows: list[dict], variants) -> str:
    """Markdown table per variant over the given rows: mean accuracy (± sd over network seeds),
    well-detected units, the probe, per SNR band, and the feature (training + embedding) time."""
    cols = [("all", "all")] + [(b, f"SNR {b}") for b, _, _ in BANDS]
    head = "| features | seeds | probe acc | " + " | ".join(f"{t} acc | {t} well" for _, t in cols) + " | features s |"
    lines = [head, "|" + "---|" * (2 * len(cols) + 4)]
    for v in variants:
        rs = [r for r in rows if r["variant"] == v]
        if not rs:
            continue
        seeds = sorted({r.get("net_seed", 0) for r in rs})
        by_seed = [[r for r in rs if r.get("net_seed", 0) == s] for s in seeds]

        def pooled(key, group):
            accs = [a for r in group for a in r[key]]
            return np.mean(accs) if accs else np.nan

        cells = []
        for key, _ in cols:
            accs = [a for r in by_seed[0] for a in r[key]]
            wells = [sum(a >= 0.8 for r in g for a in r[key]) for g in by_seed]
            cells += [_spread([pooled(key, g) for g in by_seed]),
                      f"{np.mean(wells):.1f}/{len(accs)}" if len(seeds) > 1 else f"{wells[0]}/{len(accs)}"]
        lines.append(f"| {v} | {len(seeds)} | {_spread([pooled('probe', g) for g in by_seed])} | " + " | ".join(cells)
                     + f" | {np.mean([r['features_s'] for r in rs]):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--electrodes", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--sets", nargs="+", default=["sim"],
                   choices=("sim", "sample", "quiroga", "harris", *HARD_CASES),
                   help="ground-truth sets (sim and the hard cases shape, heavy, overlap: one simulation per seed)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="simulation seeds")
    p.add_argument("--net-seeds", type=int, nargs="+", default=[0], help="network seeds of every learned variant")
    p.add_argument("--snr-min", type=float, default=3.0)
    p.add_argument("--snr-max", type=float, default=20.0)
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is much faster when other processes keep the cores busy)")
    p.add_argument("--json", default=None, help="also write the per-unit results here")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="print the tables of earlier runs' --json files (pooled) instead of running")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("spikevae.cluster", "spikevae.features", "spikevae.detect", "spikevae.synth", "spikevae.noise_model"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.from_json:
        rows = [r for path in args.from_json for r in json.loads(Path(path).read_text())]
        args.variants = list(dict.fromkeys(r["variant"] for r in rows))
    else:
        rows = run(args)
    print("\naccuracy = mean over ground-truth units (SpikeForest, ±0.4 ms); well = accuracy >= 0.8; "
          "probe = cross-validated LDA on the true labels in that feature space (per electrode)")
    for name in dict.fromkeys(r["set"] for r in rows):
        print(f"\n{name}\n")
        print(table([r for r in rows if r["set"] == name], args.variants))
    if len({r["set"] for r in rows}) > 1:
        print("\nall sets pooled\n")
        print(table(rows, args.variants))
    hard = [r for r in rows if r["set"].rsplit("_", 1)[-1] in HARD_CASES]
    for case in HARD_CASES:
        these = [r for r in hard if r["set"].endswith(f"_{case}")]
        if len({r["set"] for r in these}) > 1:
            print(f"\nhard case '{case}', its simulations pooled\n")
            print(table(these, args.variants))
    if hard and len(hard) < len(rows):
        print("\nhard-case simulations pooled\n")
        print(table(hard, args.variants))
        print("\nother sets pooled\n")
        print(table([r for r in rows if r not in hard], args.variants))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
