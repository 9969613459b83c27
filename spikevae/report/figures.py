"""Figures of the HTML report, drawn with matplotlib's object API (no pyplot state) as small PNGs.

Every function returns PNG bytes. The electrode figures and the array overview are drawn at
print resolution (``ELECTRODE_DPI``, ``OVERVIEW_DPI``), the rest at screen resolution, all
quantised to a 64-colour palette so a 96-electrode report stays a few megabytes (the size is
measured in ``tests/test_report.py``).
"""
from __future__ import annotations

import io

import numpy as np

#: Colour of the k-th unit of an electrode (matplotlib's tab10), and of unsorted spikes.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
UNSORTED = "#c8c8c8"
DPI = 72
#: Resolution of the electrode figures and the array overview (print quality, still palette-quantised).
ELECTRODE_DPI = 120
OVERVIEW_DPI = 120


def colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def new_figure(width_in: float, height_in: float, layout: str | None = None):
    """A matplotlib Figure with an Agg canvas, independent of pyplot (``layout``: e.g. "constrained")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig, dpi: int = DPI, colours: int = 64) -> bytes:
    """Render ``fig`` at ``dpi`` and return a palette-quantised PNG."""
    from PIL import Image

    fig.set_dpi(dpi)
    fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    img = Image.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    img = img.quantize(colors=colours, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    # zlib level 6: 6 times faster than optimize=True (level 9) for files 8 % larger (electrode figures).
    img.save(out, format="png", compress_level=6)
    return out.getvalue()


def _style(ax, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    from matplotlib.ticker import MaxNLocator

    # A fixed title position skips matplotlib's search of the tick labels at every draw.
    ax.set_title(title, fontsize=8.5, y=1.0, pad=3)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    # Few ticks: tick objects dominate the drawing time of these small panels.
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def overview(panels: list[dict], t_ms: np.ndarray, cells: np.ndarray | None = None, n_cols: int = 10) -> bytes:
    """Every electrode at its place on the array: the mean waveform of each unit (dashed: not good).

    Parameters
    ----------
    panels : list of dict
        One per electrode: ``label`` (channel id, str), ``means`` (list of (n_samples,) µV
        arrays, one per unit), ``good`` (list of bool).
    t_ms : ndarray of shape (n_samples,)
    cells : ndarray of shape (len(panels), 2), int, optional
        (row, column) of each panel (see :func:`spikevae.report.layout.grid_cells`);
        default: channel order, ``n_cols`` per row.
    """
    if cells is None:
        i = np.arange(len(panels))
        cells = np.stack([i // n_cols, i % n_cols], axis=1)
    n_rows, n_cols = (int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1) if len(panels) else (1, 1)
    fig = new_figure(1.25 * n_cols, 1.0 * n_rows + 0.1)
    gs = fig.add_gridspec(n_rows, n_cols, left=0.01, right=0.99, bottom=0.01, top=1 - 0.2 / (1.0 * n_rows + 0.1),
                          wspace=0.06, hspace=0.4)
    for p, (r, c) in zip(panels, cells):
        ax = fig.add_subplot(gs[int(r), int(c)])
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_color("#ccc")
        ax.set_title(p["label"], fontsize=7, pad=1, y=1.0)
        for j, (m, g) in enumerate(zip(p["means"], p["good"])):
            ax.plot(t_ms, m, color=colour(j), linewidth=1.1, linestyle="-" if g else "--")
        if not p["means"]:
            ax.text(0.5, 0.5, "no units", fontsize=6, ha="center", va="center", color="#999", transform=ax.transAxes)
    return to_png(fig, dpi=OVERVIEW_DPI)


def _waveforms(ax, waves: np.ndarray, t_ms: np.ndarray, col: str, n_traces: int) -> None:
    """Up to ``n_traces`` individual spikes (thin, transparent) behind the mean of ``waves`` (m, n_samples) µV."""
    from matplotlib.collections import LineCollection

    if len(waves) > 0:
        few = waves[:: max(1, int(np.ceil(len(waves) / n_traces)))]
        segs = np.stack([np.broadcast_to(t_ms, few.shape), few], axis=-1)
        ax.add_collection(LineCollection(segs, colors=col, linewidths=0.4, alpha=0.12))
        ax.plot(t_ms, waves.mean(axis=0), color="black", linewidth=1.6)
        ax.plot(t_ms, waves.mean(axis=0), color=col, linewidth=1.0)


def _correlogram(ax, counts: np.ndarray, edges: np.ndarray, col: str, refractory_ms: float) -> None:
    """Filled steps of ``counts`` between ``edges`` (ms), what ``ax.stairs(counts, edges, fill=True)`` draws.

    ``stairs`` adds its patch with ``add_patch``, which walks the 200-vertex outline as Bézier
    curves in Python to find its extent (a tenth of the electrode figures' drawing time); the
    extent of a step outline is that of its edges and of 0 and the counts, given directly here.
    """
    from matplotlib.patches import StepPatch

    patch = StepPatch(counts, edges, baseline=0, fill=True, color=col, alpha=0.8, linewidth=0)
    ax.add_artist(patch)
    patch.sticky_edges.y.append(0)
    ax.update_datalim([(edges[0], 0), (edges[-1], max(0, counts.max(initial=0)))])
    ax.autoscale_view()
    ax.axvspan(-refractory_ms, refractory_ms, color="#d62728", alpha=0.15, linewidth=0)
    ax.set_xlim(edges[0], edges[-1])


def _amplitudes(ax, amps: np.ndarray, col: str, threshold_uv: float | None) -> None:
    """Histogram of |amplitude| (µV) of one unit's spikes, detection threshold dashed."""
    lo = 0.8 * min(float(amps.min(initial=np.inf)), threshold_uv or np.inf, 1e9)
    hi = max(float(amps.max(initial=0.0)), threshold_uv or 0.0) * 1.05 + 1e-6
    ax.hist(amps, bins=np.linspace(min(lo, hi - 1e-6), hi, 41), color=col, alpha=0.8, histtype="stepfilled",
            linewidth=0)
    if threshold_uv:
        ax.axvline(threshold_uv, color="#333", linestyle="--", linewidth=0.9)


def _unit_column(axes: list, k: int, u: dict, t_ms, edges_ms, refractory_ms, threshold_uv, n_traces) -> None:
    """Column ``k`` of an electrode figure (``axes``: its three panels, top down): the unit's waveforms,
    auto-correlogram, amplitudes. The waveform panels of one figure share their y-scale."""
    col = colour(k)
    ax = axes[0]
    _waveforms(ax, u["waves"], t_ms, col, n_traces)
    _style(ax, f"unit {u['unit']} ({'good' if u['good'] else 'not good'})", "ms", "µV" if k == 0 else "")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.tick_params(labelleft=k == 0)  # one y-scale per electrode: its labels once
    ax = axes[1]
    _correlogram(ax, u["acg"], edges_ms, col, refractory_ms)
    _style(ax, f"auto-correlogram, n={int(u['n_spikes'])}", "lag (ms)", "count" if k == 0 else "")
    ax = axes[2]
    _amplitudes(ax, u["amps"], col, threshold_uv)
    _style(ax, f"amplitude cutoff {_num(u['amplitude_cutoff'])}", "|amplitude| (µV)", "count" if k == 0 else "")


class _ElectrodeCanvas:
    """A figure with every panel of one electrode-figure layout, built once per process and reused.

    Building the ~25 axes of an electrode figure, and the tick objects matplotlib creates for
    them at the first draw, took half of the report's drawing time (profile of a 96-electrode
    run). Reusing them needs every panel reset to the state of a new one before it is drawn on:
    :meth:`start` removes what the last electrode drew, :meth:`panel` restores autoscaling, the
    axis and an empty title, and every caller sets titles, labels and locators anew; panels an
    electrode does not use are hidden (:meth:`finish`). ``tests/test_report_figures.py`` checks
    that a figure has the same bytes whatever was drawn before it.
    """

    def __init__(self, n_cols: int, rows: int):
        self.height = 1.6 * rows + 0.3
        self.fig = new_figure(2.25 * n_cols, self.height)
        gs = self.fig.add_gridspec(rows, n_cols)
        first = self.fig.add_subplot(gs[0, 0])
        # Row 0: waveforms, one y-scale per electrode (an empty panel shares it without showing it).
        self.grid = [[first] + [self.fig.add_subplot(gs[0, k], sharey=first) for k in range(1, n_cols)]]
        self.grid += [[self.fig.add_subplot(gs[r, k]) for k in range(n_cols)] for r in range(1, rows)]
        # Fixed margins in inches (a layout engine would double the drawing time): room for tick labels and titles.
        self.fig.subplots_adjust(left=0.55 / (2.25 * n_cols), right=1 - 0.1 / (2.25 * n_cols),
                                 bottom=0.45 / self.height, top=1 - 0.5 / self.height, wspace=0.32, hspace=0.75)
        self.used: set = set()

    def start(self) -> None:
        """Forget the last electrode: its figure-level texts and everything its panels hold go (a hidden
        panel's data would still count in the y-scale its row shares); panels stay hidden until used."""
        for t in list(self.fig.texts):
            if t is not getattr(self.fig, "_suptitle", None):
                t.remove()
        for ax in self.used:
            for artist in (*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images):
                artist.remove()
            ax.relim()
        self.used.clear()

    def panel(self, row: int, col: int):
        """The axes at (``row``, ``col``), empty, autoscaled and with its axis on, as a new one would be."""
        ax = self.grid[row][col]
        ax.set_autoscale_on(True)
        ax._request_autoscale_view()
        ax.set_axis_on()
        ax.set_title("")
        self.used.add(ax)
        return ax

    def finish(self) -> None:
        """Show the panels this electrode used, hide the others."""
        for row in self.grid:
            for ax in row:
                ax.set_visible(ax in self.used)


#: Canvases of this process, by (columns, rows); at most 6 x 2 layouts with the default unit panels.
_CANVASES: dict[tuple[int, int], _ElectrodeCanvas] = {}


def _canvas(n_cols: int, rows: int) -> _ElectrodeCanvas:
    key = (n_cols, rows)
    if key not in _CANVASES:
        if len(_CANVASES) >= 16:
            _CANVASES.clear()
        _CANVASES[key] = _ElectrodeCanvas(n_cols, rows)
    canvas = _CANVASES[key]
    canvas.start()
    return canvas


def electrode(e_label: str, units: list[dict], t_ms: np.ndarray, ccgs: list[tuple[int, int, np.ndarray]],
              edges_ms: np.ndarray, scatters: list[tuple[str, np.ndarray, np.ndarray]],
              amp_time: tuple[np.ndarray, np.ndarray, np.ndarray], refractory_ms: float,
              threshold_uv: float | None = None, max_unit_panels: int = 6, n_traces: int = 100) -> bytes:
    """One electrode, a column per unit (waveforms, auto-correlogram, amplitudes), then pairs and features.

    Parameters
    ----------
    e_label : str
        Channel id for titles.
    units : list of dict
        Units of the main sorting: ``unit`` (id), ``good`` (bool), ``waves`` ((m, n_samples) µV,
        a sample of its raw waveforms), ``acg`` (auto-correlogram counts), ``amps``
        (|amplitude| µV of all its spikes), ``amplitude_cutoff`` (metric value).
    t_ms : ndarray of shape (n_samples,)
        Time of each waveform sample relative to the peak, ms.
    ccgs : list of (unit id a, unit id b, counts)
        Cross-correlograms (times of b relative to a) of pairs of units of this electrode,
        look-alike pairs first.
    edges_ms : ndarray of shape (n_bins + 1,)
        Correlogram bin edges, ms.
    scatters : list of (method, features (n, >= 2), colour index per spike, -1 = unsorted)
    amp_time : (time s, amplitude µV, colour index) of the electrode's spikes
    refractory_ms : float
        Shaded on the correlograms.
    threshold_uv : float, optional
        Detection threshold (µV), marked on the amplitude histograms.
    """
    n_units = max(1, min(len(units), max_unit_panels))
    n_cols = max(n_units, len(scatters) + 1, min(len(ccgs), max_unit_panels))
    rows = 3 + bool(ccgs) + 1
    canvas = _canvas(n_cols, rows)
    fig = canvas.fig
    for k in range(n_units):
        if k < len(units):
            _unit_column([canvas.panel(r, k) for r in range(3)], k, units[k], t_ms, edges_ms, refractory_ms,
                         threshold_uv, n_traces)
        else:
            ax = canvas.panel(0, k)
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no units", ha="center", va="center", color="#999", transform=ax.transAxes)
    if len(units) > n_units:
        fig.text(0.99, 0.99, f"+{len(units) - n_units} more units (table)", ha="right", va="top", fontsize=8)
    for k, (a, b, counts) in enumerate(ccgs[:n_cols]):
        ax = canvas.panel(3, k)
        _correlogram(ax, counts, edges_ms, "#555", refractory_ms)
        _style(ax, f"cross: unit {a} × unit {b}", "lag (ms)", "count" if k == 0 else "")
    for k, (method, x, ci) in enumerate(scatters):
        ax = canvas.panel(rows - 1, k)
        _scatter(ax, x[:, 0], x[:, 1] if x.shape[1] > 1 else np.zeros(len(x)), ci, s=3)
        _style(ax, f"{method} features", "dim 1", "dim 2")
    ax = canvas.panel(rows - 1, len(scatters))
    _scatter(ax, amp_time[0], amp_time[1], amp_time[2], s=2)
    _style(ax, "amplitude over time", "s", "µV")
    fig.suptitle(f"electrode {e_label}" + (f" (threshold {threshold_uv:.0f} µV dashed)" if threshold_uv else ""),
                 fontsize=10, x=0.01, ha="left")
    canvas.finish()
    return to_png(fig, dpi=ELECTRODE_DPI)


def _num(v) -> str:
    v = float(v) if v is not None else float("nan")
    return f"{v:.3g}" if np.isfinite(v) else "–"


def _scatter(ax, x: np.ndarray, y: np.ndarray, ci: np.ndarray, s: float) -> None:
    """Points coloured by colour index; unsorted (-1) drawn first, in grey."""
    bg = ci < 0
    ax.scatter(x[bg], y[bg], s=s, c=UNSORTED, linewidths=0, rasterized=True)
    cols = np.asarray(PALETTE)[ci[~bg] % len(PALETTE)]
    ax.scatter(x[~bg], y[~bg], s=s, c=cols, linewidths=0, rasterized=True)


def training_curves(history: dict) -> bytes:
    """VAE loss terms per epoch: reconstruction, KL and total, train and validation."""
    terms = [t for t in ("recon", "kl", "total") if f"train_{t}" in history or f"val_{t}" in history]
    fig = new_figure(3.2 * max(len(terms), 1), 2.6)
    axes = fig.subplots(1, max(len(terms), 1), squeeze=False)[0]
    for ax, term in zip(axes, terms):
        for split, style in (("train", "-"), ("val", "--")):
            y = history.get(f"{split}_{term}")
            if y:
                ax.plot(np.arange(1, len(y) + 1), y, style, marker=".", label=split)
        ax.legend(fontsize=7)
        _style(ax, term, "epoch", "loss")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.88, wspace=0.3)
    return to_png(fig)


def gt_accuracy(scores: dict) -> bytes:
    """Accuracy of each ground-truth unit per method (scatter of the first two methods, else bars)."""
    methods = list(scores)
    acc = {m: {u["gt_unit"]: u["accuracy"] for u in scores[m]["units"]} for m in methods}
    fig = new_figure(3.6, 3.3)
    ax = fig.add_subplot(1, 1, 1)
    if len(methods) >= 2:
        a, b = methods[:2]
        ids = sorted(set(acc[a]) & set(acc[b]))
        ax.scatter([acc[a][i] for i in ids], [acc[b][i] for i in ids], s=14, c="#1f77b4")
        ax.plot([0, 1], [0, 1], color="#999", linewidth=0.8)
        ax.set_xlim(-0.02, 1.02), ax.set_ylim(-0.02, 1.02)
        _style(ax, "accuracy per ground-truth unit", f"{a} accuracy", f"{b} accuracy")
    else:
        m = methods[0]
        ax.bar(np.arange(len(acc[m])), sorted(acc[m].values(), reverse=True), color="#1f77b4")
        _style(ax, "accuracy per ground-truth unit", "unit (sorted)", f"{m} accuracy")
    fig.subplots_adjust(left=0.2, right=0.96, bottom=0.16, top=0.9)
    return to_png(fig)
