"""Tests of the convolutional (β-)VAE features (spikevae.features.vae)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikevae.errors import SpikevaeConfigError, SpikevaeError  # noqa: E402
from spikevae.features.vae import VAEConfig, VAEFeatures  # noqa: E402
from spikevae.features.vae.corrupt import make_corruption  # noqa: E402
from spikevae.features.vae.schedule import capacity, kl_weight  # noqa: E402
from spikevae.features.vae.train import (  # noqa: E402
    Normalisation, build_model, evaluate, train_model, train_step,
)
from spikevae.objects import Spikes  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_spikes(n=1200, n_el=4, L=48, seed=0, snippets=True) -> tuple[Spikes, np.ndarray]:
    """Four units of different shape and amplitude on ``n_el`` electrodes with noise σ 5-10 µV."""
    rng = np.random.default_rng(seed)
    t = np.arange(L)
    peak = min(15, L // 3)
    temps = np.array([-np.exp(-0.5 * ((t - peak) / (1.5 + 0.5 * k)) ** 2)
                      + (0.3 + 0.1 * k) * np.exp(-0.5 * ((t - peak - 7 - 2 * k) / 4) ** 2) for k in range(4)])
    unit = rng.integers(0, 4, n)
    el = rng.integers(0, n_el, n)
    sigma = rng.uniform(5, 10, n_el)
    wf = temps[unit] * (6 + 4 * unit)[:, None] * sigma[el][:, None] + rng.normal(size=(n, L)) * sigma[el][:, None]
    kw = {}
    if snippets:
        kw = {"noise_snippets": rng.normal(size=(50 * n_el, L)) * np.repeat(sigma, 50)[:, None],
              "noise_electrode": np.repeat(np.arange(n_el), 50)}
    sp = Spikes(np.arange(n) * 100, el, wf, wf[:, peak], sigma, 30000.0, peak, [f"e{i}" for i in range(n_el)], **kw)
    return sp, unit


def small_config(**kw) -> VAEConfig:
    base = dict(channels=8, hidden=32, latent_dim=4, epochs=2, batch_size=256, embed_batch_size=512, device="cpu")
    base.update(kw)
    return VAEConfig(**base)


# -- schedules ---------------------------------------------------------------------------------
def test_capacity_is_zero_at_start_and_c_max_from_ramp_end():
    assert capacity(0, 5.0, 100) == 0.0
    assert capacity(50, 5.0, 100) == pytest.approx(2.5)
    assert capacity(100, 5.0, 100) == pytest.approx(5.0)
    assert capacity(10_000, 5.0, 100) == pytest.approx(5.0)
    assert capacity(99, 5.0, 100) < 5.0
    with pytest.raises(ValueError, match="step"):
        capacity(-1, 5.0, 100)


def test_kl_warmup_weight():
    assert kl_weight(0) == 1.0 and kl_weight(1000) == 1.0  # no warm-up
    assert kl_weight(5, warmup_start=10, warmup_steps=20) == 0.0
    assert kl_weight(20, warmup_start=10, warmup_steps=20) == pytest.approx(0.5)
    assert kl_weight(30, warmup_start=10, warmup_steps=20) == pytest.approx(1.0)


def test_beta_vae_loss_follows_capacity_of_the_given_step():
    cfg = small_config(kind="beta_vae", gamma=2.0, capacity_max=4.0, capacity_ramp_steps=10)
    model = build_model(cfg, 48, 1.0, torch.device("cpu"))
    x = torch.randn(8, 48)
    with torch.no_grad():
        recon, mu, logvar = model(x)
    t0, t10 = model.loss(x, recon, mu, logvar, 0), model.loss(x, recon, mu, logvar, 10)
    assert float(t0.total) == pytest.approx(float(t0.recon + 2.0 * (t0.kl - 0.0).abs()), rel=1e-5)
    assert float(t10.total) == pytest.approx(float(t10.recon + 2.0 * (t10.kl - 4.0).abs()), rel=1e-5)


# -- model -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,arch,L", [("ae", "conv", 48), ("vae", "dual", 37), ("beta_vae", "conv", 30)])
def test_model_shapes_for_any_length(kind, arch, L):
    cfg = small_config(kind=kind, arch=arch, n_blocks=3)
    model = build_model(cfg, L, 1.0, torch.device("cpu")).eval()
    x = torch.randn(5, L)
    mu, logvar = model.encode(x)
    assert mu.shape == (5, 4) and logvar.shape == (5, 4)
    assert model.decode(mu).shape == (5, L)
    terms = model.loss(x, model.decode(mu), mu, logvar, 0)
    assert (float(terms.kl) == 0.0) == (kind == "ae")
    with pytest.raises(ValueError, match=f"built for {L}"):
        model.encode(torch.randn(2, L + 1))


def test_reparameterize_samples_for_vae_and_not_for_ae():
    x = torch.randn(4, 48)
    vae = build_model(small_config(kind="vae"), 48, 1.0, torch.device("cpu"))
    mu, logvar = vae.encode(x)
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(vae.reparameterize(mu, logvar, g), mu)
    ae = build_model(small_config(kind="ae"), 48, 1.0, torch.device("cpu"))
    mu, logvar = ae.encode(x)
    assert torch.equal(ae.reparameterize(mu, logvar, g), mu)


def test_train_step_changes_weights_and_evaluation_does_not():
    cfg = small_config(kind="vae", corruption="gaussian")
    model = build_model(cfg, 48, 1.0, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(64, 48)
    corrupt = make_corruption("gaussian", cfg, 1.0)
    g = torch.Generator().manual_seed(0)
    evaluate(model, x, corrupt, step=3, batch_size=16, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # evaluation restores the mode
    train_step(model, opt, x, corrupt(x, g), 0, g)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert "mu.weight" in changed and "dec_conv.4.weight" in changed


def test_evaluation_is_repeatable():
    cfg = small_config(kind="beta_vae", corruption="gaussian")
    model = build_model(cfg, 48, 1.0, torch.device("cpu"))
    x = torch.randn(100, 48)
    corrupt = make_corruption("gaussian", cfg, 1.0)
    assert evaluate(model, x, corrupt, 5, 32, 0) == evaluate(model, x, corrupt, 5, 32, 0)


# -- corruptions -------------------------------------------------------------------------------
def test_corruption_registry():
    cfg = small_config(dropout_p=0.5, noise_scale=2.0)
    x = torch.ones(200, 48)
    g = torch.Generator().manual_seed(0)
    dropped = make_corruption("dropout", cfg, 1.0)(x, g)
    assert 0.4 < float((dropped == 0).float().mean()) < 0.6
    noisy = make_corruption("gaussian", cfg, 0.5)(x, g)
    assert float((noisy - x).std()) == pytest.approx(1.0, rel=0.05)  # noise_scale 2 x noise_std 0.5
    bank = torch.arange(3 * 48, dtype=torch.float32).view(3, 48)
    added = make_corruption("background", cfg, 1.0, bank)(torch.zeros(10, 48), g) / 2.0
    assert all(any(torch.equal(row, b) for b in bank) for row in added)
    assert torch.equal(make_corruption("none", cfg, 1.0)(x, g), x)
    with pytest.raises(SpikevaeConfigError, match="valid: background"):
        make_corruption("salt", cfg, 1.0)
    with pytest.raises(SpikevaeError, match="noise snippets"):
        make_corruption("background", cfg, 1.0, None)


def test_background_corruption_without_snippets_is_a_clear_error():
    sp, _ = make_spikes(200, snippets=False)
    with pytest.raises(SpikevaeError, match="corruption to gaussian"):
        VAEFeatures(small_config(corruption="background")).fit(sp)


# -- training loop -----------------------------------------------------------------------------
def test_linear_autoencoder_learns_the_pca_subspace():
    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    n, L, k = 3000, 48, 3
    basis = np.linalg.qr(rng.normal(size=(L, k)))[0]
    x = (rng.normal(size=(n, k)) * [5, 3, 2]) @ basis.T + 0.1 * rng.normal(size=(n, L))
    sp = Spikes(np.arange(n), np.zeros(n), x, x[:, 15], [1.0], 30000.0, 15, ["0"])
    cfg = VAEConfig(kind="ae", activation="linear", corruption="none", latent_dim=k, epochs=30, lr=1e-2,
                    channels=4, hidden=16, patience=100, batch_size=128, device="cpu")
    f = VAEFeatures(cfg).fit(sp)
    with torch.no_grad():
        z = torch.cat([torch.zeros(1, k), torch.eye(k)])
        out = f.model_.decode(z)
        decoder_columns = (out[1:] - out[:1]).T.numpy()  # the linear decoder's column space, (L, k)
    pcs = PCA(k).fit(f.normalisation_.apply(sp.scaled_waveforms())).components_.T
    angles = np.degrees(subspace_angles(decoder_columns, pcs))
    assert angles.max() < 5.0, angles
    # and an untrained linear network is far from it (the check can fail)
    with torch.no_grad():
        raw = build_model(cfg, L, 1.0, torch.device("cpu")).decode(z)
    assert np.degrees(subspace_angles((raw[1:] - raw[:1]).T.numpy(), pcs)).max() > 20


def test_same_seed_same_embedding_other_seed_differs():
    sp, _ = make_spikes(600)
    a = VAEFeatures(small_config(seed=3)).fit(sp).transform(sp).features
    b = VAEFeatures(small_config(seed=3)).fit(sp).transform(sp).features
    c = VAEFeatures(small_config(seed=4)).fit(sp).transform(sp).features
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_validation_does_not_advance_the_step():
    sp, _ = make_spikes(1000)
    cfg = small_config(epochs=3, val_fraction=0.2, batch_size=100, patience=10)
    f = VAEFeatures(cfg).fit(sp)
    per_epoch = math.ceil(800 / 100)
    assert [h["step"] for h in f.history_] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert f.step_ == 3 * per_epoch


def test_training_stops_early_and_keeps_the_best_weights():
    sp, _ = make_spikes(400)
    # lr so large that the validation loss cannot keep improving
    f = VAEFeatures(small_config(kind="ae", epochs=50, patience=2, lr=0.5)).fit(sp)
    h = f.history_
    assert len(h) < 50
    best = min(range(len(h)), key=lambda i: h[i]["val_total"])
    assert len(h) == best + 1 + 2  # stopped after `patience` epochs without improvement


def test_divergence_is_a_clear_error():
    sp, _ = make_spikes(400)
    with pytest.raises(SpikevaeError, match="diverged.*lower features.vae.lr"):
        VAEFeatures(small_config(kind="vae", epochs=5, lr=1e4)).fit(sp)


class _Interrupt(Exception):
    pass


def test_resume_from_checkpoint_continues_at_the_saved_step(tmp_path):
    sp, _ = make_spikes(600)
    cfg = small_config(epochs=3, patience=10, kind="beta_vae", capacity_ramp_steps=5)
    norm = Normalisation.fit(sp.scaled_waveforms())
    x = norm.apply(sp.scaled_waveforms())
    from spikevae.features.vae.train import noise_bank

    bank = noise_bank(sp, norm)
    xt, xv = x[:500], x[500:]
    cpu = torch.device("cpu")

    whole = build_model(cfg, 48, norm.noise_std ** 2, cpu)
    s_whole = train_model(whole, xt, xv, bank, norm, cfg, cpu, checkpoint_dir=tmp_path / "a")

    def stop_after_first(state):
        if state.epoch == 1:
            raise _Interrupt

    part = build_model(cfg, 48, norm.noise_std ** 2, cpu)
    with pytest.raises(_Interrupt):
        train_model(part, xt, xv, bank, norm, cfg, cpu, checkpoint_dir=tmp_path / "b", on_epoch_end=stop_after_first)
    (ckpt,) = (tmp_path / "b").glob("*/checkpoint.pt")
    saved = torch.load(ckpt, weights_only=False)
    assert saved["epoch"] == 1 and saved["step"] == s_whole.history[0]["step"]

    seen = []
    fresh = build_model(cfg, 48, norm.noise_std ** 2, cpu)
    s_resumed = train_model(fresh, xt, xv, bank, norm, cfg, cpu, checkpoint_dir=tmp_path / "b",
                            on_epoch_end=lambda s: seen.append((s.epoch, s.step)))
    assert seen[0] == (2, s_whole.history[1]["step"])  # continued, did not restart at step 0
    assert s_resumed.step == s_whole.step
    assert [h["val_total"] for h in s_resumed.history] == pytest.approx([h["val_total"] for h in s_whole.history])
    for k, v in whole.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k

    # other settings in the same folder: a fresh training beside the first, which stays as it was
    other = small_config(epochs=1, patience=10, kind="vae")
    s_other = train_model(build_model(other, 48, 1.0, cpu), xt, xv, bank, norm, other, cpu,
                          checkpoint_dir=tmp_path / "b")
    assert s_other.history[0]["epoch"] == 1 and len(list((tmp_path / "b").glob("*/checkpoint.pt"))) == 2
    assert torch.load(ckpt, weights_only=False)["step"] == s_whole.step


def test_a_finished_checkpoint_is_reused(tmp_path):
    sp, _ = make_spikes(400)
    a = VAEFeatures(small_config()).fit(sp, checkpoint_dir=tmp_path)
    b = VAEFeatures(small_config()).fit(sp, checkpoint_dir=tmp_path)
    assert b.history_ == a.history_
    assert np.array_equal(a.transform(sp).features, b.transform(sp).features)


# -- model folders -----------------------------------------------------------------------------
def test_save_load_round_trip_and_embedding_of_another_recording(tmp_path):
    sp, _ = make_spikes(600)
    f = VAEFeatures(small_config(kind="vae", arch="dual")).fit(sp)
    folder = f.save(tmp_path / "model")
    for name in ("config.json", "state_dict.pt", "normalisation.json", "environment.json", "history.json",
                 "loss_curves.png"):
        assert (folder / name).is_file(), name
    g = VAEFeatures.load(folder, device="cpu")
    a, b = f.model_.state_dict(), g.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(f.normalisation_.mean, g.normalisation_.mean)
    assert g.get_params() == f.get_params() | {"device": "cpu"}
    other, _ = make_spikes(300, n_el=6, seed=9)  # another "recording"
    assert np.array_equal(f.transform(other).features, g.transform(other).features)
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_missing_model_file_raises_an_error_naming_it(tmp_path):
    sp, _ = make_spikes(300)
    folder = VAEFeatures(small_config(epochs=1)).fit(sp).save(tmp_path / "m")
    (folder / "state_dict.pt").unlink()
    with pytest.raises(SpikevaeError, match="state_dict.pt"):
        VAEFeatures.load(folder)
    with pytest.raises(SpikevaeError, match="model folder not found"):
        VAEFeatures.load(tmp_path / "nothing")


def test_wrong_waveform_length_is_a_clear_error():
    sp, _ = make_spikes(300)
    f = VAEFeatures(small_config(epochs=1)).fit(sp)
    short, _ = make_spikes(50, L=40)
    with pytest.raises(SpikevaeError, match="trained on 48"):
        f.transform(short)


# -- the estimator contract shared with PCA ----------------------------------------------------
def _snapshot(obj) -> dict:
    out = {}
    for k, v in vars(obj).items():
        if hasattr(v, "state_dict"):
            out[k] = {n: t.clone() for n, t in v.state_dict().items()}
        elif isinstance(v, np.ndarray):
            out[k] = v.copy()
        else:
            out[k] = repr(v)
    return out


def test_estimator_contract():
    sp, _ = make_spikes(700)
    f = VAEFeatures(small_config())
    public_before = {k for k in vars(f) if not k.startswith("_")}
    f.fit(sp)
    added = {k for k in vars(f) if not k.startswith("_")} - public_before
    assert added and all(k.endswith("_") for k in added)
    snap = _snapshot(f)
    whole = f.transform(sp)
    assert vars(f).keys() == snap.keys()
    after = _snapshot(f)
    for k, v in snap.items():
        if isinstance(v, dict):
            assert all(torch.equal(v[n], after[k][n]) for n in v), k
        elif isinstance(v, np.ndarray):
            assert np.array_equal(v, after[k]), k
        else:
            assert v == after[k], k
    batched = f.transform(sp, batch_size=37)
    np.testing.assert_allclose(batched.features, whole.features, rtol=1e-5, atol=1e-5)
    assert whole.method == "vae" and whole.features.shape == (700, 4) and whole.features.dtype == np.float32
    assert whole.params["latent_dim"] == 4
    assert VAEFeatures(f.get_params()).get_params() == f.get_params()
    assert dataclasses.asdict(small_config()) == f.get_params()


class _LazyRows:
    """A waveform array that only answers row reads (as an on-disk store would) and records them."""

    def __init__(self, a: np.ndarray):
        self.a, self.reads = a, []
        self.shape, self.dtype = a.shape, a.dtype

    def __len__(self):
        return len(self.a)

    def __getitem__(self, key):
        rows = self.a[key]
        self.reads.append(len(rows))
        return rows.copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole waveform array was loaded")


def test_waveforms_are_read_in_bounded_blocks_with_the_same_result(monkeypatch):
    from spikevae.features.vae import train as vae_train

    sp, _ = make_spikes(1000)
    cfg = small_config(max_train_spikes=400, val_fraction=0.1)
    ref = VAEFeatures(cfg).fit(sp)
    whole = ref.transform(sp).features
    lazy = dataclasses.replace(sp)
    lazy.waveforms = _LazyRows(sp.waveforms)
    f = VAEFeatures(cfg).fit(lazy)
    assert sorted(lazy.waveforms.reads) == [40, 400]  # the training subsample and the validation set only
    for k, v in ref.model_.state_dict().items():
        assert torch.equal(v, f.model_.state_dict()[k]), k
    lazy.waveforms.reads.clear()
    monkeypatch.setattr(vae_train, "READ_ROWS", 128)
    feats = f.transform(lazy, batch_size=64).features
    assert max(lazy.waveforms.reads) == 128 and sum(lazy.waveforms.reads) == 1000
    np.testing.assert_allclose(feats, whole, rtol=1e-5, atol=1e-5)


def test_validation_set_stops_growing_past_the_training_cap():
    from spikevae.features.vae.train import split_indices

    tr, va = split_indices(1000, 0.1, 5000, 0)
    assert len(tr) == 900 and len(va) == 100
    tr, va = split_indices(100000, 0.1, 5000, 0)
    assert len(tr) == 5000 and len(va) == 500 and not np.intersect1d(tr, va).size
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)


# -- end to end -------------------------------------------------------------------------------
@pytest.mark.slow
def test_vae_sorting_of_a_simulation_scores_at_least_the_pca_baseline():
    """Default VAE features vs PCA(5), same detection, clustering and scoring (8 electrodes x 60 s)."""
    from spikevae.cluster import ClusterConfig, cluster_spikes
    from spikevae.compare import compare_sortings
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.features import PCAFeatures, PCAParams
    from spikevae.preprocess import PreprocessConfig, preprocess
    from spikevae.synth import SimConfig, simulate_recording

    rec, gt = simulate_recording(SimConfig(n_electrodes=8, duration_s=60.0), seed=1)
    spikes = detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig(), seed=0)
    scores = {}
    for name, ex in (("pca", PCAFeatures(PCAParams())), ("vae", VAEFeatures(VAEConfig(device="cpu", num_threads=1)))):
        sorting = cluster_spikes(spikes, ex.fit(spikes).transform(spikes), ClusterConfig())
        scores[name] = compare_sortings(gt, sorting)
    pca, vae = scores["pca"]["mean_accuracy"], scores["vae"]["mean_accuracy"]
    assert pca > 0.4  # the baseline sorts something: the comparison means something
    assert vae >= pca, (vae, pca)
    assert scores["vae"]["n_well_detected"] >= scores["pca"]["n_well_detected"]


# -- CLI -------------------------------------------------------------------------------------
def test_cli_train_then_embed(tmp_path):
    from spikevae.cli import main
    from spikevae.store import RunStore, load_embedding

    sp, _ = make_spikes(500)
    RunStore(tmp_path).save_spikes(sp, {}, "test")
    sets = ["--set", "features.vae.epochs=1", "--set", "features.vae.channels=4", "--set", "features.vae.hidden=16"]
    main(["train", str(tmp_path), "--device", "cpu", *sets])  # returns normally on success
    assert (tmp_path / "vae_model" / "state_dict.pt").is_file()
    assert len(list((tmp_path / "vae_checkpoints").glob("*/checkpoint.pt"))) == 1
    main(["embed", str(tmp_path), "--model", str(tmp_path / "vae_model"), "--device", "cpu"])
    emb = load_embedding(tmp_path, "vae")
    expected = VAEFeatures.load(tmp_path / "vae_model", device="cpu").transform(sp).features
    np.testing.assert_array_equal(emb.features, expected)
    # the noise class comes along, with the detection defaults (no detect config stored here)
    assert emb.noise_features.shape == (sp.n_electrodes * 500, expected.shape[1])
    assert np.all(np.isfinite(emb.noise_rate_hz)) and np.all(emb.noise_rate_hz > 0)
    main(["embed", str(tmp_path), "--model", str(tmp_path / "vae_model"), "--device", "cpu", "--noise-crossings", "0"])
    assert load_embedding(tmp_path, "vae").noise_features is None


def test_cli_errors_are_one_line(tmp_path, capsys):
    from spikevae.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["embed", str(tmp_path), "--model", str(tmp_path / "missing")])
    assert exc.value.code == 1
    assert "model folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tmp_path)])
    assert exc.value.code == 1
    assert "no run store" in capsys.readouterr().err


# -- device ------------------------------------------------------------------------------------
def test_resolve_device():
    from spikevae.device import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SpikevaeError, match="not a torch device"):
        resolve_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(SpikevaeError, match="no CUDA"):
            resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_and_cpu_embeddings_agree():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    sp, _ = make_spikes(600)
    f = VAEFeatures(small_config()).fit(sp)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f.save(d + "/m")
        cpu = VAEFeatures.load(d + "/m", device="cpu").transform(sp).features
        gpu = VAEFeatures.load(d + "/m", device="cuda").transform(sp).features
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3)


# -- CUDA graphs: when a step may be captured ------------------------------------------------------
def test_training_steps_are_graphed_only_where_the_captured_step_is_the_eager_one():
    """A captured step cannot read a number that changes between replays, so the β-VAE's capacity and the
    KL warm-up keep the eager step, as do autocast, the CPU and the switch itself (on CUDA: tests/test_cuda.py)."""
    from spikevae.features.vae.cuda_graph import why_not_graphed

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    can = hasattr(torch.cuda.CUDAGraph, "register_generator_state")
    assert why_not_graphed(small_config(), cpu, False) == "not on CUDA"
    assert (why_not_graphed(small_config(), cuda, False) is None) == can
    assert (why_not_graphed(small_config(kind="ae"), cuda, False) is None) == can
    assert "autocast" in why_not_graphed(small_config(), cuda, True)
    assert "cuda_graphs" in why_not_graphed(small_config(cuda_graphs=False), cuda, False)
    assert "changes with the step" in why_not_graphed(small_config(kind="beta_vae"), cuda, False)
    assert "changes with the step" in why_not_graphed(small_config(kl_warmup_steps=100), cuda, False)
    # the switch changes nothing that is learned: checkpoints stay valid across it
    from spikevae.features.vae.train import fingerprint

    x = np.zeros((4, 48), np.float32)
    assert fingerprint(small_config(), x, x, None) == fingerprint(small_config(cuda_graphs=False), x, x, None)
