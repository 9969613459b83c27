"""Artefact rejection: what it removes, and what it costs where there are no artefacts.

1. Utah-like simulations without artefacts: mean accuracy with rejection on and off (the
   cost where there is nothing to reject), and the events it finds (false alarms).
2. The same simulations with artefacts injected (``sim.artefact_rate_hz``): events found
   against injected (recall within 1 ms), accuracy with rejection on and off, and the
   units whose spikes are mostly at injected artefacts ("artefact units").
3. The real 96-channel Blackrock stimulation session in ``../shared/data`` (no ground
   truth): units, with amplitudes, before and after.

    python benchmarks/bench_artefacts.py                  # seeds 0 1 2, 16 electrodes x 60 s
    python benchmarks/bench_artefacts.py --seeds 0 --duration 30 --rate 2
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

NEV = gt_sets.SHARED / "blackrock_limblab_utah" / "Han_20170516.nev"


def sort(source, enabled: bool, gt=None):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    cfg = load_config(overrides=[f"artefact.enabled={'true' if enabled else 'false'}"])
    with tempfile.TemporaryDirectory() as d:
        return run_pipeline(source, cfg, d, gt=gt, report=False)


def artefact_units(result, onsets: np.ndarray, tol: int) -> int:
    """Units most of whose spikes lie within ``tol`` samples after an injected artefact onset."""
    s = result.sorting
    n = 0
    for u in s.unit_ids:
        t = s.sample_index[s.unit == u]
        j = np.searchsorted(onsets, t, "right") - 1
        near = (j >= 0) & (t - onsets[np.maximum(j, 0)] <= tol)
        n += int(near.mean() > 0.5)
    return n


def event_recall(art, onsets: np.ndarray, tol: int) -> float:
    if onsets.size == 0:
        return float("nan")
    starts = np.sort(art.start[art.kind == 0])
    if starts.size == 0:
        return 0.0
    j = np.clip(np.searchsorted(starts, onsets), 1, starts.size - 1)
    d = np.minimum(np.abs(starts[j] - onsets), np.abs(starts[j - 1] - onsets))
    return float((d <= tol).mean())


def simulations(seeds, duration, rate, n_el) -> None:
    print(f"\n## Simulations: {n_el} electrodes x {duration:g} s, seeds {seeds}")
    print("| set | artefacts injected | events found | recall | false events | accuracy off | accuracy on "
          "| artefact units off | on |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = {"clean": [], "art": []}
    for seed in seeds:
        for label, r in (("clean", 0.0), ("art", rate)):
            s = gt_sets.simulation(seed, n_electrodes=n_el, duration_s=duration, artefact_rate_hz=r)
            onsets = s.recording.unit_info.artefact_sample_index
            tol = int(1e-3 * s.recording.fs)
            off, on = sort(s.recording, False, s.gt), sort(s.recording, True, s.gt)
            acc_off, acc_on = off.scores["pca"]["mean_accuracy"], on.scores["pca"]["mean_accuracy"]
            art = on.artefacts
            found = int((art.kind == 0).sum())
            rec = event_recall(art, onsets, tol)
            false = found if onsets.size == 0 else int(round(found - rec * onsets.size))
            au_off, au_on = (artefact_units(off, onsets, 3 * tol), artefact_units(on, onsets, 3 * tol)) \
                if onsets.size else (0, 0)
            rows[label].append((acc_off, acc_on))
            print(f"| {s.name}{' +art' if r else ''} | {onsets.size} | {found} | {rec:.3f} | {max(false, 0)} | "
                  f"{acc_off:.3f} | {acc_on:.3f} | {au_off} | {au_on} |")
    for label, v in rows.items():
        a = np.array(v)
        print(f"mean accuracy, {'no artefacts' if label == 'clean' else 'artefacts injected'}: off {a[:, 0].mean():.4f}, "
              f"on {a[:, 1].mean():.4f} (on - off {a[:, 1].mean() - a[:, 0].mean():+.4f})")


def real_nev() -> None:
    if not NEV.exists():
        print(f"\n(skipped the real NEV: {NEV} is absent)")
        return
    print(f"\n## Real stimulation session: {NEV.name}")
    for enabled in (False, True):
        r = sort(str(NEV), enabled)
        s = r.sorting
        amp = {}
        key = {(int(t), int(e)): i for i, (t, e) in enumerate(zip(r.spikes.sample_index, r.spikes.electrode))}
        for u in s.unit_ids:
            sel = s.unit == u
            idx = [key[k] for k in zip(s.sample_index[sel].tolist(), s.electrode[sel].tolist()) if k in key]
            amp[int(u)] = (str(r.spikes.channel_ids[s.electrode[sel][0]]), int(sel.sum()),
                           float(np.median(np.abs(r.spikes.amplitude_uv[idx]))))
        a = r.artefacts.summary()
        print(f"rejection {'on ' if enabled else 'off'}: {r.spikes.n_spikes} spikes clustered, {len(s.unit_ids)} units "
              + "; ".join(f"unit {u} on channel {c}: {n} spikes, median |peak| {m:.0f} µV" for u, (c, n, m) in amp.items())
              + (f" | {a['n_events']} events removed {a['n_spikes_removed']} of {a['n_spikes_before']} spikes, "
                 f"artefact electrodes {a['excluded_electrodes']}" if enabled else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--rate", type=float, default=2.0, help="injected artefacts per second")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    real_nev()
    simulations(args.seeds, args.duration, args.rate, args.electrodes)


if __name__ == "__main__":
    main()
