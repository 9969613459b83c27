"""The CUDA path end to end: what runs on a GPU (band-pass, VAE training and embedding) gives the CPU's
results within float tolerance. Every test here needs a GPU and skips without one (CI has none); on a
machine with one: ``pytest -m gpu``."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_cuda_vae_training_separates_units_as_the_cpu_does():
    """Training on the GPU draws its noise from CUDA's generator, not the CPU's, so the weights cannot be
    equal; what must agree is what the training achieves: the final losses (within 10%) and how well the
    latent space separates the units (the same to 0.05 of adjusted Rand index, both high)."""
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture

    from spikevae.features.vae import VAEFeatures
    from test_vae import make_spikes, small_config

    sp, unit = make_spikes(3000, seed=1)
    res = {}
    for dev in ("cpu", "cuda"):
        f = VAEFeatures(small_config(epochs=6, amp=False, device=dev)).fit(sp)
        z = f.transform(sp).features
        labels = GaussianMixture(4, n_init=3, random_state=0).fit_predict(z)
        res[dev] = (f.history_[-1]["train_total"], adjusted_rand_score(unit, labels))
    (loss_c, ari_c), (loss_g, ari_g) = res["cpu"], res["cuda"]
    assert ari_c > 0.8 and ari_g > 0.8 and abs(ari_c - ari_g) < 0.05, res
    assert abs(loss_g - loss_c) < 0.1 * abs(loss_c), res


def test_cuda_run_detects_the_cpu_spikes_and_sorts_as_well(tmp_path):
    """``run.device = preprocess.device = cuda``: the band-pass runs on the GPU (in detection's threads) and
    the VAE trains there; the detected spikes are the CPU's (float32 rounding may move a crossing exactly at the
    threshold: at most 0.1% differ) and the accuracy against ground truth is the CPU's within 0.05."""
    from spikevae.params import load_config
    from spikevae.pipeline import run_pipeline
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=8, duration_s=30.0, units_min=1), seed=4)
    out = {}
    for dev in ("cpu", "cuda"):
        cfg = load_config(overrides=[f"run.device={dev}", f"preprocess.device={dev}", "run.n_jobs=2", "features.method=vae",
                                     "features.vae.epochs=4", "features.vae.amp=false"])
        out[dev] = run_pipeline(rec, cfg, tmp_path / dev, gt=gt, report=False)
    a, b = out["cpu"].spikes, out["cuda"].spikes
    ka = set(zip(a.sample_index.tolist(), a.electrode.tolist()))
    kb = set(zip(b.sample_index.tolist(), b.electrode.tolist()))
    assert len(ka ^ kb) <= 0.001 * len(ka), (len(ka), len(ka ^ kb))
    acc = {d: r.scores["vae"]["mean_accuracy"] for d, r in out.items()}
    assert acc["cpu"] > 0.6 and abs(acc["cuda"] - acc["cpu"]) < 0.05, acc


def test_cuda_graph_training_is_the_eager_training(caplog):
    """Training steps replayed as a captured CUDA graph (the default on CUDA) learn what eager steps learn:
    the same random draws from the same generator and the same kernels, so the loss of every epoch and the
    embeddings agree to float rounding (Adam keeps its step count on the device when captured, which
    rounds its bias correction differently). The last, shorter batch of each epoch runs eagerly in between."""
    import logging

    from spikevae.features.vae import VAEFeatures
    from test_vae import make_spikes, small_config

    sp, _ = make_spikes(3000, seed=1)
    res = {}
    for graphs in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="spikevae.features.vae.cuda_graph"):
            f = VAEFeatures(small_config(epochs=4, device="cuda", cuda_graphs=graphs)).fit(sp)
        res[graphs] = ("replayed as a CUDA graph" in caplog.text, [h["train_total"] for h in f.history_],
                       f.transform(sp).features)
    assert res[True][0] and not res[False][0]
    np.testing.assert_allclose(res[True][1], res[False][1], rtol=1e-3)
    z_eager, z_graph = res[False][2], res[True][2]
    assert np.abs(z_graph - z_eager).max() < 1e-2 * np.abs(z_eager).max()
