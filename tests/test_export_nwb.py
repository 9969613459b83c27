"""NWB export: the file read back with pynwb equals the run (units, spike times, waveforms,
electrodes, metrics, configuration), nwbinspector finds nothing critical, and the CLI works."""
from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from spikevae.cli import main
from spikevae.errors import SpikevaeError

pynwb = pytest.importorskip("pynwb")

from spikevae.exports.nwb import (  # noqa: E402
    UNKNOWN_SUBJECT, blackrock_time_origin, export_nwb, label_columns, session_start_time, waveform_stats,
)
from spikevae.objects import Sorting  # noqa: E402
from spikevae.store import load_run_info, load_spikes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "sample.ns5"
#: Six of the sixteen electrodes, one process, refinement and overlap resolution off: the export does not
#: depend on them, and this keeps the module's one sort (with its report) to a few seconds.
FAST = ['input.channels=["1", "2", "3", "4", "5", "6"]', "run.n_jobs=1", "cluster.refine.enabled=false",
        "cluster.overlap.enabled=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The sample data sorted once (with metrics.json) and exported once to NWB."""
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline

    d = tmp_path_factory.mktemp("nwb")
    run_pipeline(SAMPLE, load_config(overrides=FAST), d / "out", report=True)
    nwb = export_nwb(d / "out", d / "sorting.nwb")
    return d / "out", nwb


def _read(path):
    """The NWB file's contents as plain Python objects (the file is closed on return)."""
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        units = f.units.to_dataframe(index=True)
        rows = [[int(i) for i in np.atleast_1d(units.loc[u, "electrodes"])] for u in units.index]
        return {"units": units, "electrode_rows": rows, "electrodes": f.electrodes.to_dataframe(),
                "notes": f.notes, "identifier": f.identifier, "start": f.session_start_time,
                "script": f.source_script, "script_name": f.source_script_file_name,
                "devices": {k: (v.model.manufacturer if getattr(v, "model", None) else v.manufacturer)
                            for k, v in f.devices.items()}, "subject": f.subject.subject_id,
                "waveform_rate": f.units.waveform_rate, "resolution": f.units.resolution,
                "unit_groups": [g.name for g in units["electrode_group"]]}


def test_units_and_spike_times_are_the_sortings(run):
    out, nwb = run
    sorting = Sorting.load_npz(out / "sorting.npz")
    got = _read(nwb)
    units = got["units"]
    assert list(units.index) == [int(u) for u in sorting.unit_ids] and len(units) >= 5
    for u in sorting.unit_ids:
        want = np.sort(sorting.sample_index[sorting.unit == u]) / sorting.fs
        np.testing.assert_array_equal(np.asarray(units.loc[u, "spike_times"]), want)
    for (u, e), rows in zip(sorting.unit_electrode().items(), got["electrode_rows"]):
        assert units.loc[u, "electrode"] == e and rows == [e]
    assert set(got["unit_groups"]) == {"array"}
    assert got["waveform_rate"] == sorting.fs and got["resolution"] == pytest.approx(1 / sorting.fs)


def test_waveform_mean_and_sd_are_the_runs_waveforms(run):
    from spikevae.quality.compute import match_spikes

    out, nwb = run
    sorting, spikes = Sorting.load_npz(out / "sorting.npz"), load_spikes(out)
    units = _read(nwb)["units"]
    rows = match_spikes(spikes, sorting)
    for u in sorting.unit_ids:
        wf = spikes.waveforms[rows[(sorting.unit == u) & (rows >= 0)]].astype(np.float64)
        mean, sd = np.asarray(units.loc[u, "waveform_mean"]), np.asarray(units.loc[u, "waveform_sd"])
        assert mean.shape == (spikes.n_samples,)
        np.testing.assert_allclose(mean, wf.mean(0) * 1e-6, rtol=1e-5, atol=1e-12)  # stored in volts
        np.testing.assert_allclose(sd, wf.std(0) * 1e-6, rtol=1e-4, atol=1e-11)


def test_waveform_stats_do_not_depend_on_the_block_size(run):
    out, _ = run
    sorting = Sorting.load_npz(out / "sorting.npz")
    spikes = load_spikes(out)
    whole = waveform_stats(spikes, sorting, sorting.unit_ids)
    blocks = waveform_stats(spikes, sorting, sorting.unit_ids, block=97)
    for a, b in zip(whole, blocks):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9)
    assert whole[2].sum() == np.count_nonzero(sorting.unit >= 0)


def test_electrodes_table_positions_channel_ids_and_filter(run):
    out, nwb = run
    rec = load_run_info(out)["recording"]
    got = _read(nwb)
    el = got["electrodes"]
    pos = np.asarray(rec["positions_um"])
    np.testing.assert_array_equal(el[["x", "y"]].to_numpy(), pos)
    np.testing.assert_array_equal(el[["rel_x", "rel_y"]].to_numpy(), pos)
    assert list(el["channel_id"]) == [str(c) for c in rec["channel_ids"]]
    assert ("channel_name" in el) == ("channel_names" in rec)  # neo's names, when the run's info has them
    if "channel_names" in rec:
        assert list(el["channel_name"]) == rec["channel_names"]
    assert set(el["location"]) == {"unknown"} and set(el["group_name"]) == {"array"}
    assert el["filtering"].iloc[0].endswith("order 3, 300-6000 Hz")
    assert got["devices"] == {"Utah array": "Blackrock Microsystems"}


def test_every_metric_is_a_units_column_equal_to_metrics_json(run):
    out, nwb = run
    doc = json.loads((out / "metrics.json").read_text())
    units = _read(nwb)["units"]
    names = [c for c in doc["columns"] if c not in ("unit", "electrode")]
    assert set(names) <= set(units.columns)
    assert units["good"].dtype == bool
    for row in doc["units"]:
        for c in names:
            got, want = units.loc[row["unit"], c], row[c]
            if want is None:
                assert math.isnan(got), (row["unit"], c)
            elif isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-12), (row["unit"], c)
            else:
                assert got == want, (row["unit"], c)


def test_configuration_provenance_and_start_time(run, tmp_path):
    out, nwb = run
    got = _read(nwb)
    notes = json.loads(got["notes"])
    assert notes["config"] == json.loads((out / "config.json").read_text())
    assert notes["method"] == "pca" and "Blackrock header" in notes["session_start_time_source"]
    assert got["script"] == got["script_name"] and got["script"].startswith("spikevae ")
    # the sample file's NSx header says 2024-05-01 00:00 UTC (sample_data/make_sample_data.py)
    assert got["start"] == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert got["subject"] == UNKNOWN_SUBJECT["subject_id"]
    again = export_nwb(out, tmp_path / "again.nwb")
    assert _read(again)["identifier"] == got["identifier"]  # deterministic from the run


def test_nwbinspector_finds_nothing_critical(run):
    from nwbinspector import Importance, inspect_nwbfile

    _, nwb = run
    messages = list(inspect_nwbfile(nwbfile_path=str(nwb)))  # includes pynwb's schema validation
    serious = [m.message for m in messages if m.importance.value >= Importance.CRITICAL.value]
    assert serious == []
    # what remains: missing metadata only the lab knows (species, experimenter, institution, ...)
    violations = {m.check_function_name for m in messages if m.importance == Importance.BEST_PRACTICE_VIOLATION}
    assert violations <= {"check_subject_species_exists"}


def test_cli_export_and_overwrite_rules(run, tmp_path, capsys):
    out, _ = run
    target = tmp_path / "cli.nwb"
    for _ in range(2):  # the second export replaces the first (it is spikevae's)
        main(["export", str(out), "--nwb", str(target)])
        assert f"NWB: {target}" in capsys.readouterr().out
    assert len(_read(target)["units"]) == len(Sorting.load_npz(out / "sorting.npz").unit_ids)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    other = tmp_path / "other.nwb"
    other.write_bytes(b"not an NWB file")
    with pytest.raises(SystemExit) as exc:
        main(["export", str(out), "--nwb", str(other)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "is not an NWB file written by spikevae" in err and err.count("\n") == 1
    assert other.read_bytes() == b"not an NWB file"


def test_missing_run_folder_and_unknown_method(run, tmp_path):
    out, _ = run
    with pytest.raises(SpikevaeError, match=r"nope: no such run folder; run `spikevae run REC -o"):
        export_nwb(tmp_path / "nope", tmp_path / "x.nwb")
    with pytest.raises(SpikevaeError, match=r"has no 'vae' sorting \(it has: pca\)"):
        export_nwb(out, tmp_path / "x.nwb", method="vae")
    assert not (tmp_path / "x.nwb").exists()


def test_start_time_fallback_is_the_files_modification_time_minus_duration(tmp_path):
    raw = tmp_path / "rec.dat"
    raw.write_bytes(b"\0" * 64)
    os.utime(raw, (1_700_000_000, 1_700_000_000))
    t, how = session_start_time({"source": str(raw), "duration_s": 10.0}, tmp_path)
    assert t == datetime.fromtimestamp(1_700_000_000 - 10, tz=timezone.utc)
    assert "modification time of rec.dat" in how
    assert blackrock_time_origin(raw) is None
    t, how = session_start_time({"source": str(raw), "rec_datetime": "2021-03-04T05:06:07"}, tmp_path)
    assert t == datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc) and "rec_datetime" in how


def test_electrode_map_labels_become_columns():
    labels = [{"electrode": 12, "bank": "A", "pin": 12, "label": "elec12"}, None,
              {"electrode": 40, "bank": "B", "pin": 8, "label": "elec40"}]
    cols = label_columns({"electrode_labels": labels}, 3)
    assert cols == {"map_electrode": [12, -1, 40], "bank": ["A", "", "B"], "pin": [12, -1, 8],
                    "label": ["elec12", "", "elec40"]}
    assert label_columns({"electrode_labels": labels}, 4) == {} and label_columns({}, 3) == {}


def _grouped_run(folder: Path) -> tuple[Sorting, np.ndarray]:
    """A run store written by hand: channels a+b sorted as one group, c alone; two units."""
    from spikevae.config import to_dict
    from spikevae.objects import Spikes
    from spikevae.params import load_config
    from spikevae.store import RunStore

    rng = np.random.default_rng(0)
    n, length, fs = 120, 10, 30000.0
    electrode = np.repeat([0, 1], n // 2)
    waveforms = rng.normal(0, 5, (n, 2 * length)).astype(np.float32)
    waveforms[electrode == 0, 3] -= 80  # unit 0 peaks on channel a, unit 1 on c (segment 0 of its group)
    waveforms[electrode == 0, length + 3] -= 30
    waveforms[electrode == 1, 3] -= 60
    waveforms[electrode == 1, length:] = 0  # padding segment of the group of one
    sample = np.sort(rng.choice(np.arange(100, 290_000), n, replace=False)).astype(np.int64)
    groups = np.array([[0, 1], [2, -1]])
    spikes = Spikes(sample, electrode, waveforms, waveforms[:, 3].copy(), np.array([5.0, 5.0], np.float32), fs, 3,
                    np.array(["a+b", "c"]), group_channels=groups, segment_noise_uv=np.array([[5, 5], [5, 0]]))
    unit = np.where(electrode == 0, 7, 9)
    unit[::10] = -1
    store = RunStore(folder)
    store.set_root_attrs(recording={"source": str(folder / "rec.dat"), "fs": fs, "n_channels": 3,
                                    "n_samples": 300_000, "duration_s": 10.0, "channel_ids": ["a", "b", "c"],
                                    "positions_um": [[0, 0], [20, 0], [400, 0]]},
                         config=to_dict(load_config()))
    store.save_spikes(spikes, {}, "s")
    sorting = Sorting(sample, electrode, unit, fs)
    store.save_sorting(sorting, "pca", {}, "k")
    return sorting, waveforms


def test_channel_groups_give_one_electrode_group_and_multichannel_waveforms(tmp_path):
    sorting, waveforms = _grouped_run(tmp_path / "run")
    got = _read(export_nwb(tmp_path / "run", tmp_path / "g.nwb"))
    units = got["units"]
    assert list(units.index) == [7, 9] and got["electrode_rows"] == [[0, 1], [2]]
    assert got["unit_groups"] == ["group a+b", "array"] and list(units["electrode"]) == [0, 2]
    assert list(got["electrodes"]["group_name"]) == ["group a+b", "group a+b", "array"]
    for u in (7, 9):
        wf = waveforms[sorting.unit == u].astype(np.float64).reshape(-1, 2, 10).transpose(0, 2, 1)
        np.testing.assert_allclose(units.loc[u, "waveform_mean"], wf.mean(0) * 1e-6, rtol=1e-5, atol=1e-12)
    assert got["devices"] == {"multielectrode array": None}
    assert "modification time of run.h5" in json.loads(got["notes"])["session_start_time_source"]
    assert units.loc[7, "n_spikes"] == np.count_nonzero(sorting.unit == 7)  # metrics computed (no metrics.json)


@pytest.mark.filterwarnings("ignore:Unknown event codes")
def test_blackrock_time_origin_of_real_files(shared_data):
    from neo.rawio import BlackrockRawIO

    nev = shared_data / "blackrock_limblab_utah" / "Han_20170516.nev"
    reader = BlackrockRawIO(str(nev))
    reader.parse_header()
    assert blackrock_time_origin(nev) == reader.raw_annotations["blocks"][0]["rec_datetime"].replace(
        tzinfo=timezone.utc) == datetime(2017, 6, 16, 13, 51, 9, tzinfo=timezone.utc)
    nsx = shared_data / "blackrock_mne_nsx"
    # the same recording in NSx 2.2/2.3 and 3.0 headers; 2.1 headers hold no time origin
    want = datetime(2023, 1, 31, 14, 36, 44, 600_000, tzinfo=timezone.utc)
    assert blackrock_time_origin(nsx / "test_NEURALCD_raw.ns3") == want
    assert blackrock_time_origin(nsx / "test_BRSMPGRP_raw.ns3") == want
    assert blackrock_time_origin(nsx / "test_NEURALSG_raw.ns3") is None
