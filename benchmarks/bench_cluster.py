"""Clustering benchmark on Utah-like simulations: how much of the supervised probe each clusterer reaches.

For each seed: simulate (``spikevae.synth``), bandpass 300-6000 Hz, detect, compute
features (PCA on noise-scaled waveforms, pooled over electrodes; optionally whitened
PCA and the VAE), then print the detection ceiling, the supervised probe and, for every
clusterer, the sorting before refinement (initial clusterer only) and after
(refinement + overlaps), by SNR band, with the time each took.

Example::

    nice python benchmarks/bench_cluster.py --seeds 0 1 2 --electrodes 16 --duration 60 \
        --json bench_cluster.json --cache /tmp/spikevae-bench

Overrides of the cluster config apply to every run: ``--set refine.merge_sample=300``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def simulate_and_detect(seed: int, n_electrodes: int, duration_s: float, cache: Path | None):
    """Spikes, ground truth and unit SNRs of one simulation (cached as .npz when ``cache`` is given)."""
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.objects import Sorting, Spikes
    from spikevae.preprocess import PreprocessConfig, preprocess
    from spikevae.synth import SimConfig, simulate_recording

    f = cache / f"sim_s{seed}_e{n_electrodes}_d{duration_s:g}.npz" if cache else None
    if f is not None and f.exists():
        z = np.load(f)
        spikes = Spikes(z["sample_index"], z["electrode"], z["waveforms"], z["amplitude_uv"], z["noise_uv"],
                        float(z["fs"]), int(z["peak_index"]), z["channel_ids"], z["noise_snippets"], z["noise_electrode"])
        gt = Sorting(z["gt_sample_index"], z["gt_electrode"], z["gt_unit"], float(z["fs"]))
        return spikes, gt, dict(zip(z["unit_ids"].tolist(), z["unit_snr"].tolist())), 0.0
    t0 = time.perf_counter()
    cfg = SimConfig(n_electrodes=n_electrodes, duration_s=duration_s, units_min=2, units_max=3)
    rec, gt = simulate_recording(cfg, seed)
    spikes = detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig())
    info = rec.unit_info
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, sample_index=spikes.sample_index, electrode=spikes.electrode, waveforms=spikes.waveforms,
                 amplitude_uv=spikes.amplitude_uv, noise_uv=spikes.noise_uv, fs=spikes.fs, peak_index=spikes.peak_index,
                 channel_ids=spikes.channel_ids, noise_snippets=spikes.noise_snippets,
                 noise_electrode=spikes.noise_electrode, gt_sample_index=gt.sample_index, gt_electrode=gt.electrode,
                 gt_unit=gt.unit, unit_ids=info.unit_ids, unit_snr=info.unit_snr)
    return spikes, gt, dict(zip(info.unit_ids.tolist(), info.unit_snr.tolist())), time.perf_counter() - t0


def embed(spikes, kind: str, n_components: int, seed: int, noise_crossings: int | None = None):
    """Features of the spikes: ``pca``, ``pca-white`` (noise-whitened) or ``vae``, with the
    features of synthetic noise threshold crossings attached (as the pipeline does)."""
    from spikevae.detect import DetectConfig
    from spikevae.features import make_extractor
    from spikevae.features.base import embed_noise_class
    from spikevae.features.config import FeaturesConfig

    import tempfile

    cfg = FeaturesConfig(n_components=n_components, whiten=kind.endswith("white"))
    if noise_crossings is not None:
        cfg.noise_crossings = noise_crossings
    cfg.vae.device = "cpu"
    t0 = time.perf_counter()
    ex = make_extractor(kind.split("-")[0], cfg, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        if hasattr(ex, "configure_run"):
            ex.configure_run(out_dir=tmp, device="cpu", progress=False)
        emb = ex.fit(spikes).transform(spikes)
        d = DetectConfig()
        emb = embed_noise_class(ex, spikes, emb, cfg.noise_crossings, d.threshold, d.polarity, d.dead_time_ms, seed)
    return emb, time.perf_counter() - t0


def cluster_config(method: str, refined: bool, overrides: list[str]):
    from spikevae.cluster import ClusterConfig
    from spikevae.config import parse_override, set_value

    cfg = ClusterConfig(method=method)
    cfg.refine.enabled = refined
    cfg.overlap.enabled = refined
    for o in overrides:
        set_value(cfg, *parse_override(o))
    return cfg


def run_seed(seed: int, args) -> dict:
    from spikevae.cluster import cluster_spikes
    from spikevae.compare import compare_sortings
    from spikevae.diagnose import by_snr, diagnose, ground_truth_labels

    spikes, gt, snr, t_sim = simulate_and_detect(seed, args.electrodes, args.duration, args.cache)
    out = {"seed": seed, "n_spikes": spikes.n_spikes, "n_gt_units": int(len(gt.unit_ids)), "t_detect_s": t_sim,
           "features": {}}
    for kind in args.features:
        emb, t_emb = embed(spikes, kind, args.n_components, seed, args.noise_crossings)
        rows = {}
        diag = None
        for method in args.methods:
            for refined in (False, True):
                cfg = cluster_config(method, refined, args.set)
                t0 = time.perf_counter()
                sorting = cluster_spikes(spikes, emb, cfg)
                t = time.perf_counter() - t0
                if diag is None:
                    diag = diagnose(spikes, emb, sorting, gt, snr)
                    diag["unmatched"] = ground_truth_labels(spikes, gt) < 0
                sc = compare_sortings(gt, sorting)
                unmatched = diag["unmatched"]
                rows[f"{method}{'+refine' if refined else ''}"] = {
                    "mean_accuracy": sc["mean_accuracy"], "by_snr": by_snr(sc, snr), "time_s": t,
                    "unmatched_sorted": float(np.mean(sorting.unit[:spikes.n_spikes][unmatched] >= 0)),
                    "n_units": int(len(sorting.unit_ids)), "totals": sorting.params["totals"]}
        out["features"][kind] = {"t_features_s": t_emb, "ceiling": _strip(diag["ceiling"]),
                                 "n_unmatched": int(diag["unmatched"].sum()),
                                 "probe": _strip(diag["probe"]), "sortings": rows}
    return out


def _strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "units"}


def format_seed(r: dict) -> str:
    bands = ("<5", "5-8", ">=8")
    lines = [f"seed {r['seed']}: {r['n_spikes']} detections, {r['n_gt_units']} scored units "
             f"(simulate+detect {r['t_detect_s']:.1f} s)"]
    for kind, f in r["features"].items():
        probe = f["probe"]["mean_accuracy"]
        lines.append(f"  features {kind} ({f['t_features_s']:.1f} s)")
        lines.append(f"    {'':<22}{'all':>7}" + "".join(f"{b:>7}" for b in bands) + f"{'/probe':>8}{'units':>6}{'time s':>8}")
        def row(name, d, t=None, n=None):
            s = f"    {name:<22}{d['mean_accuracy']:>7.3f}" + "".join(
                f"{d['by_snr'].get(b, {}).get('mean_accuracy', float('nan')):>7.3f}" for b in bands)
            s += f"{d['mean_accuracy'] / probe:>8.0%}" if probe else ""
            s += f"{n:>6}" if n is not None else f"{'':>6}"
            return s + (f"{t:>8.1f}" if t is not None else "")
        lines.append(row("detection ceiling", f["ceiling"]))
        lines.append(row("supervised probe", f["probe"], f["probe"].get("elapsed_s")))
        for name, d in f["sortings"].items():
            lines.append(row(name, d, d["time_s"], d["n_units"]))
    return "\n".join(lines)


def summarise(results: list[dict]) -> str:
    """Mean over seeds of every row."""
    lines = ["mean over seeds"]
    for kind in results[0]["features"]:
        probe = np.mean([r["features"][kind]["probe"]["mean_accuracy"] for r in results])
        lines.append(f"  {kind}: ceiling {np.mean([r['features'][kind]['ceiling']['mean_accuracy'] for r in results]):.3f}"
                     f", probe {probe:.3f}")
        for name in results[0]["features"][kind]["sortings"]:
            acc = np.mean([r["features"][kind]["sortings"][name]["mean_accuracy"] for r in results])
            bands = {b: np.nanmean([r["features"][kind]["sortings"][name]["by_snr"][b]["mean_accuracy"] /
                                    r["features"][kind]["probe"]["by_snr"][b]["mean_accuracy"] for r in results])
                     for b in ("<5", "5-8", ">=8")}
            t = np.mean([r["features"][kind]["sortings"][name]["time_s"] for r in results])
            ns = np.mean([r["features"][kind]["sortings"][name]["unmatched_sorted"] for r in results])
            lines.append(f"    {name:<18} {acc:.3f} ({acc / probe:.0%} of probe; by band "
                         + ", ".join(f"{b} {v:.0%}" for b, v in bands.items())
                         + f"; unmatched detections sorted {ns:.0%}; {t:.1f} s)")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--electrodes", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--features", nargs="+", default=["pca"], help="pca, pca-white, vae")
    p.add_argument("--methods", nargs="+", default=["hdbscan", "isosplit", "mixture"])
    p.add_argument("--n-components", type=int, default=5)
    p.add_argument("--noise-crossings", type=int, default=None,
                   help="synthetic noise crossings per electrode for the noise class (default: the features default)")
    p.add_argument("--set", nargs="*", default=[], help="cluster config overrides, e.g. refine.merge_sample=300")
    p.add_argument("--cache", type=Path, default=None, help="folder to cache simulated detections")
    p.add_argument("--json", type=Path, default=None, help="write all results as JSON")
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, args))
        print(format_seed(results[-1]), flush=True)
    print(summarise(results))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=2, default=float))


if __name__ == "__main__":
    main()
