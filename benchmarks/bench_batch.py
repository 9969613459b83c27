"""Batch throughput: the same recordings sorted by each engine of ``spikevae batch``, back to back.

Simulates ``--recordings`` Utah-like recordings (``--electrodes`` x ``--seconds``, written as
HDF5 with their ground truth), then sorts them all with each engine in turn, in this one
process: ``serial`` (one after another, here), ``processes`` (a fresh process per recording,
``--workers`` at a time) and ``dask`` (a ``LocalCluster`` of ``--workers`` one-thread
processes; each recording's electrodes are Dask tasks too). Printed per engine: wall seconds,
recording seconds sorted per wall second (x real time), mean accuracy, and whether every
``sorting.npz`` is byte-identical to the serial engine's.

    python benchmarks/bench_batch.py                                   # 4 x 16 electrodes x 30 s, 2 workers
    python benchmarks/bench_batch.py --recordings 8 --electrodes 96 --seconds 60 --workers 4
    python benchmarks/bench_batch.py --scheduler tcp://10.0.0.1:8786   # an existing cluster as a 4th engine

The ratios between engines measured back to back are what to compare: absolute seconds
depend on the machine and on whatever else runs on it.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path


def simulate(root: Path, n: int, electrodes: int, seconds: float) -> list[str]:
    """``n`` recordings ``root/sess<k>/recording.h5`` (+ ground_truth.npz); reused when present."""
    from spikevae.synth import SimConfig, simulate_recording, write_ground_truth
    from spikevae.synth.export import write_recording

    paths = []
    for k in range(n):
        d = root / f"sess{k}"
        if not (d / "recording.h5").exists():
            rec, gt = simulate_recording(SimConfig(n_electrodes=electrodes, duration_s=seconds), seed=100 + k)
            write_recording(d, rec, fmt="hdf5")
            write_ground_truth(d / "ground_truth.npz", gt, rec.unit_info)
        paths.append(str(d / "recording.h5"))
    return paths


def run_engine(name: str, paths: list[str], out: Path, workers: int, scheduler: str | None, report: bool) -> dict:
    from spikevae.batch import TaskOptions, run_batch
    from spikevae.params import load_config

    engine = "dask" if name.startswith("dask") else name
    t0 = time.perf_counter()
    result = run_batch(paths, load_config(None, []), out, gt_pattern="{dir}/ground_truth.npz", engine=engine,
                       workers=workers, scheduler=scheduler, options=TaskOptions(report=report, force=True))
    wall = time.perf_counter() - t0
    rows = result.rows
    acc = [r["accuracy"] for r in rows if r.get("accuracy") is not None]
    return {"engine": name, "wall_s": wall, "x_realtime": sum(r["duration_s"] or 0 for r in rows) / wall,
            "accuracy": sum(acc) / len(acc) if acc else float("nan"), "failed": len(result.failed),
            "npz": [(Path(r["output"]) / "sorting.npz").read_bytes() if r["status"] != "failed" else b"" for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=4)
    ap.add_argument("--electrodes", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["serial", "processes", "dask"])
    ap.add_argument("--scheduler", default=None, help="also run on this existing Dask scheduler")
    ap.add_argument("--report", action="store_true", help="write quality metrics and reports too")
    ap.add_argument("--data-dir", default=None, help="keep the simulated recordings here (reused)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data_dir) if args.data_dir else Path(tmp) / "data"
        paths = simulate(data, args.recordings, args.electrodes, args.seconds)
        engines = list(args.engines) + (["dask-scheduler"] if args.scheduler else [])
        results = [run_engine(e, paths, Path(tmp) / e, args.workers, args.scheduler if e == "dask-scheduler" else None,
                              args.report) for e in engines]
    ref = next((r["npz"] for r in results if r["engine"] == "serial"), results[0]["npz"])
    print(f"\n{args.recordings} recordings x {args.electrodes} electrodes x {args.seconds:g} s, {args.workers} workers"
          f"{', report' if args.report else ''}")
    print(f"{'engine':<16}{'wall s':>9}{'x real time':>13}{'accuracy':>10}{'failed':>8}  same bytes as serial")
    for r in results:
        print(f"{r['engine']:<16}{r['wall_s']:>9.1f}{r['x_realtime']:>13.2f}{r['accuracy']:>10.3f}{r['failed']:>8}  "
              f"{'yes' if r['npz'] == ref else 'NO'}")


if __name__ == "__main__":
    main()
