"""Artefact rejection: events on many electrodes at once, too large for a neuron, artefact electrodes."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from conftest import SHARED_DATA, require_data
from spikevae.artefacts import ALL_ELECTRODES, ArtefactConfig, find_artefacts, reject_artefacts
from spikevae.objects import Spikes

FS = 30000.0
NEV = SHARED_DATA / "blackrock_limblab_utah" / "Han_20170516.nev"


def make_spikes(t, e, amp=None, n_el=16) -> Spikes:
    t, e = np.asarray(t, np.int64), np.asarray(e, np.int64)
    amp = np.full(t.size, -80.0, np.float32) if amp is None else np.asarray(amp, np.float32)
    wf = np.zeros((t.size, 32), np.float32)
    wf[:, 10] = amp
    return Spikes(t, e, wf, amp, np.full(n_el, 8.0, np.float32), FS, 10, np.array([str(i + 1) for i in range(n_el)]))


def poisson_spikes(rng, n_el=16, rate=40.0, dur=20.0):
    t, e = [], []
    for el in range(n_el):
        k = rng.poisson(rate * dur)
        t.append(rng.integers(0, int(dur * FS), k))
        e.append(np.full(k, el))
    t, e = np.concatenate(t), np.concatenate(e)
    return t, e


def test_coincident_crossings_on_many_electrodes_are_one_event_and_their_window_is_blanked():
    rng = np.random.default_rng(0)
    t, e = poisson_spikes(rng)
    ev = 300_000
    hit = np.arange(12)  # 12 of 16 electrodes within 0.3 ms
    t2 = np.r_[t, ev + rng.integers(0, 9, hit.size), ev + 45]  # + ringing 1.5 ms later on electrode 13
    e2 = np.r_[e, hit, 13]
    art, removed = find_artefacts(make_spikes(t2, e2), ArtefactConfig())
    assert art.n_events == 1 and art.kind[0] == 0 and art.electrode[0] == ALL_ELECTRODES
    assert abs(int(art.start[0]) - ev) <= 9 and art.n_electrodes[0] >= 12
    lo, hi = ev - 15, int(art.end[0]) + 60  # 0.5 ms before, 2 ms after
    assert np.array_equal(removed, (t2 >= lo) & (t2 <= hi))
    assert art.n_spikes_removed == removed.sum() == art.n_removed.sum()


def test_independent_firing_and_a_seven_electrode_burst_are_not_artefacts():
    rng = np.random.default_rng(1)
    t, e = poisson_spikes(rng, rate=60.0)
    t2, e2 = np.r_[t, 100_000 + np.arange(7)], np.r_[e, np.arange(7)]  # below min_electrodes = 8
    art, removed = find_artefacts(make_spikes(t2, e2))
    assert art.n_events == 0 and not removed.any()
    clean, art = reject_artefacts(make_spikes(t, e))
    assert clean.n_spikes == t.size


def test_too_large_spike_blanks_only_its_electrode_and_a_frequent_one_removes_the_electrode():
    t = np.array([1000, 1010, 1020, 5000, 90_000])
    e = np.array([2, 2, 3, 2, 2])
    amp = np.array([-80, -4000, -80, -80, -80])
    art, removed = find_artefacts(make_spikes(t, e, amp))
    assert art.n_events == 1 and art.kind[0] == 1 and art.electrode[0] == 2
    assert removed.tolist() == [True, True, False, False, False]
    # an electrode driven past the limit over and over is left out entirely
    t = np.r_[np.arange(10) * 3000, 31_000, 32_000]
    e = np.r_[np.full(10, 5), 5, 6]
    amp = np.r_[np.full(10, -5000.0), -80, -80]
    art, removed = find_artefacts(make_spikes(t, e, amp), duration_s=2.0)
    assert art.excluded_electrodes.tolist() == [5]
    assert removed.tolist() == [True] * 11 + [False]
    art, removed = find_artefacts(make_spikes(t, e, amp), ArtefactConfig(max_electrode_rate_hz=0), duration_s=2.0)
    assert art.excluded_electrodes.size == 0 and removed.sum() == 10


def test_disabled_removes_nothing():
    t = np.r_[np.arange(16) + 1000]
    art, removed = find_artefacts(make_spikes(t, np.arange(16)), ArtefactConfig(enabled=False))
    assert art.n_events == 0 and not removed.any()


@pytest.fixture(scope="module")
def sim_with_artefacts():
    from spikevae.synth import SimConfig, simulate_recording

    return simulate_recording(SimConfig(n_electrodes=12, duration_s=8.0, artefact_rate_hz=6.0), seed=3)


def _artefact_units(sorting, onsets, tol=90) -> int:
    n = 0
    for u in sorting.unit_ids:
        t = sorting.sample_index[sorting.unit == u]
        j = np.searchsorted(onsets, t, "right") - 1
        n += int(((j >= 0) & (t - onsets[np.maximum(j, 0)] <= tol)).mean() > 0.5)
    return n


def test_injected_artefacts_are_found_and_leave_no_artefact_units(sim_with_artefacts, tmp_path):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    rec, gt = sim_with_artefacts
    onsets = rec.unit_info.artefact_sample_index
    assert onsets.size >= 30
    r = run_pipeline(rec, load_config(), tmp_path / "on", gt=gt, report=False)
    a = r.artefacts
    assert a.kind.tolist() == [0] * a.n_events and 0.9 * onsets.size <= a.n_events <= onsets.size
    inside = (onsets[:, None] >= a.start[None] - 30) & (onsets[:, None] <= a.end[None] + 30)
    assert inside.any(axis=1).all()  # every injected pulse is within 1 ms of a found event (close ones merge)
    assert _artefact_units(r.sorting, onsets) == 0
    rows = list(csv.DictReader(open(tmp_path / "on" / "artefacts.csv")))
    assert len(rows) == a.n_events and {row["kind"] for row in rows} == {"coincident"}
    summary = json.loads((tmp_path / "on" / "summary.json").read_text())
    assert summary["artefacts"]["n_events"] == a.n_events
    # the spikes kept are a subset of those stored: their features sit at the waveforms' rows, one row map
    assert r.embeddings["pca"].features.row is r.spikes.waveforms.row and r.spikes.n_spikes < a.n_spikes_before
    off = run_pipeline(rec, load_config(overrides=["artefact.enabled=false"]), tmp_path / "off", gt=gt, report=False)
    assert _artefact_units(off.sorting, onsets) >= 5  # without rejection the artefacts form units
    assert not (tmp_path / "off" / "artefacts.csv").exists()


def test_rejection_changes_nothing_where_there_are_no_artefacts(tmp_path):
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=12, duration_s=6.0), seed=4)
    on = run_pipeline(rec, load_config(), tmp_path / "on", report=False)
    off = run_pipeline(rec, load_config(overrides=["artefact.enabled=false"]), tmp_path / "off", report=False)
    assert on.artefacts.n_events == 0 and off.artefacts.n_events == 0 and on.spikes.n_spikes == off.spikes.n_spikes
    assert (tmp_path / "on" / "sorting.npz").read_bytes() == (tmp_path / "off" / "sorting.npz").read_bytes()


def test_real_stimulation_session_artefact_units_disappear(tmp_path):
    from spikevae.io.nev import read_nev
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    spikes = read_nev(require_data(NEV))
    off = run_pipeline(spikes, load_config(overrides=["artefact.enabled=false"]), tmp_path / "off", report=False)
    big = [u for u in off.sorting.unit_ids if off.sorting.electrode[off.sorting.unit == u][0] == 63]
    assert len(big) >= 2  # the stimulation artefacts on channel 64 form units without rejection
    on = run_pipeline(spikes, load_config(), tmp_path / "on", report=True)
    assert 63 in on.artefacts.excluded_electrodes.tolist()
    assert on.artefacts.n_events >= 100 and on.artefacts.n_spikes_removed > 0.8 * spikes.n_spikes
    assert len(on.sorting.unit_ids) == 0
    page = (tmp_path / "on" / "report.html").read_text()
    assert "<h2 id='artefacts'>Artefacts</h2>" in page and "artefact electrodes left out entirely: 64" in page
    assert 'alt="artefact events"' in page


def test_channel_at_the_int16_rail_is_named_in_a_warning_and_the_summary(tmp_path, caplog):
    from click.testing import CliRunner

    from spikevae.cli import cli

    rng = np.random.default_rng(5)
    x = (rng.normal(0, 40, (60_000, 4))).astype(np.int16)
    x[1000:1400, 2] = 32767  # channel "2" (the third) saturates
    x[20_000:20_300, 2] = -32768
    path = tmp_path / "rail.dat"
    x.tofile(path)
    before = path.read_bytes()
    res = CliRunner().invoke(cli, ["run", str(path), "--format", "raw", "--fs", "30000", "--n-channels", "4",
                                   "--dtype", "int16", "--gain-uv", "0.25", "-o", str(tmp_path / "out"), "--no-report"])
    assert res.exit_code == 0, res.output
    warned = [r.getMessage() for r in caplog.records if "reach the ADC rail" in r.getMessage()]
    assert len(warned) == 1 and re.search(r"flattened\): 2 \(\d+\.\d\d % of samples\)$", warned[0]), warned
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["clipped_channels"] == ["2"]
    assert path.read_bytes() == before


def test_coincidence_windows_do_not_depend_on_the_block_size():
    """Coincidences are counted over blocks of spikes (bounded memory on hours of recording): any block
    size finds the same windows, including those that straddle a block's border."""
    from spikevae.artefacts.find import _coincident_windows, _coincident_windows_block

    rng = np.random.default_rng(0)
    t = [np.sort(rng.integers(0, 3_000_000, 100_000))]
    e = [rng.integers(0, 96, 100_000)]
    for x in rng.integers(0, 3_000_000, 40):  # shared events
        t.append(x + rng.integers(0, 10, 20))
        e.append(rng.choice(96, 20, replace=False))
    t, e = np.concatenate(t), np.concatenate(e)
    o = np.argsort(t, kind="stable")
    t, e = t[o], e[o]
    whole = _coincident_windows_block(t, e, 96, 15, 8)
    assert whole.size >= 40
    for block in (500, 4099, 1 << 20):
        np.testing.assert_array_equal(_coincident_windows(t, e, 96, 15, 8, block=block), whole)
