"""Cross-check of spikevae's quality metrics against SpikeInterface on the same data.

SpikeInterface is a test-only extra (``pip install spikeinterface``; ``numba`` too for its
``rp_contamination``). One in-memory recording (3 electrodes, 125 s at 30 kHz, white noise
σ = 10 µV) holds six units with templates injected at known samples; two units are
contaminated by refractory-free spikes and one fires only in the first minute. spikevae's
Spikes are cut from the same traces, so both packages see the same spikes and amplitudes.

Stated tolerances (relative unless said):
- firing rate, presence ratio, ISI violations (ratio, rate, count), rp contamination and
  violations, sliding RP contamination, amplitude median, amplitude cutoff, noise cutoff:
  1e-9 (same definitions, same inputs);
- SNR: 5 % (SpikeInterface estimates the noise σ by MAD on random chunks, spikevae on the
  whole trace);
- isolation distance, L-ratio, |d'|, simplified silhouette, nn hit/miss rates: 1e-6 in the
  shared PCA space (SpikeInterface's kernels applied to spikevae's per-electrode features).
"""
from __future__ import annotations

import numpy as np
import pytest

si_core = pytest.importorskip("spikeinterface.core")
si_misc = pytest.importorskip("spikeinterface.metrics.quality.misc_metrics")
si_pca = pytest.importorskip("spikeinterface.metrics.quality.pca_metrics")

from spikevae.objects import Sorting, Spikes  # noqa: E402
from spikevae.quality import compute_metrics, electrode_space, match_spikes  # noqa: E402
from spikevae.quality.synthetic import poisson_train  # noqa: E402
from spikevae.quality_config import QualityConfig  # noqa: E402

FS = 30000.0
DURATION_S = 125.0
PEAK = 15
N_SAMPLES = 48
# (electrode, peak amplitude µV, rate Hz, contamination fraction, active only in first minute)
UNITS = [(0, -150, 9, 0.0, False), (0, -80, 8, 0.10, False), (0, -55, 6, 0.0, True),
         (1, -110, 10, 0.0, False), (1, -60, 8, 0.25, False), (2, -120, 7, 0.0, False)]


def _template(amp: float, width: float) -> np.ndarray:
    t = np.arange(N_SAMPLES) - PEAK
    w = -np.exp(-0.5 * (t / width) ** 2) + 0.3 * np.exp(-0.5 * ((t - 4 * width) / (2 * width)) ** 2)
    return -amp * w / w[PEAK]


def build_data() -> dict:
    """The shared recording, spikevae's Spikes/Sorting/metrics, and a SpikeInterface analyzer on it."""
    rng = np.random.default_rng(7)
    n = int(DURATION_S * FS)
    traces = rng.normal(0, 10.0, (n, 3)).astype(np.float32)
    times, labels, electrodes = [], [], []
    for u, (e, amp, rate, cont, first_minute) in enumerate(UNITS):
        end = int(60 * FS) if first_minute else n
        tr = poisson_train(rate, end, FS, 2e-3, rng)
        tr = np.sort(np.concatenate([tr, rng.integers(0, end, int(cont * tr.size))]))
        tr = np.unique(tr[(tr >= PEAK) & (tr < n - N_SAMPLES)])
        tmpl = _template(amp, 2.0 + u % 3).astype(np.float32)
        for t in tr:
            traces[t - PEAK:t - PEAK + N_SAMPLES, e] += tmpl
        times.append(tr), labels.append(np.full(tr.size, u)), electrodes.append(np.full(tr.size, e))
    t, lab, el = np.concatenate(times), np.concatenate(labels), np.concatenate(electrodes)
    order = np.lexsort((el, t))
    t, lab, el = t[order], lab[order], el[order]
    keep = np.r_[True, ~((t[1:] == t[:-1]) & (el[1:] == el[:-1]))]
    t, lab, el = t[keep], lab[keep], el[keep]
    waves = traces[t[:, None] - PEAK + np.arange(N_SAMPLES), el[:, None]]
    mad = np.median(np.abs(traces - np.median(traces, axis=0)), axis=0) / 0.6744897501960817
    spikes = Spikes(t, el, waves, waves[:, PEAK].copy(), mad, FS, PEAK, np.array(["a", "b", "c"]))
    sorting = Sorting(t, el, lab, FS)
    cfg = QualityConfig()
    ours = {r["unit"]: r for r in compute_metrics(spikes, sorting, cfg, DURATION_S)}

    from probeinterface import generate_linear_probe

    probe = generate_linear_probe(num_elec=3, ypitch=400.0)  # Utah pitch: one unit per electrode
    probe.set_device_channel_indices(np.arange(3))
    rec = si_core.NumpyRecording([traces], sampling_frequency=FS)
    rec.set_probe(probe)
    si_sorting = si_core.NumpySorting.from_samples_and_labels([t], [lab], FS)
    analyzer = si_core.create_sorting_analyzer(si_sorting, rec, format="memory", sparse=False)
    analyzer.compute(["random_spikes", "templates", "noise_levels", "spike_amplitudes"])
    return {"spikes": spikes, "sorting": sorting, "cfg": cfg, "ours": ours, "analyzer": analyzer}


@pytest.fixture(scope="module")
def data():
    return build_data()


def _close(ours: dict, theirs: dict, key: str, rtol: float, atol: float = 0.0) -> None:
    for u, v in theirs.items():
        np.testing.assert_allclose(ours[int(u)][key], float(v), rtol=rtol, atol=atol, err_msg=f"{key} unit {u}")


def test_spike_train_metrics_match(data):
    a, ours, cfg = data["analyzer"], data["ours"], data["cfg"]
    from spikeinterface.metrics.spiketrain.metrics import compute_firing_rates

    _close(ours, compute_firing_rates(a), "firing_rate_hz", 1e-9)
    pr = si_misc.compute_presence_ratios(a, bin_duration_s=cfg.presence_bin_s)
    _close(ours, pr, "presence_ratio", 1e-9)
    assert ours[2]["presence_ratio"] == pytest.approx(0.5)  # silent in the second minute
    ratio, count = si_misc.compute_isi_violations(a, isi_threshold_ms=cfg.refractory_ms, min_isi_ms=cfg.censored_ms)
    _close(ours, ratio, "isi_violations_ratio", 1e-9)
    _close(ours, count, "isi_violations_count", 0)
    assert ours[4]["isi_violations_count"] > 0 and ours[0]["isi_violations_count"] == 0
    for u in ours:
        st = data["sorting"].sample_index[data["sorting"].unit == u] / FS
        _, rate, _ = si_misc.isi_violations([st], DURATION_S, cfg.refractory_ms / 1000)
        assert ours[u]["isi_violations_rate"] == pytest.approx(rate, rel=1e-9)
    srp = si_misc.compute_sliding_rp_violations(a)
    _close(ours, srp, "sliding_rp_violation", 1e-9)
    if si_misc.HAVE_NUMBA:
        cont, nv = si_misc.compute_refrac_period_violations(a, refractory_period_ms=cfg.refractory_ms,
                                                            censored_period_ms=cfg.censored_ms)
        _close(ours, cont, "rp_contamination", 1e-9)
        _close(ours, nv, "rp_violations", 0)
    # Contamination is seen where it was put.
    assert ours[4]["rp_contamination"] > 0.1 > ours[0]["rp_contamination"]


def test_amplitude_metrics_match(data):
    a, ours, cfg = data["analyzer"], data["ours"], data["cfg"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        med = si_misc.compute_amplitude_medians(a)
        cut = si_misc.compute_amplitude_cutoffs(a, num_histogram_bins=cfg.amplitude_cutoff_bins,
                                                histogram_smoothing_value=cfg.amplitude_cutoff_smoothing,
                                                amplitudes_bins_min_ratio=cfg.amplitude_cutoff_min_ratio)
        nc, _ = si_misc.compute_noise_cutoffs(a)
    _close(ours, med, "amplitude_uv", 1e-6)
    _close(ours, cut, "amplitude_cutoff", 1e-9, atol=1e-12)
    _close(ours, nc, "noise_cutoff", 1e-9, atol=1e-12)
    _close(ours, si_misc.compute_snrs(a), "snr", 0.05)
    assert ours[0]["snr"] == pytest.approx(15.0, rel=0.05)  # 150 µV over σ = 10 µV


def test_pc_metrics_match_in_shared_space(data):
    spikes, sorting, cfg, ours = data["spikes"], data["sorting"], data["cfg"], data["ours"]
    labels = np.full(spikes.n_spikes, -1)
    m = match_spikes(spikes, sorting)
    labels[m] = sorting.unit
    n_checked = 0
    for e in range(3):
        idx = np.nonzero(spikes.electrode == e)[0]
        x, lab = electrode_space(spikes, idx, cfg.n_components), labels[idx]
        for u in np.unique(lab):
            r = ours[int(u)]
            iso, lr = si_pca.mahalanobis_metrics(x, lab, u)
            if (lab != u).sum() >= (lab == u).sum():  # isolation distance defined (Schmitzer-Torbert)
                assert r["isolation_distance"] == pytest.approx(iso, rel=1e-6)
            assert r["l_ratio"] == pytest.approx(lr, rel=1e-6, abs=1e-12, nan_ok=True)
            if np.unique(lab).size > 1:
                assert r["d_prime"] == pytest.approx(abs(si_pca.d_prime_metric(x, lab, u)), rel=1e-6)
                assert r["silhouette"] == pytest.approx(si_pca.simplified_silhouette_score(x, lab, u), rel=1e-6)
            hit, miss = si_pca.nearest_neighbors_metrics(x, lab, u, max_spikes=cfg.nn_max_spikes,
                                                         n_neighbors=cfg.nn_neighbors)
            assert r["nn_hit_rate"] == pytest.approx(hit, rel=1e-6)
            assert r["nn_miss_rate"] == pytest.approx(miss, rel=1e-6, abs=1e-12)
            n_checked += 1
    assert n_checked == len(UNITS)
