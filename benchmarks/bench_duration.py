"""Do longer recordings sort as well as short ones? The same simulated units at several lengths.

A simulation's units (templates, SNRs, rates) depend on its seed, not on its length, so
``duration_s`` = 5, 30, 60 minutes with one seed are the same units recorded for longer.
For each length: mean accuracy over the ground-truth units, units found, spikes, and the
clustering's merges and splits (from its log), with and without slow amplitude drift
(``sim.drift_frac``: a sinusoid of period ``drift_period_s`` to 3 times that per unit).

    python benchmarks/bench_duration.py                                  # 16 el., 5 and 30 min, seed 0
    python benchmarks/bench_duration.py --minutes 5 30 60 --drift 0 0.2 --seeds 0 1
    python benchmarks/bench_duration.py --cache /tmp/dur   # keep the runs: a rerun re-clusters only

The clustering gets the spike times itself (``spikevae/cluster/run.py``): the refinement's
drift-aware split veto and windowed relabelling (``cluster.refine.split_min_time_overlap``,
``relabel_window_s``), and, for electrodes spanning two windows or more, clustering in linked
time windows (``cluster.windows.*``; ``--set cluster.windows.window_s=0`` clusters in one piece).

With ``--cache DIR`` each run keeps its folder in DIR; a rerun reuses its detection and
features from the run store and always redoes the clustering (so that a change to the
clustering code, which the store's hash does not see, is measured).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gt_sets  # noqa: E402


class _Counts(logging.Handler):
    """Collects the clustering's 'N merges, M splits' log line."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.merges = self.splits = 0

    def emit(self, record):
        m = re.search(r"\((\d+) merges, (\d+) splits", record.getMessage())
        if m:
            self.merges, self.splits = int(m.group(1)), int(m.group(2))


def _run(s, overrides: list[str], out_dir):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline
    from spikevae.store import RunStore

    cfg = load_config(overrides=overrides)
    if (Path(out_dir) / "run.h5").exists():
        RunStore(out_dir).drop_group(f"sorting/{cfg.features.method}")
    return run_pipeline(s.recording, cfg, out_dir, gt=s.gt, report=False)


def run_one(seed: int, minutes: float, n_el: int, drift: float, overrides: list[str], cache: str | None = None) -> dict:

    s = gt_sets.simulation(seed, n_electrodes=n_el, duration_s=60 * minutes, drift_frac=drift)
    counts = _Counts()
    logging.getLogger("spikevae.cluster.run").addHandler(counts)
    t0 = time.perf_counter()
    if cache:
        r = _run(s, overrides, Path(cache) / f"s{seed}_e{n_el}_m{minutes:g}_d{drift:g}")
    else:
        with tempfile.TemporaryDirectory() as d:
            r = _run(s, overrides, d)
    wall = time.perf_counter() - t0
    logging.getLogger("spikevae.cluster.run").removeHandler(counts)
    sc = r.scores["pca"]
    per_el = r.sorting.unit_electrode()
    found = {e: sum(1 for v in per_el.values() if v == e) for e in set(per_el.values())}
    per_unit = [(u["gt_unit"], u["electrode"], u["accuracy"], found.get(u["electrode"], 0)) for u in sc["units"]]
    return {"seed": seed, "minutes": minutes, "drift": drift, "accuracy": sc["mean_accuracy"],
            "well": sc["n_well_detected"], "n_gt": sc["n_gt_units"], "units": len(r.sorting.unit_ids),
            "spikes": r.spikes.n_spikes, "merges": counts.merges, "splits": counts.splits, "wall_s": wall,
            "per_unit": per_unit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[5, 30])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--drift", type=float, nargs="+", default=[0.0])
    ap.add_argument("--cache", metavar="DIR", help="keep each run's folder here; reruns reuse detection and features")
    ap.add_argument("--per-unit", action="store_true", help="print each ground-truth unit's accuracy per length")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("spikevae.cluster.run").setLevel(logging.INFO)
    print(f"{args.electrodes} electrodes; overrides {args.overrides or 'none'}")
    print("| seed | drift | minutes | spikes | GT units | units found | merges | splits | mean accuracy | well detected | "
          "Δ vs first length | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for drift in args.drift:
            first, rows = None, []
            for minutes in args.minutes:
                r = run_one(seed, minutes, args.electrodes, drift, args.overrides, args.cache)
                rows.append(r)
                first = r["accuracy"] if first is None else first
                print(f"| {seed} | {drift:g} | {minutes:g} | {r['spikes']} | {r['n_gt']} | {r['units']} | {r['merges']} | "
                      f"{r['splits']} | {r['accuracy']:.3f} | {r['well']} | {r['accuracy'] - first:+.3f} | "
                      f"{r['wall_s']:.0f} |", flush=True)
            if args.per_unit:
                _print_per_unit(rows)


def _print_per_unit(rows: list[dict]) -> None:
    """Ground-truth units whose accuracy changes by more than 0.02 between lengths (accuracy and
    units found on the electrode per length)."""
    print("| GT unit | electrode | " + " | ".join(f"{r['minutes']:g} min acc (units on el.)" for r in rows) + " |")
    print("|---" * (2 + len(rows)) + "|")
    for i, (g, e, _, _) in enumerate(rows[0]["per_unit"]):
        accs = [r["per_unit"][i][2] for r in rows]
        if max(accs) - min(accs) > 0.02:
            cells = " | ".join(f"{r['per_unit'][i][2]:.3f} ({r['per_unit'][i][3]})" for r in rows)
            print(f"| {g} | {e} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
