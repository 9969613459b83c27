"""Assemble the report: metrics per method, per-electrode figures, the page (the orchestrator)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .artefacts import artefact_section
from . import correlograms as cg
from . import figures as fg
from . import html as hp
from . import plots
from .context import ReportContext, context_from_result
from .layout import grid_cells

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
            out[m] = compute_metrics(ctx.spikes, ctx.sortings[m], cfg, ctx.duration_s,
                                     positions_um=ctx.recording_info.get("positions_um"))
    return out


def _colour_index(lab: np.ndarray, units: list[int]) -> np.ndarray:
    ci = np.full(lab.shape, -1, dtype=np.int64)
    for k, u in enumerate(units):
        ci[lab == u] = k
    return ci


def detection_threshold_uv(ctx: ReportContext, e: int) -> float | None:
    """Detection threshold of electrode ``e`` in µV (``detect.threshold`` × its noise), None when unknown."""
    det = ctx.config.get("detect") if isinstance(ctx.config, dict) else None
    thr = det.get("threshold") if isinstance(det, dict) else None
    noise = float(ctx.spikes.noise_uv[e])
    return float(thr) * noise if thr and np.isfinite(noise) and noise > 0 else None


def lookalike_pairs(means: list[np.ndarray], max_pairs: int) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, of units ordered by the distance of their mean waveforms (closest first)."""
    pairs = [(float(np.linalg.norm(means[a] - means[b])), a, b)
             for a in range(len(means)) for b in range(a + 1, len(means))]
    return [(a, b) for _, a, b in sorted(pairs)[:max_pairs]]


def electrode_inputs(ctx: ReportContext, e: int, idx: np.ndarray, rows: list[dict], labels: dict, metrics: dict,
                     unit_times: dict, rng: np.random.Generator, t_ms: np.ndarray, refractory_ms: float,
                     max_unit_panels: int = 6):
    """Arguments of :func:`plots.electrode_figure` for electrode ``e``, and its overview panel (unit means)."""
    sp, main = ctx.spikes, ctx.main_method
    lab = labels[main][idx]
    units = []
    for r in rows:
        mine = idx[lab == r["unit"]]
        pick = rng.choice(mine, ctx.max_waveforms, replace=False) if mine.size > ctx.max_waveforms else mine
        t = unit_times.get(r["unit"], np.zeros(0, np.int64))
        units.append({"unit": r["unit"], "good": bool(r["good"]), "waves": sp.waveforms[np.sort(pick)],
                      "acg": cg.correlogram(t, t, sp.fs, auto=True), "amps": np.abs(sp.amplitude_uv[mine]),
                      "amplitude_cutoff": r.get("amplitude_cutoff"), "n_spikes": r.get("n_spikes", t.size)})
    shown = [u for u in units[:max_unit_panels] if len(u["waves"])]
    pairs = lookalike_pairs([u["waves"].mean(axis=0) for u in shown], max_unit_panels)
    ccgs = [(shown[a]["unit"], shown[b]["unit"],
             cg.correlogram(unit_times[shown[a]["unit"]], unit_times[shown[b]["unit"]], sp.fs)) for a, b in pairs]
    sub = np.sort(rng.choice(idx, ctx.max_points, replace=False)) if idx.size > ctx.max_points else idx
    scatters = []
    for m in ctx.methods:
        if m in ctx.embeddings:
            units_m = sorted(r["unit"] for r in metrics[m] if r["electrode"] == e)
            scatters.append((m, ctx.embeddings[m].features[sub], _colour_index(labels[m][sub], units_m)))
    ci_main = _colour_index(labels[main][sub], [r["unit"] for r in rows])
    amp_time = (sp.sample_index[sub] / sp.fs, sp.amplitude_uv[sub], ci_main)
    label = str(sp.channel_ids[e])
    panel = {"label": label, "means": [u["waves"].mean(axis=0) for u in units if len(u["waves"])],
             "good": [u["good"] for u in units if len(u["waves"])]}
    return (label, units, t_ms, ccgs, cg.bin_edges_ms(), scatters, amp_time, refractory_ms,
            detection_threshold_uv(ctx, e), max_unit_panels), panel


def electrode_html(ctx: ReportContext, e: int, n_spikes: int, rows: list[dict], metrics: dict, figure: dict) -> str:
    """The section of electrode ``e``: its figure (data of :func:`plots.electrode_figure`, drawn by the
    page), its units table, the other methods' unit counts."""
    main, label = ctx.main_method, str(ctx.spikes.channel_ids[e])
    others = "; ".join(f"{m}: {sum(r['electrode'] == e for r in metrics[m])} units "
                       f"({sum(r['good'] for r in metrics[m] if r['electrode'] == e)} good)"
                       for m in ctx.methods if m != main)
    table = "<table><tr>" + "".join(f"<th>{c}</th>" for c in ELECTRODE_COLUMNS) + "</tr>" + "".join(
        f'<tr class="{"good" if r["good"] else "bad"}">' + "".join(
            f'<td{_cell_class(c, k)}>{hp.fmt(r[c])}</td>' for c in ELECTRODE_COLUMNS) + "</tr>"
        for k, r in enumerate(rows)) + "</table>"
    cls = "el" if any(r["good"] for r in rows) else "el no-good"
    return (f'<section class="{cls}" id="el-{e}"><h3>Electrode {hp.esc(label)}: {n_spikes} spikes, '
            f'{len(rows)} {hp.esc(main)} units</h3>{plots.figure_html(figure, f"electrode {label}")}{table}'
            + (f"<p>{hp.esc(others)}</p>" if others else "") + "</section>")


def _cell_class(column: str, k: int) -> str:
    """The good cell's class; the unit cell carries the colour of the unit in the figure."""
    if column == "good":
        return " class=g"
    return f' style="border-left:4px solid {fg.colour(k)}"' if column == "unit" else ""


def collapsed_electrodes_html(ctx: ReportContext, groups: dict, with_units: set) -> str:
    """One line naming the electrodes without units (no spikes, or only unsorted spikes)."""
    ids = ctx.spikes.channel_ids
    silent = [str(ids[e]) for e in range(ctx.spikes.n_electrodes) if e not in groups]
    unsorted = [f"{ids[e]} ({groups[e].size} spikes)" for e in sorted(groups) if e not in with_units]
    if not silent and not unsorted:
        return ""
    parts = ([f"no spikes: {', '.join(silent)}"] if silent else []) + (
        [f"only unsorted spikes: {', '.join(unsorted)}"] if unsorted else [])
    return (f'<p id="no-units">Electrodes without {hp.esc(ctx.main_method)} units '
            f'({len(silent) + len(unsorted)}): {hp.esc("; ".join(parts))}</p>')


def render(ctx: ReportContext) -> str:
    """The report page of ``ctx`` as one HTML string.

    Per-spike state is kept small for hours of recording: each method's label per detected
    spike and the index groups are int32 (:func:`~spikevae.quality.compute.spike_units`, :func:`group_indices`), unit
    spike times are gathered per electrode when its figure is made, and each figure's inputs
    are reduced to its compact data at once.
    """
    from ..execution import release_memory
    from ..execution.memory import LOOP_TRIM_BYTES
    from ..quality import group_indices
    from ..quality.compute import spike_units

    sp, main = ctx.spikes, ctx.main_method
    metrics = ensure_metrics(ctx)
    qcfg = quality_config(ctx)
    labels = {m: spike_units(sp, s) for m, s in ctx.sortings.items()}
    s_main = ctx.sortings[main]
    unit_rows = group_indices(s_main.unit)
    rows_by_el: dict[int, list] = {}
    for r in metrics[main]:
        rows_by_el.setdefault(r["electrode"], []).append(r)
    t_ms = (np.arange(sp.n_samples) - sp.peak_index) / sp.fs * 1000
    rng = np.random.default_rng(ctx.seed)
    groups = group_indices(sp.electrode)
    panels, nav, sections = [], {}, []
    for e in range(sp.n_electrodes):
        if e % 8 == 7:  # each electrode's freed arrays go back to the OS as the loop goes
            release_memory(LOOP_TRIM_BYTES)
        rows = rows_by_el.get(e, [])
        if e not in groups or not rows:
            panels.append({"label": str(sp.channel_ids[e]), "means": [], "good": []})
            continue
        unit_times = {r["unit"]: np.sort(s_main.sample_index[unit_rows[r["unit"]]]) for r in rows
                      if r["unit"] in unit_rows}
        args, panel = electrode_inputs(ctx, e, groups[e], rows, labels, metrics, unit_times, rng, t_ms,
                                       qcfg.refractory_ms)
        panels.append(panel)
        nav[e] = {"n_units": len(rows), "n_good": sum(r["good"] for r in rows)}
        sections.append(electrode_html(ctx, e, groups[e].size, rows, metrics, plots.electrode_figure(*args)))
    cells, physical = grid_cells(ctx.recording_info.get("positions_um"), sp.n_electrodes)
    return hp.page(ctx.title, "\n".join(_head(ctx, metrics, qcfg) + [
        hp.overview_section(ctx, nav, cells, physical, plots.overview_figure(panels, t_ms, cells)),
        collapsed_electrodes_html(ctx, groups, set(nav))] + sections))


def _head(ctx: ReportContext, metrics: dict, qcfg) -> list[str]:
    """Title, links, summary, comparison, training curves and the units tables."""
    from ..quality import describe_preset

    body = [f"<h1>{hp.esc(ctx.title)}</h1>",
            "<p><a href='#summary'>summary</a> · <a href='#comparison'>methods</a> · "
            + ("<a href='#training'>VAE training</a> · " if ctx.history else "")
            + ("<a href='#artefacts'>artefacts</a> · " if ctx.artefacts is not None else "")
            + "<a href='#units'>units</a> · <a href='#overview'>electrodes</a> · " + hp.GOOD_FILTER + "</p>",
            hp.summary_section(ctx, metrics), hp.comparison_section(ctx, metrics),
            artefact_section(ctx.artefacts, ctx.spikes.channel_ids, ctx.duration_s)]
    if ctx.history:
        body.append("<h2 id='training'>VAE training</h2>" + hp.img(fg.training_curves(ctx.history), "VAE training curves"))
    body.append(f"<h2 id='units'>Units</h2><p>good = {hp.esc(describe_preset(qcfg.preset))} "
                f"(preset <b>{hp.esc(qcfg.preset)}</b>). Click a column header to sort; hover a 'no' for the rules a unit fails.</p>")
    for m in ctx.methods:
        tbl = hp.units_table(metrics[m], f"units-{m}", qcfg.preset)
        body.append(f"<h3>{hp.esc(m)}</h3>{tbl}" if m == ctx.main_method else
                    f"<details><summary>{hp.esc(m)} units</summary>{tbl}</details>")
    return body


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
