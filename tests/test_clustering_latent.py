"""The clustering-aware latent (features.method = "vade"): a VAE with per-electrode Gaussian-mixture priors."""
import numpy as np
import pytest
import torch

from spikevae.errors import SpikevaeConfigError
from spikevae.features import make_extractor
from spikevae.features.config import FeaturesConfig
from spikevae.features.vade import VaDEConfig, VaDEFeatures
from spikevae.features.vade.prior import MixturePrior
from spikevae.features.vae import VAEConfig
from spikevae.objects import Spikes

L, PEAK, FS, SIGMA = 48, 15, 30000.0, 10.0


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def template(width=2.5, rebound=0.35, rebound_delay=8.0):
    """A negative spike of peak -1 at PEAK with a slower positive rebound (as tests/test_cluster.py)."""
    t = np.arange(L, dtype=np.float64)
    w = -np.exp(-0.5 * ((t - PEAK) / width) ** 2) + rebound * np.exp(-0.5 * ((t - PEAK - rebound_delay) / (2.5 * width)) ** 2)
    return w / -w[PEAK]


def make_spikes(electrodes, seed=0, jitter=0.05):
    """Spikes of several electrodes; ``electrodes`` = list of [(template, snr, n_spikes), ...] per electrode.

    Returns Spikes (white noise σ = 10 µV, 200 noise snippets per electrode) and the true
    unit of each spike (numbered within its electrode).
    """
    rng = np.random.default_rng(seed)
    wf, el, lab = [], [], []
    for e, units in enumerate(electrodes):
        for k, (tpl, snr, n) in enumerate(units):
            scale = 1 + jitter * rng.normal(size=(n, 1))
            wf.append(scale * snr * SIGMA * tpl[None] + SIGMA * rng.normal(size=(n, L)))
            el.append(np.full(n, e))
            lab.append(np.full(n, k))
    wf, el, lab = np.concatenate(wf), np.concatenate(el), np.concatenate(lab)
    order = rng.permutation(len(wf))
    wf, el, lab = wf[order], el[order], lab[order]
    n_el = len(electrodes)
    snip = SIGMA * rng.normal(size=(200 * n_el, L))
    sp = Spikes(np.arange(len(wf)) * 100, el, wf, wf[:, PEAK], np.full(n_el, SIGMA), FS, PEAK,
                [f"e{i}" for i in range(n_el)], noise_snippets=snip, noise_electrode=np.repeat(np.arange(n_el), 200))
    return sp, lab


def small_config(**kw) -> VaDEConfig:
    net = VAEConfig(channels=8, hidden=32, latent_dim=4, epochs=6, batch_size=128, embed_batch_size=1024,
                    device="cpu", num_threads=1, seed=kw.pop("seed", 0))
    return VaDEConfig(net=net, **{"epochs": 4, "max_components": 4, **kw})


def best_match_accuracy(truth, pred):
    """Mean over true units of the best one-to-one accuracy TP / (TP + FN + FP)."""
    from scipy.optimize import linear_sum_assignment

    t_ids, p_ids = np.unique(truth), np.unique(pred)
    acc = np.zeros((len(t_ids), len(p_ids)))
    for i, t in enumerate(t_ids):
        for j, p in enumerate(p_ids):
            tp = np.sum((truth == t) & (pred == p))
            acc[i, j] = tp / (np.sum(truth == t) + np.sum(pred == p) - tp)
    r, c = linear_sum_assignment(-acc)
    out = np.zeros(len(t_ids))
    out[r] = acc[r, c]
    return out


# one model trained once for the tests that only read it
@pytest.fixture(scope="module")
def trained():
    electrodes = [
        [(template(), 10.0, 500), (template(), 12.5, 500)],  # amplitude only: 25 % apart
        [(template(), 8.0, 600)],  # one unit
        [(template(1.5, 0.3, 7), 7.0, 400), (template(3.5, 0.6, 12), 7.0, 400)],  # shapes, same amplitude
    ]
    spikes, truth = make_spikes(electrodes, seed=1)
    ex = VaDEFeatures(small_config()).fit(spikes)
    return ex, spikes, truth


def test_embeds_with_the_contract_shapes_and_changes_nothing(trained):
    ex, spikes, _ = trained
    before = dict(vars(ex))
    emb = ex.transform(spikes)
    assert emb.features.shape == (spikes.n_spikes, 4) and emb.features.dtype == np.float32
    assert emb.method == "vade" and emb.params["net"]["latent_dim"] == 4
    assert vars(ex).keys() == before.keys()
    np.testing.assert_array_equal(ex.transform(spikes).features, emb.features)
    part = ex.transform(spikes, batch_size=97).features
    np.testing.assert_allclose(part, emb.features, atol=1e-5)


def test_responsibilities_are_probabilities_over_each_electrodes_components(trained):
    ex, spikes, _ = trained
    r = ex.responsibilities(spikes)
    assert r.shape == (spikes.n_spikes, 4)
    assert np.all(r >= 0) and np.all(r <= 1)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-5)
    k = ex.prior_.n_components
    for e in range(3):
        assert np.all(r[spikes.electrode == e, k[e]:] == 0)


def test_training_losses_go_down(trained):
    ex, _, _ = trained
    pre = [h["train_total"] for h in ex.history_["pretrain"]]
    joint = [h["total"] for h in ex.history_["joint"]]
    assert pre[-1] < pre[0]
    assert joint[-1] < joint[0]
    assert set(ex.seconds_) == {"pretrain", "mixtures", "joint"}


def test_separates_a_25_percent_amplitude_step_and_two_shapes(trained):
    ex, spikes, truth = trained
    pred = ex.predict(spikes)
    for e in (0, 2):
        sel = spikes.electrode == e
        assert len(np.unique(pred[sel])) >= 2
        acc = best_match_accuracy(truth[sel], pred[sel])
        assert acc.min() >= 0.9, (e, acc)


def test_never_splits_a_single_unit(trained):
    ex, spikes, _ = trained
    assert ex.prior_.n_components[1] == 1
    pred = ex.predict(spikes)[spikes.electrode == 1]
    assert np.bincount(pred).max() / len(pred) >= 0.95


def test_latent_clusters_match_the_true_labels_through_the_pipelines_clustering(trained):
    from spikevae.cluster import ClusterConfig, cluster_spikes

    ex, spikes, truth = trained
    sorting = cluster_spikes(spikes, ex.transform(spikes), ClusterConfig())
    unit = sorting.unit[: spikes.n_spikes]
    accs = np.concatenate([best_match_accuracy(truth[spikes.electrode == e], unit[spikes.electrode == e])
                           for e in range(3)])
    assert accs.mean() >= 0.9, accs


def test_same_seed_same_features_other_seed_other_features():
    spikes, _ = make_spikes([[(template(), 8.0, 300), (template(2.0, 0.5, 9), 8.0, 300)]], seed=4)
    cfg = dict(epochs=2)
    a = VaDEFeatures(small_config(**cfg)).fit(spikes).transform(spikes).features
    b = VaDEFeatures(small_config(**cfg)).fit(spikes).transform(spikes).features
    c = VaDEFeatures(small_config(seed=1, **cfg)).fit(spikes).transform(spikes).features
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_registry_and_config_select_it():
    fc = FeaturesConfig()
    fc.method = "vade"
    fc.vade.max_components = 3
    ex = make_extractor("vade", fc)
    assert isinstance(ex, VaDEFeatures) and ex.get_params()["max_components"] == 3
    from spikevae.params import load_config

    cfg = load_config(overrides=["features.method=vade", "features.vade.net.latent_dim=6"])
    assert cfg.features.method == "vade" and cfg.features.vade.net.latent_dim == 6


def test_bad_settings_and_unfitted_use_are_one_line_errors():
    from spikevae.errors import SpikevaeError

    spikes, _ = make_spikes([[(template(), 8.0, 50)]])
    with pytest.raises(SpikevaeConfigError, match="features.vade.net.kind"):
        VaDEFeatures(VaDEConfig(net=VAEConfig(kind="ae", device="cpu"))).fit(spikes)
    with pytest.raises(SpikevaeError, match="not trained"):
        VaDEFeatures().transform(spikes)


def test_mixture_kl_is_zero_when_the_posterior_is_the_only_component():
    """KL(q ‖ p) of a one-component prior equal to q is 0, and positive otherwise."""
    prior = MixturePrior(1, 2, 3)
    prior.set_electrode(0, np.ones(1), np.array([[0.5, -1.0, 2.0]]), np.diag([0.5, 2.0, 1.0])[None])
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.log(torch.tensor([[0.5, 2.0, 1.0]]))
    e = torch.zeros(1, dtype=torch.long)
    assert float(prior.kl(mu, mu, logvar, e).detach()) == pytest.approx(0.0, abs=1e-5)
    assert float(prior.kl(mu + 1, mu + 1, logvar, e).detach()) > 0.1


def test_save_and_load_round_trip_the_encoder_and_the_mixtures(trained, tmp_path):
    from spikevae.errors import SpikevaeError

    ex, spikes, _ = trained
    folder = ex.save(tmp_path / "vade_model")
    assert {p.name for p in folder.iterdir()} >= {"vade.json", "prior.pt", "net", "history.json"}
    back = VaDEFeatures.load(folder, device="cpu")
    np.testing.assert_allclose(back.transform(spikes).features, ex.transform(spikes).features, atol=1e-5)
    np.testing.assert_allclose(back.responsibilities(spikes), ex.responsibilities(spikes), atol=1e-4)
    np.testing.assert_array_equal(back.prior_.n_components, ex.prior_.n_components)
    assert back.get_params() == ex.get_params() and back.history_["joint"] == ex.history_["joint"]
    (folder / "prior.pt").unlink()
    with pytest.raises(SpikevaeError, match="prior.pt: missing"):
        VaDEFeatures.load(folder)
