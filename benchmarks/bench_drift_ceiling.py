"""What do the features allow on long, drifting recordings? Ceilings against the sorting, per length.

``bench_duration.py`` shows that with slow amplitude drift the mean accuracy falls as the
recording grows (same units, 5 / 30 / 60 minutes). This script tells whether the loss is the
clustering's or lies in the data: for each length it scores, on the same detected spikes,

* **ceiling**: every detection labelled with the ground-truth unit it matches (a perfect clustering);
* **probe, one piece**: a linear discriminant per electrode trained on those labels over the whole
  recording (5-fold cross-validation): what one fixed partition of the feature space allows;
* **probe, windows**: the same per electrode and ``--window-s`` time window (the clustering's
  linked windows, ``cluster.windows.window_s``): what per-window clusters allow when each
  window's units are linked perfectly;
* **sorting**: the pipeline's sorting;
* **sorting, per window**: the same sorting scored in each window on its own (each ground-truth
  unit matched to its best sorted unit of that window, accuracies averaged over windows): the gap
  to **sorting** is what the links between windows lose (a unit that changes label from one
  window to the next);

and, per ground-truth unit, where the sorting's errors go: ``fn_split`` (the unit's spikes in
other sorted units), ``fn_unsorted`` (left unsorted or not detected), ``fp`` (other spikes in
its best-matching unit).

    python benchmarks/bench_drift_ceiling.py --cache /tmp/dur          # reuses bench_duration's runs
    python benchmarks/bench_drift_ceiling.py --minutes 5 60 --drift 0 0.2 --seeds 0 1
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gt_sets  # noqa: E402


def _run(s, out_dir: Path, overrides: list[str]):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    return run_pipeline(s.recording, load_config(overrides=overrides), out_dir, gt=s.gt, report=False)


def error_split(gt, sorting, scores: dict, tol: int) -> dict:
    """Sums over ground-truth units of tp, fn (into other units / unsorted or undetected) and fp."""
    from spikevae.compare import match_times

    tot = {"tp": 0, "fn_split": 0, "fn_unsorted": 0, "fp": 0}
    for u in scores["units"]:
        g = gt.sample_index[gt.unit == u["gt_unit"]]
        sel = sorting.electrode == u["electrode"]
        t, lab = sorting.sample_index[sel], sorting.unit[sel]
        order = np.argsort(t, kind="stable")
        t, lab = t[order], lab[order]
        gi, si = match_times(np.sort(g), t, tol)
        hit = lab[si]
        tp = int((hit == u["sorted_unit"]).sum()) if u["sorted_unit"] >= 0 else 0
        tot["tp"] += tp
        tot["fn_split"] += int(((hit >= 0) & (hit != u["sorted_unit"])).sum())
        tot["fn_unsorted"] += int(g.size - tp - ((hit >= 0) & (hit != u["sorted_unit"])).sum())
        tot["fp"] += int(u["fp"])
    return tot


def diagnose_length(seed: int, minutes: float, n_el: int, drift: float, window_s: float, cache: str | None,
                    overrides: list[str]) -> dict:
    from spikevae.compare import compare_sortings
    from spikevae.diagnose import ground_truth_labels, supervised_probe
    from spikevae.objects import Sorting
    from spikevae.store import RunStore

    s = gt_sets.simulation(seed, n_electrodes=n_el, duration_s=60 * minutes, drift_frac=drift)
    if cache:
        out = Path(cache) / f"s{seed}_e{n_el}_m{minutes:g}_d{drift:g}"
        if not (out / "sorting.npz").exists():
            _run(s, out, overrides)
        store = RunStore(out)
        spikes, emb, sorting = store.load_spikes(), store.load_embedding("pca"), store.load_sorting("pca")
    else:
        with tempfile.TemporaryDirectory() as d:
            r = _run(s, Path(d), overrides).in_memory()
            spikes, emb, sorting = r.spikes, r.embeddings["pca"], r.sorting
    gt = s.gt
    labels = ground_truth_labels(spikes, gt)
    x = np.asarray(emb.features)
    window = (spikes.sample_index // int(round(window_s * spikes.fs))).astype(np.int64)

    def score(unit):
        return compare_sortings(gt, Sorting(spikes.sample_index, spikes.electrode, unit, spikes.fs))

    win_scores = []
    for w in np.unique(window):
        lo, hi = w * int(round(window_s * spikes.fs)), (w + 1) * int(round(window_s * spikes.fs))
        gsel = (gt.sample_index >= lo) & (gt.sample_index < hi)
        ssel = (sorting.sample_index >= lo) & (sorting.sample_index < hi)
        sc = compare_sortings(Sorting(gt.sample_index[gsel], gt.electrode[gsel], gt.unit[gsel], gt.fs),
                              Sorting(sorting.sample_index[ssel], sorting.electrode[ssel], sorting.unit[ssel], gt.fs))
        win_scores.append((sc["mean_accuracy"], sc["n_gt_units"]))
    per_window = float(np.average([a for a, _ in win_scores], weights=[n for _, n in win_scores]))
    rows = {"ceiling": score(labels),
            "probe_piece": score(supervised_probe(x, spikes.electrode, labels)),
            "probe_windows": score(supervised_probe(x, spikes.electrode, labels, window=window)),
            "sorting": compare_sortings(gt, sorting)}
    tol = int(round(0.4e-3 * spikes.fs))
    acc = {k: v["mean_accuracy"] for k, v in rows.items()} | {"sorting_per_window": per_window}
    return {"seed": seed, "minutes": minutes, "drift": drift, "acc": acc,
            "errors": error_split(gt, sorting, rows["sorting"], tol)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[5, 30, 60])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--drift", type=float, nargs="+", default=[0.2])
    ap.add_argument("--window-s", type=float, default=600.0, help="probe windows (the clustering's window_s)")
    ap.add_argument("--cache", metavar="DIR", help="run folders (bench_duration's --cache layout); made when missing")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print("| seed | drift | minutes | ceiling | probe, one piece | probe, windows | sorting | sorting ÷ probe (windows) "
          "| sorting, per window | tp | fn into other units | fn unsorted/undetected | fp |")
    print("|---" * 13 + "|")
    means: dict = {}
    for drift in args.drift:
        for seed in args.seeds:
            for minutes in args.minutes:
                r = diagnose_length(seed, minutes, args.electrodes, drift, args.window_s, args.cache, args.overrides)
                a, e = r["acc"], r["errors"]
                means.setdefault((drift, minutes), []).append(a)
                print(f"| {seed} | {drift:g} | {minutes:g} | {a['ceiling']:.3f} | {a['probe_piece']:.3f} | "
                      f"{a['probe_windows']:.3f} | {a['sorting']:.3f} | {a['sorting'] / a['probe_windows']:.3f} | "
                      f"{a['sorting_per_window']:.3f} | {e['tp']} | {e['fn_split']} | {e['fn_unsorted']} | {e['fp']} |", flush=True)
    print("\nmeans over seeds")
    print("| drift | minutes | ceiling | probe, one piece | probe, windows | sorting | sorting, per window |")
    print("|---|---|---|---|---|---|---|")
    for (drift, minutes), accs in means.items():
        m = {k: float(np.mean([a[k] for a in accs])) for k in accs[0]}
        print(f"| {drift:g} | {minutes:g} | {m['ceiling']:.3f} | {m['probe_piece']:.3f} | {m['probe_windows']:.3f} | "
              f"{m['sorting']:.3f} | {m['sorting_per_window']:.3f} |")


if __name__ == "__main__":
    main()
