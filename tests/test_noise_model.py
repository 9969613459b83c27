"""Synthetic noise threshold crossings and the clustering's noise class.

On a simulated recording of pure noise every detection is a noise crossing, so the
synthesised crossings can be checked against real ones: rate, mean waveform and peak
distribution. On a recording with units, the noise class must leave most detections
that match no unit unsorted without costing the units accuracy.
"""
import numpy as np
import pytest

from spikevae.cluster import ClusterConfig, cluster_spikes
from spikevae.compare import compare_sortings
from spikevae.detect import DetectConfig, detect_spikes
from spikevae.diagnose import ground_truth_labels
from spikevae.features import make_extractor
from spikevae.features.base import embed_noise_class
from spikevae.features.config import FeaturesConfig
from spikevae.noise_model import crossing_rate_hz, noise_autocovariance, noise_crossings, sample_crossings
from spikevae.objects import Embedding
from spikevae.preprocess import PreprocessConfig, preprocess
from spikevae.synth import SimConfig, simulate_recording


@pytest.fixture(scope="module")
def pure_noise():
    cfg = SimConfig(n_electrodes=3, duration_s=30.0, units_min=0, units_max=0, background_max=0)
    rec, _ = simulate_recording(cfg, seed=5)
    # 3000 snippets per electrode: Rice's rate goes as exp(-u²/2), so a 2 % error in the snippets'
    # variance moves it by 25 %; with the default 300 the check below would test sampling luck
    return detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig(noise_snippets=3000)), 30.0


def test_synthetic_crossings_match_detected_noise(pure_noise):
    spikes, duration = pure_noise
    d = DetectConfig()
    synth, rate = noise_crossings(spikes, d.threshold, d.polarity, 2000, d.dead_time_ms, seed=0)
    assert synth.n_spikes == 3 * 2000 and synth.n_samples == spikes.n_samples
    real_w, syn_w = spikes.scaled_waveforms(), synth.scaled_waveforms()
    p = spikes.peak_index
    for e in range(3):
        real, syn = real_w[spikes.electrode == e], syn_w[synth.electrode == e]
        assert real.shape[0] > 100  # about 8 Hz of noise crossings at 3.5 σ
        # Rice's formula predicts how many detections pure noise makes
        assert rate[e] * duration == pytest.approx(real.shape[0], rel=0.3)
        # the same mean waveform and peak distribution
        mr, ms = real.mean(0), syn.mean(0)
        assert np.corrcoef(mr, ms)[0, 1] > 0.97
        assert ms[p] == pytest.approx(mr[p], rel=0.05)
        assert np.median(syn[:, p]) == pytest.approx(np.median(real[:, p]), rel=0.05)
        # every synthetic crossing is beyond the threshold and is the extremum at the peak index
        assert np.all(syn[:, p] <= -d.threshold * 0.999)


def test_sample_crossings_extremum_and_polarity(pure_noise):
    spikes, _ = pure_noise
    cov = noise_autocovariance(spikes.noise_snippets[spikes.noise_electrode == 0] / spikes.noise_uv[0])
    x = sample_crossings(cov, 15, 3.5, 500, 15, np.random.default_rng(0))
    assert x.shape == (500, spikes.n_samples)
    assert np.all(x[:, 0:31].min(1) >= x[:, 15])
    pos, _ = noise_crossings(spikes, 3.5, "pos", 100, 0.5, seed=1)
    assert np.all(pos.waveforms[:, pos.peak_index] > 0)
    both, rate_both = noise_crossings(spikes, 3.5, "both", 100, 0.5, seed=1)
    assert (both.waveforms[:, both.peak_index] > 0).mean() == pytest.approx(0.5, abs=0.01)
    assert rate_both[0] == pytest.approx(2 * crossing_rate_hz(cov, 3.5, spikes.fs), rel=1e-6)
    with pytest.raises(ValueError, match="polarity"):
        noise_crossings(spikes, 3.5, "up", 10)


def test_no_snippets_means_no_noise_class(pure_noise):
    spikes, _ = pure_noise
    bare = spikes.subset(np.arange(spikes.n_spikes))
    bare.noise_snippets, bare.noise_electrode = None, None
    crossings, rate = noise_crossings(bare, 3.5)
    assert crossings.n_spikes == 0 and np.all(np.isnan(rate))
    ex = make_extractor("pca", FeaturesConfig(), seed=0).fit(bare)
    emb = ex.transform(bare)
    assert embed_noise_class(ex, bare, emb, 500, 3.5) is emb


def test_embedding_noise_fields_are_checked():
    with pytest.raises(ValueError, match="come together"):
        Embedding(np.zeros((3, 2)), "pca", noise_features=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="noise_electrode"):
        Embedding(np.zeros((3, 2)), "pca", noise_features=np.zeros((4, 2)), noise_electrode=np.zeros(3))


@pytest.fixture(scope="module")
def units_and_noise():
    cfg = SimConfig(n_electrodes=4, duration_s=40.0, units_min=1, units_max=2, hard_fraction=0.0)
    rec, gt = simulate_recording(cfg, seed=3)
    spikes = detect_spikes(preprocess(rec, PreprocessConfig()), DetectConfig())
    ex = make_extractor("pca", FeaturesConfig(), seed=0).fit(spikes)
    d = DetectConfig()
    emb = embed_noise_class(ex, spikes, ex.transform(spikes), 500, d.threshold, d.polarity, d.dead_time_ms)
    return spikes, gt, emb


def test_noise_class_leaves_noise_crossings_unsorted(units_and_noise):
    spikes, gt, emb = units_and_noise
    unmatched = ground_truth_labels(spikes, gt) < 0
    assert unmatched.mean() > 0.1  # the recording has plenty of noise crossings
    cfg_off = ClusterConfig(n_jobs=1)
    cfg_off.refine.noise_class = False
    off = cluster_spikes(spikes, emb, cfg_off)
    on = cluster_spikes(spikes, emb, ClusterConfig(n_jobs=1))
    sorted_off = np.mean(off.unit[: spikes.n_spikes][unmatched] >= 0)
    sorted_on = np.mean(on.unit[: spikes.n_spikes][unmatched] >= 0)
    assert sorted_off > 0.8
    assert sorted_on < 0.5
    acc_on = compare_sortings(gt, on)["mean_accuracy"]
    acc_off = compare_sortings(gt, off)["mean_accuracy"]
    assert acc_on >= acc_off - 0.02
    assert on.params["totals"]["noise"] > 0
