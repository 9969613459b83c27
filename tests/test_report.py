"""The HTML report: content, self-containment, the run-folder command, and a headless-Chromium render."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spikevae.objects import Embedding, Sorting
from spikevae.quality.isolation import electrode_pca
from spikevae.quality.synthetic import make_units
from spikevae.report import ReportContext, render, write_report
from spikevae.report.context import normalise_history

N_EL = 3


def _features(spikes, k=3):
    f = np.zeros((spikes.n_spikes, k), np.float32)
    for e in range(spikes.n_electrodes):
        i = np.nonzero(spikes.electrode == e)[0]
        f[i] = electrode_pca(spikes.scaled_waveforms()[i], k)
    return f


@pytest.fixture(scope="module")
def run():
    spikes, pca = make_units(n_electrodes=N_EL + 1, units_per_electrode=2, duration_s=90.0, rate_hz=5.0,
                             unsorted_fraction=0.05, seed=5)
    # The last electrode has no spikes at all (a dead channel).
    spikes = spikes.subset(spikes.electrode < N_EL)
    pca = Sorting(pca.sample_index[pca.electrode < N_EL], pca.electrode[pca.electrode < N_EL],
                  pca.unit[pca.electrode < N_EL], pca.fs)
    vae_units = np.where(pca.unit % 2 == 1, pca.unit - 1, pca.unit)  # merges the two units of each electrode
    vae = Sorting(pca.sample_index, pca.electrode, vae_units, pca.fs)
    f = _features(spikes)
    emb = {"pca": Embedding(f, "pca"), "vae": Embedding(f[:, ::-1] * 0.5, "vae")}
    return spikes, {"pca": pca, "vae": vae}, emb


def _context(run, **kw):
    spikes, sortings, emb = run
    from spikevae.compare import compare_sortings

    history = [{"epoch": i, "train_recon": 5 / (i + 1), "train_kl": 0.1 * i, "train_total": 5 / (i + 1) + 0.1 * i,
                "val_recon": 6 / (i + 1), "val_kl": 0.1 * i, "val_total": 6 / (i + 1) + 0.1 * i} for i in range(8)]
    base = dict(spikes=spikes, sortings=sortings, main_method="pca", embeddings=emb,
                recording_info={"source": "synthetic.ns5", "fs": 30000.0, "n_channels": N_EL + 1, "duration_s": 90.0},
                config={"quality": {"preset": "spikevae"}}, timings={"detect": {"seconds": 1.5, "peak_rss_mb": 200.0}},
                history=history, gt_scores={m: compare_sortings(sortings["pca"], s) for m, s in sortings.items()})
    return ReportContext(**(base | kw))


@pytest.fixture(scope="module")
def report_path(run, tmp_path_factory):
    return write_report(tmp_path_factory.mktemp("report") / "r" / "report.html", _context(run))


def _data_images(text: str) -> list[str]:
    return re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


def _figures(text: str) -> list[dict]:
    """The data of the electrode figures the page draws (spikevae.report.plots)."""
    return [json.loads(t) for t in re.findall(r'<div class="fig" data-alt="[^"]*"><script type="application/json">'
                                              r'(.*?)</script>', text)]


def test_report_has_every_section_and_no_external_resource(report_path):
    text = report_path.read_text()
    # training curves + ground-truth figure; drawn by the page: a figure per electrode with units, the overview
    assert len(_data_images(text)) == 2 and len(_figures(text)) == N_EL + 1
    for anchor in ("summary", "comparison", "training", "units", "overview", "el-0", "el-2"):
        assert f"id='{anchor}'" in text or f'id="{anchor}"' in text
    assert 'id="el-3"' not in text  # the dead electrode has no section, only a grid cell
    assert text.count('<tr class="good">') + text.count('<tr class="bad">') >= 2 * N_EL * 2
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<link" not in text and "<script src" not in text
    assert "GT mean accuracy" in text and "synthetic.ns5" in text
    # The "vae" sorting merged two neurons per electrode: their refractory violations fail the unit.
    assert len(re.findall(r'<td class="g" data-v="0" title="fails: rp_contamination [^"]+">no</td>', text)) == N_EL
    # PNG magic in every image
    import base64

    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in _data_images(text))


def test_report_without_optional_parts(run, tmp_path):
    spikes, sortings, _ = run
    ctx = ReportContext(spikes=spikes, sortings={"pca": sortings["pca"]})
    text = render(ctx)
    assert "VAE training" not in text and "Ground truth" not in text
    assert len(_data_images(text)) == 0 and len(_figures(text)) == N_EL + 1
    assert ctx.duration_s == pytest.approx((sortings["pca"].sample_index.max() + 1) / spikes.fs)


def test_context_checks_its_inputs(run):
    spikes, sortings, emb = run
    with pytest.raises(ValueError, match="main_method 'ae' is not one of"):
        ReportContext(spikes=spikes, sortings=sortings, main_method="ae")
    with pytest.raises(ValueError, match="embedding 'pca' has 5 rows"):
        ReportContext(spikes=spikes, sortings=sortings, embeddings={"pca": Embedding(emb["pca"].features[:5], "pca")})
    h = normalise_history([{"train_recon": 2.0, "val_recon": 3.0}, {"train_recon": 1.0, "val_recon": 2.5}])
    assert h == {"train_recon": [2.0, 1.0], "val_recon": [3.0, 2.5]}


def _make_run_folder(run, out: Path) -> None:
    from spikevae.store import RunStore

    spikes, sortings, emb = run
    store = RunStore(out)
    store.save_spikes(spikes, {}, "h0")
    for m in sortings:
        store.save_embedding(emb[m], {}, f"e-{m}")
        store.save_sorting(sortings[m], m, {}, f"s-{m}")
    store.set_root_attrs(recording={"source": "synthetic.ns5", "fs": 30000.0, "duration_s": 90.0},
                         config={"features": {"method": "vae"}, "quality": {"preset": "allen"}},
                         timings={"detect": {"seconds": 2.0}})


def test_report_command_regenerates_from_run_folder(run, tmp_path, capsys):
    from spikevae.cli import main

    out = tmp_path / "out"
    _make_run_folder(run, out)
    gt = tmp_path / "gt.npz"
    run[1]["pca"].save_npz(gt)
    main(["report", str(out), "--gt", str(gt)])
    msg = capsys.readouterr().out
    assert "vae:" in msg and "ground-truth mean accuracy 1.000" in msg  # the pca sorting is the truth here
    text = (out / "report.html").read_text()
    assert "<h3>vae</h3>" in text and "preset <b>allen</b>" in text
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["preset"]["name"] == "allen" and len(doc["units"]) == N_EL  # vae merged pairs: one unit each
    header = (out / "units.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["unit", "electrode", "channel_id"] and "n_spikes" in header
    assert not (out / ".spill.tmp").exists()  # its per-spike arrays' folder goes with the command


def test_report_command_errors_are_one_line(tmp_path, capsys):
    from spikevae.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "nothing")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no run store" in err and err.count("\n") == 1


# --- headless browser ----------------------------------------------------------------------

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chrome(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    exe = _chromium()
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chrome-profile'}"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_path, tmp_path):
    if _chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    path = report_path
    res = _chrome(["--virtual-time-budget=5000", "--dump-dom", f"{path.as_uri()}?sort=-snr&draw=all"], tmp_path)
    dom = res.stdout
    assert 'data-ready="1"' in dom, res.stderr[-2000:]  # the inline script ran to its end
    assert re.search(r'<pre id="js-errors"></pre>', dom), "a script error was reported"
    # ?draw=all: every electrode figure drawn from its data and kept as a PNG image beside it.
    assert len(_data_images(dom)) == N_EL + 3 and dom.count('data-drawn="1"') == N_EL + 1
    _check_drawn_figures(dom)
    # ?sort=-snr sorted the first units table by SNR, descending, in the browser.
    table = dom.split('id="units-pca"')[1].split("</table>")[0]
    snr_col = 5  # unit, channel_id, n_spikes, firing_rate_hz, amplitude_uv, snr
    snrs = [float(re.findall(r'<td[^>]*data-v="([^"]*)"', row)[snr_col]) for row in table.split("<tr")[2:]]
    assert len(snrs) == 2 * N_EL and snrs == sorted(snrs, reverse=True)
    shot = tmp_path / "shot.png"
    _chrome(["--window-size=1400,2400", f"--screenshot={shot}", path.as_uri()], tmp_path)
    from PIL import Image

    im = np.asarray(Image.open(shot).convert("L"))
    assert im.shape == (2400, 1400) and im.std() > 20  # a page with content, not a blank
    # ?good=1 ticks the good-unit filter: its script hides every not-good row (and no good one).
    dom = _chrome(["--virtual-time-budget=5000", "--dump-dom", f"{path.as_uri()}?good=1"], tmp_path).stdout
    assert 'data-ready="1"' in dom and '<body class="good-only"' in dom
    bad, good = re.findall(r'<tr class="bad"([^>]*)>', dom), re.findall(r'<tr class="good"([^>]*)>', dom)
    assert len(bad) >= N_EL and all('style="display: none;"' in a for a in bad)
    assert good and not any("display" in a for a in good)


def _check_drawn_figures(dom: str) -> None:
    """Each drawn figure has the size its layout gives (cells of 216 x 154 CSS px under a 26-px title, at 1.5-2 device
    pixels per CSS pixel) and shows, in its first waveform panel, the colour of the first unit."""
    import base64
    import io

    from PIL import Image

    drawn = re.findall(r'<div class="fig" data-alt="(electrode [^"]*)"[^>]*><script type="application/json">(.*?)</script>'
                       r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    assert len(drawn) == N_EL
    for alt, data, img_alt, b64 in drawn:
        fig = json.loads(data)
        im = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")).astype(int)
        scale = im.shape[1] / (216 * fig["cols"])
        assert alt == img_alt and 1.5 <= scale <= 2 and im.shape[0] == round((26 + 154 * fig["rows"]) * scale)
        panel = im[int(44 * scale):int(150 * scale), int(42 * scale):int(206 * scale)]  # first waveform plot box
        blue = np.abs(panel - np.array([0x1F, 0x77, 0xB4])).sum(axis=2) < 40
        assert blue.sum() > 50 and im.std() > 20


# --- real Blackrock spikes ------------------------------------------------------------------

@pytest.mark.data
@pytest.mark.slow
def test_report_of_real_utah_nev_spikes(shared_data, tmp_path):
    """The 96-electrode report of a real Blackrock .nev (2 s, 20k spikes): one unit per electrode."""
    import time

    from conftest import require_data
    from spikevae.io.nev import read_nev
    from spikevae.quality import compute_metrics
    from spikevae.quality_config import QualityConfig

    nev = require_data(shared_data / "blackrock_limblab_utah" / "Han_20170516.nev")
    spikes = read_nev(nev)
    sorting = Sorting(spikes.sample_index, spikes.electrode, spikes.electrode, spikes.fs)
    duration = (spikes.sample_index.max() + 1) / spikes.fs
    metrics = compute_metrics(spikes, sorting, QualityConfig(), duration)
    assert len(metrics) == np.unique(spikes.electrode).size == 96
    assert sum(r["n_spikes"] for r in metrics) == spikes.n_spikes
    assert all(r["snr"] > 0 and r["n_spikes_matched"] == r["n_spikes"] for r in metrics)
    ctx = ReportContext(spikes=spikes, sortings={"pca": sorting}, metrics={"pca": metrics},
                        recording_info={"source": nev.name, "duration_s": duration})
    t0 = time.perf_counter()
    path = write_report(tmp_path / "report.html", ctx)
    elapsed = time.perf_counter() - t0
    text = path.read_text()
    assert len(_figures(text)) == 96 + 1 and text.count('<section class="el') == 96
    assert path.stat().st_size < 15e6 and elapsed < 60


def test_report_of_a_sorting_without_units(run):
    spikes, sortings, _ = run
    s = sortings["pca"]
    empty = Sorting(s.sample_index, s.electrode, np.full(s.unit.shape, -1), s.fs)
    text = render(ReportContext(spikes=spikes, sortings={"pca": empty}))
    # No electrode has a unit: no electrode section, one line naming them all (collapsed), the overview only.
    assert text.count('<section class="el') == 0 and [f.get("kind") for f in _figures(text)] == ["overview"]
    line = re.search(r'<p id="no-units">(.*?)</p>', text).group(1)
    n_spikes = [int((s.electrode == e).sum()) for e in range(N_EL)]
    assert line == (f"Electrodes without pca units ({N_EL + 1}): no spikes: {spikes.channel_ids[N_EL]}; only unsorted "
                    "spikes: " + ", ".join(f"{spikes.channel_ids[e]} ({n_spikes[e]} spikes)" for e in range(N_EL)))


# --- what a curator looks at (issue 11) -------------------------------------------------------

def _brute_correlogram(t1, t2, fs, window_ms, bin_ms, auto):
    from spikevae.report.correlograms import bin_edges_ms

    d = (np.asarray(t2, float)[None, :] - np.asarray(t1, float)[:, None]) * 1000 / fs
    if auto:
        d = d[~np.eye(len(t1), dtype=bool)]
    edges = bin_edges_ms(window_ms, bin_ms)
    return np.array([np.sum((d >= lo) & (d < hi)) for lo, hi in zip(edges[:-1], edges[1:])])


def test_correlograms_match_a_brute_force_count(monkeypatch):
    from spikevae.report import correlograms as cg

    # Hand-built train at 1 kHz (1 sample = 1 ms): 0, 3, 4, 60: auto pairs at ±1, ±3, ±4, ±56 (out of window).
    t = np.array([0, 3, 4, 60])
    acg = cg.correlogram(t, t, 1000.0, window_ms=10, bin_ms=1, auto=True)
    edges = cg.bin_edges_ms(10, 1)
    assert acg.shape == (20,) and acg.sum() == 6
    assert {float(edges[k]): int(c) for k, c in enumerate(acg) if c} == {-4: 1, -3: 1, -1: 1, 1: 1, 3: 1, 4: 1}
    ccg = cg.correlogram(t, np.array([5, 100]), 1000.0, window_ms=10, bin_ms=1)
    assert {float(edges[k]): int(c) for k, c in enumerate(ccg) if c} == {1: 1, 2: 1, 5: 1}  # 5-4, 5-3, 5-0
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 30000 * 4, 700), rng.integers(0, 30000 * 4, 400)
    monkeypatch.setattr(cg, "MAX_PAIRS", 50)  # many small chunks: the same counts
    for x, y, auto in ((a, a, True), (a, b, False), (b, a, False)):
        got = cg.correlogram(x, y, 30000.0, auto=auto)
        assert got.shape == (100,) and got.sum() > 0
        assert np.array_equal(got, _brute_correlogram(np.sort(x), np.sort(y), 30000.0, 50, 1, auto))
    assert cg.correlogram(np.array([], int), b, 30000.0).sum() == 0


def test_physical_grid_cells_of_a_utah_map():
    from spikevae.recording import utah_positions
    from spikevae.report.layout import grid_cells

    pos = utah_positions()  # row by row from y = 0, corners dropped: 96 sites
    perm = np.random.default_rng(0).permutation(96)
    cells, physical = grid_cells(pos[perm].tolist(), 96)
    assert physical and cells.shape == (96, 2)
    expected = np.stack([9 - pos[perm, 1] / 400, pos[perm, 0] / 400], axis=1)  # largest y on the top row
    assert np.array_equal(cells, expected)
    assert {tuple(c) for c in cells}.isdisjoint({(0, 0), (0, 9), (9, 0), (9, 9)})
    # Fallbacks to channel order: no positions, NaN, two electrodes on one site, off-grid.
    for bad in (None, [[np.nan, 0]] * 96, np.zeros((96, 2)), np.c_[np.arange(96) ** 1.5, np.zeros(96)]):
        cells, physical = grid_cells(bad, 96)
        assert not physical and tuple(cells[13]) == (1, 3)


def test_report_collapses_electrodes_without_units_and_places_the_grid(run):
    spikes, sortings, emb = run
    s = sortings["pca"]
    unit = np.where(s.electrode == 1, -1, s.unit)  # electrode 1 keeps its spikes but loses its units
    ctx = _context(run, sortings={"pca": Sorting(s.sample_index, s.electrode, unit, s.fs)},
                   embeddings={"pca": emb["pca"]}, gt_scores=None, history=None,
                   recording_info={"duration_s": 90.0, "positions_um": [[0, 400], [400, 400], [0, 0], [400, 0]]},
                   config={"detect": {"threshold": 4.0}})
    text = render(ctx)
    assert re.findall(r'<section class="el[^"]*" id="el-(\d+)"', text) == ["0", "2"]  # panels = electrodes with units
    figs = _figures(text)
    assert [f.get("title") for f in figs[1:]] == [
        f"electrode {spikes.channel_ids[e]} (threshold {4.0 * spikes.noise_uv[e]:.0f} µV dashed)" for e in (0, 2)]
    overview = figs[0]
    assert overview["kind"] == "overview" and (overview["rows"], overview["cols"]) == (2, 2)
    assert [(p["r"], p["c"], len(p["means"])) for p in overview["panels"]] == [(0, 0, 2), (0, 1, 0), (1, 0, 2), (1, 1, 0)]
    n1 = int((spikes.electrode == 1).sum())
    assert re.search(r'<p id="no-units">(.*?)</p>', text).group(1) == (
        f"Electrodes without pca units (2): no spikes: {spikes.channel_ids[3]}; "
        f"only unsorted spikes: {spikes.channel_ids[1]} ({n1} spikes)")
    # The overview grid in the array's layout: y up, x to the right.
    found = re.findall(r'style="grid-row:(\d+);grid-column:(\d+)" data-e="(\d)"', text)
    at = {e: (int(r), int(c)) for r, c, e in found}
    assert at == {"0": (1, 1), "1": (1, 2), "2": (2, 1), "3": (2, 2)} and "places on the array" in text
    assert 'id="good-only"' in text and "function goodOnly" in text
    from spikevae.report.build import detection_threshold_uv

    assert detection_threshold_uv(ctx, 0) == pytest.approx(4.0 * spikes.noise_uv[0])
    assert detection_threshold_uv(_context(run, config={}), 0) is None
    assert "in channel order" in render(_context(run, gt_scores=None, history=None, embeddings={}))


def test_report_command_method_picks_the_curated_sorting(run, tmp_path, capsys):
    from spikevae.cli import main
    from spikevae.store import RunStore

    out = tmp_path / "out"
    _make_run_folder(run, out)
    s = run[1]["pca"]
    RunStore(out).save_sorting(Sorting(s.sample_index, s.electrode, np.where(s.unit % 2 == 1, -1, s.unit), s.fs),
                               "curated", {}, "s-curated")
    main(["report", str(out), "--method", "curated"])
    assert capsys.readouterr().out.startswith(f"curated: {N_EL} units")
    text = (out / "report.html").read_text()
    assert "<h3>curated</h3>" in text and "<summary>vae units</summary>" in text
    with pytest.raises(SystemExit) as exc:
        main(["report", str(out), "--method", "kilosort"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count("\n") == 1
    assert "no sorting 'kilosort'" in err and "curated, pca, vae" in err


def test_report_memory_per_spike_is_small_and_per_electrode_work_bounded():
    """Peak memory of the metrics and the page grows by a few bytes per spike (int32 labels and index
    groups, int64 matches), and per-electrode work by nothing past ``quality.isolation_max_spikes``: from
    19k to 96k spikes the traced peak grows by ~31 bytes per spike (244 before the per-spike state was cut)."""
    import tracemalloc

    from spikevae.quality.synthetic import make_units

    def peak(duration_s):
        spikes, s = make_units(n_electrodes=4, units_per_electrode=2, duration_s=duration_s, rate_hz=40.0, seed=1)
        ctx = ReportContext(spikes=spikes, sortings={"pca": s}, recording_info={"duration_s": duration_s},
                            config={"quality": {"isolation_max_spikes": 2000, "nn_max_spikes": 2000}})
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            render(ctx)
            return spikes.n_spikes, tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()

    peak(20.0)  # imports and caches
    (n1, p1), (n2, p2) = peak(60.0), peak(300.0)
    assert n2 > 4 * n1 and (p2 - p1) / (n2 - n1) < 60
