"""Input errors: each names the file, channel or parameter and says how to fix it."""
from __future__ import annotations

import re
import logging

import numpy as np
import pytest

from conftest import SHARED_DATA, require_data
from spikevae.errors import RecordingError, SpikevaeError
from spikevae.io import (BinaryRecording, HDF5Recording, check_finite, find_dead_channels, open_recording,
                         read_nev, validate_recording)
from spikevae.io.neo import blackrock_recording
from spikevae.params import InputConfig
from spikevae.preprocess import BandpassRecording
from spikevae.recording import ArrayRecording
from test_io import write_nsx


def _raw_file(tmp_path, n_bytes, name="x.dat"):
    p = tmp_path / name
    p.write_bytes(np.zeros(n_bytes, np.uint8).tobytes())
    return p


# ---- missing files and formats ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gone.ns5", "gone.dat", "gone.h5", "gone.nev", "gone.xyz"])
def test_missing_file(tmp_path, name):
    with pytest.raises(RecordingError, match=r"gone\.\w+: file not found"):
        open_recording(tmp_path / name)


def test_missing_nev_file(tmp_path):
    with pytest.raises(RecordingError, match=r"gone\.nev: file not found"):
        read_nev(tmp_path / "gone.nev")


def test_unknown_format_lists_valid_names(tmp_path):
    p = _raw_file(tmp_path, 100)
    with pytest.raises(RecordingError, match=r"unknown input format 'matlab'; use one of auto, blackrock.*hdf5.*"
                                             r"neo reader name: .*intan"):
        open_recording(p, InputConfig(format="matlab"))


def test_extension_neo_does_not_know(tmp_path):
    p = _raw_file(tmp_path, 100, "notes.qqq")
    with pytest.raises(RecordingError, match=r"notes\.qqq: neo has no reader for '\.qqq' files; pass --format"):
        open_recording(p)


def test_nev_is_not_a_recording(tmp_path):
    p = _raw_file(tmp_path, 100, "spikes.nev")
    with pytest.raises(RecordingError, match=r"spikes\.nev: a \.nev file holds spike waveforms, not continuous "
                                             r"traces; read it with spikevae\.io\.read_nev"):
        open_recording(p)


def test_read_nev_refuses_other_files(tmp_path):
    with pytest.raises(RecordingError, match=r"read_nev reads Blackrock \.nev files"):
        read_nev(_raw_file(tmp_path, 100, "x.ns5"))


@pytest.mark.parametrize("name", ["REC.NS5", "rec.Nev"])
def test_upper_case_blackrock_extension(tmp_path, name):
    p = _raw_file(tmp_path, 100, name)
    with pytest.raises(RecordingError, match=r"only opens lower-case extensions; rename the file to "
                                             r"(REC\.ns5|rec\.nev) \(or link it"):
        read_nev(p) if name.endswith("ev") else open_recording(p)


def test_corrupt_nsx_names_the_reader(tmp_path):
    p = tmp_path / "junk.ns5"
    p.write_bytes(b"NOTBLACKROCK" + bytes(500))
    with pytest.raises(RecordingError, match=r"junk\.ns5: neo's BlackrockRawIO could not read this file"):
        open_recording(p)


# ---- raw binary -----------------------------------------------------------------------------------
def test_raw_size_mismatch_suggests_counts_and_dtypes(tmp_path):
    p = _raw_file(tmp_path, 96 * 2 * 50)  # 50 samples of 96 int16 channels
    with pytest.raises(RecordingError, match=r"9600 data bytes is not a multiple of n_channels x itemsize = "
                                             r"95 x 2 = 190 bytes.*fits [0-9, ]*96"):
        BinaryRecording(p, 30000, 95)
    p = _raw_file(tmp_path, 3 * 4 * 11, "f.dat")  # 11 samples of 3 float32 channels
    with pytest.raises(RecordingError, match=r"with 3 channels it fits dtype .*float32"):
        BinaryRecording(p, 30000, 3, dtype="float64")


@pytest.mark.parametrize("fs, n_ch, match", [(0, 4, r"does not store its sampling rate; pass --fs"),
                                             (30000, 0, r"does not store its channel count; pass --n-channels")])
def test_raw_needs_rate_and_channel_count(tmp_path, fs, n_ch, match):
    with pytest.raises(RecordingError, match=match):
        open_recording(_raw_file(tmp_path, 80), InputConfig(fs=fs, n_channels=n_ch))


def test_raw_unknown_dtype(tmp_path):
    with pytest.raises(RecordingError, match=r"unknown raw sample type 'int12'; set input\.dtype"):
        BinaryRecording(_raw_file(tmp_path, 80), 30000, 4, dtype="int12")


def test_raw_header_only(tmp_path):
    with pytest.raises(RecordingError, match=r"no samples after the 64-byte header"):
        BinaryRecording(_raw_file(tmp_path, 64), 30000, 4, header_bytes=64)


# ---- HDF5 -----------------------------------------------------------------------------------------
def _h5(tmp_path, build):
    import h5py

    p = tmp_path / "r.h5"
    with h5py.File(p, "w") as f:
        build(f)
    return p


def test_hdf5_errors(tmp_path):
    with pytest.raises(RecordingError, match=r"no 'fs' attribute"):
        HDF5Recording(_h5(tmp_path, lambda f: f.create_dataset("traces", data=np.zeros((10, 2)))))
    with pytest.raises(RecordingError, match=r"no '/traces' dataset \(found: data\)"):
        HDF5Recording(_h5(tmp_path, lambda f: f.create_dataset("data", data=np.zeros((10, 2)))))
    with pytest.raises(RecordingError, match=r"/traces has shape \(10,\); expected \(n_samples, n_channels\)"):
        HDF5Recording(_h5(tmp_path, lambda f: f.create_dataset("traces", data=np.zeros(10))))

    def wrong_ids(f):
        f.create_dataset("traces", data=np.zeros((10, 2))).attrs["fs"] = 1000.0
        f["channel_ids"] = np.array([b"a", b"b", b"c"])
    with pytest.raises(RecordingError, match=r"/channel_ids has shape \(3,\); expected \(2,\) for 2 channels"):
        HDF5Recording(_h5(tmp_path, wrong_ids))
    with pytest.raises(RecordingError, match=r"not a readable HDF5 file"):
        HDF5Recording(_raw_file(tmp_path, 100, "fake.h5"))


# ---- neo stream / segment / channels --------------------------------------------------------------
def test_stream_segment_and_channel_choices(tmp_path):
    p = write_nsx(tmp_path / "a.ns5", [np.zeros((50, 3), np.int16)])
    with pytest.raises(RecordingError, match=r"no stream 'lfp'; set input\.stream to one of 'nsx5' \(id 5\)"):
        blackrock_recording(p, stream="lfp")
    assert blackrock_recording(p, stream="nsx5").n_channels == 3
    with pytest.raises(RecordingError, match=r"segment 3 does not exist; the file has 1 segment\(s\), "
                                             r"set input\.segment to 0\.\.0"):
        open_recording(p, InputConfig(segment=3))
    with pytest.raises(RecordingError, match=r"no channel\(s\) 9, x in input\.channels; the file's channel ids "
                                             r"are 1, 2, 3"):
        open_recording(p, InputConfig(channels=["1", "9", "x"]))


# ---- validation of a recording --------------------------------------------------------------------
def test_validate_recording():
    with pytest.raises(RecordingError, match=r"array: the recording is empty \(0 samples\)"):
        validate_recording(ArrayRecording(np.zeros((0, 4)), 30000.0))
    with pytest.raises(RecordingError, match=r"the recording has no channels"):
        validate_recording(ArrayRecording(np.zeros((100, 0)), 30000.0))
    with pytest.raises(RecordingError, match=r"is 0\.0500 s long \(1500 samples at 30000 Hz\), shorter than "
                                             r"the 0\.1 s needed"):
        validate_recording(ArrayRecording(np.zeros((1500, 4)), 30000.0))
    validate_recording(ArrayRecording(np.zeros((3000, 4)), 30000.0))  # exactly long enough
    with pytest.raises(RecordingError, match=r"shorter than the 2 s needed"):
        validate_recording(ArrayRecording(np.zeros((3000, 4)), 30000.0), min_duration_s=2)


def test_check_finite_names_channel_and_time():
    rec = ArrayRecording(np.zeros((5000, 4)), 1000.0, channel_ids=["a", "b", "c", "d"])
    x = rec.get_traces(1000, 1100)
    check_finite(x, rec, 1000)  # finite: no error
    x[7, 2], x[50, 0], x[60, 2] = np.nan, np.inf, np.nan
    with pytest.raises(RecordingError, match=r"channel c has NaN at sample 1007 \(1\.0070 s\); 3 non-finite "
                                             r"sample\(s\) in this chunk, also on channel\(s\) a\. .*input\.channels"):
        check_finite(x, rec, 1000)
    y = rec.get_traces(0, 10, [3, 1])
    y[4, 1] = -np.inf
    with pytest.raises(RecordingError, match=r"channel b has an infinite value at sample 4 \(0\.0040 s\)"):
        check_finite(y, rec, 0, channels=[3, 1])


def test_find_dead_channels(caplog):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 5, (30000 * 2, 6)).astype(np.float32)
    x[:, 1] = 0.0
    x[:, 4] = 123.0  # flat at an offset: dead too
    x[:40000, 5] = 0.0  # silent for the first two thirds only: alive
    rec = ArrayRecording(x, 30000.0, channel_ids=list("abcdef"))
    with caplog.at_level(logging.WARNING):
        dead = find_dead_channels(rec)
    assert dead.tolist() == [1, 4] and dead.dtype == np.int64
    assert "2 flat channel(s)" in caplog.text and "b, e" in caplog.text
    # a flat channel stays flat after the bandpass (reflect padding of a constant)
    assert find_dead_channels(BandpassRecording(rec, 300, 6000), n_chunks=3).tolist() == [1, 4]
    assert find_dead_channels(ArrayRecording(x[:, [0, 2]], 30000.0)).size == 0


# ---- the info command ------------------------------------------------------------------------------
def test_info_command_errors_are_one_line(tmp_path, capsys):
    from spikevae.cli import main

    p = _raw_file(tmp_path, 96 * 2 * 50)
    with pytest.raises(SystemExit) as exc:
        main(["info", str(p), "--fs", "30000", "--n-channels", "95"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and re.search(r"fits [0-9, ]*96", err) and "\n" not in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["info", str(tmp_path / "missing.ns5")])
    assert "missing.ns5: file not found" in capsys.readouterr().err


@pytest.mark.data
def test_read_nev_unknown_electrode(shared_data):
    path = require_data(shared_data / "blackrock_limblab_utah" / "Han_20170516.nev")
    with pytest.raises(RecordingError, match=r"no spikes on electrode\(s\) \[200\]; electrodes with spikes: 1\.\.96"):
        read_nev(path, channels=[3, 200])
    with pytest.raises(RecordingError, match=r"channels=\['ch3'\]: give electrode ids as numbers"):
        read_nev(path, channels=["ch3"])
    assert issubclass(RecordingError, SpikevaeError)


def test_require_data_skips_locally_and_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIKEVAE_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="test data not found"):
        require_data(tmp_path / "absent")
    monkeypatch.setenv("SPIKEVAE_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="SPIKEVAE_REQUIRE_DATA is set"):
        require_data(tmp_path / "absent")
    assert require_data(tmp_path) == tmp_path
    assert SHARED_DATA.name == "data" and SHARED_DATA.parent.name == "shared"
