"""Simulated recordings: chunk invariance, ground-truth alignment, SNR, background, hard cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from spikevae.errors import SpikevaeConfigError, SpikevaeError
from spikevae.objects import Sorting
from spikevae.synth import SimConfig, read_ground_truth, simulate_recording, write_ground_truth
from spikevae.synth.trains import TrainParams, draw_train


def small_config(**kw) -> SimConfig:
    base = dict(duration_s=4.0, n_electrodes=6, block_samples=8192, units_min=1, units_max=3,
                background_min=1, background_max=2)
    base.update(kw)
    return SimConfig(**base)


def bandpass(x, fs=30000.0):
    sos = signal.butter(3, (300.0, 6000.0), btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, float), axis=0)


@pytest.fixture(scope="module")
def sim():
    return simulate_recording(small_config(), seed=3)


def test_same_seed_same_samples_under_any_chunking(sim):
    rec, _ = sim
    whole = rec.get_traces(0, rec.n_samples)
    for chunk in (1000, 7777):
        parts = np.concatenate([rec.get_traces(a, a + chunk) for a in range(0, rec.n_samples, chunk)])
        np.testing.assert_array_equal(parts, whole)
    again, _ = simulate_recording(small_config(), seed=3)
    np.testing.assert_array_equal(again.get_traces(5000, 20000, [4, 1]), whole[5000:20000][:, [4, 1]])
    import pickle  # worker processes get a copy of the recording

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(rec)).get_traces(9000, 9100), whole[9000:9100])
    other, _ = simulate_recording(small_config(), seed=4)
    assert not np.allclose(other.get_traces(0, 1000), whole[:1000])


def test_ground_truth_sits_on_the_filtered_extremum(sim):
    """At each isolated GT time the filtered noise-free trace has its trough, of the realised SNR depth."""
    rec, gt = sim
    info = rec.unit_info
    clean = bandpass(rec.scored_only().without_noise().get_traces())
    checked = 0
    for u in info.unit_ids:
        e = info.unit_electrode[u]
        t_e = np.sort(gt.sample_index[gt.electrode == e])
        t = gt.sample_index[gt.unit == u]
        gap = np.minimum(np.diff(np.r_[-10**9, t_e])[np.searchsorted(t_e, t)],
                         np.diff(np.r_[t_e, 10**9])[np.searchsorted(t_e, t)])
        t = t[(gap > 120) & (t > 60) & (t < rec.n_samples - 60)]
        if t.size < 5:
            continue
        local = np.stack([clean[s - 10:s + 11, e] for s in t])
        assert np.mean(local.argmin(axis=1) == 10) > 0.95, f"unit {u}: GT times are off the trough"
        depth = -clean[t, e].mean() / info.noise_uv[e]
        assert depth == pytest.approx(info.unit_snr[u], rel=0.03), f"unit {u}"
        checked += 1
    assert checked >= 5


def test_realised_snr_and_noise_level_match_the_request():
    cfg = small_config(duration_s=6.0, n_electrodes=8, snr_min=3, snr_max=20)
    rec, gt = simulate_recording(cfg, seed=11)
    info = rec.unit_info
    ratio = info.unit_snr / info.unit_snr_requested
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert info.unit_snr.min() >= 2.7 and info.unit_snr.max() <= 22
    noise_only = rec.without_noise()  # templates alone ...
    diff = bandpass(rec.get_traces()) - bandpass(noise_only.get_traces())  # ... subtracted leave the noise
    np.testing.assert_allclose(diff.std(axis=0), info.noise_uv, rtol=0.03)


def test_background_units_are_in_the_traces_but_not_in_the_ground_truth(sim):
    rec, gt = sim
    info, units = rec.unit_info, rec.units
    assert info.n_background_units == int((~units.scored).sum()) > 0
    assert np.any(~units.scored[rec.spikes.row]), "background units fire"
    assert len(gt.unit_ids) == int(units.scored.sum()) == len(info.unit_ids)
    bg_only = rec.without_noise().get_traces() - rec.scored_only().without_noise().get_traces()
    assert np.abs(bg_only).max() > 0
    # every GT spike is a scored spike: GT count equals the scored spikes in the table
    assert gt.sample_index.shape[0] == int(units.scored[rec.spikes.row].sum())
    bg_snr = units.snr_requested[~units.scored]
    assert bg_snr.max() <= 2.0


def test_hard_cases_are_present():
    cfg = SimConfig(duration_s=1.0, n_electrodes=32)
    rec, gt = simulate_recording(cfg, seed=0)
    info = rec.unit_info
    assert np.any((info.unit_snr_requested >= 3) & (info.unit_snr_requested < 5))
    hard_e = np.unique(info.unit_electrode[info.unit_hard])
    assert hard_e.size >= 2
    for e in hard_e:
        snr = np.sort(info.unit_snr_requested[info.unit_electrode == e])
        steps = snr[1:] / snr[:-1]
        assert np.all((steps >= 1.099) & (steps <= 1.201)), steps
        w = info.unit_templates[info.unit_electrode == e]
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        assert (w @ w.T).min() > 0.8, "look-alike units have similar shapes"


def test_trains_have_the_rate_refractory_period_and_bursts():
    p = TrainParams(rate_hz=10.0, refractory_s=0.0015, burst_prob=0.2, burst_max_spikes=3,
                    burst_isi_s=(0.003, 0.006), burst_decay=0.8, amp_jitter=0.05)
    t, amp = draw_train(p, 300.0, np.random.default_rng(0))
    assert t.size / 300.0 == pytest.approx(10.0, rel=0.06)
    isi = np.diff(t)
    assert isi.min() >= 0.0015
    assert np.mean(isi < 0.007) > 0.15, "bursts give short intervals"
    after_short = amp[1:][isi < 0.007]
    assert after_short.mean() < 0.9 * amp[1:][isi > 0.05].mean(), "amplitude decays within a burst"


def test_ground_truth_respects_the_refractory_period(sim):
    _, gt = sim
    for u in gt.unit_ids:
        d = np.diff(gt.sample_index[gt.unit == u])
        assert d.min() >= 45 - 1  # 1.5 ms at 30 kHz, +-1 sample from the sub-sample extremum


def test_template_fn_hook_supplies_the_shapes():
    def fn(n, length, rng):
        t = np.arange(length) - length // 3
        return np.tile(-np.exp(-0.5 * (t / 4.0) ** 2) + 0.3 * np.exp(-0.5 * ((t - 12) / 8.0) ** 2), (n, 1))

    cfg = small_config(duration_s=0.5, hard_fraction=0.0)  # look-alike units are stretched copies
    rec, _ = simulate_recording(cfg, seed=1, template_fn=fn)
    w = rec.unit_info.unit_templates
    ref = fn(1, w.shape[1], None)[0]
    core = slice(10, w.shape[1] - 10)
    corr = (w[:, core] @ ref[core]) / np.linalg.norm(w[:, core], axis=1) / np.linalg.norm(ref[core])
    assert corr.min() > 0.999


def test_ground_truth_file_round_trip(tmp_path, sim):
    rec, gt = sim
    path = tmp_path / "ground_truth.npz"
    write_ground_truth(path, gt, rec.unit_info)
    with np.load(path) as z:
        for key in ("sample_index", "unit", "electrode", "unit_ids", "unit_electrode"):
            assert z[key].dtype == np.int64, key
        assert float(z["fs"]) == 30000.0
    loaded = Sorting.load_npz(path)
    np.testing.assert_array_equal(loaded.sample_index, gt.sample_index)
    np.testing.assert_array_equal(loaded.unit, gt.unit)
    _, info = read_ground_truth(path)
    np.testing.assert_allclose(info["unit_snr"], rec.unit_info.unit_snr)
    assert np.all(np.diff(loaded.sample_index) >= 0)
    with pytest.raises(SpikevaeError, match="lacks unit_snr"):
        write_ground_truth(tmp_path / "bad.npz", gt, {"unit_ids": [0], "unit_electrode": [0], "unit_rate_hz": [1]})


def test_bad_configs_name_the_keys():
    with pytest.raises(SpikevaeConfigError, match="snr_min"):
        simulate_recording(small_config(snr_min=10, snr_max=5))
    with pytest.raises(SpikevaeError, match="n_electrodes=200"):
        simulate_recording(small_config(n_electrodes=200))


def test_simulate_command_writes_a_readable_recording_and_ground_truth(tmp_path, capsys):
    import json

    from spikevae.cli import main
    from spikevae.io.binary import BinaryRecording

    out = tmp_path / "sim"
    main(["simulate", str(out), "--duration", "0.5", "--electrodes", "4", "--seed", "5", "--format", "raw",
          "--set", "sim.snr_min=5"])
    meta = json.loads((out / "recording.json").read_text())
    rec = BinaryRecording(out / "recording.dat", fs=meta["fs"], n_channels=meta["n_channels"],
                          dtype=meta["dtype"], gain_uv=meta["gain_uv"])
    expected, gt = simulate_recording(SimConfig(duration_s=0.5, n_electrodes=4, snr_min=5.0), seed=5)
    assert np.abs(rec.get_traces() - expected.get_traces()).max() <= meta["gain_uv"] / 2 + 1e-4
    loaded, info = read_ground_truth(out / "ground_truth.npz")
    np.testing.assert_array_equal(loaded.sample_index, gt.sample_index)
    assert info["unit_snr_requested"].min() >= 5.0
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(tmp_path / "bad"), "--set", "sim.snr_mn=3"])
    assert exc.value.code == 1
    assert "did you mean sim.snr_min" in capsys.readouterr().err


@pytest.mark.slow
def test_templates_from_a_trained_vae_decoder(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from spikevae.detect import DetectConfig, detect_spikes
    from spikevae.features.vae import VAEConfig, VAEFeatures
    from spikevae.preprocess import PreprocessConfig, preprocess
    from spikevae.synth.vae_templates import VAETemplates

    train_rec, _ = simulate_recording(small_config(duration_s=3.0, units_min=2, snr_min=6, background_min=0, background_max=0), 0)
    spikes = detect_spikes(preprocess(train_rec, PreprocessConfig()), DetectConfig())
    cfg = VAEConfig(kind="vae", latent_dim=2, epochs=1, corruption="gaussian", device="cpu", batch_size=128)
    VAEFeatures(cfg).fit(spikes).save(tmp_path / "model")

    fn = VAETemplates(tmp_path / "model")
    z = np.random.default_rng(7).normal(0.0, 1.0, (16, 2))
    decoded = fn.decode(z)
    out = fn(4, 90, np.random.default_rng(7))
    plausible = decoded[fn._plausible(decoded)][:4]
    np.testing.assert_allclose(out[:, 6:42], plausible[:, 6:42])  # untapered middle, embedded at the start
    assert np.all(out[:, 48:] == 0)

    calls = []

    def recording_fn(n, length, rng):
        calls.append(fn(n, length, rng))
        return calls[-1]

    cfg = small_config(duration_s=0.5, hard_fraction=0.0, background_min=0, background_max=0)
    rec, _ = simulate_recording(cfg, seed=2, template_fn=recording_fn)
    info = rec.unit_info
    assert len(calls) == 1 and calls[0].shape == (len(info.unit_ids), 90)
    assert np.all(np.argmin(info.unit_templates, axis=1) == info.template_peak_index)
    shifted = np.stack([np.roll(w, info.template_peak_index - np.argmax(np.abs(w))) for w in calls[0]])
    corr = np.sum(shifted * info.unit_templates, axis=1) / np.linalg.norm(shifted, axis=1) / np.linalg.norm(
        info.unit_templates, axis=1)
    assert corr.min() > 0.999, corr


def test_noise_taken_from_a_recording_is_tiled_and_sets_the_snr_scale():
    from spikevae.recording import ArrayRecording

    src = np.random.default_rng(1).normal(0, 1, (20000, 3)).astype(np.float32) * np.float32([5, 10, 20])
    source = ArrayRecording(src, 30000.0)
    # the source as it is (no high-pass, no blanking): tiled sample for sample
    cfg = small_config(duration_s=2.0, n_electrodes=5, noise_from_highpass_hz=0.0, noise_from_blank_sd=0.0)
    rec, _ = simulate_recording(cfg, seed=0, noise_recording=source)
    noise = rec.get_traces().astype(np.float64) - rec.without_noise().get_traces()
    t = np.arange(rec.n_samples) % 20000
    np.testing.assert_allclose(noise, src[t][:, [0, 1, 2, 0, 1]], atol=1e-4)
    filtered_sigma = np.median(np.abs(bandpass(src[:, [0, 1, 2, 0, 1]])), axis=0) / 0.6745
    np.testing.assert_allclose(rec.unit_info.noise_uv, filtered_sigma, rtol=1e-6)
    parts = np.concatenate([rec.get_traces(a, a + 9000) for a in range(0, rec.n_samples, 9000)])
    np.testing.assert_array_equal(parts, rec.get_traces())
    with pytest.raises(SpikevaeError, match="sampled at 10000 Hz"):
        simulate_recording(cfg, noise_recording=ArrayRecording(src, 10000.0))
