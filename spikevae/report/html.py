"""The self-contained HTML report: one file, figures as base64 PNG or as data that its inline JS draws, no network.

Sections: run summary, PCA vs VAE comparison (with ground-truth scores when given), VAE
training curves, sortable units tables, the electrode overview in the array's layout, one
line naming the electrodes without units, one section per electrode with units. The page
sets ``data-ready="1"`` on ``<body>`` when its script has run, and lists any script error in
``#js-errors`` (checked by ``tests/test_report.py`` in headless Chromium).
A ``?sort=KEY`` (or ``?sort=-KEY``, descending) query sorts every units table by that column on load;
``?good=1`` ticks the good-unit filter (hides rows, sections and grid links without a good unit).
"""
from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

from ..objects import count_values
from . import figures as fg
from . import plots

TABLE_COLUMNS = ("unit", "channel_id", "n_spikes", "firing_rate_hz", "amplitude_uv", "snr", "isi_violations_ratio",
                 "rp_contamination", "sliding_rp_violation", "presence_ratio", "amplitude_cutoff", "noise_cutoff",
                 "isolation_distance", "l_ratio", "d_prime", "silhouette", "nn_hit_rate", "nn_miss_rate", "good")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em auto;max-width:1500px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}h3{margin:.3em 0}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3;position:sticky;top:0}table.sortable th{cursor:pointer}th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
td.l,th.l{text-align:left}tr.good td.g{color:#1a7f37;font-weight:600}tr.bad td.g{color:#b42318}
.scroll{max-height:480px;max-width:100%;overflow:auto;display:inline-block}img{max-width:100%}
.grid{display:grid;gap:2px;font-size:11px;max-width:900px}
.grid a{display:block;border:1px solid #ddd;padding:2px;text-decoration:none;color:#222;text-align:center}
.grid a.has-good{background:#e8f5e9}.grid span{display:block;border:1px solid #eee;padding:2px;color:#aaa;text-align:center}
section.el{border-top:1px solid #eee;padding-top:.4em;margin-top:.8em}pre{background:#f7f7f7;padding:.6em;font-size:11px;overflow:auto;max-height:400px}
#js-errors{color:#b42318}label.filter{background:#eef6ee;padding:1px 6px;border-radius:3px;cursor:pointer}
.grid a.no-good{background:#fafafa}div.fig{width:100%}div.fig img{width:100%;display:block}
"""

#: The good-unit filter: hides not-good unit rows, electrode sections without a good unit and their grid links.
GOOD_FILTER = ('<label class="filter"><input type="checkbox" id="good-only"> show good units only</label>')

JS = """
window.onerror=function(m){var e=document.getElementById('js-errors');if(e){e.textContent+=m+'\\n';}};
function cellValue(td){var v=td.getAttribute('data-v');if(v===null){return td.textContent;}return v===''?NaN:parseFloat(v);}
function sortTable(table,col,dir){
  var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=cellValue(a.cells[col]),y=cellValue(b.cells[col]);
    var nx=(typeof x==='number')&&isNaN(x),ny=(typeof y==='number')&&isNaN(y);
    if(nx||ny){return nx===ny?0:(nx?1:-1);}
    if(typeof x==='string'){return dir*x.localeCompare(y,undefined,{numeric:true});}return dir*(x-y);});
  rows.forEach(function(r){body.appendChild(r);});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){th.className=th.className.replace(/ ?(asc|desc)/g,'');
    if(i===col){th.className+=(dir>0?' asc':' desc');}});
}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(table){
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    th.addEventListener('click',function(){sortTable(table,i,/ asc/.test(th.className)?-1:1);});});});
(function(){var m=/[?&]sort=(-?)([A-Za-z_]+)/.exec(window.location.search);if(!m){return;}
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'),function(t){
    Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){if(th.getAttribute('data-key')===m[2]){sortTable(t,i,m[1]?-1:1);}});});})();
function goodOnly(on){
  Array.prototype.forEach.call(document.querySelectorAll('tr.bad, section.el.no-good, .grid a.no-good'),
    function(el){el.style.display=on?'none':'';});
  document.body.className=on?'good-only':'';}
(function(){var cb=document.getElementById('good-only');if(!cb){return;}
  cb.addEventListener('change',function(){goodOnly(cb.checked);});
  if(/[?&]good=1/.test(window.location.search)){cb.checked=true;goodOnly(true);}})();
"""


LEFT = ' class="l"'


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def fmt(v) -> str:
    """A table cell's text: 3 significant digits, '–' for undefined."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, np.floating):
        v = float(v)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
    return esc(v)


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def kv_table(d: dict) -> str:
    rows = "".join(f'<tr><th class="l">{esc(k)}</th><td class="l">{fmt(v)}</td></tr>' for k, v in d.items())
    return f"<table>{rows}</table>"


def units_table(rows: list[dict], table_id: str, preset: str | None = None) -> str:
    """A sortable table of metric rows; electrode cells link to the electrode section.

    With ``preset``, hovering a ``good`` cell lists the rules the unit fails.
    """
    from ..quality import failed_rules

    head = "".join(f'<th data-key="{c}"{LEFT if c == "channel_id" else ""}>{esc(c)}</th>' for c in TABLE_COLUMNS)
    body = []
    for r in rows:
        cells = []
        for c in TABLE_COLUMNS:
            v = r.get(c)
            if c == "channel_id":
                cells.append(f'<td class="l" data-v="{int(r["electrode"])}"><a href="#el-{r["electrode"]}">{esc(v)}</a></td>')
            elif c == "good":
                why = "; ".join(failed_rules(r, preset)) if preset and not v else ""
                tip = f' title="fails: {esc(why)}"' if why else ""
                cells.append(f'<td class="g" data-v="{int(bool(v))}"{tip}>{fmt(bool(v))}</td>')
            else:
                num = "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))
                cells.append(f'<td data-v="{num}">{fmt(v)}</td>')
        body.append(f'<tr class="{"good" if r.get("good") else "bad"}">{"".join(cells)}</tr>')
    return (f'<div class="scroll"><table class="sortable" id="{esc(table_id)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def summary_section(ctx, metrics: dict) -> str:
    sp = ctx.spikes
    facts = {k: ctx.recording_info[k] for k in ("source", "kind", "reader", "fs", "n_channels", "duration_s")
             if k in ctx.recording_info}
    facts["spikes"] = sp.n_spikes
    facts["electrodes with spikes"] = f"{np.count_nonzero(count_values(sp.electrode))} of {sp.n_electrodes}"
    for m in ctx.methods:
        rows = metrics[m]
        facts[f"units ({m})"] = f"{len(rows)} ({sum(r['good'] for r in rows)} good)"
        totals = (getattr(ctx.sortings.get(m), "params", None) or {}).get("totals", {})
        if "noise" in totals:
            facts[f"detections left unsorted as noise crossings ({m})"] = totals["noise"]
    times = {}
    for stage, t in ctx.timings.items():
        if isinstance(t, dict):
            times[stage] = f"{t.get('seconds', float('nan')):.2f} s" + (
                f", peak RSS {t['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in t else "")
        else:
            times[stage] = f"{float(t):.2f} s"
    cfg = json.dumps(ctx.config, indent=1, default=str)
    return ("<h2 id='summary'>Run summary</h2>" + kv_table(facts)
            + ("<h3>Time per stage</h3>" + kv_table(times) if times else "")
            + f"<details><summary>Resolved configuration</summary><pre>{esc(cfg)}</pre></details>")


def _median(rows: list[dict], key: str) -> float:
    v = np.array([r[key] for r in rows], dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def comparison_section(ctx, metrics: dict) -> str:
    """Methods side by side: units, good units, medians of the shared-space metrics, GT scores."""
    keys = ("snr", "isolation_distance", "l_ratio", "nn_hit_rate", "silhouette")
    head = ["method", "units", "good units", "sorted spikes"] + [f"median {k}" for k in keys]
    gt = ctx.gt_scores or {}
    if gt:
        head += ["GT mean accuracy", "GT well detected"]
    rows = []
    for m in ctx.methods:
        s, r = ctx.sortings[m], metrics[m]
        cells = [m, len(r), sum(x["good"] for x in r), f"{(s.unit >= 0).mean():.1%}" if s.unit.size else "–"]
        cells += [fmt(_median(r, k)) for k in keys]
        if gt:
            g = gt.get(m)
            cells += [fmt(g["mean_accuracy"]), f"{g['n_well_detected']} / {g['n_gt_units']}"] if g else ["–", "–"]
        rows.append("<tr>" + "".join(f"<td>{c if isinstance(c, str) else fmt(c)}</td>" for c in cells) + "</tr>")
    out = ("<h2 id='comparison'>Feature methods compared</h2><p>All metrics in the same feature space "
           "(PCA of each electrode's noise-scaled waveforms), so the methods are judged on one ruler.</p>"
           f"<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in head)}</tr>{''.join(rows)}</table>")
    if gt:
        out += "<h3>Ground truth</h3>" + img(fg.gt_accuracy(gt), "accuracy per ground-truth unit") + gt_table(gt)
    return out


def gt_table(gt: dict) -> str:
    methods = list(gt)
    per = {m: {u["gt_unit"]: u for u in gt[m]["units"]} for m in methods}
    ids = sorted(set().union(*[set(p) for p in per.values()]))
    head = ["gt_unit", "electrode", "n_gt"] + [f"{m} {k}" for m in methods for k in ("unit", "accuracy", "precision", "recall")]
    body = []
    for g in ids:
        first = next(p[g] for p in per.values() if g in p)
        cells = [g, first.get("electrode", "–"), first.get("n_gt", "–")]
        for m in methods:
            u = per[m].get(g, {})
            cells += [u.get("sorted_unit", "–"), u.get("accuracy"), u.get("precision"), u.get("recall")]
        body.append("<tr>" + "".join(f'<td data-v="{"" if not isinstance(c, (int, float)) else c}">{fmt(c)}</td>'
                                     for c in cells) + "</tr>")
    return ('<div class="scroll"><table class="sortable" id="gt-units"><thead><tr>'
            + "".join(f'<th data-key="{esc(h)}">{esc(h)}</th>' for h in head)
            + f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def overview_nav(ctx, per_electrode: dict, cells: np.ndarray | None = None) -> str:
    """A grid of links to the electrode sections, with unit counts, each at its ``cells`` (row, column)."""
    if cells is None:
        i = np.arange(ctx.spikes.n_electrodes)
        cells = np.stack([i // 10, i % 10], axis=1)
    n_cols = int(cells[:, 1].max()) + 1 if len(cells) else 1
    out = []
    for e in range(ctx.spikes.n_electrodes):
        label = esc(ctx.spikes.channel_ids[e])
        at = f' style="grid-row:{int(cells[e, 0]) + 1};grid-column:{int(cells[e, 1]) + 1}"'
        info = per_electrode.get(e)
        if info is None:
            out.append(f'<span{at} data-e="{e}">{label}<br>–</span>')
        else:
            cls = "has-good" if info["n_good"] else "no-good"
            out.append(f'<a href="#el-{e}" class="{cls}"{at} data-e="{e}">{label}<br>'
                       f'{info["n_units"]} u / {info["n_good"]} g</a>')
    return f'<div class="grid" style="grid-template-columns:repeat({n_cols},1fr)">{"".join(out)}</div>'


def overview_section(ctx, per_electrode: dict, cells: np.ndarray, physical: bool, figure: dict) -> str:
    """The electrodes overview: links and mean waveforms in the array's layout (or in channel order)."""
    where = ("in their places on the array (x to the right, y up, from the recording's electrode positions)"
             if physical else "in channel order (no grid-like electrode positions in the recording)")
    return ("<h2 id='overview'>Electrodes</h2><p>Electrodes " + where + ", labelled by channel id: "
            "unit counts link to each electrode's section; below, the mean waveform of each unit "
            "(dashed: not good).</p>" + overview_nav(ctx, per_electrode, cells)
            + plots.figure_html(figure, "overview of all electrodes"))


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><pre id="js-errors"></pre>{body}<script>{JS}</script><script>{plots.script()}</script>'
            "<script>document.body.setAttribute('data-ready','1');</script></body></html>")
