"""The NSx writer: neo reads back rate, channels, gain and samples; atomic; bounded memory."""
from __future__ import annotations

import logging
import struct
import tracemalloc
from datetime import datetime, timezone

import numpy as np
import pytest

from spikevae.errors import SpikevaeError
from spikevae.io.nsx_write import BASIC_HEADER_BYTES, EXT_HEADER_BYTES, digital_analog_range, write_nsx
from spikevae.recording import ArrayRecording, Recording
from spikevae.synth import SimConfig, simulate_recording

neo_rawio = pytest.importorskip("neo.rawio")
ORIGIN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def read_back(path, nsx):
    r = neo_rawio.BlackrockRawIO(filename=str(path), nsx_to_load=nsx)
    r.parse_header()
    raw = r.get_analogsignal_chunk(0, 0, None, None, 0)
    return r, raw, r.rescale_signal_raw_to_float(raw, dtype="float64", stream_index=0)


def test_neo_reads_back_a_simulated_recording(tmp_path):
    rec, _ = simulate_recording(SimConfig(duration_s=1.5, n_electrodes=6, block_samples=8192), seed=2)
    path = write_nsx(tmp_path / "rec.ns5", rec, chunk_s=0.37, time_origin=ORIGIN)
    r, raw, uv = read_back(path, 5)
    ch = r.header["signal_channels"]
    assert r.get_signal_sampling_rate(0) == 30000.0
    assert len(ch) == 6 and raw.shape == (rec.n_samples, 6)
    assert list(ch["id"]) == [str(i) for i in range(1, 7)]
    assert list(ch["name"]) == [f"chan{i}" for i in range(1, 7)]
    assert np.all(ch["gain"] == 0.25) and np.all(ch["offset"] == 0) and set(ch["units"]) == {"uV"}
    assert np.abs(uv - rec.get_traces()).max() <= 0.125 + 1e-4  # half a bit
    assert path.stat().st_size == BASIC_HEADER_BYTES + 6 * EXT_HEADER_BYTES + 9 + rec.n_samples * 6 * 2


def test_other_rate_and_gain(tmp_path):
    x = np.random.default_rng(0).normal(0, 30, (2500, 3)).astype(np.float32)
    rec = ArrayRecording(x, 10000.0, channel_ids=["a", "b", "c"])
    path = write_nsx(tmp_path / "r.ns4", rec, gain_uv=0.1, time_origin=ORIGIN)
    r, raw, uv = read_back(path, 4)
    assert r.get_signal_sampling_rate(0) == 10000.0
    np.testing.assert_allclose(r.header["signal_channels"]["gain"], 0.1)
    assert list(r.header["signal_channels"]["id"]) == ["1", "2", "3"]  # non-numeric ids become 1..n
    np.testing.assert_array_equal(raw, np.rint(x / np.float32(0.1)).astype(np.int16))
    assert np.abs(uv - x).max() <= 0.05 + 1e-4


def test_out_of_range_samples_are_clipped_with_a_warning(tmp_path, caplog):
    x = np.array([[0.0], [9000.0], [-9000.0], [100.0]], np.float32)
    with caplog.at_level(logging.WARNING):
        path = write_nsx(tmp_path / "c.ns5", ArrayRecording(x, 30000.0), time_origin=ORIGIN)
    _, raw, _ = read_back(path, 5)
    np.testing.assert_array_equal(raw[:, 0], [0, 32767, -32767, 400])
    assert "2 samples" in caplog.text and "clipped" in caplog.text


def test_user_errors(tmp_path):
    rec = ArrayRecording(np.zeros((10, 2), np.float32), 30000.0)
    with pytest.raises(SpikevaeError, match="extension"):
        write_nsx(tmp_path / "r.dat", rec)
    with pytest.raises(SpikevaeError, match="whole number"):
        write_nsx(tmp_path / "r.ns5", ArrayRecording(np.zeros((10, 2), np.float32), 25000.0))
    with pytest.raises(SpikevaeError, match="16-bit"):
        write_nsx(tmp_path / "r.ns5", rec, gain_uv=0.123456789)
    assert digital_analog_range(0.25) == (32764, 8191)


class _FailingRecording(Recording):
    """A source whose read fails after the first chunk (a disk error in the middle of a write)."""

    def __init__(self):
        self._init_meta(30000.0, ["1", "2"], 90000)

    def _read_raw(self, start, stop, channels):
        if start > 0:
            raise OSError("read failed")
        return np.zeros((stop - start, len(channels)), np.float32)


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(OSError, match="read failed"):
        write_nsx(tmp_path / "r.ns5", _FailingRecording())
    assert list(tmp_path.iterdir()) == []


def _peak_write_bytes(path, duration_s):
    cfg = SimConfig(duration_s=duration_s, n_electrodes=8, units_max=1, background_max=0)
    rec, _ = simulate_recording(cfg, seed=0)
    tracemalloc.start()
    write_nsx(path, rec, chunk_s=0.5, time_origin=ORIGIN)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, rec.n_samples * rec.n_channels * 4


def test_memory_does_not_grow_with_length(tmp_path):
    short, _ = _peak_write_bytes(tmp_path / "short.ns5", 5.0)
    long, full_traces_bytes = _peak_write_bytes(tmp_path / "long.ns5", 40.0)
    assert long < 1.2 * short + 1e6, f"peak {short / 1e6:.1f} MB for 5 s, {long / 1e6:.1f} MB for 40 s"
    assert long < full_traces_bytes / 2


@pytest.mark.data
def test_header_sizes_match_a_real_neuralcd_file(shared_data):
    """Our 314-byte basic and 66-byte extended headers are the sizes a real NEURALCD 2.x file has."""
    path = shared_data / "blackrock_mne_nsx" / "test_NEURALCD_raw.ns3"
    head = path.read_bytes()
    assert head[:8] == b"NEURALCD"
    bytes_in_headers = struct.unpack_from("<I", head, 10)[0]
    n_ch = struct.unpack_from("<I", head, BASIC_HEADER_BYTES - 4)[0]
    assert bytes_in_headers == BASIC_HEADER_BYTES + EXT_HEADER_BYTES * n_ch
    assert head[BASIC_HEADER_BYTES:BASIC_HEADER_BYTES + 2] == b"CC"
    assert head[bytes_in_headers] == 1  # data packet header
