"""Assemble the report: metrics per method, per-electrode figures, the page (the orchestrator)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from . import figures as fg
from . import html as hp
from .context import ReportContext, context_from_result, spike_labels

log = logging.getLogger(__name__)

ELECTRODE_COLUMNS = ("unit", "n_spikes", "firing_rate_hz", "amplitude_uv", "snr", "rp_contamination",
                     "presence_ratio", "amplitude_cutoff", "isolation_distance", "nn_hit_rate", "good")


def quality_config(ctx: ReportContext):
    """The QualityConfig of the run (its ``quality`` section), defaults otherwise."""
    from ..config import apply_dict
    from ..quality_config import QualityConfig

    cfg = QualityConfig()
    section = ctx.config.get("quality") if isinstance(ctx.config, dict) else None
    if section:
        apply_dict(cfg, section)
    return cfg


def ensure_metrics(ctx: ReportContext) -> dict:
    """Metrics of every method: those given, plus the missing ones computed now."""
    from ..quality import compute_metrics

    out = dict(ctx.metrics)
    missing = [m for m in ctx.methods if m not in out]
    if missing:
        cfg = quality_config(ctx)
        for m in missing:
            out[m] = compute_metrics(ctx.spikes, ctx.sortings[m], cfg, ctx.duration_s)
    return out


def _groups(values: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(values, kind="stable")
    uniq, starts = np.unique(values[order], return_index=True)
    return {int(u): idx for u, idx in zip(uniq, np.split(order, starts[1:]))}


def _colour_index(lab: np.ndarray, units: list[int]) -> np.ndarray:
    ci = np.full(lab.shape, -1, dtype=np.int64)
    for k, u in enumerate(units):
        ci[lab == u] = k
    return ci


def electrode_inputs(ctx: ReportContext, e: int, idx: np.ndarray, rows: list[dict], labels: dict, metrics: dict,
                     unit_times: dict, rng: np.random.Generator, t_ms: np.ndarray, refractory_ms: float):
    """Arguments of :func:`figures.electrode` for electrode ``e``, and its overview panel (unit means)."""
    sp, main = ctx.spikes, ctx.main_method
    lab = labels[main][idx]
    unit_waves = []
    for r in rows:
        mine = idx[lab == r["unit"]]
        pick = rng.choice(mine, ctx.max_waveforms, replace=False) if mine.size > ctx.max_waveforms else mine
        unit_waves.append((r["unit"], sp.waveforms[np.sort(pick)], bool(r["good"])))
    sub = np.sort(rng.choice(idx, ctx.max_points, replace=False)) if idx.size > ctx.max_points else idx
    scatters = []
    for m in ctx.methods:
        if m in ctx.embeddings:
            units_m = sorted(r["unit"] for r in metrics[m] if r["electrode"] == e)
            scatters.append((m, ctx.embeddings[m].features[sub], _colour_index(labels[m][sub], units_m)))
    isi = [(k, np.diff(unit_times[r["unit"]]) / sp.fs * 1000) for k, r in enumerate(rows)]
    ci_main = _colour_index(labels[main][sub], [r["unit"] for r in rows])
    amp_time = (sp.sample_index[sub] / sp.fs, sp.amplitude_uv[sub], ci_main)
    label = str(sp.channel_ids[e])
    panel = {"label": label, "means": [w.mean(axis=0) for _, w, _ in unit_waves if len(w)],
             "good": [g for _, w, g in unit_waves if len(w)]}
    return (label, unit_waves, t_ms, scatters, isi, amp_time, refractory_ms), panel


def electrode_html(ctx: ReportContext, e: int, n_spikes: int, rows: list[dict], metrics: dict, png: bytes) -> str:
    """The section of electrode ``e``: its figure, its units table, the other methods' unit counts."""
    main, label = ctx.main_method, str(ctx.spikes.channel_ids[e])
    others = "; ".join(f"{m}: {sum(r['electrode'] == e for r in metrics[m])} units "
                       f"({sum(r['good'] for r in metrics[m] if r['electrode'] == e)} good)"
                       for m in ctx.methods if m != main)
    table = "<table><tr>" + "".join(f"<th>{c}</th>" for c in ELECTRODE_COLUMNS) + "</tr>" + "".join(
        f'<tr class="{"good" if r["good"] else "bad"}">' + "".join(
            f'<td{" class=g" if c == "good" else ""}>{hp.fmt(r[c])}</td>' for c in ELECTRODE_COLUMNS) + "</tr>"
        for r in rows) + "</table>" if rows else "<p>No units: every spike of this electrode is unsorted.</p>"
    return (f'<section class="el" id="el-{e}"><h3>Electrode {hp.esc(label)}: {n_spikes} spikes, '
            f'{len(rows)} {hp.esc(main)} units</h3>{hp.img(png, f"electrode {label}")}{table}'
            + (f"<p>{hp.esc(others)}</p>" if others else "") + "</section>")


def _electrode_png(args: tuple) -> bytes:
    return fg.electrode(*args)


def render_electrode_figures(inputs: list[tuple], n_jobs: int = 1) -> list[bytes]:
    """PNG of each electrode figure, in worker processes when ``n_jobs`` > 1 (same bytes either way)."""
    if n_jobs <= 1 or len(inputs) < 2:
        return [_electrode_png(a) for a in inputs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": forking a process that already runs torch or BLAS threads can deadlock.
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_electrode_png, inputs, chunksize=max(1, len(inputs) // (4 * n_jobs))))


def render(ctx: ReportContext) -> str:
    """The report page of ``ctx`` as one HTML string."""
    sp, main = ctx.spikes, ctx.main_method
    metrics = ensure_metrics(ctx)
    qcfg = quality_config(ctx)
    labels = {m: spike_labels(sp, s) for m, s in ctx.sortings.items()}
    s_main = ctx.sortings[main]
    unit_times = {u: np.sort(s_main.sample_index[i]) for u, i in _groups(s_main.unit).items() if u >= 0}
    rows_by_el: dict[int, list] = {}
    for r in metrics[main]:
        rows_by_el.setdefault(r["electrode"], []).append(r)
    t_ms = (np.arange(sp.n_samples) - sp.peak_index) / sp.fs * 1000
    rng = np.random.default_rng(ctx.seed)
    groups = _groups(sp.electrode)
    inputs, panels, nav = [], [], {}
    for e in range(sp.n_electrodes):
        rows = rows_by_el.get(e, [])
        if e not in groups:
            panels.append({"label": str(sp.channel_ids[e]), "means": [], "good": []})
            continue
        args, panel = electrode_inputs(ctx, e, groups[e], rows, labels, metrics, unit_times, rng, t_ms,
                                       qcfg.refractory_ms)
        inputs.append(args)
        panels.append(panel)
        nav[e] = {"n_units": len(rows), "n_good": sum(r["good"] for r in rows)}
    pngs = render_electrode_figures(inputs, ctx.jobs)
    sections = [electrode_html(ctx, e, groups[e].size, rows_by_el.get(e, []), metrics, png)
                for e, png in zip(sorted(nav), pngs)]
    from ..quality import describe_preset

    body = [f"<h1>{hp.esc(ctx.title)}</h1>",
            "<p><a href='#summary'>summary</a> · <a href='#comparison'>methods</a> · "
            + ("<a href='#training'>VAE training</a> · " if ctx.history else "")
            + "<a href='#units'>units</a> · <a href='#overview'>electrodes</a></p>",
            hp.summary_section(ctx, metrics), hp.comparison_section(ctx, metrics)]
    if ctx.history:
        body.append("<h2 id='training'>VAE training</h2>" + hp.img(fg.training_curves(ctx.history), "VAE training curves"))
    body.append(f"<h2 id='units'>Units</h2><p>good = {hp.esc(describe_preset(qcfg.preset))} "
                f"(preset <b>{hp.esc(qcfg.preset)}</b>). Click a column header to sort; hover a 'no' for the rules a unit fails.</p>")
    for m in ctx.methods:
        tbl = hp.units_table(metrics[m], f"units-{m}", qcfg.preset)
        body.append(f"<h3>{hp.esc(m)}</h3>{tbl}" if m == main else
                    f"<details><summary>{hp.esc(m)} units</summary>{tbl}</details>")
    body.append("<h2 id='overview'>Electrodes</h2><p>Mean waveform of each unit (dashed: not good); "
                "the grid links to each electrode.</p>" + hp.overview_nav(ctx, nav)
                + hp.img(fg.overview(panels, t_ms), "overview of all electrodes"))
    body += sections
    return hp.page(ctx.title, "\n".join(body))


def write_report(path, context: ReportContext) -> Path:
    """Write the self-contained HTML report of ``context`` to ``path`` (atomically).

    Returns
    -------
    Path of the written file.
    """
    from ..store import write_text

    t0 = time.perf_counter()
    text = render(context)
    path = Path(path)
    write_text(path, text)
    log.info("report: %s (%.1f MB, %.1f s)", path, len(text) / 1e6, time.perf_counter() - t0)
    return path


def write_run_report(result, name: str = "report.html") -> Path:
    """The pipeline's hook: write ``report.html`` into the run folder of ``result`` (a RunResult)."""
    return write_report(Path(result.out_dir) / name, context_from_result(result))
