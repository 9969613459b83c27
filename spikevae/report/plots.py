"""The electrode figures and the array overview of the report, drawn by the browser from compact data.

Drawing ~25 small panels per electrode with matplotlib cost about 0.3 CPU s per electrode
(three quarters of it axis and tick text), a third of a 10-minute 96-electrode run. The page
now carries each electrode's figure as data (:func:`electrode_figure`, a few tens of kB) and
its script (``plots.js``) draws the figure on a canvas when its section comes near the
screen, then keeps it as a PNG image (so it can be saved or copied like any image; printing,
or ``?draw=all`` in the address, draws every figure at once).

Values are quantised to 256 levels over each panel's range (:func:`quantise`), which is finer
than the pixels of a panel (about 110 px tall): waveform traces, scatter coordinates. Counts
(correlograms, amplitude histograms) and unit means are sent as they are.
"""
from __future__ import annotations

import base64
import json
from importlib import resources

import numpy as np

#: Quantisation levels of traces and scatter coordinates (one byte per value).
LEVELS = 255
#: Individual spikes drawn per unit behind its mean.
N_TRACES = 100
#: Bins of a unit's amplitude histogram.
AMPLITUDE_BINS = 40


def quantise(x: np.ndarray, lo: float, hi: float) -> str:
    """``x`` as base64 bytes of ``round((x - lo) / (hi - lo) * 255)``, clipped to 0..255 (the script maps back)."""
    span = hi - lo if hi > lo else 1.0
    q = np.clip(np.rint((np.asarray(x, dtype=np.float64) - lo) / span * LEVELS), 0, LEVELS).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def dequantise(text: str, lo: float, hi: float) -> np.ndarray:
    """The values :func:`quantise` encoded, at its resolution ((hi - lo) / 255)."""
    q = np.frombuffer(base64.b64decode(text), dtype=np.uint8).astype(np.float64)
    span = hi - lo if hi > lo else 1.0
    return lo + q / LEVELS * span


def _range(*arrays: np.ndarray, pad: float = 0.05) -> list[float]:
    """[lo, hi] of the finite values of ``arrays``, widened by ``pad`` of the span ([-1, 1] when empty)."""
    vals = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    vals = np.concatenate(vals) if vals else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return [-1.0, 1.0]
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    d = (hi - lo) * pad
    return [round(lo - d, 4), round(hi + d, 4)]


def _num(v) -> str:
    v = float(v) if v is not None else float("nan")
    return f"{v:.3g}" if np.isfinite(v) else "–"


def _amplitude_histogram(amps: np.ndarray, threshold_uv: float | None) -> dict:
    """Histogram of |amplitude| (µV) from 0.8 × the smaller of the lowest amplitude and the threshold."""
    lo = 0.8 * min(float(amps.min(initial=np.inf)), threshold_uv or np.inf, 1e9)
    hi = max(float(amps.max(initial=0.0)), threshold_uv or 0.0) * 1.05 + 1e-6
    lo = min(lo, hi - 1e-6)
    counts, _ = np.histogram(amps, bins=np.linspace(lo, hi, AMPLITUDE_BINS + 1))
    return {"lo": round(lo, 3), "hi": round(hi, 3), "counts": counts.tolist()}


def _scatter(title: str, xlabel: str, ylabel: str, x: np.ndarray, y: np.ndarray, ci: np.ndarray) -> dict:
    """A scatter panel: coordinates quantised over their ranges, colour index + 1 (0 = unsorted)."""
    xr, yr = _range(x), _range(y)
    return {"title": title, "xlabel": xlabel, "ylabel": ylabel, "xr": xr, "yr": yr,
            "x": quantise(x, *xr), "y": quantise(y, *yr),
            "c": base64.b64encode((np.clip(ci, -1, 254) + 1).astype(np.uint8).tobytes()).decode("ascii")}


def electrode_figure(e_label: str, units: list[dict], t_ms: np.ndarray, ccgs: list[tuple[int, int, np.ndarray]],
                     edges_ms: np.ndarray, scatters: list[tuple[str, np.ndarray, np.ndarray]],
                     amp_time: tuple[np.ndarray, np.ndarray, np.ndarray], refractory_ms: float,
                     threshold_uv: float | None = None, max_unit_panels: int = 6,
                     n_traces: int = N_TRACES) -> dict:
    """The data of one electrode's figure: a column per unit (waveforms, auto-correlogram,
    amplitudes), then look-alike pairs' cross-correlograms, then features and amplitude over time.

    Parameters
    ----------
    e_label : str
        Channel id for titles.
    units : list of dict
        Units of the main sorting: ``unit`` (id), ``good`` (bool), ``waves`` ((m, n_samples) µV,
        a sample of its raw waveforms), ``acg`` (auto-correlogram counts), ``amps``
        (|amplitude| µV of all its spikes), ``amplitude_cutoff`` (metric value), ``n_spikes``.
    t_ms : ndarray of shape (n_samples,)
        Time of each waveform sample relative to the peak, ms (evenly spaced).
    ccgs : list of (unit id a, unit id b, counts)
        Cross-correlograms (times of b relative to a), look-alike pairs first.
    edges_ms : ndarray of shape (n_bins + 1,)
        Correlogram bin edges, ms (evenly spaced).
    scatters : list of (method, features (n, >= 1), colour index per spike, -1 = unsorted)
    amp_time : (time s, amplitude µV, colour index) of the electrode's spikes
    refractory_ms : float
        Shaded on the correlograms.
    threshold_uv : float, optional
        Detection threshold (µV), marked on the amplitude histograms.

    Returns
    -------
    dict, JSON-serialisable; what ``plots.js`` draws. Unit panels beyond ``max_unit_panels``
    are named in a note (their metrics are in the table).
    """
    shown = units[:max_unit_panels]
    traces, means = [], []
    for u in shown:
        w = np.asarray(u["waves"], dtype=np.float64)
        traces.append(w[:: max(1, int(np.ceil(len(w) / n_traces)))] if len(w) else w.reshape(0, t_ms.size))
        means.append(w.mean(axis=0) if len(w) else np.full(t_ms.size, np.nan))
    wy = _range(*traces, *means)
    out_units = []
    for k, (u, tr, mean) in enumerate(zip(shown, traces, means)):
        out_units.append({
            "unit": int(u["unit"]), "k": k, "good": bool(u["good"]),
            "title": f"unit {u['unit']} ({'good' if u['good'] else 'not good'})",
            "traces": quantise(tr, *wy), "n_traces": int(len(tr)),
            "mean": [round(float(v), 2) for v in mean] if len(tr) else [],
            "acg": {"title": f"auto-correlogram, n={int(u['n_spikes'])}", "counts": np.asarray(u["acg"]).tolist()},
            "amp": {"title": f"amplitude cutoff {_num(u['amplitude_cutoff'])}",
                    **_amplitude_histogram(np.asarray(u["amps"], dtype=np.float64), threshold_uv)}})
    panels = [_scatter(f"{m} features", "dim 1", "dim 2", x[:, 0],
                       x[:, 1] if x.shape[1] > 1 else np.zeros(len(x)), ci) for m, x, ci in scatters]
    panels.append(_scatter("amplitude over time", "s", "µV", *amp_time))
    ccgs = ccgs[:max_unit_panels]
    return {
        "cols": max(1, len(shown), len(panels), len(ccgs)), "rows": 3 + bool(ccgs) + 1,
        "title": f"electrode {e_label}" + (f" (threshold {threshold_uv:.0f} µV dashed)" if threshold_uv else ""),
        "t": [round(float(t_ms[0]), 5), round(float(t_ms[-1]), 5)], "wy": wy, "threshold": threshold_uv,
        "units": out_units, "more": max(0, len(units) - len(shown)),
        "edges": [float(edges_ms[0]), float(edges_ms[-1])], "refractory_ms": float(refractory_ms),
        "ccgs": [{"title": f"cross: unit {a} × unit {b}", "counts": np.asarray(c).tolist()}
                 for a, b, c in ccgs],
        "scatters": panels,
    }


def overview_figure(panels: list[dict], t_ms: np.ndarray, cells: np.ndarray | None = None, n_cols: int = 10) -> dict:
    """The data of the array overview: every electrode at its place, the mean waveform of each unit.

    Parameters
    ----------
    panels : list of dict
        One per electrode: ``label`` (channel id, str), ``means`` (list of (n_samples,) µV
        arrays, one per unit), ``good`` (list of bool; not good is drawn dashed).
    t_ms : ndarray of shape (n_samples,)
    cells : ndarray of shape (len(panels), 2), int, optional
        (row, column) of each panel (:func:`spikevae.report.layout.grid_cells`); default:
        channel order, ``n_cols`` per row.
    """
    if cells is None:
        i = np.arange(len(panels))
        cells = np.stack([i // n_cols, i % n_cols], axis=1)
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    return {"kind": "overview", "t": [round(float(t_ms[0]), 5), round(float(t_ms[-1]), 5)],
            "rows": int(cells[:, 0].max()) + 1 if len(panels) else 1,
            "cols": int(cells[:, 1].max()) + 1 if len(panels) else 1,
            "panels": [{"label": p["label"], "r": int(r), "c": int(c), "good": [bool(g) for g in p["good"]],
                        "means": [[round(float(v), 1) for v in m] for m in p["means"]]}
                       for p, (r, c) in zip(panels, cells)]}


def figure_html(data: dict, alt: str) -> str:
    """The placeholder of one figure: its data as inline JSON, drawn by the page's script."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<div class="fig" data-alt="{_attr(alt)}"><script type="application/json">{text}</script></div>'


def _attr(s: str) -> str:
    import html

    return html.escape(s, quote=True)


def script() -> str:
    """The drawing script (``plots.js``), given the report's unit colours and :data:`LEVELS`."""
    from .figures import PALETTE, UNSORTED

    consts = (f"var SV_PALETTE = {json.dumps(list(PALETTE))}, SV_UNSORTED = {json.dumps(UNSORTED)}, "
              f"SV_LEVELS = {LEVELS};\n")
    return consts + resources.files(__package__).joinpath("plots.js").read_text(encoding="utf-8")
