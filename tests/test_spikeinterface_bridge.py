"""SpikeInterface both ways: its recordings sorted by spikevae, spikevae sortings as its sortings."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

si_core = pytest.importorskip("spikeinterface.core")
si_ext = pytest.importorskip("spikeinterface.extractors")

from spikevae.errors import RecordingError, SpikevaeError  # noqa: E402
from spikevae.exports.spikeinterface import (from_spikeinterface, save_spikeinterface, sorting_from_run,  # noqa: E402
                                             to_spikeinterface)
from spikevae.io import open_recording  # noqa: E402
from spikevae.io.spikeinterface import SpikeInterfaceRecording  # noqa: E402
from spikevae.objects import Sorting  # noqa: E402
from spikevae.params import load_config  # noqa: E402
from spikevae.pipeline import input_identity, run_pipeline, spikes_key  # noqa: E402
from spikevae.quality import compute_metrics, write_metrics  # noqa: E402
from spikevae.recording import ArrayRecording, default_positions  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "sample.ns5"
PROBE = {"num_columns": 2, "xpitch": 400, "ypitch": 400, "contact_shapes": "circle",
         "contact_shape_params": {"radius": 6}}


@pytest.fixture(scope="module")
def ground_truth():
    """SpikeInterface's own generator: 4 channels 400 µm apart, 4 s at 30 kHz, 4 units, 5 µV noise."""
    return si_core.generate_ground_truth_recording(durations=[4.0], sampling_frequency=30000.0, num_channels=4,
                                                   num_units=4, seed=2, generate_probe_kwargs=PROBE)


@pytest.fixture(scope="module")
def config():
    return load_config(overrides=["run.n_jobs=1", "cluster.n_jobs=1"])


@pytest.fixture(scope="module")
def run_dir(ground_truth, config, tmp_path_factory):
    """A run of spikevae on the wrapped recording, scored against the generator's sorting, with metrics.json."""
    rec, gt_si = ground_truth
    wrapped = SpikeInterfaceRecording(rec)
    out = tmp_path_factory.mktemp("run")
    gt = from_spikeinterface(gt_si, wrapped.channel_ids)
    result = run_pipeline(wrapped, config, out, gt=gt, report=False)
    write_metrics(out, compute_metrics(result.spikes, result.sorting, config.quality, wrapped.duration_s))
    return out, result


def test_wrapped_recording_matches_spikeinterface(ground_truth):
    rec, _ = ground_truth
    wrapped = SpikeInterfaceRecording(rec)
    assert wrapped.fs == 30000.0 and wrapped.n_samples == 120000
    assert wrapped.channel_ids.tolist() == ["0", "1", "2", "3"]
    np.testing.assert_allclose(wrapped.positions_um, rec.get_channel_locations()[:, :2])
    np.testing.assert_array_equal(wrapped.get_traces(1000, 5000),
                                  rec.get_traces(start_frame=1000, end_frame=5000, return_in_uV=True))
    sub = wrapped.get_traces(7, 900, channels=[3, 1])
    np.testing.assert_array_equal(sub, rec.get_traces(start_frame=7, end_frame=900, channel_ids=["3", "1"]))
    again = pickle.loads(pickle.dumps(wrapped))  # detection workers receive the recording pickled
    np.testing.assert_array_equal(again.get_traces(0, 300), wrapped.get_traces(0, 300))


def test_spikeinterface_blackrock_equals_own_reader():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} not found")
    own = open_recording(SAMPLE)
    wrapped = SpikeInterfaceRecording(si_ext.read_blackrock(SAMPLE))
    assert wrapped.channel_ids.tolist() == own.channel_ids.tolist() and wrapped.n_samples == own.n_samples
    np.testing.assert_allclose(wrapped.gain_uv, own.gain_uv)
    for start, stop in ((0, 3000), (299_000, 301_000), (own.n_samples - 500, own.n_samples)):
        np.testing.assert_allclose(wrapped.get_traces(start, stop), own.get_traces(start, stop), rtol=0, atol=1e-4)
    np.testing.assert_allclose(wrapped.get_traces(100, 200, [15, 0]), own.get_traces(100, 200, [15, 0]), atol=1e-4)
    # the same file read either way is the same input: its results are reused
    cfg = load_config()
    assert spikes_key(input_identity(wrapped), cfg) == spikes_key(input_identity(SAMPLE, own), cfg)


def test_spikeinterface_blackrock_sorts(config, tmp_path):
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} not found")
    two_s = si_ext.read_blackrock(SAMPLE).frame_slice(0, 60_000)
    result = run_pipeline(SpikeInterfaceRecording(two_s), config, tmp_path / "si", report=False)
    assert result.spikes.n_spikes > 200 and len(result.sorting.unit_ids) >= 3  # measured 401 spikes, 4 units
    assert result.spikes.channel_ids.tolist() == [str(i) for i in range(1, 17)]
    assert (tmp_path / "si" / "sorting.npz").is_file()
    own = open_recording(SAMPLE)  # the same 2 s through spikevae's own reader: the same spikes
    mine = run_pipeline(ArrayRecording(own.get_traces(0, 60_000), own.fs, own.channel_ids), config,
                        tmp_path / "own", report=False)
    np.testing.assert_array_equal(mine.spikes.sample_index, result.spikes.sample_index)
    np.testing.assert_array_equal(mine.spikes.electrode, result.spikes.electrode)


def test_run_on_spikeinterface_recording_is_scored(run_dir):
    _, result = run_dir
    s = result.scores["pca"]
    assert s["n_gt_units"] == 4 and result.spikes.n_spikes > 100
    assert s["mean_accuracy"] > 0.1  # measured 0.34: the generator's units span several channels


def test_run_folder_as_spikeinterface_sorting(run_dir, tmp_path):
    out, result = run_dir
    si = sorting_from_run(out)
    s = result.sorting
    assert si.unit_ids.tolist() == s.unit_ids.tolist()
    electrodes = s.unit_electrode()
    assert si.get_property("electrode").tolist() == [electrodes[int(u)] for u in si.unit_ids]
    assert si.get_property("main_channel_id").tolist() == [str(electrodes[int(u)]) for u in si.unit_ids]
    assert si.get_property("good").dtype == bool and np.isfinite(si.get_property("snr")).all()
    for u in s.unit_ids:
        np.testing.assert_array_equal(si.get_unit_spike_train(int(u)), np.sort(s.sample_index[s.unit == u]))
    with pytest.raises(SpikevaeError, match=r"has no 'vae' sorting \(it has: pca\)"):
        sorting_from_run(out, method="vae")
    folder = save_spikeinterface(si, tmp_path / "si_sorting")
    save_spikeinterface(si, folder)  # an earlier SpikeInterface folder is replaced
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("x")
    with pytest.raises(SpikevaeError, match="data: exists and is not a SpikeInterface folder"):
        save_spikeinterface(si, tmp_path / "data")
    assert (tmp_path / "data" / "keep.txt").read_text() == "x"
    loaded = si_core.load(folder)
    assert loaded.get_property("main_channel_id").tolist() == si.get_property("main_channel_id").tolist()
    back = from_spikeinterface(loaded, result.spikes.channel_ids)
    sorted_ = s.unit >= 0
    key = np.lexsort((s.electrode[sorted_], s.sample_index[sorted_]))
    np.testing.assert_array_equal(back.sample_index, s.sample_index[sorted_][key])
    np.testing.assert_array_equal(back.unit, s.unit[sorted_][key])
    # the electrode is the unit's main electrode, so it equals the spike's own one on one-electrode units
    np.testing.assert_array_equal(back.electrode, [electrodes[int(u)] for u in back.unit])


def test_round_trip_keeps_metrics_and_drops_unsorted():
    s = Sorting([50, 10, 30, 40, 20], [0, 1, 1, 2, 0], [3, 7, -1, 7, 3], 30000.0)
    rows = [{"unit": 3, "electrode": 0, "channel_id": "a", "snr": 5.0, "good": True, "note": "x"},
            {"unit": 7, "snr": None, "good": False}]
    si = to_spikeinterface(s, ["a", "b", "c"], rows)
    assert si.unit_ids.tolist() == [3, 7] and si.get_property("main_channel_id").tolist() == ["a", "b"]
    np.testing.assert_array_equal(si.get_property("snr"), [5.0, np.nan])
    assert si.get_property("good").tolist() == [True, False] and si.get_property("note").tolist() == ["x", ""]
    back = from_spikeinterface(si)  # no channel ids: the electrode property
    np.testing.assert_array_equal(back.sample_index, [10, 20, 40, 50])
    np.testing.assert_array_equal(back.unit, [7, 3, 7, 3])
    np.testing.assert_array_equal(back.electrode, [1, 0, 1, 0])
    with pytest.raises(SpikevaeError, match="electrode 2 is not an index into the 2 channel_ids"):
        to_spikeinterface(Sorting([1], [2], [0], 30000.0), ["a", "b"])


def test_from_spikeinterface_names_what_is_missing(ground_truth):
    rec, gt_si = ground_truth
    with pytest.raises(SpikevaeError, match="names each unit's main_channel_id but no channel_ids"):
        from_spikeinterface(gt_si)
    with pytest.raises(SpikevaeError, match=r"main_channel_id '2' is not one of the 2 channel_ids"):
        from_spikeinterface(gt_si, ["0", "1"])
    bare = si_core.NumpySorting.from_samples_and_labels([np.array([5, 9])], [np.array(["a", "b"])], 30000.0)
    with pytest.raises(SpikevaeError, match="no 'main_channel_id' or 'electrode' unit property.*spikevae compare"):
        from_spikeinterface(bare)
    with pytest.raises(SpikevaeError, match="no segment 1; it has 1"):
        from_spikeinterface(gt_si, rec.channel_ids, segment=1)
    bare.set_property("electrode", np.array([0, 1]))
    named = from_spikeinterface(bare)  # string unit ids become 0..n-1, kept in params
    assert named.unit.tolist() == [0, 1] and named.params["si_unit_ids"] == ["a", "b"]


def test_recording_errors_and_missing_gain(caplog):
    two_segments = si_core.NumpyRecording([np.zeros((100, 2), np.float32)] * 2, 30000.0)
    with pytest.raises(RecordingError, match=r"no segment 2; the SpikeInterface recording has 2 segment\(s\), 0..1"):
        SpikeInterfaceRecording(two_segments, segment=2)
    x = np.arange(200, dtype=np.int16).reshape(100, 2)
    with caplog.at_level("WARNING"):
        wrapped = SpikeInterfaceRecording(si_core.NumpyRecording([x, x + 1], 30000.0), segment=1)
    assert "has no gain_to_uV: its traces are taken as µV" in caplog.text
    np.testing.assert_array_equal(wrapped.get_traces(), (x + 1).astype(np.float32))
    np.testing.assert_array_equal(wrapped.positions_um, default_positions(2))
