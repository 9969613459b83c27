"""Tracking units across simulated sessions: learned/PCA latent matching vs the waveform-correlation baseline.

For each drift size and seed: ``simulate_sessions`` (Utah-like, N sessions, units drifting in
amplitude and shape, some appearing or vanishing), every session sorted by the default pipeline,
then ``track_sessions`` with each method, scored against the identities
(:mod:`spikevae.tracking.score`: sorted units take the identity of the ground-truth unit that
makes up most of them; precision and recall of the links between consecutive sessions). The
*oracle* rows track the true units of the detected spikes instead of a sorting, which separates
tracking errors from sorting errors.

    python benchmarks/bench_tracking.py                       # drift 0.05 0.1 0.2, seeds 0 1, 3 sessions
    python benchmarks/bench_tracking.py --drifts 0.1 --seeds 0 --electrodes 8 --duration 20   # quick
    python benchmarks/bench_tracking.py --features vae        # sort with the VAE; track in its latent space
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from spikevae.params import load_config
from spikevae.pipeline import run_pipeline
from spikevae.synth import SimConfig
from spikevae.tracking.score import score_links, sorted_identities, truth_labels
from spikevae.tracking.session import Session, load_session
from spikevae.tracking.simulate import simulate_sessions
from spikevae.tracking.track import TrackConfig, track_sessions

METHODS = ("bhattacharyya", "wasserstein", "correlation")


def sort_sessions(sims, tmp: Path, features: str, seed: int):
    """Sort every session with the default pipeline; return Sessions (sorted and oracle) and identities."""
    cfg = load_config(overrides=["cluster.n_jobs=1", "run.n_jobs=1", f"features.method={features}"])
    sorted_s, oracle_s, ids_sorted, ids_oracle = [], [], [], []
    for s in sims:
        out = tmp / f"seed{seed}_session{s.truth.session}"
        res = run_pipeline(s.recording, cfg, out, report=False)
        gt_ids = {int(g): int(i) for g, i in zip(s.truth.gt_unit, s.truth.identity)}
        sorted_s.append(load_session(out))
        ids_sorted.append(sorted_identities(res.sorting, s.ground_truth, gt_ids))
        oracle_s.append(Session(f"oracle{s.truth.session}", res.spikes, truth_labels(res.spikes, s.ground_truth),
                                sorted_s[-1].vae_model, sorted_s[-1].config))
        ids_oracle.append({g: gt_ids[g] for g in gt_ids})
    return (sorted_s, ids_sorted), (oracle_s, ids_oracle)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drifts", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--turnover", type=float, default=0.2)
    ap.add_argument("--features", default="pca", choices=("pca", "vae"))
    ap.add_argument("--model", default="first", choices=("first", "all"))
    args = ap.parse_args(argv)
    sim = SimConfig(n_electrodes=args.electrodes, duration_s=args.duration)
    totals: dict = defaultdict(lambda: np.zeros(4))  # (drift, labels, method) -> correct, judged, true, vanished ok
    vanished: dict = defaultdict(lambda: np.zeros(2))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for drift in args.drifts:
            for seed in args.seeds:
                sims = simulate_sessions(sim, args.sessions, drift, seed, turnover=args.turnover)
                both = sort_sessions(sims, Path(tmp) / f"d{drift}", args.features, seed)
                present = [set(s.truth.identity.tolist()) for s in sims]
                for labels, (sessions, ids) in zip(("sorted", "oracle"), both):
                    for method in METHODS:
                        r = track_sessions(sessions, TrackConfig(method=method, model=args.model))
                        s = score_links(r, ids, present)
                        totals[(drift, labels, method)] += [s["n_correct"], s["n_predicted"], s["n_true"], 0]
                        vanished[(drift, labels, method)] += [s["vanished_left_unmatched"], s["n_vanished"]]
                print(f"drift {drift} seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{args.sessions} sessions x {args.electrodes} electrodes x {args.duration:g} s, turnover "
          f"{args.turnover}, seeds {args.seeds}, features {args.features}, model {args.model}")
    print("| drift | labels | method | precision | recall | links correct / judged / true | vanished left unmatched |")
    print("|---|---|---|---|---|---|---|")
    for (drift, labels, method), (c, j, t, _) in sorted(totals.items()):
        v = vanished[(drift, labels, method)]
        print(f"| {drift:g} | {labels} | {method} | {c / max(j, 1):.3f} | {c / max(t, 1):.3f} | "
              f"{int(c)} / {int(j)} / {int(t)} | {int(v[0])} / {int(v[1])} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
