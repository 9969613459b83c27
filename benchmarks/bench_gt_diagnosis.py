"""Diagnosis of the default pipeline on every ground-truth set, PCA and VAE, before and after refinement.

For each set (``gt_sets``: sample_data, Utah-like simulations, Quiroga 2004, Harris 2000)
the pipeline runs once with PCA and VAE features on the same spikes; then, for each
feature space, it prints the detection ceiling, the supervised probe and the sorting
before refinement (initial clusterer only) and after (refinement + overlaps, the
default), overall and by SNR band, with the time each clustering took, and the fraction
of detections matching no ground-truth spike that the sorting put in a unit.

    python benchmarks/bench_gt_diagnosis.py                       # all sets, seeds 0 1 2
    python benchmarks/bench_gt_diagnosis.py --sets sample quiroga --methods pca
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gt_sets  # noqa: E402


def diagnose_set(s, methods: list[str], overrides: list[str]) -> list[dict]:
    import dataclasses

    from spikevae.cluster import cluster_spikes
    from spikevae.compare import estimate_offset
    from spikevae.diagnose import diagnose
    from spikevae.objects import Sorting
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    cfg = load_config(overrides=[f"features.method={methods[0]}", f"features.also={json.dumps(methods[1:])}"]
                      + s.overrides + overrides)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run_pipeline(s.recording, cfg, tmp, report=False)
        t_run = time.perf_counter() - t0
        r = r.in_memory()  # the waveforms and features, before their run folder goes
    off = estimate_offset(s.gt, r.sorting) if s.estimate_offset else 0
    gt = Sorting(s.gt.sample_index + off, s.gt.electrode, s.gt.unit, s.gt.fs)
    rows = []
    for m in methods:
        emb = r.embeddings[m]
        before_cfg = dataclasses.replace(cfg.cluster, refine=dataclasses.replace(cfg.cluster.refine, enabled=False),
                                         overlap=dataclasses.replace(cfg.cluster.overlap, enabled=False))
        t0 = time.perf_counter()
        before = cluster_spikes(r.spikes, emb, before_cfg)
        t_before = time.perf_counter() - t0
        t0 = time.perf_counter()
        after = cluster_spikes(r.spikes, emb, cfg.cluster)
        t_after = time.perf_counter() - t0
        d_before = diagnose(r.spikes, emb, before, gt, s.unit_snr)
        d_after = diagnose(r.spikes, emb, after, gt, s.unit_snr)
        rows.append({"set": s.name, "features": m, "n_spikes": r.spikes.n_spikes, "offset": off, "t_pipeline_s": t_run,
                     "ceiling": d_after["ceiling"], "probe": d_after["probe"], "before": d_before["sorting"],
                     "after": d_after["sorting"], "t_before_s": t_before, "t_after_s": t_after,
                     "unmatched_sorted_before": d_before["unmatched_sorted_fraction"],
                     "unmatched_sorted_after": d_after["unmatched_sorted_fraction"]})
    return rows


def format_rows(rows: list[dict]) -> str:
    bands = ("<5", "5-8", ">=8")

    def cell(d):
        acc = f"{d['mean_accuracy']:.3f}"
        b = d.get("by_snr") or {}
        return acc + ("  (" + " | ".join(f"{b[k]['mean_accuracy']:.2f}" for k in bands if k in b) + ")" if b else "")

    out = [f"{'set':<20} {'feat':<4} {'ceiling':<28} {'probe':<28} {'before refinement':<28} "
           f"{'after refinement':<28} {'time s':>11} {'unmatched sorted':>17}"]
    for r in rows:
        out.append(f"{r['set']:<20} {r['features']:<4} {cell(r['ceiling']):<28} {cell(r['probe']):<28} "
                   f"{cell(r['before']):<28} {cell(r['after']):<28} {r['t_before_s']:>5.1f}/{r['t_after_s']:<5.1f} "
                   f"{r['unmatched_sorted_before']:>7.0%} -> {r['unmatched_sorted_after']:.0%}")
    return "\n".join(out) + "\n(cells: mean accuracy (SNR < 5 | 5-8 | >= 8) where the ground truth gives SNRs)"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="*", default=[], help="only sets whose name starts with one of these")
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="simulation seeds")
    p.add_argument("--methods", nargs="+", default=["pca", "vae"])
    p.add_argument("--set", dest="overrides", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    sets = gt_sets.all_sets(tuple(args.seeds))
    if args.sets:
        sets = [s for s in sets if any(s.name.startswith(x) for x in args.sets)]
    rows = []
    for s in sets:
        new = diagnose_set(s, args.methods, args.overrides)
        rows += new
        print("\n".join(format_rows(new).splitlines()[1:-1]), flush=True)
    print()
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
