"""Throughput and memory of every pipeline stage on simulated 96-electrode Utah recordings.

For each length in ``--minutes``, a child process simulates the recording with
:mod:`spikevae.synth` and writes it as a Blackrock ``.ns5`` file with its ground truth
(so reading goes through neo, as for a user's file); a second, fresh child process then
runs the default pipeline on it (``run_pipeline``, report included) while a sampler thread
records the resident memory of the run and of its worker processes every 50 ms.
Each run is its own process, so no run inherits the peak memory of another or of the
simulation.

Printed per stage (``read``, ``detect`` = band-pass + detection, ``features_<m>``,
``cluster_<m>``, ``outputs``, ``report`` = quality metrics + HTML report): seconds, x real
time (recording seconds per wall-clock second), CPU seconds (user + system, of the run and
of its worker processes: on a machine shared with other work, wall time stretches with the
load, CPU time much less), peak RSS of the main process during the stage, and peak RSS of the
main process plus its worker processes (detection chunks, clustering and report figures run in
workers), and the anonymous part of both (what the processes hold themselves: RSS also counts file
pages mapped into them, such as shared libraries and the run's memory-mapped per-spike columns,
:mod:`spikevae.execution.spill`, which the kernel drops when memory is short); then the whole run,
and mean accuracy against the ground truth.

``--memory-limit MB`` runs each pipeline in a Linux memory cgroup of that size (root), as a batch
system limits a job (SLURM's ``--mem``): the run must complete within it, page cache included.

    python benchmarks/bench_throughput.py                      # 96 electrodes x 2 min, PCA (a few minutes)
    python benchmarks/bench_throughput.py --minutes 10 60      # the issue's lengths
    python benchmarks/bench_throughput.py --vae                # VAE features as well (a second run per length)
    python benchmarks/bench_throughput.py --data-dir /tmp/sims --json out.json   # keep the recordings, save rows
    python benchmarks/bench_throughput.py --profile /tmp/prof   # where the time goes (pyinstrument, serial run)
    python benchmarks/bench_throughput.py --minutes 120 --memory-limit 900   # sorts within 900 MB, workers included

``--data-dir`` keeps the simulated recordings between invocations (they are reused when
present), so before/after comparisons read the same file. Numbers depend on the machine
and on whatever else runs on it: compare runs made back to back.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SAMPLE_S = 0.05  # memory sampling period


# ---- child processes ---------------------------------------------------------------------------------
def simulate_child(folder: Path, minutes: float, electrodes: int, seed: int) -> None:
    """Simulate ``electrodes`` x ``minutes`` and write ``recording.ns5`` + ``ground_truth.npz`` into ``folder``."""
    from spikevae.synth import SimConfig, simulate_recording
    from spikevae.synth.export import write_simulation

    cfg = SimConfig(n_electrodes=electrodes, duration_s=60.0 * minutes)
    rec, gt = simulate_recording(cfg, seed=seed)
    write_simulation(folder, rec, gt, cfg, seed, fmt="nsx")


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished, reaped worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class _StageClock(logging.Handler):
    """Wall-clock start and CPU time at the start of each stage, from the pipeline's ``stage NAME ...`` log line."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.starts: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("stage ") and msg.endswith(" ..."):
            self.starts[msg[6:-4]] = time.perf_counter()
            self.cpu[msg[6:-4]] = cpu_seconds()

    def cpu_per_stage(self, names: list[str], cpu_end: float) -> dict[str, float]:
        """CPU seconds from each stage's start to the next one's (the last: to ``cpu_end``). Worker
        pools are shut down inside their stage, so their CPU time lands in the stage that ran them."""
        known = [n for n in names if n in self.cpu]
        bounds = [self.cpu[n] for n in known] + [cpu_end]
        return {n: bounds[i + 1] - bounds[i] for i, n in enumerate(known)}


class _MemorySampler(threading.Thread):
    """Samples (time, RSS of this process, RSS of this process + all its descendants, and the anonymous
    part of each), in MB.

    Anonymous memory is what the process itself holds (heap, arrays); the rest of the RSS is file pages
    mapped into it (shared libraries, memory-mapped columns of the run store), which the kernel drops
    under memory pressure and reads again when used. A worker's anonymous pages that it still shares,
    copy-on-write, with the process that forked it are counted in both, so the tree's figure is an
    upper bound."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.samples: list[tuple[float, float, float]] = []
        self.stop_event = threading.Event()

    def run(self):
        import psutil

        while not self.stop_event.is_set():
            try:
                m = self.proc.memory_info()
                own, own_anon = m.rss, m.rss - getattr(m, "shared", 0)
                total, total_anon = own, own_anon
                for c in self.proc.children(recursive=True):
                    try:
                        cm = c.memory_info()
                        total += cm.rss
                        total_anon += cm.rss - getattr(cm, "shared", 0)
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            self.samples.append((time.perf_counter(), own / 2**20, total / 2**20, own_anon / 2**20,
                                 total_anon / 2**20))
            self.stop_event.wait(SAMPLE_S)

    def peak(self, t0: float, t1: float) -> tuple[float, float, float, float]:
        """Peak RSS, tree RSS, anonymous and tree anonymous memory between ``t0`` and ``t1``."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if not inside:  # a stage shorter than one sampling period: the nearest sample before it ends
            before = [s for s in self.samples if s[0] <= t1] or self.samples[:1]
            inside = before[-1:]
        return tuple(max(s[i] for s in inside) for i in range(1, 5))


def run_child(folder: Path, methods: list[str], n_jobs: int, overrides: list[str], result_path: Path,
              profile: str = "") -> None:
    """Run the pipeline on ``folder``/recording.ns5 and write per-stage figures as JSON to ``result_path``;
    with ``profile``, under pyinstrument (write its text tree to that path, and HTML beside it)."""
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    clock = _StageClock()
    plog = logging.getLogger("spikevae.pipeline")
    plog.addHandler(clock)
    plog.setLevel(logging.INFO)
    for h in logging.getLogger().handlers:  # the root handler still prints only warnings
        h.setLevel(logging.WARNING)
    sampler = _MemorySampler()
    sampler.start()
    cfg = load_config(overrides=[f"features.method={methods[0]}", f"features.also={json.dumps(methods[1:])}",
                                 f"run.n_jobs={n_jobs}", *overrides])
    sim = json.loads((folder / "simulation.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.005)
            profiler.start()
        t0, cpu_start = time.perf_counter(), cpu_seconds()
        r = run_pipeline(folder / "recording.ns5", cfg, Path(tmp) / "out", gt=folder / "ground_truth.npz",
                         report=True)
        total = time.perf_counter() - t0
        cpu_end = cpu_seconds()
        if profiler is not None:
            profiler.stop()
            Path(profile).write_text(profiler.output_text(unicode=False, color=False))
            Path(profile).with_suffix(".html").write_text(profiler.output_html())
    sampler.stop_event.set()
    sampler.join()
    stages = []
    cpu = clock.cpu_per_stage(list(r.timings), cpu_end)
    for name, t in r.timings.items():
        start = clock.starts.get(name, t0)
        own, tree, anon, tree_anon = sampler.peak(start, start + t["seconds"])
        stages.append({"stage": name, "seconds": t["seconds"], "cpu_s": cpu.get(name, float("nan")),
                       "peak_rss_mb": own, "peak_rss_tree_mb": tree, "peak_anon_mb": anon,
                       "peak_anon_tree_mb": tree_anon})
    own, tree, anon, tree_anon = sampler.peak(t0, t0 + total)
    result = {"duration_s": sim["duration_s"], "n_electrodes": sim["n_electrodes"], "methods": methods,
              "n_jobs": n_jobs, "n_spikes": int(r.spikes.n_spikes), "n_units": int(len(r.sorting.unit_ids)),
              "total_s": total, "cpu_s": cpu_end - cpu_start, "peak_rss_mb": own, "peak_rss_tree_mb": tree,
              "peak_anon_mb": anon, "peak_anon_tree_mb": tree_anon, "stages": stages,
              "accuracy": {m: s["mean_accuracy"] for m, s in r.scores.items()},
              "unit_accuracy": {m: {str(u["gt_unit"]): u["accuracy"] for u in s["units"]} for m, s in r.scores.items()}}
    result_path.write_text(json.dumps(result))


# ---- driver ------------------------------------------------------------------------------------------
def _child(args: list[str], cgroup: "_MemoryCgroup | None" = None) -> None:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    if cgroup is None:
        subprocess.run(cmd, check=True)
        return
    proc = subprocess.run(cmd, preexec_fn=cgroup.enter)
    if proc.returncode:
        raise SystemExit(f"the run failed (exit status {proc.returncode}{', killed: out of memory' if proc.returncode == -9 else ''}) "
                         f"under a memory limit of {cgroup.limit_mb:g} MB; memory limit hits {cgroup.failures()}")


class _MemoryCgroup:
    """A Linux memory cgroup (v1 or v2) limiting a child process and its workers to ``limit_mb``, as a
    batch system does (SLURM's ``--mem`` is a memory cgroup): the kernel reclaims file pages (page cache,
    memory-mapped files) to stay under it and kills the run when what it holds itself does not fit.
    Needs root (or a delegated cgroup)."""

    def __init__(self, limit_mb: float):
        self.limit_mb = limit_mb
        root = Path("/sys/fs/cgroup")
        name = f"spikevae_bench_{os.getpid()}"
        if (root / "memory").is_dir():  # v1
            self.path, self.v2 = root / "memory" / name, False
        elif (root / "cgroup.controllers").exists():
            self.path, self.v2 = root / name, True
        else:
            raise SystemExit("--memory-limit needs Linux memory cgroups (/sys/fs/cgroup)")
        try:
            self.path.mkdir()
            limit = str(int(limit_mb * 2**20))
            if self.v2:
                (self.path / "memory.max").write_text(limit)
                if (self.path / "memory.swap.max").exists():
                    (self.path / "memory.swap.max").write_text("0")
            else:
                (self.path / "memory.limit_in_bytes").write_text(limit)
        except OSError as exc:
            raise SystemExit(f"--memory-limit: could not make the cgroup {self.path} ({exc.strerror}); run as root "
                             "or in a delegated cgroup") from None

    def enter(self) -> None:  # in the child, before it runs Python
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self) -> float:
        f = self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")
        return int(f.read_text()) / 2**20 if f.exists() else float("nan")

    def failures(self) -> str:
        f = self.path / ("memory.events" if self.v2 else "memory.failcnt")
        return " ".join(f.read_text().split()) if f.exists() else "?"

    def remove(self) -> None:
        for _ in range(50):  # a killed run's workers may take a moment to leave the group
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)


def format_result(res: dict) -> str:
    dur = res["duration_s"]
    lines = [f"\n{res['n_electrodes']} electrodes x {dur / 60:g} min, features {'+'.join(res['methods'])}, "
             f"n_jobs {res['n_jobs']}: {res['n_spikes']} spikes, {res['n_units']} units",
             f"{'stage':<16} {'seconds':>8} {'x real time':>12} {'CPU s':>8} {'peak RSS MB':>12} {'+ workers MB':>13} "
             f"{'anon MB':>8} {'+ workers':>10}"]
    total = {k: res.get(k, float("nan")) for k in ("peak_rss_mb", "peak_rss_tree_mb", "peak_anon_mb", "peak_anon_tree_mb")}
    for s in res["stages"] + [{"stage": "total", "seconds": res["total_s"], "cpu_s": res["cpu_s"], **total}]:
        xrt = dur / s["seconds"] if s["seconds"] > 0 else float("inf")
        lines.append(f"{s['stage']:<16} {s['seconds']:>8.2f} {xrt:>12.1f} {s['cpu_s']:>8.1f} {s['peak_rss_mb']:>12.0f} "
                     f"{s['peak_rss_tree_mb']:>13.0f} {s.get('peak_anon_mb', float('nan')):>8.0f} "
                     f"{s.get('peak_anon_tree_mb', float('nan')):>10.0f}")
    lines.append("mean accuracy: " + ", ".join(f"{m} {a:.3f}" for m, a in res["accuracy"].items()))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[2.0], help="recording lengths (default 2)")
    ap.add_argument("--electrodes", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0, help="simulation seed")
    ap.add_argument("--vae", action="store_true", help="also run with VAE features (features.method=vae)")
    ap.add_argument("--n-jobs", type=int, default=2, help="run.n_jobs (default 2, the pipeline's default)")
    ap.add_argument("--data-dir", default="", help="keep (and reuse) the simulated recordings here")
    ap.add_argument("--json", default="", help="write every result row to this JSON file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="configuration override k=v")
    ap.add_argument("--memory-limit", type=float, default=0.0,
                    help="run each pipeline in a Linux memory cgroup of this many MB (root; as SLURM's --mem): the "
                    "run must complete within it, page cache and memory-mapped files included (they are reclaimed)")
    ap.add_argument("--profile", default="", help="profile each run with pyinstrument (pip install pyinstrument) "
                    "and write its call tree to PREFIX_<minutes>min_<method>.txt (and .html); runs serially "
                    "(run.n_jobs=1, cluster.n_jobs=1) so that every stage is in the profiled process")
    args = ap.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.data_dir) if args.data_dir else Path(tmp)
        for minutes in args.minutes:
            folder = base / f"sim_{args.electrodes}el_{minutes:g}min_seed{args.seed}"
            if not (folder / "simulation.json").exists():
                t0 = time.perf_counter()
                _child(["--_simulate", str(folder), str(minutes), str(args.electrodes), str(args.seed)])
                print(f"simulated {folder.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            for methods in (["pca"], ["vae"]) if args.vae else (["pca"],):
                out = Path(tmp) / f"result_{minutes:g}_{methods[0]}.json"
                prof = f"{args.profile}_{minutes:g}min_{methods[0]}.txt" if args.profile else ""
                n_jobs, overrides = args.n_jobs, args.overrides
                if prof:  # every stage in the profiled process
                    n_jobs, overrides = 1, [*args.overrides, "cluster.n_jobs=1"]
                cgroup = _MemoryCgroup(args.memory_limit) if args.memory_limit else None
                try:
                    _child(["--_run", str(folder), ",".join(methods), str(n_jobs), str(out), json.dumps(overrides),
                            prof], cgroup)
                    limit_note = (f"\ncompleted under a memory limit of {args.memory_limit:g} MB (run and workers, "
                                  f"page cache included): peak charged {cgroup.peak_mb():.0f} MB, limit hits "
                                  f"{cgroup.failures()}") if cgroup else ""
                finally:
                    if cgroup:
                        cgroup.remove()
                if prof:
                    print(f"profile: {prof}")
                res = json.loads(out.read_text())
                if cgroup:
                    res["memory_limit_mb"] = args.memory_limit
                print(format_result(res) + limit_note, flush=True)
                results.append(res)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_simulate":
        logging.basicConfig(level=logging.WARNING)
        simulate_child(Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--_run":
        logging.basicConfig(level=logging.WARNING)
        run_child(Path(sys.argv[2]), sys.argv[3].split(","), int(sys.argv[4]), json.loads(sys.argv[6]),
                  Path(sys.argv[5]), sys.argv[7])
    else:
        main()
