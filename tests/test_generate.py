"""Tests of VAE waveform generation (spikevae.generate, ``spikevae generate``) and realism measures."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikevae.cli import main  # noqa: E402
from spikevae.features.vae import VAEConfig, VAEFeatures  # noqa: E402
from spikevae.generate import (  # noqa: E402
    add_noise, fit_latent_gaussian, residual_bank, interpolate, latent_traversal, load_generator, noise_bank_sigma, sample_prior,
    sample_unit,
)
from spikevae.objects import Sorting, Spikes  # noqa: E402
from spikevae.realism import (  # noqa: E402
    classifier_two_sample_auc, frechet_distance_pca, gaussian_pca_baseline,
)
from spikevae.store import RunStore  # noqa: E402

L, PEAK = 48, 15


def make_spikes(n=600, n_el=3, seed=0) -> tuple[Spikes, np.ndarray]:
    """Three units (narrow small, wide large, positive-rebound medium) on ``n_el`` electrodes, noise σ 5-10 µV."""
    rng = np.random.default_rng(seed)
    t = np.arange(L)
    temps = np.array([-np.exp(-0.5 * ((t - PEAK) / 1.3) ** 2) + 0.25 * np.exp(-0.5 * ((t - PEAK - 6) / 3) ** 2),
                      -np.exp(-0.5 * ((t - PEAK) / 2.5) ** 2) + 0.5 * np.exp(-0.5 * ((t - PEAK - 11) / 5) ** 2),
                      -np.exp(-0.5 * ((t - PEAK) / 1.8) ** 2) + 0.9 * np.exp(-0.5 * ((t - PEAK - 8) / 2) ** 2)])
    unit = rng.integers(0, 3, n)
    el = rng.integers(0, n_el, n)
    sigma = rng.uniform(5, 10, n_el)
    amp = np.array([6.0, 16.0, 10.0])[unit] * rng.uniform(0.9, 1.1, n)
    wf = (temps[unit] * amp[:, None] + rng.normal(size=(n, L))) * sigma[el][:, None]
    snip_el = np.repeat(np.arange(n_el), 50)
    sp = Spikes(np.arange(n) * 100, el, wf.astype(np.float32), wf[:, PEAK], sigma, 30000.0, PEAK,
                [f"e{i}" for i in range(n_el)], rng.normal(size=(snip_el.size, L)) * sigma[snip_el][:, None],
                snip_el)
    return sp, unit


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE trained for 5 epochs on 600 synthetic waveforms, saved as a folder, plus a run folder."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    spikes, unit = make_spikes()
    cfg = VAEConfig(channels=8, hidden=32, latent_dim=4, epochs=5, batch_size=64, device="cpu", patience=5)
    root = tmp_path_factory.mktemp("gen")
    VAEFeatures(cfg).fit(spikes).save(root / "model")
    run = root / "run"
    store = RunStore(run)
    store.save_spikes(spikes, {}, "h")
    store.save_sorting(Sorting(spikes.sample_index, spikes.electrode, unit, spikes.fs), "vae", {}, "h")
    yield {"model": root / "model", "run": run, "spikes": spikes, "unit": unit, "gen": load_generator(root / "model")}
    torch.set_num_threads(before)


# -- realism measures ----------------------------------------------------------------------------
def test_two_sample_auc_separates_noise_and_not_two_halves_of_real(trained):
    real = trained["spikes"].scaled_waveforms()
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(real))
    noise = rng.standard_normal(real.shape)
    assert classifier_two_sample_auc(real, noise) > 0.9
    assert classifier_two_sample_auc(real[perm[:300]], real[perm[300:]]) < 0.65


def test_frechet_is_zero_for_identical_sets_and_large_for_noise(trained):
    real = trained["spikes"].scaled_waveforms()
    noise = np.random.default_rng(2).standard_normal(real.shape)
    assert frechet_distance_pca(real, real) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_pca(real, noise) > 10.0


def test_gaussian_pca_baseline_matches_mean_and_is_closer_than_noise(trained):
    real = trained["spikes"].scaled_waveforms()
    fake = gaussian_pca_baseline(real, 2000, seed=0)
    assert fake.shape == (2000, L)
    assert np.abs(fake.mean(axis=0) - real.mean(axis=0)).max() < 0.5
    noise = np.random.default_rng(3).standard_normal(real.shape)
    assert frechet_distance_pca(real, fake) < 0.1 * frechet_distance_pca(real, noise)


# -- generation -----------------------------------------------------------------------------------
def test_prior_samples_have_model_length_and_plausible_amplitude(trained):
    w = sample_prior(trained["gen"], 200, seed=0)
    assert w.shape == (200, L)
    ext = np.abs(w).max(axis=1)
    assert np.all((ext > 1.0) & (ext < 50.0))
    trough = np.argmin(w, axis=1)
    assert np.mean(np.abs(trough - PEAK) <= 3) > 0.8
    assert np.all(np.isfinite(w))


def test_sampling_is_reproducible_by_seed(trained):
    a, b = sample_prior(trained["gen"], 5, seed=7), sample_prior(trained["gen"], 5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, sample_prior(trained["gen"], 5, seed=8))


def test_unit_samples_are_closer_to_their_unit_than_to_another(trained):
    spikes, unit = trained["spikes"], trained["unit"]
    real = spikes.scaled_waveforms()
    for u, other in ((0, 1), (1, 2), (2, 0)):
        fake, mean, cov = sample_unit(trained["gen"], spikes.subset(np.flatnonzero(unit == u)), 300, seed=u)
        assert fake.shape == (300, L) and mean.shape == (4,) and cov.shape == (4, 4)
        own, alien = real[unit == u], real[unit == other]
        assert frechet_distance_pca(own, fake) < frechet_distance_pca(alien, fake)


def test_added_noise_comes_from_the_bank_in_sigma_units_and_makes_samples_harder_to_tell(trained):
    spikes = trained["spikes"]
    bank = noise_bank_sigma(spikes, electrode=1)
    assert bank.shape == (50, L) and 0.8 < bank.std() < 1.2
    zeros = np.zeros((10, L))
    rows = add_noise(zeros, bank, seed=0)
    assert all(any(np.array_equal(r, b) for b in bank) for r in rows)
    assert 0.8 < add_noise(np.zeros((200, L)), None, seed=0).std() < 1.2
    real = spikes.scaled_waveforms()
    clean = sample_prior(trained["gen"], len(real), seed=0)
    noisy = add_noise(clean, noise_bank_sigma(spikes), seed=1)
    auc_clean = classifier_two_sample_auc(real, clean)
    assert classifier_two_sample_auc(real, noisy) < auc_clean
    res = residual_bank(trained["gen"], spikes)
    assert res.shape == real.shape and 0.3 < res.std() < 1.2
    assert classifier_two_sample_auc(real, add_noise(clean, res, seed=2)) < auc_clean


def test_latent_gaussian_is_regularised_and_works_for_one_spike():
    mean, cov = fit_latent_gaussian(np.ones((1, 3)))
    np.testing.assert_allclose(mean, 1.0)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    z = np.random.default_rng(0).normal(size=(500, 2)) * [1.0, 3.0]
    mean, cov = fit_latent_gaussian(z)
    assert cov[1, 1] == pytest.approx(9.0, rel=0.2) and cov[0, 0] == pytest.approx(1.0, rel=0.2)


def test_traversal_varies_only_the_named_coordinate_and_interpolation_hits_endpoints(trained):
    gen = trained["gen"]
    values = np.linspace(-3, 3, 5)
    trav = latent_traversal(gen, values)
    assert trav.shape == (4, 5, L)
    # value 0: every dimension decodes z = 0
    np.testing.assert_allclose(trav[:, 2], np.broadcast_to(trav[0, 2], (4, L)), atol=1e-5)
    z = np.zeros((1, 4))
    z[0, 3] = 3.0
    np.testing.assert_allclose(trav[3, 4], gen.decode(z)[0], atol=1e-5)
    center = np.array([0.5, -0.5, 1.0, 0.0])
    around = latent_traversal(gen, values, center)
    np.testing.assert_allclose(around[1, 2], gen.decode(center[None])[0], atol=1e-5)
    assert np.abs(trav[:, -1] - trav[:, 0]).max() > 0.1
    z0, z1 = np.full(4, 1.0), np.full(4, -1.0)
    t, waves = interpolate(gen, z0, z1, 6)
    assert waves.shape == (6, L) and t[0] == 0.0 and t[-1] == 1.0
    np.testing.assert_allclose(waves[-1], gen.decode(z0[None])[0], atol=1e-5)
    np.testing.assert_allclose(waves[0], gen.decode(z1[None])[0], atol=1e-5)


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_writes_samples_traversal_and_interpolation(trained, tmp_path, capsys):
    out = tmp_path / "gen"
    main(["generate", str(trained["model"]), "-o", str(out), "--n", "50", "--traversal", "--noise", "residual",
          "--interpolate", "3", "7", "--run", str(trained["run"]), "--seed", "1"])
    for name in ("waveforms.npy", "traversal.npy", "interpolation.npy", "generate.json"):
        assert (out / name).is_file(), name
    for name in ("waveforms.png", "traversal.png", "interpolation.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    assert np.load(out / "waveforms.npy").shape == (50, L)
    assert np.load(out / "traversal.npy").shape == (4, 9, L)
    assert np.load(out / "interpolation.npy").shape == (11, L)
    meta = json.loads((out / "generate.json").read_text())
    assert "noise sigma" in meta["unit_of_waveforms"] and meta["interpolate"] == [3, 7]
    assert meta["noise"].startswith("reconstruction residuals")
    assert not list(out.glob(".*.tmp"))


def test_cli_unit_samples_in_h5_carry_microvolts(trained, tmp_path):
    import h5py

    out = tmp_path / "gen"
    main(["generate", str(trained["model"]), "-o", str(out), "--n", "40", "--unit", "1", "--noise", "background",
          "--run", str(trained["run"]), "--format", "h5"])
    with h5py.File(out / "generated.h5", "r") as f:
        w, uv = f["waveforms"][()], f["waveforms_uv"][()]
        noise, electrode = float(f.attrs["noise_uv"]), int(f.attrs["electrode"])
    assert w.shape == (40, L)
    np.testing.assert_allclose(uv, w * noise, rtol=1e-5)
    assert noise == pytest.approx(float(trained["spikes"].noise_uv[electrode]))


@pytest.mark.parametrize("args, fragment", [
    (["generate", "{tmp}/nope", "-o", "{tmp}/out"], "model folder not found"),
    (["generate", "{model}", "-o", "{tmp}/out", "--unit", "0"], "--run"),
    (["generate", "{model}", "-o", "{tmp}/out", "--noise", "residual"], "--run"),
    (["generate", "{model}", "-o", "{tmp}/out", "--unit", "99", "--run", "{run}"], "unit 99"),
    (["generate", "{model}", "-o", "{tmp}/out", "--interpolate", "0", "100000", "--run", "{run}"], "out of range"),
])
def test_cli_user_errors_are_one_line(trained, tmp_path, capsys, args, fragment):
    argv = [a.format(tmp=tmp_path, model=trained["model"], run=trained["run"]) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and fragment in err and "\n" not in err
