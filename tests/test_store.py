"""The run store: round trips, hashes, atomic writes that leave nothing half-written."""
import numpy as np
import pytest

from spikevae.errors import SpikevaeError
from spikevae.objects import Embedding, Sorting, Spikes
from spikevae.store import RunStore, atomic_path, check_writable


def _spikes(n=50):
    rng = np.random.default_rng(0)
    return Spikes(np.arange(n) * 100, rng.integers(0, 3, n), rng.normal(size=(n, 48)), rng.normal(size=n),
                  [1.0, 2.0, 3.0], 30000.0, 15, ["a", "b", "c"], rng.normal(size=(9, 48)), np.arange(9) % 3)


def test_round_trip_and_hash(tmp_path):
    store = RunStore(tmp_path)
    sp = _spikes()
    store.save_spikes(sp, {"x": 1}, "h1")
    assert store.has("spikes", "h1") and not store.has("spikes", "h2")
    back = store.load_spikes()
    assert np.array_equal(back.waveforms, sp.waveforms) and back.channel_ids.tolist() == ["a", "b", "c"]
    assert np.array_equal(back.noise_snippets, sp.noise_snippets)
    emb = Embedding(np.ones((50, 3)), "pca", {"n_components": 3})
    store.save_embedding(emb, {}, "h3")
    assert store.load_embedding("pca").params["n_components"] == 3
    s = Sorting(sp.sample_index, sp.electrode, np.zeros(50), 30000.0, {"merges": 2})
    store.save_sorting(s, "pca", {}, "h4")
    assert store.load_sorting("pca").params == {"merges": 2}
    assert store.load_spikes().n_spikes == 50  # earlier stages survive later writes


def test_interrupted_write_leaves_previous_file(tmp_path):
    store = RunStore(tmp_path)
    store.save_spikes(_spikes(), {}, "h1")
    before = store.path.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(store.path) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "waveforms.h5"]


def test_missing_stage_and_store_errors(tmp_path):
    with pytest.raises(SpikevaeError, match="no run store"):
        RunStore(tmp_path).load_spikes()
    RunStore(tmp_path).save_spikes(_spikes(), {}, "h")
    with pytest.raises(SpikevaeError, match="has not been run"):
        RunStore(tmp_path).load_sorting("vae")


def test_unwritable_output_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SpikevaeError, match="not writable"):
        check_writable(f / "sub")


def test_rewriting_a_stage_keeps_the_file_compact(tmp_path):
    store = RunStore(tmp_path)
    store.save_spikes(_spikes(2000), {}, "h1")
    size = store.path.stat().st_size
    for i in range(5):
        store.save_spikes(_spikes(2000), {}, f"h{i}")
        store.save_embedding(Embedding(np.ones((2000, 3)), "pca"), {}, f"e{i}")
    assert store.path.stat().st_size < 1.2 * size + 2000 * 3 * 4 * 2
    assert store.has("spikes", "h4") and store.has("embedding/pca", "e4")
