"""Waveforms on disk (spikevae.waveform_store): exact reads, atomic files, and a run that never
holds every waveform in memory yet sorts exactly as from waveforms in memory."""
import shutil

import h5py
import numpy as np
import pytest

from spikevae.detect import DetectConfig, detect_spikes
from spikevae.errors import SpikevaeError
from spikevae.params import PipelineConfig
from spikevae.pipeline import run_pipeline
from spikevae.preprocess import PreprocessConfig, preprocess
from spikevae.store import RunStore, load_spikes
from spikevae.synth import SimConfig, simulate_recording
from spikevae.waveform_store import WAVEFORM_FILE, DiskWaveforms, WaveformWriter, write_waveforms
import spikevae.waveform_store.array as wf_array


@pytest.fixture(scope="module")
def recording():
    rec, _ = simulate_recording(SimConfig(n_electrodes=4, duration_s=12.0, units_min=1), seed=5)
    return rec


@pytest.fixture
def stored(tmp_path, monkeypatch):
    monkeypatch.setattr(wf_array, "READ_BLOCK_ROWS", 37)  # many blocks even for a small array
    rng = np.random.default_rng(0)
    el = rng.integers(0, 5, 3000)
    wf = rng.normal(size=(3000, 16)).astype(np.float32)
    return write_waveforms(tmp_path / "w.h5", el, wf, n_electrodes=6), wf, el


def test_every_kind_of_index_reads_the_same_values_as_the_array(stored):
    disk, wf, el = stored
    rng = np.random.default_rng(1)
    idx = rng.choice(3000, 500, replace=False)  # unsorted, across electrodes
    assert disk.shape == wf.shape and len(disk) == 3000
    np.testing.assert_array_equal(np.asarray(disk), wf)
    np.testing.assert_array_equal(disk[idx], wf[idx])
    np.testing.assert_array_equal(disk[el == 3], wf[el == 3])
    np.testing.assert_array_equal(disk[el == 3, 7], wf[el == 3, 7])
    np.testing.assert_array_equal(disk[:, 2], wf[:, 2])
    np.testing.assert_array_equal(disk[5:2900:7], wf[5:2900:7])
    np.testing.assert_array_equal(disk[-1], wf[-1])
    np.testing.assert_array_equal(disk[np.array([4, 4, 1])], wf[[4, 4, 1]])
    sub = disk.take(el == 2)
    assert isinstance(sub, DiskWaveforms)
    np.testing.assert_array_equal(sub[::3], wf[el == 2][::3])
    with pytest.raises(IndexError):
        disk[np.array([3000])]


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with WaveformWriter(tmp_path / "w.h5", 2, 8) as w:
            w.append(np.array([0, 1]), np.zeros((2, 8), np.float32))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_streamed_detection_equals_detection_in_memory(recording, tmp_path, n_jobs):
    filt = preprocess(recording, PreprocessConfig())
    mem = detect_spikes(filt, DetectConfig(), chunk_s=1.0, seed=0)
    disk = detect_spikes(filt, DetectConfig(), chunk_s=1.0, seed=0, n_jobs=n_jobs,
                         waveform_file=tmp_path / "w.h5", waveform_attrs={"hash": "h"})
    assert isinstance(disk.waveforms, DiskWaveforms)
    np.testing.assert_array_equal(disk.sample_index, mem.sample_index)
    np.testing.assert_array_equal(disk.electrode, mem.electrode)
    np.testing.assert_array_equal(disk.amplitude_uv, mem.amplitude_uv)
    np.testing.assert_array_equal(np.asarray(disk.waveforms), mem.waveforms)
    np.testing.assert_array_equal(disk.noise_snippets, mem.noise_snippets)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_run_never_reads_every_waveform_or_feature_at_once_and_sorts_as_in_memory(recording, tmp_path, monkeypatch):
    cfg = PipelineConfig()
    filt = preprocess(recording, cfg.preprocess)
    in_memory = detect_spikes(filt, cfg.detect, chunk_s=cfg.run.chunk_s, seed=cfg.run.seed)
    ref = run_pipeline(in_memory, cfg, tmp_path / "mem", report=False)

    def whole(self, dtype=None, copy=None):
        raise AssertionError(f"a stage read all {len(self)} rows of {self.path.name} at once")

    monkeypatch.setattr(DiskWaveforms, "__array__", whole)
    res = run_pipeline(recording, cfg, tmp_path / "disk", report=True)
    assert isinstance(res.spikes.waveforms, DiskWaveforms)
    assert (tmp_path / "disk" / WAVEFORM_FILE).is_file() and (tmp_path / "disk" / "report.html").is_file()
    np.testing.assert_array_equal(res.spikes.sample_index, ref.spikes.sample_index)
    feats = res.embeddings["pca"].features  # on disk too, per electrode, and equal to the in-memory run's
    assert isinstance(feats, DiskWaveforms) and feats.path == tmp_path / "disk" / "features_pca.h5"
    np.testing.assert_array_equal(feats[:], ref.embeddings["pca"].features[:])
    np.testing.assert_array_equal(res.sorting.unit, ref.sorting.unit)
    assert len(res.sorting.unit_ids) >= 3


def test_a_missing_waveform_file_is_rebuilt_or_named(recording, tmp_path):
    cfg = PipelineConfig()
    out = tmp_path / "run"
    first = run_pipeline(recording, cfg, out, report=False)
    (out / WAVEFORM_FILE).unlink()
    with pytest.raises(SpikevaeError, match="waveform file is missing"):
        load_spikes(out)
    assert not RunStore(out).has("spikes")
    again = run_pipeline(recording, cfg, out, report=False)  # detection runs again, nothing else changes
    np.testing.assert_array_equal(again.sorting.unit, first.sorting.unit)
    np.testing.assert_array_equal(np.asarray(load_spikes(out).waveforms[:50]), np.asarray(first.spikes.waveforms[:50]))


def test_a_missing_or_foreign_feature_file_is_recomputed_or_named(recording, tmp_path):
    from spikevae.store import load_embedding
    from spikevae.waveform_store import feature_file

    cfg = PipelineConfig()
    out = tmp_path / "run"
    first = run_pipeline(recording, cfg, out, report=False)
    want = first.embeddings["pca"].features[:]
    (out / feature_file("pca")).unlink()
    with pytest.raises(SpikevaeError, match="features file is missing"):
        load_embedding(out, "pca")
    again = run_pipeline(recording, cfg, out, report=False)  # the features are made again, nothing else changes
    assert "features_pca" not in again.skipped and "detect" in again.skipped
    np.testing.assert_array_equal(again.embeddings["pca"].features[:], want)
    np.testing.assert_array_equal(again.sorting.unit, first.sorting.unit)
    other = tmp_path / "other"  # another run's feature file copied in: refused, then replaced
    run_pipeline(recording, PipelineConfig(), other, report=False)
    shutil.copy(other / feature_file("pca"), out / feature_file("pca"))
    with h5py.File(out / feature_file("pca"), "r+") as f:
        f.attrs["hash"] = "another run"
    assert not RunStore(out).has("embedding/pca")
    third = run_pipeline(recording, cfg, out, report=False)
    assert "features_pca" not in third.skipped
    np.testing.assert_array_equal(third.embeddings["pca"].features[:], want)


def test_spikes_outlive_their_run_folder_only_in_memory(stored, tmp_path):
    from spikevae.objects import Spikes

    disk, wf, el = stored
    spikes = Spikes(np.arange(len(el)) * 40, el, disk, wf[:, 3], np.ones(6, np.float32), 30000.0, 3,
                    np.array([f"ch{i}" for i in range(6)]))
    kept = spikes.in_memory()
    (tmp_path / "w.h5").unlink()
    np.testing.assert_array_equal(kept.waveforms, wf)
    with pytest.raises(SpikevaeError, match=r"features\) is gone"):
        spikes.waveforms[:3]


def test_a_run_result_outlives_its_folder_in_memory(recording, tmp_path):
    out = tmp_path / "run"
    res = run_pipeline(recording, PipelineConfig(), out, report=False)
    kept = res.in_memory()
    shutil.rmtree(out)
    assert isinstance(kept.spikes.waveforms, np.ndarray) and isinstance(kept.embeddings["pca"].features, np.ndarray)
    assert kept.embeddings["pca"].features.shape == (res.spikes.n_spikes, 5)
    with pytest.raises(SpikevaeError, match="is gone .* call .in_memory"):
        res.embeddings["pca"].features[:3]


def _spikes_in_memory(n=1000, n_el=4, length=32, seed=0):
    from spikevae.objects import Spikes

    rng = np.random.default_rng(seed)
    el = rng.integers(0, n_el, n)
    wf = (rng.normal(size=(n, length)) * 5 - 40 * np.exp(-0.5 * ((np.arange(length) - 10) / 2) ** 2)
          * rng.integers(1, 4, n)[:, None]).astype(np.float32)
    return Spikes(np.arange(n) * 50, el, wf, wf[:, 10], np.full(n_el, 5.0), 30000.0, 10,
                  [f"e{i}" for i in range(n_el)])


@pytest.mark.parametrize("method", ["pca", "vae"])
def test_features_streamed_to_their_file_equal_one_transform_in_memory(tmp_path, monkeypatch, method):
    """The pipeline writes features block by block as they are made; bit for bit those of one transform."""
    import spikevae.features.base as fbase
    from spikevae.features.base import transform_to_file

    monkeypatch.setattr(fbase, "TRANSFORM_BLOCK", 100)  # PCA's own blocks
    monkeypatch.setattr(fbase, "STREAM_BLOCK", 300)
    sp = _spikes_in_memory()
    if method == "pca":
        from spikevae.features.pca import PCAFeatures

        ex = PCAFeatures(n_components=4).fit(sp)
    else:
        pytest.importorskip("torch")
        from spikevae.features.vae import VAEConfig, VAEFeatures
        from spikevae.features.vae import train as vae_train

        monkeypatch.setattr(vae_train, "READ_ROWS", 128)  # the VAE reads 128 rows at a time, embeds 64
        ex = VAEFeatures(VAEConfig(channels=8, hidden=16, latent_dim=3, epochs=1, batch_size=256,
                                   embed_batch_size=64, device="cpu", num_threads=1,
                                   corruption="gaussian")).fit(sp)
    whole = ex.transform(sp)
    sizes = []
    real = ex.transform
    monkeypatch.setattr(ex, "transform", lambda s: (sizes.append(s.n_spikes), real(s))[1])
    emb = transform_to_file(ex, sp, tmp_path / f"features_{method}.h5", {"hash": "h"})
    assert isinstance(emb.features, DiskWaveforms) and emb.method == method and emb.params == whole.params
    assert max(sizes) == ex.stream_block() and sum(sizes) == sp.n_spikes  # never every spike at once
    assert ex.stream_block() % (100 if method == "pca" else 128) == 0
    np.testing.assert_array_equal(np.asarray(emb.features), whole.features)
    with h5py.File(tmp_path / f"features_{method}.h5") as f:
        assert f.attrs["hash"] == "h"
        np.testing.assert_array_equal(f["e2"][()], whole.features[sp.electrode == 2])


def test_a_run_holds_spike_times_and_electrodes_once(recording, tmp_path):
    """The sorting starts with the detected spikes: the run's spikes and row maps share its arrays."""
    from spikevae.pipeline import share_detected_columns

    res = run_pipeline(recording, PipelineConfig(), tmp_path / "run", report=False)
    sp, so, feats = res.spikes, res.sorting, res.embeddings["pca"].features
    assert np.shares_memory(sp.sample_index, so.sample_index) and np.shares_memory(sp.electrode, so.electrode)
    assert sp.waveforms.electrode is sp.electrode and feats.electrode is sp.electrode
    assert feats.row is sp.waveforms.row  # the features of every waveform, in order: one row map
    stored = RunStore(tmp_path / "run")
    loaded = stored.load_spikes()
    emb = stored.load_embedding("pca", loaded.electrode, loaded.waveforms.row)  # as a resumed run loads them
    assert emb.features.row is loaded.waveforms.row
    np.testing.assert_array_equal(np.asarray(emb.features), np.asarray(feats))
    np.testing.assert_array_equal(sp.sample_index, stored.load_spikes().sample_index)
    np.testing.assert_array_equal(np.asarray(sp.waveforms), np.asarray(stored.load_spikes().waveforms))
    # a sorting that does not start with the spikes leaves them as they are
    other = stored.load_sorting("pca")
    other.sample_index[0] += 1
    same, _ = share_detected_columns(stored.load_spikes(), {}, other)
    assert not np.shares_memory(same.sample_index, other.sample_index)


def test_features_of_a_subset_of_stored_waveforms_are_stored_at_the_waveforms_rows(stored, tmp_path, monkeypatch):
    """After artefact rejection the waveform rows have gaps: the features are written at the same rows
    (zeros between), so both keep one row map, and every spike reads its own features (here and reloaded)."""
    import spikevae.features.base as fbase
    from spikevae.features.base import transform_to_file
    from spikevae.features.pca import PCAFeatures
    from spikevae.objects import Spikes

    monkeypatch.setattr(fbase, "TRANSFORM_BLOCK", 10)
    monkeypatch.setattr(fbase, "STREAM_BLOCK", 20)
    disk, wf, el = stored
    sp = Spikes(np.arange(el.size), el, disk, wf[:, 3], np.ones(6), 30000.0, 3, [str(i) for i in range(6)])
    keep = np.arange(el.size) % 3 != 0
    keep[-200:] = False  # a run of rows removed at the end, too
    sub = sp.subset(keep)
    ex = PCAFeatures(n_components=3).fit(sub)
    emb = transform_to_file(ex, sub, tmp_path / "f.h5", {"hash": "h"})
    assert emb.features.row is sub.waveforms.row
    np.testing.assert_array_equal(np.asarray(emb.features), ex.transform(sub).features)
    with h5py.File(tmp_path / "f.h5") as f:  # the rows of the spikes removed are zeros
        on_2 = np.flatnonzero(el == 2)
        gone = disk.row[on_2[~keep[on_2]]]
        gone = gone[gone < f["e2"].shape[0]]
        assert gone.size and not f["e2"][()][gone].any()


def test_writer_puts_rows_where_asked_and_refuses_rows_that_go_back(tmp_path):
    from spikevae.waveform_store import WaveformWriter

    w = WaveformWriter(tmp_path / "w.h5", 2, 2)
    x = np.arange(10, dtype=np.float32).reshape(5, 2) + 1
    assert w.append(np.array([0, 1, 0, 0, 1]), x, rows=np.array([1, 0, 2, 5, 3])).tolist() == [1, 0, 2, 5, 3]
    assert w.append(np.array([0]), x[:1], rows=np.array([6])).tolist() == [6]
    with pytest.raises(ValueError, match="must increase"):
        w.append(np.array([1]), x[:1], rows=np.array([2]))
    w.close()
    with h5py.File(tmp_path / "w.h5") as f:
        np.testing.assert_array_equal(f["e0"][()], [[0, 0], x[0], x[2], [0, 0], [0, 0], x[3], x[0]])
        np.testing.assert_array_equal(f["e1"][()], [x[1], [0, 0], [0, 0], x[4]])


def test_a_subset_of_spikes_keeps_one_electrode_array_for_spikes_and_waveforms(stored):
    """Artefact rejection takes a subset of the spikes: their waveforms' row map shares its electrodes."""
    from spikevae.objects import Spikes

    disk, wf, el = stored
    disk = DiskWaveforms(disk.path, el.astype(np.int32), disk.row, disk.n_samples)  # as detection makes them
    sp = Spikes(np.arange(el.size), disk.electrode, disk, wf[:, 3], np.ones(6), 30000.0, 3, [str(i) for i in range(6)])
    assert sp.waveforms.electrode is sp.electrode
    keep = np.arange(el.size) % 4 != 1
    sub = sp.subset(keep)
    assert sub.waveforms.electrode is sub.electrode and sub.n_spikes == keep.sum()
    np.testing.assert_array_equal(np.asarray(sub.waveforms), wf[keep])
    np.testing.assert_array_equal(sub.electrode, el[keep])
