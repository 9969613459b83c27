"""Electrode maps: Blackrock .cmp and probeinterface JSON, matched to channels, into every output."""
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from spikevae.errors import RecordingError, SpikevaeError
from spikevae.io import apply_map, open_recording, read_cmp, read_map, read_probeinterface
from spikevae.io.probe import ElectrodeMap, map_channels
from spikevae.objects import Sorting, Spikes
from spikevae.params import InputConfig
from spikevae.quality import compute_metrics
from spikevae.quality_config import QualityConfig
from spikevae.recording import ArrayRecording, ChannelSubset, utah_positions

from conftest import SHARED_DATA, require_data, run_cli

REPO = Path(__file__).resolve().parent.parent
SMALL = REPO / "tests" / "data" / "utah_small.cmp"
SAMPLE = REPO / "sample_data" / "sample.ns5"
MAPS = SHARED_DATA / "blackrock_limblab_utah" / "maps"
NEV = SHARED_DATA / "blackrock_limblab_utah" / "Han_20170516.nev"

#: utah_small.cmp by hand: pin p of bank A sits at column (p-1)//4, row 3-(p-1)%4, label elec(17-p)
SMALL_COLS = [(p - 1) // 4 for p in range(1, 17)]
SMALL_ROWS = [3 - (p - 1) % 4 for p in range(1, 17)]


#: cheap clustering: positions are what these runs check
FAST = ["--set", "cluster.n_jobs=1", "--set", "run.n_jobs=1", "--set", "cluster.mixture.max_components=3",
        "--set", "cluster.refine.enabled=false"]




def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _write(tmp_path, text: str, name: str = "m.cmp") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# -- .cmp parsing ------------------------------------------------------------------------
def test_hand_fixture_parses_exactly():
    m = read_cmp(SMALL)
    assert m.n_electrodes == 16 and m.description == "Hand-written 4 x 4 test map, bank A, 400 um pitch"
    assert m.electrode_id.tolist() == list(range(1, 17))
    assert m.bank.tolist() == ["A"] * 16 and m.pin.tolist() == list(range(1, 17))
    assert m.col.tolist() == SMALL_COLS and m.row.tolist() == SMALL_ROWS
    expected_labels = [f"elec{17 - p}" for p in range(1, 17)]
    expected_labels[5] = ""  # the row "1  2  A  6" has no label
    assert m.label.tolist() == expected_labels
    np.testing.assert_array_equal(m.positions_um, np.c_[SMALL_COLS, SMALL_ROWS] * 400.0)
    assert m.channel_index is None and m.source == str(SMALL)
    np.testing.assert_array_equal(read_cmp(SMALL, pitch_um=100.0).positions_um, m.positions_um / 4)


def test_bank_letters_give_electrode_ids(tmp_path):
    m = read_map(_write(tmp_path, "Banks\n0 0 A 1 a\n1 0 b 1 b\n2 0 C 32 c\n3 0 D 32 d\n"))
    assert m.electrode_id.tolist() == [1, 33, 96, 128] and m.bank.tolist() == ["A", "B", "C", "D"]


@pytest.mark.data
@pytest.mark.parametrize("name, description, first", [
    ("1025-0394.cmp", "Cerebus mapping for array 7J / SN 0394", (8, 9, "A", 14, "elec99")),
    ("SN_6250-001271.cmp", "Cerebus mapping for array 11305-24 SN 6250-001271", (0, 8, "C", 1, "elec96")),
    ("Jaco_Grid_Map.cmp", "Cerebus mapping", (1, 9, "A", 2, "elec92")),
])
def test_real_maps_are_96_electrode_utah_arrays(name, description, first):
    m = read_cmp(require_data(MAPS / name))
    assert m.n_electrodes == 96 and m.description == description
    assert sorted(m.electrode_id.tolist()) == list(range(1, 97))
    assert set(m.bank.tolist()) == {"A", "B", "C"} and m.pin.min() == 1 and m.pin.max() == 32
    bank_index = np.array(["ABCD".index(b) for b in m.bank])
    np.testing.assert_array_equal(m.electrode_id, bank_index * 32 + m.pin)
    # every site of a 10 x 10 grid at 400 µm except the four corners, each once
    assert sorted(map(tuple, m.positions_um.tolist())) == sorted(map(tuple, utah_positions().tolist()))
    assert len(set(m.label.tolist())) == 96 and all(lab.startswith("elec") for lab in m.label)
    c, r, b, p, lab = first
    assert (m.col[0], m.row[0], m.bank[0], m.pin[0], m.label[0]) == (c, r, b, p, lab)
    if name == "Jaco_Grid_Map.cmp":  # the row written "3\t3   \tB\t15\telec34" (tabs and spaces)
        i = m.label.tolist().index("elec34")
        assert (m.col[i], m.row[i], m.bank[i], m.pin[i], m.electrode_id[i]) == (3, 3, "B", 15, 47)


@pytest.mark.parametrize("rows, fragment", [
    ("0 0 E 1 elec1", r"line 3: bank 'E' is not one of A, B, C, D"),
    ("0 0 A 33 elec1", r"line 3: pin '33' is not a number from 1 to 32"),
    ("0 x A 1 elec1", r"line 3: column '0' and row 'x' must be whole numbers"),
    ("0 0 A", r"line 3: 3 fields '0 0 A'; expected 'col row bank pin \[label\]'"),
    ("0 0 A 1 elec1 extra", r"line 3: 6 fields"),
    ("0 0 A 1 elec1\n1 0 A 1 elec2", r"lines 3 and 4 give the same bank and pin A1"),
    ("0 0 A 1 elec1\n0 0 A 2 elec2", r"lines 3 and 4 give the same grid position \(col, row\) \(0, 0\)"),
    ("0 0 A 1 elec1\n1 0 A 2 ELEC1", r"lines 3 and 4 give the same label elec1"),
    ("// only comments", r"no electrode rows found"),
])
def test_malformed_cmp_names_file_and_line(tmp_path, rows, fragment):
    p = _write(tmp_path, "// comment\nmy map\n" + rows + "\n")
    with pytest.raises(RecordingError, match=fragment) as exc:
        read_cmp(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_read_map_refuses_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(RecordingError, match=r"unknown electrode map type '.txt'; give a Blackrock .cmp"):
        read_map(_write(tmp_path, "x", "m.txt"))
    with pytest.raises(RecordingError, match="electrode map not found"):
        read_map(tmp_path / "absent.cmp")


# -- probeinterface ----------------------------------------------------------------------
def _probe(wired: bool):
    from probeinterface import Probe

    probe = Probe(ndim=2, si_units="um")
    pos = np.c_[np.arange(8) % 2 * 32.0, np.arange(8) // 2 * 20.0]
    probe.set_contacts(positions=pos, shapes="circle", shape_params={"radius": 6})
    probe.set_contact_ids([str(i + 1) for i in range(8)])
    if wired:
        probe.set_device_channel_indices([7, 6, 5, 4, 3, 2, 1, 0])
    return probe, pos


def test_probeinterface_json_round_trips_with_wiring(tmp_path):
    from probeinterface import write_probeinterface

    probe, pos = _probe(wired=True)
    write_probeinterface(tmp_path / "probe.json", probe)
    m = read_map(tmp_path / "probe.json")
    np.testing.assert_array_equal(m.positions_um, pos)
    assert m.label.tolist() == [str(i) for i in range(1, 9)] and m.electrode_id.tolist() == list(range(1, 9))
    assert m.channel_index.tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    # wiring wins over ids: file channel k is contact 7 - k, whatever the channel ids say
    rec = apply_map(ArrayRecording(np.zeros((100, 8)), 30000.0, channel_ids=list("abcdefgh")), m)
    np.testing.assert_array_equal(rec.positions_um, pos[::-1])


def test_probeinterface_without_wiring_matches_contact_ids(tmp_path):
    from probeinterface import write_probeinterface

    probe, pos = _probe(wired=False)
    write_probeinterface(tmp_path / "probe.json", probe)
    m = read_probeinterface(tmp_path / "probe.json")
    assert m.channel_index is None
    rec = apply_map(ArrayRecording(np.zeros((100, 3)), 30000.0, channel_ids=["8", "1", "4"]), m)
    np.testing.assert_array_equal(rec.positions_um, pos[[7, 0, 3]])


def test_bad_probeinterface_file(tmp_path):
    p = _write(tmp_path, json.dumps({"hello": 1}), "probe.json")
    with pytest.raises(RecordingError, match=r"probe.json: not a probeinterface JSON file"):
        read_map(p)


# -- matching a map to a recording --------------------------------------------------------
def _rec(ids, n_samples=300):
    return ArrayRecording(np.zeros((n_samples, len(ids)), np.float32), 30000.0, channel_ids=ids, source="rec")


def test_apply_map_follows_ids_not_channel_order_and_keeps_analog_inputs():
    ids = ["16", "1", "5", "129", "130"]  # three electrodes out of order, two NSP analog inputs
    rec = apply_map(_rec(ids), read_cmp(SMALL))
    expect = np.c_[SMALL_COLS, SMALL_ROWS][[15, 0, 4]] * 400.0
    np.testing.assert_array_equal(rec.positions_um[:3], expect)
    assert np.isnan(rec.positions_um[3:]).all()
    d = rec.describe()
    assert d["electrode_map"] == str(SMALL) and d["positions_um"][1] == [0.0, 1200.0]
    assert d["electrode_labels"][:3] == [{"electrode": 16, "bank": "A", "pin": 16, "label": "elec1"},
                                         {"electrode": 1, "bank": "A", "pin": 1, "label": "elec16"},
                                         {"electrode": 5, "bank": "A", "pin": 5, "label": "elec12"}]
    assert d["electrode_labels"][3:] == [None, None]
    sub = ChannelSubset(rec, [2, 0]).describe()  # channel selection keeps positions and labels
    assert sub["positions_um"] == [[400.0, 1200.0], [1200.0, 0.0]]
    assert [lab["electrode"] for lab in sub["electrode_labels"]] == [5, 16]
    np.testing.assert_array_equal(rec.get_traces(0, 10), np.zeros((10, 5)))  # same traces


def test_apply_map_matches_labels_and_channel_names():
    m = read_cmp(SMALL)
    rec = apply_map(_rec(["elec16", "ELEC1"]), m)  # Central renamed the channels with the map's labels
    np.testing.assert_array_equal(rec.positions_um, [[0.0, 1200.0], [1200.0, 0.0]])
    named = _rec(["x", "y"])
    named.channel_names = np.array(["elec13", "elec12"])
    np.testing.assert_array_equal(apply_map(named, m).positions_um, [[0.0, 0.0], [400.0, 1200.0]])


@pytest.mark.parametrize("ids, fragment", [
    (["1", "2", "17", "40"], r"rec: channel\(s\) 17, 40 are not in the electrode map .*utah_small.cmp "
                             r"\(electrode ids 1-16\); use the array's own map"),
    (["a", "b"], r"rec: none of its channels \(a, b\) is in the electrode map"),
    (["1", "elec16"], r"channels 1, elec16 all match one map electrode"),
])
def test_apply_map_errors(ids, fragment):
    with pytest.raises(RecordingError, match=fragment):
        apply_map(_rec(ids), read_cmp(SMALL))


def test_channels_outside_input_channels_may_be_unmapped():
    # channel 17 is not in the map, but only 1 and 16 are sorted
    rec = apply_map(_rec(["1", "16", "17"]), read_cmp(SMALL), require=["1", "16"])
    assert np.isnan(rec.positions_um[2]).all() and rec.electrode_labels[2] is None


def test_open_recording_applies_map_then_selects_channels():
    rec = open_recording(SAMPLE, InputConfig(map=str(SMALL), channels=["16", "2"]))
    np.testing.assert_array_equal(rec.positions_um, [[1200.0, 0.0], [0.0, 800.0]])
    assert [lab["label"] for lab in rec.describe()["electrode_labels"]] == ["elec1", "elec15"]


@pytest.mark.data
def test_nev_spikes_get_map_positions():
    from spikevae.io.nev import nev_recording_info, read_nev

    spikes = read_nev(require_data(NEV), channels=[1, 14, 96])
    emap = read_cmp(require_data(MAPS / "1025-0394.cmp"))
    info = nev_recording_info(spikes, NEV, MAPS / "1025-0394.cmp")
    rows = [emap.electrode_id.tolist().index(e) for e in (1, 14, 96)]
    assert info["positions_um"] == emap.positions_um[rows].tolist()
    assert info["positions_um"][1] == [3200.0, 3600.0]  # "8 9 A 14 elec99"
    assert info["channel_ids"] == ["1", "14", "96"] and info["electrode_labels"][1]["label"] == "elec99"


# -- positions in the outputs --------------------------------------------------------------
def test_compute_metrics_fills_electrode_positions():
    rng = np.random.default_rng(0)
    n = 60
    wf = rng.normal(size=(n, 30)).astype(np.float32)
    wf[:, 10] -= 40
    spikes = Spikes(sample_index=np.arange(n) * 3000, electrode=np.repeat([0, 1], n // 2), waveforms=wf,
                    amplitude_uv=wf[:, 10], noise_uv=np.ones(2), fs=30000.0, peak_index=10, channel_ids=["7", "9"])
    sorting = Sorting(sample_index=spikes.sample_index, electrode=spikes.electrode,
                      unit=np.repeat([0, 1], n // 2), fs=30000.0)
    rows = compute_metrics(spikes, sorting, QualityConfig(), 6.0, positions_um=[[400.0, 800.0], [0.0, 3600.0]])
    assert [(r["x_um"], r["y_um"]) for r in rows] == [(400.0, 800.0), (0.0, 3600.0)]
    assert all(np.isnan(r["x_um"]) for r in compute_metrics(spikes, sorting, QualityConfig(), 6.0))


def test_run_with_map_puts_positions_in_units_csv_and_run_store(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(SAMPLE), "--map", str(SMALL), "-o", str(out),
                         "--set", "input.channels=[1,6,11,16]", *FAST], capsys)
    assert code == 0, err
    lines = (out / "units.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["unit", "electrode", "channel_id", "x_um", "y_um"]
    where = {row.split(",")[2]: tuple(map(float, row.split(",")[3:5])) for row in lines[1:]}
    placed = {str(p): (SMALL_COLS[p - 1] * 400.0, SMALL_ROWS[p - 1] * 400.0) for p in (1, 6, 11, 16)}
    assert where and all(where[c] == placed[c] for c in where)
    units = json.loads((out / "metrics.json").read_text())["units"]
    assert [(u["x_um"], u["y_um"]) for u in units] == [where[u["channel_id"]] for u in units]
    with h5py.File(out / "run.h5", "r") as f:
        info = json.loads(f.attrs["recording"])
    assert info["positions_um"] == [list(placed[c]) for c in ("1", "6", "11", "16")]
    assert info["electrode_map"] == str(SMALL) and info["electrode_labels"][1]["pin"] == 6
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["input"]["map"] == str(SMALL)


@pytest.mark.parametrize("case", ["malformed", "unknown_ids"])
def test_cli_map_errors_are_one_line(case, tmp_path, capsys):
    if case == "malformed":
        bad = _write(tmp_path, "map\n0 0 A 1 e1\n0 1 Q 2 e2\n")
        fragment = f"{bad}, line 3: bank 'Q' is not one of A, B, C, D"
    else:  # a map of electrodes 1-8 for a recording of channels 1-16
        bad = _write(tmp_path, "map\n" + "".join(f"{p - 1} 0 A {p} e{p}\n" for p in range(1, 9)))
        fragment = "channel(s) 9, 10, 11, 12, 13, 14, 15, 16 are not in the electrode map"
    code, _, err = run_cli(["run", str(SAMPLE), "--map", str(bad), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and fragment in _one_error_line(err)
    assert not (tmp_path / "o").exists()  # stopped before any output was made
    code, _, err = run_cli(["info", str(SAMPLE), "--map", str(bad)], capsys)
    assert code == 1 and fragment in _one_error_line(err)


def test_info_shows_the_map(capsys):
    code, out, err = run_cli(["info", str(SAMPLE), "--map", str(SMALL)], capsys)
    assert code == 0, err
    assert f"electrode map:  {SMALL} (16 of 16 channels placed; x 0-1200 µm, y 0-1200 µm)" in out


def test_electrode_map_checks_lengths():
    with pytest.raises(ValueError, match="bank has 1 entries but the map has 2 electrodes"):
        ElectrodeMap([1, 2], ["a", "b"], ["A"], [1, 2], [0, 1], [0, 0], [[0, 0], [1, 0]])


def test_map_channels_for_spike_files_raises_spikevae_error():
    with pytest.raises(SpikevaeError, match="none of its channels"):
        map_channels(["200", "201"], read_cmp(SMALL), "x.nev")
