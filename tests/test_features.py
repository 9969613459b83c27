"""The feature contract, checked on every registered extractor, and PCA against scikit-learn."""
import numpy as np
import pytest

from spikevae.features import EXTRACTORS, PCAFeatures, make_extractor
from spikevae.features.config import FeaturesConfig
from spikevae.objects import Spikes


def _spikes(n=600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(48)
    shapes = np.stack([-np.exp(-(t - 15) ** 2 / 8.0), -0.6 * np.exp(-(t - 15) ** 2 / 20.0)])
    lab = rng.integers(0, 2, n)
    wf = 60 * shapes[lab] + rng.normal(0, 5, (n, 48))
    elec = rng.integers(0, 3, n)
    return Spikes(np.arange(n) * 50, elec, wf, wf[:, 15], [5.0, 5.0, 5.0], 30000.0, 15, ["a", "b", "c"],
                  rng.normal(0, 5, (30, 48)), np.arange(30) % 3)


def _extractor(name):
    cfg = FeaturesConfig()
    if name == "vae":
        cfg.vae.epochs = 2
    return make_extractor(name, cfg, seed=0)


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_feature_contract(name):
    sp = _spikes()
    ex = _extractor(name)
    before = set(vars(ex))
    ex.fit(sp)
    added = set(vars(ex)) - before
    assert all(a.endswith("_") or a.startswith("_") for a in added), added
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(ex).items()}
    emb = ex.transform(sp)
    assert set(vars(ex)) == set(state)
    assert emb.features.shape[0] == sp.n_spikes and emb.features.dtype == np.float32
    assert emb.method == name
    # batched transform equals whole-set transform
    halves = [ex.transform(sp.subset(np.arange(sp.n_spikes) < 300)), ex.transform(sp.subset(np.arange(sp.n_spikes) >= 300))]
    assert np.allclose(np.concatenate([h.features for h in halves]), emb.features, atol=1e-4)
    # refitting with the same seed gives identical output on the CPU
    emb2 = _extractor(name).fit(sp).transform(sp)
    assert np.array_equal(emb2.features, emb.features)


def test_pca_matches_sklearn_subspace():
    from sklearn.decomposition import PCA

    sp = _spikes()
    ours = PCAFeatures(n_components=3).fit(sp)
    ref = PCA(n_components=3).fit(sp.scaled_waveforms())
    for a, b in zip(ours.components_, ref.components_):
        assert abs(abs(float(a @ b)) - 1) < 1e-4
    assert np.allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, atol=1e-5)


def test_pca_uses_noise_scaling_not_per_spike_scaling():
    sp = _spikes()
    big = Spikes(sp.sample_index, sp.electrode, sp.waveforms * 2, sp.amplitude_uv * 2, sp.noise_uv, sp.fs,
                 sp.peak_index, sp.channel_ids)
    ex = PCAFeatures(n_components=2).fit(sp)
    # doubling the waveforms doubles their distance from the mean: amplitude is kept
    f1 = ex.transform(sp).features
    f2 = ex.transform(big).features
    m = ex.transform(Spikes(sp.sample_index[:1], sp.electrode[:1], np.zeros((1, 48)), [0.0], sp.noise_uv, sp.fs, 15,
                            sp.channel_ids)).features
    assert np.allclose(f2 - m, 2 * (f1 - m), atol=1e-3)


def test_unknown_method_lists_valid():
    from spikevae.errors import SpikevaeConfigError

    with pytest.raises(SpikevaeConfigError, match="valid: pca"):
        make_extractor("ica", FeaturesConfig())


def test_fit_rows_are_a_uniform_sample_without_an_index_of_every_spike(monkeypatch):
    """``sample_rows``: k distinct ascending rows; as ``rng.choice`` below the threshold; past it, every row
    equally likely and no int64 index of all n rows (numpy's choice shuffles one when k > n / 50)."""
    import tracemalloc

    import spikevae.features.base as fbase
    from spikevae.features.base import sample_rows

    assert np.array_equal(sample_rows(np.random.default_rng(3), 5000, 700),
                          np.sort(np.random.default_rng(3).choice(5000, 700, replace=False)))
    n, k = 3_000_000, 200_000
    tracemalloc.start()
    rows = sample_rows(np.random.default_rng(0), n, k)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rows.size == k and np.all(np.diff(rows) > 0) and 0 <= rows[0] and rows[-1] < n
    assert peak < n * 8 / 3  # far under the 24 MB index of every row
    monkeypatch.setattr(fbase, "SAMPLE_INDEX_SPIKES", 10)
    rng, hits = np.random.default_rng(1), np.zeros(60)
    for _ in range(4000):
        r = sample_rows(rng, 60, 20)
        assert np.unique(r).size == 20
        hits[r] += 1
    assert np.abs(hits / 4000 - 1 / 3).max() < 0.04  # each row drawn a third of the time
