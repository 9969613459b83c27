"""Figures of the HTML report, drawn with matplotlib's object API (no pyplot state) as small PNGs.

Every function returns PNG bytes, drawn at screen resolution and quantised to a 64-colour
palette. The electrode figures and the array overview are drawn by the page itself
(:mod:`spikevae.report.plots`).
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
