"""Figures of the HTML report, drawn with matplotlib's object API (no pyplot state) as small PNGs.

Every function returns PNG bytes. Figures are drawn at low dpi and quantised to a 64-colour
palette, so a 96-electrode report stays a few megabytes (the size is measured in
``tests/test_report.py`` and the note of issue 4).
"""
from __future__ import annotations

import io

import numpy as np

#: Colour of the k-th unit of an electrode (matplotlib's tab10), and of unsorted spikes.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
UNSORTED = "#c8c8c8"
DPI = 72


def colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure with an Agg canvas, independent of pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig, dpi: int = DPI, colours: int = 64) -> bytes:
    """Render ``fig`` at ``dpi`` and return a palette-quantised, optimised PNG."""
    from PIL import Image

    fig.set_dpi(dpi)
    fig.canvas.draw()
    w, h = fig.canvas.get_width_height()
    img = Image.frombuffer("RGBA", (w, h), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    img = img.quantize(colors=colours, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return out.getvalue()


def _style(ax, title: str = "", xlabel: str = "", ylabel: str = "") -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    # Few ticks: tick objects dominate the drawing time of these small panels.
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def waveform_band(ax, waves: np.ndarray, t_ms: np.ndarray, col: str) -> None:
    """Mean ± sd of ``waves`` (n, n_samples) µV against ``t_ms``."""
    m, s = waves.mean(axis=0), waves.std(axis=0)
    ax.fill_between(t_ms, m - s, m + s, color=col, alpha=0.25, linewidth=0)
    ax.plot(t_ms, m, color=col, linewidth=1.5)


def overview(panels: list[dict], t_ms: np.ndarray, n_cols: int = 10) -> bytes:
    """Grid of every electrode: the mean waveform of each unit (dashed: not good).

    Parameters
    ----------
    panels : list of dict
        One per electrode, in grid order: ``label`` (str), ``means`` (list of (n_samples,) µV
        arrays, one per unit), ``good`` (list of bool).
    t_ms : ndarray of shape (n_samples,)
    """
    n_rows = max(1, int(np.ceil(len(panels) / n_cols)))
    fig = new_figure(1.4 * n_cols, 1.05 * n_rows + 0.2)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, p in enumerate(panels):
        ax = axes.ravel()[k]
        ax.set_title(p["label"], fontsize=7, pad=1)
        for j, (m, g) in enumerate(zip(p["means"], p["good"])):
            ax.plot(t_ms, m, color=colour(j), linewidth=1.2, linestyle="-" if g else "--")
        if not p["means"]:
            ax.text(0.5, 0.5, "no units", fontsize=6, ha="center", va="center", color="#999", transform=ax.transAxes)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.25 / (1.05 * n_rows + 0.2), wspace=0.05,
                        hspace=0.35)
    return to_png(fig)


def electrode(e_label: str, unit_waves: list[tuple[int, np.ndarray, bool]], t_ms: np.ndarray,
              scatters: list[tuple[str, np.ndarray, np.ndarray]], isi_ms: list[tuple[int, np.ndarray]],
              amp_time: tuple[np.ndarray, np.ndarray, np.ndarray], refractory_ms: float,
              max_unit_panels: int = 6) -> bytes:
    """One electrode: unit waveforms, embedding scatters, ISI histograms, amplitude over time.

    Parameters
    ----------
    e_label : str
        Electrode name for titles.
    unit_waves : list of (unit id, waveforms (m, n_samples) µV, good)
        Units of the main sorting, each with a sample of its raw waveforms.
    t_ms : ndarray of shape (n_samples,)
        Time of each waveform sample relative to the peak, ms.
    scatters : list of (method, features (n, >= 2), colour index per spike, -1 = unsorted)
        One panel per method, first two feature dimensions.
    isi_ms : list of (colour index, inter-spike intervals in ms)
    amp_time : (time s, amplitude µV, colour index) of the electrode's spikes
    refractory_ms : float
        Shaded on the ISI histograms.
    """
    n_top = max(1, min(len(unit_waves), max_unit_panels))
    n_bottom = len(scatters) + 2
    n_cols = max(n_top, n_bottom)
    fig = new_figure(2.6 * n_cols, 5.0)
    gs = fig.add_gridspec(2, n_cols, height_ratios=[1, 1.15])
    top = [fig.add_subplot(gs[0, k]) for k in range(n_top)]
    for k, ax in enumerate(top):
        if k >= len(unit_waves):
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no units", ha="center", va="center", color="#999", transform=ax.transAxes)
            continue
        u, w, good = unit_waves[k]
        waveform_band(ax, w, t_ms, colour(k))
        _style(ax, f"unit {u} ({'good' if good else 'not good'}, n={len(w)} shown)", "ms", "µV" if k == 0 else "")
    if len(unit_waves) > n_top:
        top[-1].text(0.98, 0.02, f"+{len(unit_waves) - n_top} more units", ha="right", fontsize=7,
                     transform=top[-1].transAxes)
    bottom = [fig.add_subplot(gs[1, k]) for k in range(n_bottom)]
    for ax, (method, x, ci) in zip(bottom, scatters):
        _scatter(ax, x[:, 0], x[:, 1] if x.shape[1] > 1 else np.zeros(len(x)), ci, s=3)
        _style(ax, f"{method} features", "dim 1", "dim 2")
    ax = bottom[len(scatters)]
    bins = np.arange(0, 51, 1.0)
    for ci, isi in isi_ms:
        ax.hist(isi, bins=bins, histtype="step", color=colour(ci), linewidth=1.2)
    ax.axvspan(0, refractory_ms, color="#d62728", alpha=0.12, linewidth=0)
    ax.set_xlim(0, bins[-1])
    _style(ax, "ISI (shaded: refractory)", "ms", "count")
    ax = bottom[len(scatters) + 1]
    _scatter(ax, amp_time[0], amp_time[1], amp_time[2], s=2)
    _style(ax, "amplitude over time", "s", "µV")
    fig.suptitle(f"electrode {e_label}", fontsize=10, x=0.01, ha="left")
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.88, wspace=0.35, hspace=0.55)
    return to_png(fig, dpi=80)


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
