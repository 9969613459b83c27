"""The data of the electrode figures that the report page draws (spikevae.report.plots)."""
import json
import re

import numpy as np

from spikevae.report import correlograms as cg
from spikevae.report import plots

FS = 30000.0
T_MS = (np.arange(48) - 16) / FS * 1000


def _unit(uid, amp, rng, n=150):
    shape = -np.exp(-0.5 * ((T_MS - 0.1 * uid) / 0.2) ** 2)
    waves = (amp * shape + rng.normal(0, 5, (n, T_MS.size))).astype(np.float32)
    t = np.sort(rng.choice(60 * int(FS), n, replace=False))
    return {"unit": uid, "good": uid % 2 == 0, "waves": waves, "acg": cg.correlogram(t, t, FS, auto=True),
            "amps": np.abs(amp * (1 + 0.1 * rng.normal(size=n))), "amplitude_cutoff": 0.01 * uid, "n_spikes": n}, t


def _electrode_args(amps, n_methods, seed, n=500):
    """Arguments of plots.electrode_figure: one unit per amplitude, cross-correlograms of every pair, scatters."""
    rng = np.random.default_rng(seed)
    units, times = zip(*[_unit(k, a, rng) for k, a in enumerate(amps)])
    ccgs = [(a, b, cg.correlogram(times[a], times[b], FS)) for a in range(len(amps)) for b in range(a + 1, len(amps))]
    ci = rng.integers(-1, len(amps), n)
    scatters = [(f"m{m}", rng.normal(size=(n, 3)) + ci[:, None], ci) for m in range(n_methods)]
    amp_time = (np.sort(rng.uniform(0, 60, n)), -np.abs(rng.normal(40, 10, n)), ci)
    return (f"e{seed}", list(units), T_MS, ccgs, cg.bin_edges_ms(), scatters, amp_time, 1.5, 20.0)


def test_quantisation_is_within_half_a_level_and_clips():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 30, 1000)
    lo, hi = float(x.min()), float(x.max())
    back = plots.dequantise(plots.quantise(x, lo, hi), lo, hi)
    assert np.abs(back - x).max() <= (hi - lo) / 255 / 2 + 1e-9
    assert np.allclose(plots.dequantise(plots.quantise([-1e9, 1e9], lo, hi), lo, hi), [lo, hi])


def test_figure_data_carries_every_panel_at_panel_resolution():
    args = _electrode_args([80.0, 120.0, 60.0], n_methods=2, seed=1)
    label, units, t_ms, ccgs, _, scatters, amp_time, refractory, thr = args
    d = plots.electrode_figure(*args)
    assert json.loads(json.dumps(d, allow_nan=False)) == d  # plain JSON
    assert (d["cols"], d["rows"]) == (3, 5) and d["title"] == "electrode e1 (threshold 20 µV dashed)"
    assert d["t"] == [round(t_ms[0], 5), round(t_ms[-1], 5)] and d["refractory_ms"] == refractory
    level = (d["wy"][1] - d["wy"][0]) / 255
    for u, src in zip(d["units"], units):
        traces = plots.dequantise(u["traces"], *d["wy"]).reshape(u["n_traces"], t_ms.size)
        assert u["n_traces"] == 75  # every other of the 150 waveforms (at most 100 drawn)
        assert np.abs(traces - src["waves"][::2]).max() <= level / 2 + 1e-6
        assert np.allclose(u["mean"], src["waves"].mean(axis=0), atol=0.006)
        assert u["acg"]["counts"] == src["acg"].tolist() and u["good"] == src["good"]
        assert sum(u["amp"]["counts"]) == src["amps"].size and u["amp"]["lo"] < thr < u["amp"]["hi"]
        assert u["amp"]["lo"] <= src["amps"].min() and u["amp"]["hi"] >= src["amps"].max()
    assert [g["counts"] for g in d["ccgs"]] == [c.tolist() for _, _, c in ccgs]
    assert [s["title"] for s in d["scatters"]] == ["m0 features", "m1 features", "amplitude over time"]
    for s, (x, y, ci) in zip(d["scatters"], [(f[:, 0], f[:, 1], c) for _, f, c in scatters] + [amp_time]):
        for key, v in (("x", x), ("y", y)):
            r = s[key + "r"]
            assert np.abs(plots.dequantise(s[key], *r) - v).max() <= (r[1] - r[0]) / 255 / 2 + 1e-6
        colour = np.frombuffer(__import__("base64").b64decode(s["c"]), np.uint8)
        assert np.array_equal(colour, ci + 1)  # 0: unsorted


def test_units_beyond_the_panels_are_counted_and_labels_cannot_close_the_script():
    args = list(_electrode_args([50.0 + 10 * k for k in range(8)], n_methods=1, seed=2))
    args[0] = "</script><b>x"
    d = plots.electrode_figure(*args, max_unit_panels=6)
    assert len(d["units"]) == 6 and d["more"] == 2 and len(d["ccgs"]) == 6 and d["cols"] == 6
    html = plots.figure_html(d, "electrode </script>")
    body = re.search(r'<script type="application/json">(.*)</script></div>$', html).group(1)
    assert "</script" not in body and json.loads(body)["title"].startswith("electrode </script><b>x")
    assert 'data-alt="electrode &lt;/script&gt;"' in html


def test_a_unit_without_waveforms_and_an_electrode_without_scatters():
    args = list(_electrode_args([70.0], n_methods=0, seed=3))
    args[1] = [dict(args[1][0], waves=np.zeros((0, T_MS.size), np.float32))]
    args[3] = []
    d = plots.electrode_figure(*args)
    assert d["units"][0]["n_traces"] == 0 and d["units"][0]["mean"] == [] and d["ccgs"] == []
    assert (d["cols"], d["rows"]) == (1, 4) and [s["title"] for s in d["scatters"]] == ["amplitude over time"]
    from spikevae.report.figures import PALETTE

    # the page's script colours units as the units table does
    assert plots.script().startswith(f"var SV_PALETTE = {json.dumps(list(PALETTE))}")
