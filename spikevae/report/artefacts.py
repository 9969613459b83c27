"""The report's artefact section: when the artefacts fell, how many electrodes each reached,
and how many spikes each electrode lost to them (:mod:`spikevae.artefacts`)."""
from __future__ import annotations

import numpy as np

from . import figures as fg
from . import html as hp

#: Events listed in the section's table (the rest are in artefacts.csv).
MAX_ROWS = 30


def artefact_figure(art, channel_ids, duration_s: float) -> bytes:
    """Two panels: each event at its time with the electrodes it reached (coincident) or its
    |peak| (amplitude); and the spikes removed on each electrode."""
    from ..artefacts import KINDS

    fig = fg.new_figure(9.0, 4.2, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1)
    for k, name in enumerate(KINDS):
        sel = art.kind == k
        if sel.any():
            y = art.n_electrodes[sel] if k == 0 else np.ones(int(sel.sum()))
            ax1.scatter(art.start[sel] / art.fs, y, s=10, color=fg.colour(k), label=f"{name} ({int(sel.sum())})",
                        rasterized=True)
    ax1.set_xlim(0, max(duration_s, float(art.end.max(initial=0)) / art.fs))
    fg._style(ax1, "artefact events", "time (s)", "electrodes crossing")
    if art.n_events:
        ax1.legend(fontsize=7, frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
    x = np.arange(art.removed_per_electrode.size)
    colours = [fg.colour(2) if e in set(art.excluded_electrodes.tolist()) else fg.colour(0) for e in x]
    ax2.bar(x, art.removed_per_electrode, color=colours, width=0.8)
    ticks = x[:: max(1, x.size // 24)]
    fg._style(ax2, "spikes removed per electrode (artefact electrodes in another colour)", "channel id", "spikes")
    ax2.set_xticks(ticks)  # after _style, whose tick locator would replace them
    ax2.set_xticklabels([str(channel_ids[i]) for i in ticks], fontsize=6)
    return fg.to_png(fig)


def artefact_section(art, channel_ids, duration_s: float) -> str:
    """The HTML section (empty string when the run has no artefact record)."""
    if art is None:
        return ""
    s = art.summary()
    head = "<h2 id='artefacts'>Artefacts</h2>"
    if not art.found:
        return head + ("<p>No artefacts: no event crossed threshold on many electrodes at once, and no spike was "
                       "too large for a neuron.</p>")
    excluded = ", ".join(str(channel_ids[e]) for e in art.excluded_electrodes)
    text = (f"<p>{s['n_events']} events ({s['events_by_kind']['coincident']} on many electrodes at once, "
            f"{s['events_by_kind']['amplitude']} too large for a neuron) removed {s['n_spikes_removed']} of "
            f"{s['n_spikes_before']} detected spikes ({100 * s['fraction_removed']:.1f} %) before clustering"
            + (f"; artefact electrodes left out entirely: {hp.esc(excluded)}" if excluded else "")
            + ". Every event is in <code>artefacts.csv</code>; the rules and their settings are the "
              "<code>artefact</code> section of the configuration.</p>")
    rows = art.rows(channel_ids)[:MAX_ROWS]
    table = ""
    if rows:
        cols = list(rows[0])
        table = ("<details><summary>first events</summary><table><tr>" + "".join(f"<th>{hp.esc(c)}</th>" for c in cols)
                 + "</tr>" + "".join("<tr>" + "".join(f"<td>{hp.esc(r[c])}</td>" for c in cols) + "</tr>" for r in rows)
                 + "</table></details>")
    return head + text + hp.img(artefact_figure(art, channel_ids, duration_s), "artefact events") + table
