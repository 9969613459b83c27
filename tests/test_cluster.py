"""Per-electrode clustering, refinement and overlaps, each on a small simulation.

The simulations here are built from templates + per-spike amplitude jitter +
temporally correlated Gaussian noise, so every expected label is known.
"""
import numpy as np
import pytest

from spikevae.cluster import ClusterConfig, cluster_spikes, clusterer_registry, get_clusterer
from spikevae.cluster.refine import bic_one_minus_two
from spikevae.errors import SpikevaeConfigError
from spikevae.objects import Embedding, Spikes

L, PEAK, FS = 48, 15, 30000.0


def template(width=2.5, rebound=0.35, rebound_delay=8.0):
    """A negative spike of peak -1 at PEAK with a slower positive rebound."""
    t = np.arange(L, dtype=np.float64)
    w = -np.exp(-0.5 * ((t - PEAK) / width) ** 2) + rebound * np.exp(-0.5 * ((t - PEAK - rebound_delay) / (2.5 * width)) ** 2)
    return w / -w[PEAK]


def noise(rng, n, sigma=1.0, corr=0.0):
    """Gaussian noise of standard deviation ``sigma`` per sample, white or, with ``corr`` > 0,
    smoothed by a Gaussian kernel of ``corr`` samples (temporally correlated)."""
    if corr <= 0 or n == 0:
        return sigma * rng.normal(size=(n, L))
    k = np.exp(-0.5 * (np.arange(-3, 4) / corr) ** 2)
    raw = rng.normal(size=(n, L + 6))
    out = np.stack([np.convolve(r, k, mode="valid") for r in raw])
    return sigma * out / out.std()


def make_electrode(rng, units, jitter=0.05, sigma=10.0):
    """Waveforms (µV) and true labels of one electrode.

    units : list of (template, snr, n_spikes); snr = peak / sigma.
    """
    wf, lab = [], []
    for k, (tpl, snr, n) in enumerate(units):
        scale = 1 + jitter * rng.normal(size=(n, 1))
        wf.append(scale * snr * sigma * tpl[None] + noise(rng, n, sigma))
        lab.append(np.full(n, k))
    return np.concatenate(wf), np.concatenate(lab)


def make_spikes(electrodes, sigma=10.0, seed=0, gap=100):
    """Spikes over several electrodes from lists of (waveforms, labels) per electrode.

    Returns Spikes and the true label of each spike (unique across electrodes).
    """
    wf, el, truth, offset = [], [], [], 0
    for e, (w, lab) in enumerate(electrodes):
        wf.append(w)
        el.append(np.full(len(w), e))
        truth.append(lab + offset)
        offset += (lab.max() + 1) if len(lab) else 0
    wf = np.concatenate(wf) if wf else np.zeros((0, L))
    n = len(wf)
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(gap, 3 * gap, size=n)).astype(np.int64)
    spikes = Spikes(t, np.concatenate(el) if el else np.zeros(0), wf, wf[:, PEAK] if n else np.zeros(0),
                    np.full(max(len(electrodes), 1), sigma), FS, PEAK, [f"e{i}" for i in range(max(len(electrodes), 1))])
    return spikes, (np.concatenate(truth) if truth else np.zeros(0, dtype=int))


def pca_embedding(spikes, k=5):
    """PCA fit on all electrodes pooled, on noise-scaled waveforms (the project's convention)."""
    from sklearn.decomposition import PCA

    x = spikes.scaled_waveforms()
    return Embedding(PCA(k, random_state=0).fit_transform(x), "pca")


def unit_accuracies(truth, unit):
    """For each true unit, the best accuracy TP / (TP + FN + FP) over sorted units, one-to-one."""
    from scipy.optimize import linear_sum_assignment

    gts = np.unique(truth)
    sus = np.unique(unit[unit >= 0])
    if sus.size == 0:
        return np.zeros(gts.size)
    acc = np.zeros((gts.size, sus.size))
    for i, g in enumerate(gts):
        for j, s in enumerate(sus):
            tp = np.sum((truth == g) & (unit == s))
            acc[i, j] = tp / (np.sum(truth == g) + np.sum(unit == s) - tp)
    r, c = linear_sum_assignment(-acc)
    out = np.zeros(gts.size)
    out[r] = acc[r, c]
    return out


def sort(spikes, **overrides):
    cfg = ClusterConfig()
    for k, v in overrides.items():
        obj = cfg
        *head, last = k.split("__")
        for h in head:
            obj = getattr(obj, h)
        setattr(obj, last, v)
    return cluster_spikes(spikes, pca_embedding(spikes), cfg)


def test_amplitude_only_units_are_separated():
    """Two units whose templates differ only by a 25 % scale (SNR 10, 5 % jitter)."""
    rng = np.random.default_rng(1)
    tpl = template()
    spikes, truth = make_spikes([make_electrode(rng, [(tpl, 10.0, 600), (tpl, 12.5, 600)], jitter=0.05)])
    sorting = sort(spikes)
    acc = unit_accuracies(truth, sorting.unit[: spikes.n_spikes])
    assert len(sorting.unit_ids) == 2
    assert acc.min() >= 0.9, acc


def test_different_shapes_equal_amplitude_are_separated():
    rng = np.random.default_rng(2)
    spikes, truth = make_spikes([make_electrode(rng, [(template(1.5, 0.3, 7), 6.0, 500),
                                                      (template(3.5, 0.6, 12), 6.0, 500)])])
    acc = unit_accuracies(truth, sort(spikes).unit[: spikes.n_spikes])
    assert acc.min() >= 0.9, acc


@pytest.mark.parametrize("snr,jitter,seed", [(4.0, 0.1, 3), (8.0, 0.07, 4), (20.0, 0.1, 5)])
def test_single_unit_is_never_split(snr, jitter, seed):
    rng = np.random.default_rng(seed)
    spikes, truth = make_spikes([make_electrode(rng, [(template(), snr, 1500)], jitter=jitter)])
    sorting = sort(spikes)
    assert len(sorting.unit_ids) == 1
    assert np.mean(sorting.unit[: spikes.n_spikes] >= 0) > 0.95


def test_pure_noise_stays_unsorted():
    rng = np.random.default_rng(6)
    w = noise(rng, 800, 10.0)
    spikes, _ = make_spikes([(w, np.zeros(len(w), dtype=int))])
    sorting = sort(spikes)
    assert len(sorting.unit_ids) == 0
    assert np.all(sorting.unit == -1)


def test_rare_isolated_unit_is_kept_and_a_small_look_alike_group_is_not():
    """12 spikes of a large unit far from the electrode's main unit survive refinement
    (a neuron that fired rarely in a short excerpt); 12 spikes barely larger than the
    main unit do not become a unit of their own."""
    rng = np.random.default_rng(8)
    w_main, _ = make_electrode(rng, [(template(), 6.0, 800)])
    w_rare, _ = make_electrode(rng, [(template(3.0, 0.5, 10), 25.0, 12)])
    spikes, truth = make_spikes([(np.concatenate([w_main, w_rare]), np.r_[np.zeros(800, int), np.ones(12, int)])])
    unit = sort(spikes).unit[: spikes.n_spikes]
    acc = unit_accuracies(truth, unit)
    assert acc[1] >= 0.9, acc
    cfg_strict = sort(spikes, refine__min_isolated_spikes=13).unit[: spikes.n_spikes]
    assert unit_accuracies(truth, cfg_strict)[1] == 0.0
    w_near, _ = make_electrode(rng, [(template(), 6.6, 12)])
    spikes2, truth2 = make_spikes([(np.concatenate([w_main, w_near]), np.r_[np.zeros(800, int), np.ones(12, int)])])
    unit2 = sort(spikes2).unit[: spikes2.n_spikes]
    assert len(np.unique(unit2[unit2 >= 0])) == 1


def test_noise_is_not_absorbed_by_a_unit():
    """Noise snippets beside a real unit are mostly left unsorted (the chi-square gate)."""
    rng = np.random.default_rng(7)
    w_unit, _ = make_electrode(rng, [(template(), 8.0, 800)])
    w_noise = noise(rng, 200, 10.0)
    spikes, _ = make_spikes([(np.concatenate([w_unit, w_noise]), np.r_[np.zeros(800, int), np.ones(200, int)])])
    unit = sort(spikes).unit[: spikes.n_spikes]
    assert np.mean(unit[:800] >= 0) > 0.95
    assert np.mean(unit[800:] >= 0) < 0.1


def test_overlapping_pair_yields_both_spikes():
    """Two units firing 0.3 ms apart: one detection, two labelled spikes."""
    rng = np.random.default_rng(8)
    ta, tb = template(1.5, 0.3, 7), template(3.5, 0.6, 12)
    w, lab = make_electrode(rng, [(ta, 10.0, 500), (tb, 7.0, 500)])
    shift = 9  # 0.3 ms at 30 kHz
    n_ov = 40
    tb_shift = np.zeros(L)
    tb_shift[shift:] = 7.0 * 10.0 * tb[:-shift]
    ov = 10.0 * 10.0 * ta[None] + tb_shift[None] + noise(rng, n_ov, 10.0)
    spikes, truth = make_spikes([(np.concatenate([w, ov]), np.r_[lab, np.full(n_ov, 2)])])
    sorting = sort(spikes)
    unit = sorting.unit
    n = spikes.n_spikes
    ua = np.bincount(unit[:500][unit[:500] >= 0]).argmax()
    ub = np.bincount(unit[500:1000][unit[500:1000] >= 0]).argmax()
    assert ua != ub
    ov_idx = np.arange(1000, n)
    extra_t, extra_u = sorting.sample_index[n:], unit[n:]
    assert sorting.params["n_overlap_extra"] == len(extra_t)
    found = 0
    for i in ov_idx:
        t_b = spikes.sample_index[i] + shift
        hit = np.flatnonzero(np.abs(extra_t - t_b) <= 12)
        found += int(unit[i] == ua and hit.size == 1 and extra_u[hit[0]] == ub)
    assert found >= 0.9 * n_ov, found
    assert len(extra_t) <= n_ov + 10  # isolated spikes do not produce extra spikes


def test_overlap_residuals_in_blocks_give_the_same_sorting(monkeypatch):
    """Long electrodes compute the single-template residuals block by block (bounded memory): the
    overlap step's labels and extra spikes are the same as in one block."""
    import spikevae.cluster.overlap as overlap

    rng = np.random.default_rng(8)
    ta, tb = template(1.5, 0.3, 7), template(3.5, 0.6, 12)
    w, lab = make_electrode(rng, [(ta, 10.0, 500), (tb, 7.0, 500)])
    tb_shift = np.zeros(L)
    tb_shift[9:] = 7.0 * 10.0 * tb[:-9]
    ov = 10.0 * 10.0 * ta[None] + tb_shift[None] + noise(rng, 40, 10.0)
    spikes, _ = make_spikes([(np.concatenate([w, ov]), np.r_[lab, np.full(40, 2)])])
    whole = sort(spikes)
    monkeypatch.setattr(overlap, "RESIDUAL_BLOCK", 97)
    blocks = sort(spikes)
    np.testing.assert_array_equal(blocks.unit, whole.unit)
    np.testing.assert_array_equal(blocks.sample_index, whole.sample_index)
    assert whole.params["n_overlap_extra"] >= 30


def test_electrodes_with_zero_one_or_few_spikes_and_unique_ids():
    rng = np.random.default_rng(9)
    big = make_electrode(rng, [(template(), 10.0, 300), (template(3.5, 0.6, 12), 8.0, 300)])
    one = make_electrode(rng, [(template(), 10.0, 1)])
    few = make_electrode(rng, [(template(), 10.0, 10)])
    big2 = make_electrode(rng, [(template(), 9.0, 300)])
    spikes, truth = make_spikes([big, one, few, big2])
    # an electrode with no spikes: declare 5 electrodes, use 4
    spikes = Spikes(spikes.sample_index, spikes.electrode, spikes.waveforms, spikes.amplitude_uv,
                    np.full(5, 10.0), FS, PEAK, [f"e{i}" for i in range(5)])
    sorting = sort(spikes)
    assert np.all(sorting.unit[spikes.electrode == 1] == -1)
    assert np.all(sorting.unit[spikes.electrode == 2] == -1)
    per_unit_electrodes = {u: np.unique(sorting.electrode[sorting.unit == u]) for u in sorting.unit_ids}
    assert all(len(v) == 1 for v in per_unit_electrodes.values())
    assert {int(v[0]) for v in per_unit_electrodes.values()} == {0, 3}
    assert len(sorting.unit_ids) == 3
    assert sorting.params["electrodes"]["e1"]["skipped"].startswith("fewer than")
    empty = Spikes(np.zeros(0), np.zeros(0), np.zeros((0, L)), np.zeros(0), np.ones(2), FS, PEAK, ["a", "b"])
    out = cluster_spikes(empty, Embedding(np.zeros((0, 5)), "pca"), ClusterConfig())
    assert out.unit.shape == (0,) and out.params["n_detected"] == 0


def test_subsampled_fit_assigns_every_spike_and_jobs_agree():
    rng = np.random.default_rng(10)
    e0 = make_electrode(rng, [(template(), 10.0, 700), (template(), 13.0, 700)])
    e1 = make_electrode(rng, [(template(3.5, 0.6, 12), 8.0, 600)])
    spikes, truth = make_spikes([e0, e1])
    emb = pca_embedding(spikes)
    cfg = ClusterConfig(max_fit_spikes=400)
    s1 = cluster_spikes(spikes, emb, cfg)
    assert unit_accuracies(truth, s1.unit[: spikes.n_spikes]).min() > 0.85
    cfg.n_jobs = 2
    s2 = cluster_spikes(spikes, emb, cfg)
    np.testing.assert_array_equal(s1.unit, s2.unit)


@pytest.mark.parametrize("method", ["hdbscan", "isosplit", "mixture"])
def test_every_clusterer_finds_well_separated_units(method):
    rng = np.random.default_rng(11)
    spikes, truth = make_spikes([make_electrode(rng, [(template(1.5, 0.3, 7), 6.0, 400),
                                                      (template(3.5, 0.6, 12), 12.0, 400)])])
    acc = unit_accuracies(truth, sort(spikes, method=method).unit[: spikes.n_spikes])
    assert acc.min() > 0.9, (method, acc)


def test_unknown_method_lists_valid_names():
    cfg = ClusterConfig()
    cfg.method = "kmeans"
    with pytest.raises(SpikevaeConfigError, match="hdbscan, isosplit, mixture"):
        get_clusterer(cfg)
    assert set(clusterer_registry()) == {"hdbscan", "isosplit", "mixture"}


def test_dip_merge_test_merges_one_mode_and_keeps_two(monkeypatch):
    from spikevae.cluster.refine import pair_merge_score

    rng = np.random.default_rng(11)
    one = rng.normal(size=(1000, 3))
    halves = (np.flatnonzero(one[:, 0] < 0), np.flatnonzero(one[:, 0] >= 0))  # one Gaussian cut in two
    two = np.vstack([rng.normal(size=(500, 3)), rng.normal(size=(500, 3)) + [3.5, 0, 0]])  # 3.5 SD apart
    pair = (np.arange(500), np.arange(500, 1000))
    p_one = pair_merge_score(one, *halves, 1000, rng, test="dip")
    p_two = pair_merge_score(two, *pair, 1000, rng, test="dip")
    assert p_one < -np.log10(0.05) < p_two  # -log10 p: merge the halves, keep the two modes
    monkeypatch.setitem(__import__("sys").modules, "diptest", None)
    with pytest.raises(SpikevaeConfigError, match="pip install diptest"):
        pair_merge_score(two, *pair, 1000, rng, test="dip")


def test_bic_test_sees_bimodality_and_not_a_single_gaussian():
    rng = np.random.default_rng(12)
    assert bic_one_minus_two(rng.normal(size=400)) < 0
    assert bic_one_minus_two(np.r_[rng.normal(size=200), rng.normal(5, 1, size=200)]) > 50


def _two_gaussians_reference(p, n_iter=60):
    """The 1-D two-Gaussian EM as first written (every expression in place), for the bit-for-bit check."""
    from spikevae.cluster.refine import _LOG2PI

    p = np.asarray(p, dtype=np.float64)
    n = p.shape[0]
    p = (p - p.mean()) / max(p.std(), 1e-12)
    ll1 = -0.5 * n * (_LOG2PI + 1.0)
    r = (p > np.median(p)).astype(np.float64)
    ll2 = -np.inf
    for _ in range(n_iter):
        w = np.clip(r.mean(), 1e-3, 1 - 1e-3)
        m1, m0 = (r @ p) / max(r.sum(), 1e-9), ((1 - r) @ p) / max((1 - r).sum(), 1e-9)
        v1 = max((r @ (p - m1) ** 2) / max(r.sum(), 1e-9), 1e-4)
        v0 = max(((1 - r) @ (p - m0) ** 2) / max((1 - r).sum(), 1e-9), 1e-4)
        l1 = np.log(w) - 0.5 * (_LOG2PI + np.log(v1) + (p - m1) ** 2 / v1)
        l0 = np.log(1 - w) - 0.5 * (_LOG2PI + np.log(v0) + (p - m0) ** 2 / v0)
        top = np.maximum(l1, l0)
        lse = top + np.log(np.exp(l1 - top) + np.exp(l0 - top))
        new_ll = lse.sum()
        r = np.exp(l1 - lse)
        if new_ll - ll2 < 1e-6 * n:
            ll2 = max(ll2, new_ll)
            break
        ll2 = new_ll
    return float((-2 * ll1 + 2 * np.log(n)) - (-2 * ll2 + 5 * np.log(n))), r


def test_two_gaussians_em_equals_its_reference_bit_for_bit():
    """The EM computes each expression once per iteration; values and responsibilities are the same bits,
    on one mode, two modes, lopsided mixtures and the weight clipped at its bounds."""
    from spikevae.cluster.refine import two_gaussians_1d

    rng = np.random.default_rng(21)
    cases = [rng.normal(size=7), np.r_[np.zeros(50), 1.0], np.r_[rng.normal(size=999), 40.0]]
    for _ in range(150):
        n = int(rng.integers(6, 1001))
        k = int(n * rng.random())
        p = np.r_[rng.normal(0, 1, k), rng.normal(rng.uniform(0, 4), rng.uniform(0.5, 2), n - k)]
        cases.append(p * rng.uniform(0.1, 100) + rng.normal(0, 50))
    for p in cases:
        (d, r), (d_ref, r_ref) = two_gaussians_1d(p), _two_gaussians_reference(p)
        assert d == d_ref and np.array_equal(r, r_ref)


def test_params_record_config_and_stage_counts():
    rng = np.random.default_rng(13)
    spikes, _ = make_spikes([make_electrode(rng, [(template(), 10.0, 300)])])
    sorting = sort(spikes)
    p = sorting.params
    assert p["config"]["method"] == "mixture"
    assert p["config"]["refine"]["merge_sample"] == ClusterConfig().refine.merge_sample
    assert set(p["totals"]) >= {"merges", "splits", "overlap_extra"}
    assert p["n_detected"] == spikes.n_spikes


# -- noise whitening ---------------------------------------------------------------

def _spikes_with_snippets(rng, n_snip=(600, 0), corr=1.5, sigma=10.0):
    """Two electrodes; electrode 0 has correlated-noise snippets, electrode 1 has ``n_snip[1]``."""
    tpl = template()
    w0, _ = make_electrode(rng, [(tpl, 8.0, 50)], sigma=sigma)
    w1, _ = make_electrode(rng, [(tpl, 8.0, 50)], sigma=sigma)
    spikes, _ = make_spikes([(w0, np.zeros(50, int)), (w1, np.zeros(50, int))], sigma=sigma)
    snip = np.concatenate([noise(rng, n_snip[0], sigma, corr), noise(rng, n_snip[1], sigma, corr)])
    el = np.r_[np.zeros(n_snip[0], int), np.ones(n_snip[1], int)]
    return Spikes(spikes.sample_index, spikes.electrode, spikes.waveforms, spikes.amplitude_uv, spikes.noise_uv,
                  FS, PEAK, spikes.channel_ids, snip, el)


def test_whitened_noise_is_white_with_unit_variance():
    from spikevae.whiten import noise_whitener

    rng = np.random.default_rng(20)
    spikes = _spikes_with_snippets(rng, n_snip=(2000, 0), corr=0.7)
    w = noise_whitener(spikes, shrinkage=0.01)[0]
    held_out = noise(rng, 3000, 10.0, 0.7) @ w.T
    cov = np.cov(held_out, rowvar=False)
    assert np.allclose(np.diag(cov), 1.0, atol=0.2)
    off = cov[~np.eye(L, dtype=bool)]
    assert np.abs(off).max() < 0.2
    raw = np.cov(noise(rng, 3000, 10.0, 0.7) / 10.0, rowvar=False)
    assert raw[0, 1] > 0.3  # the noise was correlated before whitening


def test_whitening_without_snippets_falls_back_to_pooled_or_sigma():
    from spikevae.whiten import noise_whitener, whiten_waveforms

    rng = np.random.default_rng(21)
    spikes = _spikes_with_snippets(rng, n_snip=(600, 0))
    w = noise_whitener(spikes)
    np.testing.assert_allclose(w[1], w[0], rtol=1e-6)  # same σ, so the pooled estimate equals electrode 0's
    bare = Spikes(spikes.sample_index, spikes.electrode, spikes.waveforms, spikes.amplitude_uv, spikes.noise_uv,
                  FS, PEAK, spikes.channel_ids)
    np.testing.assert_allclose(whiten_waveforms(bare), bare.scaled_waveforms(), rtol=1e-5)


def test_whitening_keeps_the_peak_in_place():
    from spikevae.whiten import whiten_waveforms

    rng = np.random.default_rng(22)
    spikes = _spikes_with_snippets(rng)
    ww = whiten_waveforms(spikes)
    assert ww.shape == spikes.waveforms.shape and ww.dtype == np.float32
    assert abs(int(np.argmin(ww.mean(0))) - PEAK) <= 1


# -- FullGaussianMixture: scikit-learn's algorithm ---------------------------------------------------
@pytest.mark.parametrize("n,k,n_init", [(4000, 2, 1), (1000, 3, 1), (600, 6, 1), (800, 3, 2)])
def test_full_gaussian_mixture_is_sklearns_fit(n, k, n_init):
    """The same k-means++ centres, the same EM and stopping rule: on every seed the means, weights and
    covariances equal scikit-learn's to 1e-9, after the same number of iterations, with the same labels
    and information criteria."""
    from sklearn.mixture import GaussianMixture

    from spikevae.cluster.gmm import FullGaussianMixture

    rng = np.random.default_rng(n + k)
    centres = rng.normal(0, 2.0, (k + 1, 8))
    x = centres[rng.integers(0, k + 1, n)] + rng.normal(size=(n, 8)) * rng.uniform(0.5, 1.5, 8)
    for seed in range(8):
        ref = GaussianMixture(k, covariance_type="full", reg_covar=1e-3, init_params="k-means++", n_init=n_init,
                              random_state=seed).fit(x)
        ours = FullGaussianMixture(k, reg_covar=1e-3, n_init=n_init, random_state=seed).fit(x)
        assert ours.n_iter_ == ref.n_iter_ and ours.converged_ == ref.converged_
        np.testing.assert_allclose(ours.means_, ref.means_, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(ours.predict(x), ref.predict(x))
        assert ours.bic(x) == pytest.approx(ref.bic(x), rel=1e-10)
        assert ours.aic(x) == pytest.approx(ref.aic(x), rel=1e-10)
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-10)


def test_full_gaussian_mixture_errors_say_what_to_change():
    from spikevae.cluster.gmm import FullGaussianMixture

    with pytest.raises(ValueError, match="at least 3 points"):
        FullGaussianMixture(3).fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reg_covar"):  # identical points: a singular covariance
        FullGaussianMixture(1, reg_covar=0.0, random_state=0).fit(np.ones((50, 4)))
