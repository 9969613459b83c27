"""Cache identity from the data: a changed input recomputes, the same data elsewhere reuses."""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from spikevae.identity import file_identity, recording_identity, spikes_identity
from spikevae.params import load_config
from spikevae.pipeline import input_identity, run_pipeline, spikes_key
from spikevae.recording import ArrayRecording, ChannelSubset
from spikevae.synth import SimConfig, simulate_recording

FS = 30000.0


def _array_recording(seed: int, duration_s: float = 3.0) -> ArrayRecording:
    """4 simulated electrodes held in memory (the same shape and repr for every seed)."""
    rec, _ = simulate_recording(SimConfig(n_electrodes=4, duration_s=duration_s, units_min=1), seed=seed)
    return ArrayRecording(rec.get_traces(), FS)


@pytest.fixture(scope="module")
def two_recordings():
    return _array_recording(0), _array_recording(1)


@pytest.fixture
def fast_config():
    return load_config(overrides=["run.n_jobs=1", "cluster.n_jobs=1"])


def test_in_memory_recordings_of_one_shape_differ(two_recordings):
    a, b = two_recordings
    assert repr(a) == repr(b)  # what the cache key used to be built from
    assert recording_identity(a) != recording_identity(b)
    assert recording_identity(a) == recording_identity(ArrayRecording(a.get_traces(), FS, source="elsewhere"))
    # metadata counts: the same samples under other channel ids or rate are another input
    assert recording_identity(a) != recording_identity(ArrayRecording(a.get_traces(), FS, channel_ids=list("abcd")))
    assert recording_identity(a) != recording_identity(ArrayRecording(a.get_traces(), 2 * FS))
    assert recording_identity(a) != recording_identity(ChannelSubset(a, [0, 1, 2]))


def test_one_changed_sample_in_a_sampled_block_changes_identity():
    x = np.zeros((200_000, 2), np.float32)
    before = recording_identity(ArrayRecording(x, FS))
    x[0, 1] = 1e-3  # the first block is always read
    assert recording_identity(ArrayRecording(x, FS)) != before


def test_second_in_memory_run_recomputes(two_recordings, fast_config, tmp_path):
    a, b = two_recordings
    out = tmp_path / "out"
    ra = run_pipeline(a, fast_config, out, report=False)
    rb = run_pipeline(b, fast_config, out, report=False)
    assert "detect" not in rb.skipped
    assert not np.array_equal(ra.spikes.sample_index, rb.spikes.sample_index)
    again = run_pipeline(b, fast_config, out, report=False)
    assert again.skipped[0] == "detect"
    np.testing.assert_array_equal(again.spikes.sample_index, rb.spikes.sample_index)


def _write_raw(path, rec: ArrayRecording) -> None:
    np.round(rec.get_traces() / 0.25).astype(np.int16).tofile(path)


RAW = ["input.format=raw", "input.fs=30000", "input.n_channels=4", "input.dtype=int16", "input.gain_uv=0.25",
       "run.n_jobs=1", "cluster.n_jobs=1"]


def test_file_replaced_with_same_size_and_mtime_recomputes(two_recordings, tmp_path):
    a, b = two_recordings
    cfg = load_config(overrides=RAW)
    path, out = tmp_path / "rec.dat", tmp_path / "out"
    _write_raw(path, a)
    st = os.stat(path)
    id_a = file_identity(path)
    ra = run_pipeline(path, cfg, out, report=False)
    _write_raw(path, b)  # cp -p / rsync -a: other content, same size, same mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert file_identity(path) != id_a
    rb = run_pipeline(path, cfg, out, report=False)
    assert "detect" not in rb.skipped
    assert not np.array_equal(ra.spikes.sample_index, rb.spikes.sample_index)


def test_same_content_elsewhere_reuses(two_recordings, tmp_path):
    a, _ = two_recordings
    cfg = load_config(overrides=RAW)
    first, moved, out = tmp_path / "a.dat", tmp_path / "sub" / "renamed.dat", tmp_path / "out"
    _write_raw(first, a)
    moved.parent.mkdir()
    shutil.copyfile(first, moved)  # a plain copy: new path, new mtime, same bytes
    os.utime(moved, (1e9, 1e9))
    assert file_identity(first) == file_identity(moved)
    ident_first, ident_moved = input_identity(first), input_identity(moved)
    assert ident_first["path"] != ident_moved["path"]  # kept for display ...
    assert spikes_key(ident_first, cfg) == spikes_key(ident_moved, cfg)  # ... but not in the key
    run_pipeline(first, cfg, out, report=False)
    assert run_pipeline(moved, cfg, out, report=False).skipped[0] == "detect"


def test_folder_identity_follows_its_files(tmp_path):
    d = tmp_path / "session"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"x" * 1000)
    (d / "sub" / "b.bin").write_bytes(b"y" * 1000)
    before = file_identity(d)
    (d / ".a.bin.123.tmp").write_bytes(b"half-written")  # hidden temporaries do not count
    assert file_identity(d) == before
    (d / "sub" / "b.bin").write_bytes(b"z" * 1000)
    assert file_identity(d) != before
    (d / "sub" / "b.bin").write_bytes(b"y" * 1000)
    assert file_identity(d) == before
    (d / "sub" / "b.bin").rename(d / "sub" / "c.bin")  # names inside a folder format are content
    assert file_identity(d) != before


def test_large_sparse_file_is_fast_and_sampled(tmp_path):
    path = tmp_path / "big.dat"
    with open(path, "wb") as fh:
        fh.truncate(1 << 30)  # 1 GiB, sparse
    t0 = time.perf_counter()
    before = file_identity(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, elapsed  # measured ~1 ms (18 blocks of 64 KiB)
    with open(path, "r+b") as fh:  # a change inside the header block
        fh.write(b"\x01")
    assert file_identity(path) != before


def test_missing_file_names_it(tmp_path):
    from spikevae.errors import SpikevaeError

    with pytest.raises(SpikevaeError, match=r"nothere\.dat: file not found"):
        file_identity(tmp_path / "nothere.dat")


def test_spikes_identity_follows_the_arrays(two_recordings, fast_config, tmp_path):
    a, _ = two_recordings
    spikes = run_pipeline(a, fast_config, tmp_path / "o", report=False).spikes
    moved = spikes.subset(np.ones(spikes.n_spikes, bool))
    assert spikes_identity(moved) == spikes_identity(spikes)
    moved.sample_index[0] += 1
    assert spikes_identity(moved) != spikes_identity(spikes)
