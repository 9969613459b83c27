"""Per-spike arrays in memory-mapped files of the run folder (spikevae.execution.spill)."""
import numpy as np
import pytest

import spikevae.execution.spill as spill
from spikevae.execution.spill import Column, disk_empty, full, is_mapped, spill_to, take
from spikevae.params import PipelineConfig
from spikevae.pipeline import run_pipeline
from spikevae.synth import SimConfig, simulate_recording


@pytest.fixture
def small_spill(monkeypatch):
    monkeypatch.setattr(spill, "SPILL_BYTES", 1000)


def test_large_arrays_go_to_unnamed_files_of_the_folder_only_inside_spill_to(tmp_path, small_spill):
    assert not is_mapped(disk_empty(10_000, np.int64))  # no spill folder: the heap
    with spill_to(tmp_path) as folder:
        a = disk_empty((5000, 3), np.float32)
        small = disk_empty(10, np.int64)
        assert is_mapped(a) and is_mapped(a[::2]) and not is_mapped(small)
        assert a.shape == (5000, 3) and a.dtype == np.float32 and a.flags.writeable
        a[:] = 7
        assert not any(folder.iterdir())  # unlinked at once: nothing a killed run leaves behind
    assert not folder.exists()
    with spill_to(tmp_path / "no_such_run") as none:  # a command given a missing run folder: it says so itself
        assert none is None and not is_mapped(disk_empty((5000, 3), np.float32))
    assert not (tmp_path / "no_such_run").exists()
    assert float(a.sum()) == 7 * 15000  # the array outlives the block, its file still mapped
    with spill_to(tmp_path):
        f = full((400, 2), -1, np.int32)
        assert is_mapped(f) and f.dtype == np.int32 and np.all(f == -1)


@pytest.mark.parametrize("width", [(), (5,)])
def test_a_column_is_the_concatenation_of_its_pieces_in_memory_or_in_a_file(tmp_path, small_spill, width):
    rng = np.random.default_rng(0)
    pieces = [rng.integers(-50, 50, (int(k),) + width) for k in rng.integers(0, 40, 60)]
    want = np.concatenate(pieces).astype(np.int32)
    c = Column(np.int32, width)
    for p in pieces:
        c.append(p)
    got = c.finish()  # no spill folder: joined in memory
    assert not is_mapped(got) and got.dtype == np.int32 and np.array_equal(got, want)
    with spill_to(tmp_path):
        c = Column(np.int32, width)
        for p in pieces:
            c.append(p)
        assert len(c) == want.shape[0]
        got = c.finish()
        assert is_mapped(got) and np.array_equal(got, want)
        got[0] = 99  # writable (detection sorts across chunk borders in place)
        with pytest.raises(ValueError, match="does not fit"):
            Column(np.int32, width).append(np.zeros((3, 2, 2)))


def test_take_is_fancy_indexing_a_block_at_a_time(tmp_path, small_spill):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3000, 2)).astype(np.float32)
    mask = rng.random(3000) < 0.4
    idx = rng.integers(0, 3000, 777)
    with spill_to(tmp_path):
        for sel in (mask, idx, np.flatnonzero(mask), slice(10, 50)):
            got = take(a, sel, block=100)
            np.testing.assert_array_equal(got, a[sel])
        assert is_mapped(take(a, mask, block=100))
        with pytest.raises(IndexError):
            take(a, mask[:-1])


def test_a_run_keeps_its_per_spike_columns_in_files_and_sorts_as_in_memory(tmp_path, small_spill):
    """With every array past 1000 bytes spilled, a run's spikes and sorting lie in mapped files (and after a
    reload from its store) and its sorting is byte-identical to that of a run whose arrays are all in memory."""
    rec, _ = simulate_recording(SimConfig(n_electrodes=4, duration_s=12.0, units_min=1), seed=5)
    res = run_pipeline(rec, PipelineConfig(), tmp_path / "spilled", report=True)
    for a in (res.spikes.sample_index, res.spikes.electrode, res.spikes.amplitude_uv, res.spikes.waveforms.row,
              res.sorting.unit, res.sorting.sample_index):
        assert is_mapped(a)
    assert not (tmp_path / "spilled" / spill.SPILL_DIR).exists()
    spill.SPILL_BYTES = 1 << 62  # nothing spilled
    ref = run_pipeline(rec, PipelineConfig(), tmp_path / "memory", report=True)
    assert not is_mapped(ref.sorting.unit)
    for name in ("sorting.npz", "units.csv", "metrics.json"):
        assert (tmp_path / "spilled" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name
    spill.SPILL_BYTES = 1000
    again = run_pipeline(rec, PipelineConfig(), tmp_path / "spilled", report=True)  # every stage from the store
    assert {"detect", "features_pca", "cluster_pca"} <= set(again.skipped)
    assert is_mapped(again.spikes.sample_index) and is_mapped(again.sorting.unit)
    assert (tmp_path / "spilled" / "sorting.npz").read_bytes() == (tmp_path / "memory" / "sorting.npz").read_bytes()


def test_unit_ids_are_found_a_block_at_a_time(monkeypatch):
    import spikevae.objects as objects
    from spikevae.objects import Sorting, unique_values

    monkeypatch.setattr(objects, "GROUP_BLOCK", 100)
    rng = np.random.default_rng(2)
    u = rng.integers(-1, 40, 2345).astype(np.int32)
    u[2000:] = 77  # a unit seen only in the last blocks
    assert np.array_equal(unique_values(u), np.unique(u))
    s = Sorting(np.arange(u.size), np.zeros(u.size, np.int32), u, 30000.0)
    assert np.array_equal(s.unit_ids, np.unique(u[u >= 0]))
