"""Outputs of tracking: ``units.csv``, a figure per electrode, and ``report.html`` linking them."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from .track import TrackResult

#: Columns of ``TRACK/units.csv``, in order.
COLUMNS = ("session", "unit", "electrode", "channel_id", "track", "match_probability", "previous_unit",
           "n_spikes", "amplitude_uv", "run")


def write_units_csv(path: Path, result: TrackResult, channel_ids) -> None:
    """One row per sorted unit of each session (:data:`COLUMNS`); ``match_probability`` is empty
    where a track starts."""
    from ..pipeline import write_csv

    rows = []
    for r in result.rows:
        p = r["match_probability"]
        rows.append({"session": r["session"], "unit": r["unit"], "electrode": r["electrode"],
                     "channel_id": str(channel_ids[r["electrode"]]), "track": r["track"],
                     "match_probability": "" if math.isnan(p) else round(p, 4), "previous_unit": r["previous_unit"],
                     "n_spikes": r["n_spikes"], "amplitude_uv": r["amplitude_uv"], "run": r["run"]})
    write_csv(path, rows)


def electrode_figure(path: Path, result: TrackResult, electrode: int, channel_id: str, fs: float | None = None) -> None:
    """Mean waveforms of one electrode's units, one panel per session, one colour per track (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_sessions = len(result.session_names)
    rows = [r for r in result.rows if r["electrode"] == electrode]
    tracks = sorted({r["track"] for r in rows})
    colours = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(tracks)}
    fig, axes = plt.subplots(1, n_sessions, figsize=(2.2 * n_sessions + 0.6, 2.4), sharey=True, squeeze=False)
    for s, ax in enumerate(axes[0]):
        for r in rows:
            if r["session"] == s:
                w = result.waveforms[(s, r["unit"])]
                t = np.arange(w.size) / fs * 1e3 if fs else np.arange(w.size)
                ax.plot(t, w, color=colours[r["track"]], lw=1.4, label=f"track {r['track']}")
        ax.set_title(f"session {s}", fontsize=9)
        ax.set_xlabel("ms" if fs else "sample", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("µV", fontsize=8)
    handles = [plt.Line2D([], [], color=colours[t], lw=2) for t in tracks]
    fig.legend(handles, [f"track {t}" for t in tracks], loc="center right", fontsize=7, frameon=False)
    fig.suptitle(f"electrode {channel_id}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _report_html(result: TrackResult, figures: dict[int, str], channel_ids) -> str:
    tracks = result.tracks()
    n = len(result.session_names)
    multi = sum(1 for t in tracks.values() if len(t) > 1)
    head = ("<!doctype html><html><head><meta charset='utf-8'><title>spikevae tracking</title><style>"
            "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}"
            "</style></head><body>")
    parts = [head, "<h1>Units across sessions</h1>",
             f"<p>{n} sessions: " + ", ".join(f"{i}: {html.escape(s)}" for i, s in enumerate(result.session_names))
             + f"</p><p>shared feature space: {html.escape(result.model)}; comparison: "
             f"{html.escape(result.config.method)}; {len(tracks)} tracks, {multi} seen in more than one session. "
             "Table: <a href='units.csv'>units.csv</a>.</p>",
             "<h2>Tracks</h2><table><tr><th>track</th><th>electrode</th>"
             + "".join(f"<th>session {i}</th>" for i in range(n)) + "</tr>"]
    for t, rows in tracks.items():
        by_s = {r["session"]: r for r in rows}
        cells = []
        for i in range(n):
            r = by_s.get(i)
            if r is None:
                cells.append("<td></td>")
                continue
            p = r["match_probability"]
            cells.append(f"<td>unit {r['unit']}" + ("" if math.isnan(p) else f" (p={p:.2f})") + "</td>")
        e = rows[0]["electrode"]
        parts.append(f"<tr><td>{t}</td><td><a href='#el{e}'>{html.escape(str(channel_ids[e]))}</a></td>"
                     + "".join(cells) + "</tr>")
    parts.append("</table><h2>Mean waveforms per electrode</h2>")
    for e, name in figures.items():
        parts.append(f"<h3 id='el{e}'>electrode {html.escape(str(channel_ids[e]))}</h3>"
                     f"<a href='{name}'><img src='{name}' alt='electrode {e}'></a>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_track_outputs(out: Path, result: TrackResult, channel_ids, progress: bool = False,
                        fs: float | None = 30000.0) -> dict:
    """Write ``units.csv``, ``figures/electrode_<id>.png``, ``summary.json`` and ``report.html`` into ``out``.

    Returns
    -------
    dict
        The summary (also in ``summary.json``).
    """
    from ..store import write_text

    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    write_units_csv(out / "units.csv", result, channel_ids)
    electrodes = sorted({r["electrode"] for r in result.rows})
    items = electrodes
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(electrodes, desc="figures", unit="electrode")
    figures = {}
    for e in items:
        name = f"figures/electrode_{channel_ids[e]}.png"
        electrode_figure(out / name, result, e, str(channel_ids[e]), fs)
        figures[e] = name
    write_text(out / "report.html", _report_html(result, figures, channel_ids))
    tracks = result.tracks()
    summary = {"sessions": result.session_names, "model": result.model, "method": result.config.method,
               "n_units": len(result.rows), "n_tracks": len(tracks),
               "n_tracks_multi_session": sum(1 for t in tracks.values() if len(t) > 1),
               "n_links": len(result.links())}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary
