"""Recording sources: one contract suite over every source, plus real Blackrock files.

The contract (principle 13 of the style guide): every chunk is 2-D float32 µV, chunked
reads equal the whole read, channel subsets agree with the full read, and the values
are the stored numbers times the gain plus the offset.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from conftest import require_data
from spikevae.io import (BinaryRecording, HDF5Recording, NeoRecording, open_recording, read_nev, select_channels,
                         write_hdf5)
from spikevae.io.neo import blackrock_recording
from spikevae.params import InputConfig
from spikevae.recording import ArrayRecording, Recording

N, C = 20_000, 5
GAIN, OFFSET = 0.25, -3.0


# ---- a minimal Blackrock NSx writer (NEURALCD 2.3, BRSMPGRP 3.0 PTP, NEURALSG 2.1) ----------------
def _basic_header(file_id, ver, n_ch, fs, ts_res, ext_size, label=b"30 kS/s"):
    dt = np.dtype([("file_id", "S8"), ("ver", "u1", 2), ("bytes", "<u4"), ("label", "S16"), ("comment", "S256"),
                   ("period", "<u4"), ("res", "<u4"), ("time", "<u2", 8), ("n", "<u4")])
    h = np.zeros(1, dt)
    h["file_id"], h["ver"], h["label"], h["n"] = file_id, ver, label, n_ch
    h["bytes"] = dt.itemsize + ext_size * n_ch
    h["period"], h["res"] = int(round(30000 / fs)), ts_res
    return h.tobytes()


def _ext_headers(n_ch, units=b"uV", dig=32764, analog=8191):
    dt = np.dtype([("type", "S2"), ("id", "<u2"), ("label", "S16"), ("conn", "u1"), ("pin", "u1"),
                   ("min_dig", "<i2"), ("max_dig", "<i2"), ("min_an", "<i2"), ("max_an", "<i2"), ("units", "S16"),
                   ("hi", "<u4"), ("hio", "<u4"), ("hit", "<u2"), ("lo", "<u4"), ("loo", "<u4"), ("lot", "<u2")])
    e = np.zeros(n_ch, dt)
    e["type"], e["id"], e["units"] = b"CC", np.arange(1, n_ch + 1), units
    e["label"] = [f"elec{i + 1}".encode() for i in range(n_ch)]
    e["min_dig"], e["max_dig"], e["min_an"], e["max_an"] = -dig, dig, -analog, analog
    return e.tobytes(), dt.itemsize


def write_nsx(path, blocks, fs=30000.0, units=b"uV", kind="2.3", ptp_times_ns=None):
    """Write int16 ``blocks`` (list of (n, c) arrays; one per recording segment) as a Blackrock NSx file.

    kind "2.3": NEURALCD with one data packet per block (timestamps 1 s apart between blocks);
    "ptp": BRSMPGRP 3.0 with one packet per sample at nanosecond timestamps ``ptp_times_ns``
    (a single block); "2.1": NEURALSG (no voltage scale).
    Gain is 8191 / 32764 = 0.25 µV per bit (in ``units``).
    """
    n_ch = blocks[0].shape[1]
    if kind == "2.1":
        hdr = np.zeros(1, [("id", "S8"), ("label", "S16"), ("period", "<u4"), ("n", "<u4")])
        hdr["id"], hdr["label"], hdr["period"], hdr["n"] = b"NEURALSG", b"30 kS/s", int(30000 / fs), n_ch
        # neo computes n_samples = data_bytes / (2 c) - 1 for 2.1 files, so one extra frame follows
        body = np.vstack([blocks[0], np.zeros((1, n_ch), np.int16)]).astype("<i2").tobytes()
        path.write_bytes(hdr.tobytes() + np.arange(1, n_ch + 1, dtype="<u4").tobytes() + body)
        return path
    ext, ext_size = _ext_headers(n_ch, units)
    if kind == "ptp":
        out = [_basic_header(b"BRSMPGRP", (3, 0), n_ch, fs, 1_000_000_000, ext_size), ext]
        pk = np.zeros(len(blocks[0]), [("r", "u1"), ("ts", "<u8"), ("n", "<u4"), ("s", "<i2", (n_ch,))])
        pk["r"], pk["ts"], pk["n"], pk["s"] = 1, ptp_times_ns, 1, blocks[0]
        out.append(pk.tobytes())
    else:
        out = [_basic_header(b"NEURALCD", (2, 3), n_ch, fs, 30000, ext_size), ext]
        t = 0
        for b in blocks:
            out.append(np.array([(1, t, len(b))], [("h", "u1"), ("ts", "<u4"), ("n", "<u4")]).tobytes())
            out.append(np.ascontiguousarray(b, "<i2").tobytes())
            t += int(len(b) * 30000 / fs) + 30000
    path.write_bytes(b"".join(out))
    return path


# ---- sources ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raw_int16():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 400, (N, C)).astype(np.int16)
    x[:, 2] += np.arange(N, dtype=np.int16) % 300  # a ramp: rows must not get shuffled
    return x


def _make_source(kind, tmp_path, raw):
    """(recording, expected µV) for one source kind."""
    if kind == "array":
        return ArrayRecording(raw * GAIN + OFFSET, 30000.0), raw * GAIN + OFFSET
    if kind == "raw":
        p = tmp_path / "x.dat"
        p.write_bytes(b"\0" * 16 + raw.tobytes())
        return BinaryRecording(p, 30000.0, C, "int16", GAIN, OFFSET, header_bytes=16), raw * GAIN + OFFSET
    if kind.startswith("hdf5"):
        import h5py

        p = tmp_path / "x.h5"
        with h5py.File(p, "w") as f:
            if kind == "hdf5_int16":
                d = f.create_dataset("traces", data=raw, chunks=(1000, C))
                d.attrs.update(fs=30000.0, gain_uv=GAIN, offset_uv=OFFSET)
                expected = raw * GAIN + OFFSET
            else:
                d = f.create_dataset("traces", data=raw.astype(np.float32) * 0.5)
                f.attrs["fs"] = 30000.0  # root attribute accepted too; gain defaults to 1
                expected = raw * 0.5
            f["channel_ids"] = np.array([f"e{i}" for i in range(C)], dtype="S")
        return HDF5Recording(p), expected
    if kind == "nsx":
        p = write_nsx(tmp_path / "x.ns5", [raw])
        return blackrock_recording(p), raw * (8191 / 32764)
    if kind == "neo_rawbinary":  # a non-Blackrock neo reader, through the generic path
        from neo.rawio import RawBinarySignalRawIO

        p = tmp_path / "x.raw"
        p.write_bytes(raw.tobytes())
        kw = {"nb_channel": C, "sampling_rate": 30000.0, "signal_gain": GAIN, "signal_offset": OFFSET}
        return NeoRecording(p, RawBinarySignalRawIO, rawio_kwargs=kw), raw * GAIN + OFFSET
    raise ValueError(kind)


SOURCES = ["array", "raw", "hdf5_int16", "hdf5_float", "nsx", "neo_rawbinary"]


@pytest.fixture(params=SOURCES)
def source(request, tmp_path, raw_int16):
    return _make_source(request.param, tmp_path, raw_int16)


def test_whole_read_is_float32_uv(source):
    rec, expected = source
    x = rec.get_traces()
    assert x.dtype == np.float32 and x.shape == (N, C)
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-4)
    assert rec.n_samples == N and rec.n_channels == C and rec.fs == 30000.0
    assert rec.positions_um.shape == (C, 2) and len(set(rec.channel_ids)) == C


@pytest.mark.parametrize("chunk", [701, 4096, 25_000])
def test_chunked_equals_whole(source, chunk):
    rec, _ = source
    whole = rec.get_traces()
    parts = [rec.get_traces(s, e) for s, e in rec.chunks(chunk)]
    assert all(p.ndim == 2 and p.dtype == np.float32 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_channel_subsets_agree(source):
    rec, _ = source
    whole = rec.get_traces(100, 900)
    for chans in ([3], [1, 2, 3], [4, 0, 2], [2, 2]):
        np.testing.assert_array_equal(rec.get_traces(100, 900, chans), whole[:, chans])
    sub = select_channels(rec, [rec.channel_ids[4], rec.channel_ids[1]])
    np.testing.assert_array_equal(sub.get_traces(100, 900), whole[:, [4, 1]])


def test_bounds_are_clipped(source):
    rec, _ = source
    assert rec.get_traces(-50, 10).shape == (10, C)
    assert rec.get_traces(N - 5, N + 100).shape == (5, C)
    assert rec.get_traces(300, 300).shape == (0, C)


def test_pickles_without_copying_the_data(source):
    rec, expected = source
    rec.get_traces(0, 10)  # opens memmaps / file handles
    blob = pickle.dumps(rec)
    copy = pickle.loads(blob)
    np.testing.assert_array_equal(copy.get_traces(500, 600), rec.get_traces(500, 600))
    if not isinstance(rec, ArrayRecording):
        assert len(blob) < expected.nbytes / 10


def test_describe_states_the_facts(source):
    rec, _ = source
    d = rec.describe()
    assert (d["fs"], d["n_channels"], d["n_samples"]) == (30000.0, C, N)
    assert abs(d["duration_s"] - N / 30000.0) < 1e-3
    json.dumps(d)  # plain types only (it goes to the run store and `info --json`)


# ---- dispatch -----------------------------------------------------------------------------------
def test_open_recording_picks_the_reader_by_extension(tmp_path, raw_int16):
    (tmp_path / "a.bin").write_bytes(raw_int16.tobytes())
    cfg = InputConfig(fs=30000.0, n_channels=C, gain_uv=GAIN)
    assert isinstance(open_recording(tmp_path / "a.bin", cfg), BinaryRecording)
    write_hdf5(tmp_path / "a.hdf5", ArrayRecording(raw_int16 * 1.0, 30000.0))
    assert isinstance(open_recording(tmp_path / "a.hdf5"), HDF5Recording)
    nsx = write_nsx(tmp_path / "a.ns6", [raw_int16[:300]])
    for fmt in ("auto", "blackrock", "BlackrockRawIO", "blackrockio", "neo"):
        rec = open_recording(nsx, InputConfig(format=fmt))
        assert isinstance(rec, NeoRecording) and rec.n_samples == 300, fmt
    # the raw format name works whatever the extension
    (tmp_path / "a.xyz").write_bytes(raw_int16.tobytes())
    assert open_recording(tmp_path / "a.xyz", InputConfig(format="raw", fs=1000.0, n_channels=C)).n_samples == N


def test_open_recording_keeps_the_configured_channels(tmp_path, raw_int16):
    nsx = write_nsx(tmp_path / "a.ns5", [raw_int16[:1000]])
    full = open_recording(nsx)
    sub = open_recording(nsx, InputConfig(channels=["4", "2"]))
    assert sub.channel_ids.tolist() == ["4", "2"]
    np.testing.assert_array_equal(sub.get_traces(), full.get_traces()[:, [3, 1]])


# ---- NSx details: units, segments, gaps ---------------------------------------------------------
def test_nsx_units_in_millivolts_are_converted_to_microvolts(tmp_path, raw_int16):
    rec = blackrock_recording(write_nsx(tmp_path / "mv.ns5", [raw_int16[:100]], units=b"mV"))
    np.testing.assert_allclose(rec.gain_uv, 1000 * 8191 / 32764)
    np.testing.assert_allclose(rec.get_traces(), raw_int16[:100] * 250.0, rtol=1e-6)


def test_nsx_sampling_rate_from_the_period(tmp_path, raw_int16):
    rec = blackrock_recording(write_nsx(tmp_path / "lfp.ns2", [raw_int16[:100]], fs=1000.0))
    assert rec.fs == 1000.0


def test_nsx_pauses_become_segments(tmp_path, raw_int16):
    a, b = raw_int16[:400], raw_int16[1000:1700]
    path = write_nsx(tmp_path / "paused.ns5", [a, b])
    rec = blackrock_recording(path)
    assert [s["n_samples"] for s in rec.describe()["segments"]] == [400, 700]
    np.testing.assert_allclose(rec.get_traces(), a * 0.25, rtol=1e-6)
    second = blackrock_recording(path, segment=1)
    np.testing.assert_allclose(second.get_traces(), b * 0.25, rtol=1e-6)
    assert second.t_start_s > rec.t_start_s


def test_ptp_gap_is_an_error_quoting_neo_then_segments_on_request(tmp_path, raw_int16):
    ns = (np.arange(600) * 1e9 / 30000).astype(np.uint64)
    ns[350:] += np.uint64(5_000_000)  # a 5 ms hole after sample 349
    path = write_nsx(tmp_path / "ptp.ns5", [raw_int16[:600]], kind="ptp", ptp_times_ns=ns)
    from spikevae.errors import RecordingError

    with pytest.raises(RecordingError, match=r"(?s)timestamp gaps.*neo's report.*Found 1 timestamp gaps.*"
                                             r"input\.gap_tolerance_ms.*input\.segment"):
        open_recording(path)
    rec = open_recording(path, InputConfig(gap_tolerance_ms=1.0, segment=1))
    assert [s["n_samples"] for s in rec.segments()] == [350, 250]
    np.testing.assert_allclose(rec.get_traces(), raw_int16[350:600] * 0.25, rtol=1e-6)


def test_nsx_21_without_scale_warns_and_keeps_counts(tmp_path, raw_int16, caplog):
    rec = blackrock_recording(write_nsx(tmp_path / "old.ns5", [raw_int16[:200]], kind="2.1"))
    assert "cannot rescale to µV" in caplog.text
    assert not rec.describe()["voltage_scale"]
    np.testing.assert_array_equal(rec.get_traces(), raw_int16[:200].astype(np.float32))


def test_project_nsx_writer_round_trip(tmp_path):
    from spikevae.io.nsx_write import write_nsx as write_project_nsx

    x = np.random.default_rng(3).normal(0, 40, (7000, 4)).astype(np.float32)
    src = ArrayRecording(x, 30000.0, channel_ids=["3", "7", "11", "96"])
    rec = open_recording(write_project_nsx(tmp_path / "w.ns5", src, chunk_s=0.1))
    assert isinstance(rec, NeoRecording) and rec.channel_ids.tolist() == ["3", "7", "11", "96"]
    assert (rec.fs, rec.n_samples) == (30000.0, 7000) and np.allclose(rec.gain_uv, 0.25)
    assert np.abs(rec.get_traces() - x).max() <= 0.125 + 1e-4  # half a bit
    np.testing.assert_array_equal(rec.get_traces(1234, 5678, [2, 0]), rec.get_traces()[1234:5678, [2, 0]])


# ---- HDF5 writer --------------------------------------------------------------------------------
def test_write_hdf5_round_trip(tmp_path, raw_int16):
    src = ArrayRecording(raw_int16 * 0.37, 30000.0, channel_ids=list("abcde"))
    back = HDF5Recording(write_hdf5(tmp_path / "f.h5", src, chunk_s=0.1))
    np.testing.assert_array_equal(back.get_traces(), src.get_traces())
    assert back.channel_ids.tolist() == list("abcde")
    q = HDF5Recording(write_hdf5(tmp_path / "q.h5", src, chunk_s=0.1, dtype="int16"))
    assert q.describe()["stored_dtype"] == "int16"
    assert np.abs(q.get_traces() - src.get_traces()).max() <= q.gain_uv[0] / 2 + 1e-3
    assert not list(tmp_path.glob("*.tmp"))


# ---- bounded memory ------------------------------------------------------------------------------
class LazyNoise(Recording):
    """A long recording computed on demand (never held in memory)."""

    def __init__(self, seconds, n_channels=32, fs=30000.0):
        self._init_meta(fs, np.arange(n_channels).astype(str), int(seconds * fs), source="lazy")

    def _read_raw(self, start, stop, channels):
        rng = np.random.default_rng(start)
        return rng.normal(0, 10, (stop - start, channels.size)).astype(np.float32)


def test_checks_and_writer_run_in_bounded_memory(tmp_path):
    import tracemalloc

    from spikevae.io import find_dead_channels

    tracemalloc.start()
    assert find_dead_channels(LazyNoise(3600)).size == 0  # one hour: 415 MB per channel-hour if loaded
    _, peak_dead = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    write_hdf5(tmp_path / "long.h5", LazyNoise(10), chunk_s=0.5)  # 38 MB of traces
    _, peak_write = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak_dead < 5e6 and peak_write < 10e6, (peak_dead, peak_write)
    assert HDF5Recording(tmp_path / "long.h5").n_samples == 300_000


# ---- real Blackrock files -----------------------------------------------------------------------
@pytest.mark.data
def test_real_ns2_force_channels(shared_data):
    rec = open_recording(require_data(shared_data / "blackrock_limblab_utah" / "TEST_UN001.ns2"))
    assert (rec.n_channels, rec.fs, rec.n_samples) == (6, 1000.0, 79_698)
    assert rec.channel_ids.tolist() == [str(i) for i in range(129, 135)]
    assert rec.describe()["channel_names"] == [f"ForceHandle{i}" for i in range(1, 7)]
    np.testing.assert_allclose(rec.gain_uv, 0.15259255 * 1000, rtol=1e-6)  # README: 0.1526 mV per bit
    x = rec.get_traces(0, 6000)
    np.testing.assert_array_equal(np.concatenate([rec.get_traces(s, s + 1000) for s in range(0, 6000, 1000)]), x)
    counts = x / rec.gain_uv
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # whole counts times the gain
    peak = max(np.abs(rec.get_traces(a, b)).max() for a, b in rec.chunks(20_000)) / rec.gain_uv[0]
    assert 3000 < peak < 4000  # README: raw ranges about ±3600 counts


NS3 = [  # file, channels, samples, gain (µV per bit), voltage scale (README of blackrock_mne_nsx)
    ("Test_anonymized.ns3", 5, 100, 0.25, True),
    ("test_NEURALSG_raw.ns3", 128, 99, 1.0, False),
    ("test_NEURALCD_raw.ns3", 128, 100, 610.3515625, True),
    ("test_BRSMPGRP_raw.ns3", 128, 100, 610.3515625, True),
]


@pytest.mark.data
@pytest.mark.parametrize("name, n_ch, n_samples, gain, scaled", NS3)
def test_real_ns3_header_versions(shared_data, caplog, name, n_ch, n_samples, gain, scaled):
    rec = open_recording(require_data(shared_data / "blackrock_mne_nsx" / name))
    assert (rec.n_channels, rec.fs, rec.n_samples) == (n_ch, 2000.0, n_samples)
    np.testing.assert_allclose(rec.gain_uv, gain, rtol=1e-9)
    assert rec.describe()["voltage_scale"] is scaled
    assert ("cannot rescale to µV" in caplog.text) is (not scaled)
    x = rec.get_traces()
    assert x.shape == (n_samples, n_ch) and x.dtype == np.float32
    np.testing.assert_array_equal(rec.get_traces(10, 60, [0, 7 % n_ch]), x[10:60, [0, 7 % n_ch]])


@pytest.mark.data
def test_real_ns3_start_time_and_segments(shared_data):
    d = require_data(shared_data / "blackrock_mne_nsx")
    assert open_recording(d / "Test_anonymized.ns3").t_start_s == pytest.approx(3.8)
    segs = open_recording(d / "test_BRSMPGRP_raw.ns3").describe()["segments"]
    assert [s["n_samples"] for s in segs] == [100, 150]  # two data blocks: neo reads two segments


@pytest.mark.data
def test_real_nev_spikes(shared_data):
    path = require_data(shared_data / "blackrock_limblab_utah" / "Han_20170516.nev")
    s = read_nev(path)
    assert s.n_spikes == 20_163 and s.n_electrodes == 96 and s.waveforms.shape == (20_163, 48)
    assert s.fs == 30000.0 and s.channel_ids.tolist() == [str(i) for i in range(1, 97)]
    counts = np.bincount(s.electrode, minlength=96)
    assert counts.min() == 31 and counts.max() == 268 and 213 <= np.median(counts) <= 214
    assert np.all(np.diff(s.sample_index) >= 0)
    t_trigger = (s.sample_index + 10 - s.peak_index) / s.fs  # back to neo's spike times
    assert 1.001 <= t_trigger.min() and t_trigger.max() <= 1.998
    quarter = s.waveforms * 4  # 0.25 µV per bit: µV values are whole multiples of 0.25
    np.testing.assert_allclose(quarter, np.round(quarter), atol=1e-3)
    assert 1000 < np.median(np.ptp(s.waveforms, axis=1)) < 1050  # README: median peak-to-peak 1022 µV
    np.testing.assert_array_equal(s.amplitude_uv, s.waveforms[:, s.peak_index])
    assert np.all(s.noise_uv > 0)
    two = read_nev(path, channels=[5, "17"])
    assert two.channel_ids.tolist() == ["5", "17"]
    assert two.n_spikes == counts[4] + counts[16]


@pytest.mark.data
@pytest.mark.filterwarnings("ignore:Unknown event codes found")
def test_real_nev_counts_match_neo_highlevel(shared_data):
    import neo

    path = require_data(shared_data / "blackrock_limblab_utah" / "Han_20170516.nev")
    seg = neo.io.BlackrockIO(filename=str(path), nsx_to_load=[]).read_block(load_waveforms=True).segments[0]
    s = read_nev(path)
    st = seg.spiketrains[0]
    e = int(st.name.removeprefix("ch").split("#")[0]) - 1
    mine = s.waveforms[s.electrode == e]
    theirs = np.asarray(st.waveforms.rescale("uV"))[:, 0, :]
    np.testing.assert_allclose(mine, theirs[np.argsort(np.asarray(st.times), kind="stable")], rtol=1e-6)


@pytest.mark.data
def test_info_command_on_real_files(shared_data):
    from click.testing import CliRunner

    from spikevae.commands.info import info

    d = require_data(shared_data)
    out = CliRunner().invoke(info, [str(d / "blackrock_limblab_utah" / "TEST_UN001.ns2")])
    assert out.exit_code == 0, out.output
    for text in ("channels:       6 (129", "sampling rate:  1000 Hz", "duration:       79.698 s", "152.593 µV",
                 "segment:        0, of 1", "nsx2", "are above 128: on a Blackrock NSP these are analog inputs"):
        assert text in out.output, text
    js = json.loads(CliRunner().invoke(info, ["--json", str(d / "blackrock_limblab_utah" / "Han_20170516.nev")]).output)
    assert js["n_spikes"] == 20_163 and js["waveform_samples"] == 48
    sg = CliRunner().invoke(info, [str(d / "blackrock_mne_nsx" / "test_NEURALSG_raw.ns3")])
    assert "no voltage scale" in sg.output


def test_info_command_on_raw_binary(tmp_path, raw_int16):
    from click.testing import CliRunner

    from spikevae.commands.info import info

    (tmp_path / "r.dat").write_bytes(raw_int16.tobytes())
    out = CliRunner().invoke(info, [str(tmp_path / "r.dat"), "--fs", "30000", "--n-channels", str(C),
                                    "--gain-uv", "0.195", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert (d["n_channels"], d["n_samples"], d["gain_uv"], d["dtype"]) == (C, N, [0.195], "int16")


@pytest.mark.data
def test_nev_and_nsx_of_one_session_are_read_apart(shared_data, tmp_path, raw_int16):
    """A .nev next to an .nsX of another length: each reader ignores the other file (paired, neo splits the
    spikes by the .nsX segments and warns about spikes outside them)."""
    import shutil

    nev = require_data(shared_data / "blackrock_limblab_utah" / "Han_20170516.nev")
    shutil.copy(nev, tmp_path / "s.nev")
    write_nsx(tmp_path / "s.ns5", [raw_int16[:900], raw_int16[:300]])  # two segments; the .nev has one
    assert read_nev(tmp_path / "s.nev").n_spikes == 20_163
    rec = open_recording(tmp_path / "s.ns5")
    assert rec.n_samples == 900 and len(rec.segments()) == 2
