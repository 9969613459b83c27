"""More recording formats: MATLAB v7.3 (HDF5), neo folder formats (Open Ephys binary), positive spikes."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio

from spikevae.compare import load_ground_truth
from spikevae.detect import detect_spikes
from spikevae.errors import RecordingError
from spikevae.io import open_recording, reader_for
from spikevae.io.mat import MatRecording, is_v73, read_mat_ground_truth
from spikevae.params import InputConfig, load_config
from spikevae.preprocess import BandpassRecording
from spikevae.recording import ArrayRecording

REPO = Path(__file__).resolve().parent.parent
MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Wed Dec  2 12:00:00 2026 HDF5 schema 1.00 ."


def write_v73(path: Path, variables: dict) -> None:
    """A .mat file laid out as MATLAB's ``save -v7.3`` does: HDF5 with a 512-byte text userblock,
    every array stored transposed (column-major), a ``MATLAB_class`` attribute on each."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in variables.items():
            a = np.atleast_2d(np.asarray(v, dtype=np.float64))
            f.create_dataset(k, data=a.T).attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(MAT73_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02IM")


@pytest.fixture
def mat_pair(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(0, 20, (100_000, 4))  # 400 000 values: v7.3 keeps it on disk
    gt = {"true_spike_times": np.array([[500, 120, 9000]]), "true_spike_class": np.array([[2, 1, 1]])}
    sio.savemat(tmp_path / "v5.mat", {"data": data, "dt": 1 / 24000.0, **gt})
    write_v73(tmp_path / "v73.mat", {"data": data, "dt": 1 / 24000.0, **gt})
    return tmp_path / "v5.mat", tmp_path / "v73.mat", data


def test_v73_reads_like_v5(mat_pair):
    v5, v73, data = mat_pair
    assert not is_v73(v5) and is_v73(v73)
    assert open(v73, "rb").read(10) == b"MATLAB 7.3"
    a, b = MatRecording(v5), MatRecording(v73)
    assert (b.fs, b.n_samples, b.n_channels) == (a.fs, a.n_samples, a.n_channels) == (24000.0, 100_000, 4)
    assert b._data is None  # lazy: read through h5py chunk by chunk
    np.testing.assert_array_equal(b.get_traces(1234, 56789, [3, 0]), a.get_traces(1234, 56789, [3, 0]))
    np.testing.assert_allclose(b.get_traces(0, 10), data[:10].astype(np.float32))


def test_v73_ground_truth_like_v5(mat_pair):
    v5, v73, _ = mat_pair
    a, b = read_mat_ground_truth(v5), read_mat_ground_truth(v73)
    assert b.sample_index.tolist() == a.sample_index.tolist() == [120, 500, 9000]
    assert b.unit.tolist() == a.unit.tolist() == [1, 2, 1] and b.fs == a.fs == 24000.0
    assert load_ground_truth(v73).sample_index.tolist() == [120, 500, 9000]


def test_v73_without_traces_names_the_variables(tmp_path):
    write_v73(tmp_path / "x.mat", {"spikes": np.ones((3, 3)), "sr": 30000.0})
    with pytest.raises(RecordingError, match=r"x.mat: no traces found; .* the file holds spikes, sr"):
        MatRecording(tmp_path / "x.mat")


def test_v73_recording_survives_pickling_for_workers(mat_pair):
    import pickle

    _, v73, data = mat_pair
    rec = MatRecording(v73)
    rec.get_traces(0, 5)  # opens the HDF5 file
    back = pickle.loads(pickle.dumps(rec))
    np.testing.assert_allclose(back.get_traces(10, 20, [1]), data[10:20, [1]].astype(np.float32))


def write_open_ephys_binary(root: Path, x: np.ndarray, fs: float, bit_volts: float = 0.195) -> None:
    """A minimal Open Ephys GUI >= 0.6 binary recording folder of int16 samples ``x`` (n, c)."""
    rec = root / "Record Node 101" / "experiment1" / "recording1"
    stream = "Acquisition_Board-100.Rhythm Data"
    (rec / "continuous" / stream).mkdir(parents=True)
    x.astype(np.int16).tofile(rec / "continuous" / stream / "continuous.dat")
    np.save(rec / "continuous" / stream / "sample_numbers.npy", np.arange(x.shape[0], dtype=np.int64))
    np.save(rec / "continuous" / stream / "timestamps.npy", np.arange(x.shape[0]) / fs)
    channels = [{"channel_name": f"CH{i + 1}", "description": "", "identifier": "", "history": "",
                 "bit_volts": bit_volts, "units": "uV"} for i in range(x.shape[1])]
    info = {"folder_name": stream + "/", "sample_rate": fs, "source_processor_name": "Acquisition Board",
            "source_processor_id": 100, "stream_name": "Rhythm Data", "recorded_processor": "Acquisition Board",
            "recorded_processor_id": 100, "num_channels": x.shape[1], "channels": channels}
    (rec / "structure.oebin").write_text(json.dumps({"GUI version": "0.6.4", "continuous": [info],
                                                     "events": [], "spikes": []}))


def test_open_ephys_folder_opens_with_format_auto(tmp_path):
    x = np.random.default_rng(0).integers(-300, 300, (6000, 3)).astype(np.int16)
    write_open_ephys_binary(tmp_path / "session", x, 30000.0)
    rec = open_recording(tmp_path / "session")  # the folder, no --format
    assert type(rec).__name__ == "NeoRecording" and rec.rawio_class.__name__ == "OpenEphysBinaryRawIO"
    assert rec.channel_ids.tolist() == ["CH1", "CH2", "CH3"] and rec.fs == 30000.0 and rec.n_samples == 6000
    np.testing.assert_allclose(rec.get_traces(100, 110), x[100:110] * 0.195, rtol=1e-5)


def test_folder_without_a_neo_format_lists_the_folder_readers(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.xyz").write_text("x")
    with pytest.raises(RecordingError, match=r"notes: no file here that a neo folder reader knows \(found xyz\); "
                                             r"pass a file, or --format with one of .*OpenEphysBinary.*SpikeGLX"):
        open_recording(tmp_path / "notes")


def test_broken_folder_says_which_readers_were_tried(tmp_path):
    (tmp_path / "oe").mkdir()
    (tmp_path / "oe" / "structure.oebin").write_text("{not json")
    with pytest.raises(RecordingError, match=r"oe: no neo folder reader opens this folder; tried "
                                             r"OpenEphysBinaryRawIO \(neo's OpenEphysBinaryRawIO could not read"):
        open_recording(tmp_path / "oe")
    assert "\n" not in _message(tmp_path / "oe")


def _message(path) -> str:
    try:
        open_recording(path)
    except RecordingError as exc:
        return str(exc)
    return ""


def test_extension_routing():
    from spikevae.io import _open_hdf5, _open_mat, _open_neo, _open_raw

    assert reader_for("a.mat") is _open_mat and reader_for("a.dat") is _open_raw
    assert reader_for("a.h5") is _open_hdf5 and reader_for("rec.rhd") is _open_neo  # Intan: neo by extension
    with pytest.raises(RecordingError, match=r"unknown input format 'nope'; use one of auto"):
        reader_for("a.rhd", "nope")


def _positive_recording(n_spikes=40, seed=0):
    rng = np.random.default_rng(seed)
    fs, n = 30000.0, 60000
    x = rng.normal(0, 10, (n, 2)).astype(np.float32)
    t = np.sort(rng.choice(np.arange(100, n - 100, 80), n_spikes, replace=False))
    u = np.arange(-12, 24)
    shape = np.exp(-0.5 * (u / 3.0) ** 2) - 0.3 * np.exp(-0.5 * ((u - 8) / 5.0) ** 2)  # up, then a small trough
    for ti in t:
        x[ti + u, 0] += 120 * shape
    return BandpassRecording(ArrayRecording(x, fs), 300, 6000), t


def test_positive_polarity_preset_detects_positive_spikes():
    cfg = load_config(REPO / "pipelines" / "positive_polarity.toml", ["run.n_jobs=1"])
    assert cfg.detect.polarity == "pos"
    rec, t = _positive_recording()
    pos = detect_spikes(rec, cfg.detect, seed=0)
    on0 = pos.electrode == 0
    hits = sum(np.any(np.abs(pos.sample_index[on0] - ti) <= 3) for ti in t)
    assert hits >= 38 and (pos.amplitude_uv[on0] > 0).mean() > 0.9
    assert np.argmax(pos.waveforms[on0].mean(axis=0)) == pos.peak_index  # aligned on the positive peak
    assert np.all(np.abs(np.argmax(pos.waveforms[on0], axis=1) - pos.peak_index) <= 1)
    neg = detect_spikes(rec, load_config(None).detect, seed=0)
    assert sum(np.any(np.abs(neg.sample_index[neg.electrode == 0] - ti) <= 3) for ti in t) < 5


def test_input_config_accepts_groups():
    assert InputConfig().groups == []
    assert load_config(None, ["input.groups=all"]).input.groups == ["all"]
