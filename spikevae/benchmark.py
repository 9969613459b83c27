"""Accuracy against SNR: simulate recordings at several SNR levels, sort each with every feature
method (PCA, VAE) on the same spikes, score against the ground truth, and write a table and a plot.

Driven by a TOML file (``pipelines/snr_benchmark.toml``)::

    [benchmark]
    snr_levels = [3.0, 5.0, 8.0, 12.0]   # all scored units of a recording at this SNR (±10 %)
    seeds = [0]
    [sim]      # any SimConfig key (n_electrodes, duration_s, units_min, ...)
    [pipeline] # any pipeline key (features.method, features.also, cluster.method, ...)

Outputs in the folder: ``table.csv`` (one row per level, seed and method), ``table.md``,
``accuracy_vs_snr.png`` and one run folder per recording.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

import numpy as np

from .config import apply_dict, load_toml, param
from .errors import SpikevaeConfigError

log = logging.getLogger(__name__)


@dataclass
class BenchmarkConfig:
    snr_levels: list = param([3.0, 5.0, 8.0, 12.0], "SNR of every scored unit, one recording per level (±snr_spread)")
    snr_spread: float = param(0.1, "relative spread of the SNR around each level", low=0.0, high=0.9)
    seeds: list = param([0], "simulation seeds (one recording per level and seed)")


def load_benchmark(path):
    """(BenchmarkConfig, SimConfig, PipelineConfig) of a benchmark TOML file."""
    from .params import load_config
    from .synth import SimConfig

    d = load_toml(path)
    unknown = set(d) - {"benchmark", "sim", "pipeline"}
    if unknown:
        raise SpikevaeConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; "
                                  "use [benchmark], [sim] and [pipeline]")
    bench, sim = BenchmarkConfig(), SimConfig()
    apply_dict(bench, d.get("benchmark", {}), "benchmark.")
    apply_dict(sim, d.get("sim", {}), "sim.")
    return bench, sim, load_config(base=d.get("pipeline", {}))


def run_benchmark(path, out_dir, progress: bool = False) -> list[dict]:
    """Run the benchmark described by ``path``; write table and plot into ``out_dir``."""
    from .compare import compare_sortings
    from .pipeline import feature_methods, run_pipeline, write_csv
    from .store import check_writable, write_text
    from .synth import simulate_recording

    bench, sim, cfg = load_benchmark(path)
    out = check_writable(out_dir)
    rows = []
    for level in bench.snr_levels:
        for seed in bench.seeds:
            s = dataclasses.replace(sim, snr_min=level * (1 - bench.snr_spread), snr_max=level * (1 + bench.snr_spread))
            rec, gt = simulate_recording(s, seed=int(seed))
            r = run_pipeline(rec, cfg, out / f"snr{level:g}_seed{seed}", gt=gt, progress=progress, report=False)
            snr = dict(zip(rec.unit_info.unit_ids.tolist(), rec.unit_info.unit_snr.tolist()))
            for m in feature_methods(cfg):
                sc = compare_sortings(gt, r.sortings[m])
                rows.append({"snr_level": level, "seed": int(seed), "method": m,
                             "realised_snr_mean": round(float(np.mean(list(snr.values()))), 2),
                             "n_gt_units": sc["n_gt_units"], "mean_accuracy": round(sc["mean_accuracy"], 4),
                             "n_well_detected": sc["n_well_detected"], "n_sorted_units": sc["n_sorted_units"],
                             "seconds": round(sum(t["seconds"] for t in r.timings.values()), 2)})
                log.info("SNR %g seed %s %s: mean accuracy %.3f", level, seed, m, sc["mean_accuracy"])
    write_csv(out / "table.csv", rows)
    write_text(out / "table.md", markdown_table(rows))
    write_text(out / "benchmark.json", json.dumps({"rows": rows, "benchmark": dataclasses.asdict(bench),
                                                  "sim": dataclasses.asdict(sim)}, indent=2))
    plot_accuracy_vs_snr(rows, out / "accuracy_vs_snr.png")
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Mean accuracy and well-detected units per SNR level (rows) and method (columns)."""
    methods = sorted({r["method"] for r in rows})
    levels = sorted({r["snr_level"] for r in rows})
    head = "| SNR | " + " | ".join(f"{m} accuracy | {m} well detected" for m in methods) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(methods))]
    for lv in levels:
        cells = []
        for m in methods:
            sel = [r for r in rows if r["snr_level"] == lv and r["method"] == m]
            acc = np.mean([r["mean_accuracy"] for r in sel])
            well = sum(r["n_well_detected"] for r in sel)
            n = sum(r["n_gt_units"] for r in sel)
            cells += [f"{acc:.3f}", f"{well}/{n}"]
        lines.append(f"| {lv:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_accuracy_vs_snr(rows: list[dict], path) -> None:
    """Mean accuracy against SNR level, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .store import atomic_path

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for m in sorted({r["method"] for r in rows}):
        levels = sorted({r["snr_level"] for r in rows if r["method"] == m})
        acc = [np.mean([r["mean_accuracy"] for r in rows if r["method"] == m and r["snr_level"] == lv]) for lv in levels]
        ax.plot(levels, acc, "o-", label=m)
    ax.set_xlabel("unit SNR")
    ax.set_ylabel("mean accuracy")
    ax.set_ylim(0, 1)
    ax.axhline(0.8, color="0.7", lw=0.8, ls="--")
    ax.legend()
    ax.set_title("accuracy against SNR (simulated)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
