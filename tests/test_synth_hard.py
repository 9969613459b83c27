"""Hard-case simulations (spikevae.synth.hard): shape change, heavy-tailed and line noise, fast units."""
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import signal, stats

from spikevae.errors import SpikevaeConfigError
from spikevae.synth import SimConfig, simulate_recording
from spikevae.synth.hard import changed_template

FS = 30000.0
BAND = signal.butter(3, (300, 6000), btype="bandpass", fs=FS, output="sos")


def _sim(seed=3, **kw):
    base = dict(n_electrodes=4, duration_s=2.0)
    return simulate_recording(SimConfig(**{**base, **kw}), seed=seed)


def _noise_only(**kw):
    return _sim(seed=1, n_electrodes=2, duration_s=4.0, units_max=0, background_max=0, **kw)[0]


def test_defaults_unchanged_by_the_new_settings():
    """Figures of simulations made before the hard cases existed (commit 1a9c23c): same spikes, same traces."""
    golden = [({}, 2969.302350675156, 47051798.25039549),
              ({"burst_prob": 0.3, "artefact_rate_hz": 2.0}, 41421.01139163836, 87739081.84197581)]
    for kw, total, power in golden:
        rec, _ = _sim(**kw)
        x = rec.get_traces(0, rec.n_samples).astype(np.float64)
        assert x.sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
        assert (x ** 2).sum() == pytest.approx(power, rel=1e-12)


@pytest.mark.parametrize("kw", [{"noise_t_dof": 5.0}, {"line_noise_uv": 40.0}, {"shape_burst": 0.5, "burst_prob": 0.3},
                                {"shape_drift": 0.5}])
def test_each_setting_keeps_the_other_random_streams(kw):
    rec0, gt0 = _sim(burst_prob=0.3)
    rec1, gt1 = _sim(**{"burst_prob": 0.3, **kw})
    np.testing.assert_array_equal(gt0.sample_index, gt1.sample_index)
    np.testing.assert_array_equal(gt0.unit, gt1.unit)
    x0, x1 = rec0.get_traces(0, rec0.n_samples), rec1.get_traces(0, rec1.n_samples)
    assert not np.array_equal(x0, x1)  # the setting did something
    if "shape_burst" not in kw and "shape_drift" not in kw:  # the spikes themselves are the same
        np.testing.assert_array_equal(rec0.without_noise().get_traces(0, rec0.n_samples),
                                      rec1.without_noise().get_traces(0, rec1.n_samples))


def test_heavy_tailed_noise_has_excess_kurtosis_and_the_same_sigma():
    def band_noise(rec):
        return signal.sosfiltfilt(BAND, rec.get_traces(0, rec.n_samples).astype(np.float64), axis=0)

    gauss, heavy = band_noise(_noise_only()), band_noise(_noise_only(noise_t_dof=5.0))
    assert np.all(np.abs(stats.kurtosis(gauss, axis=0)) < 0.2)
    assert np.all(stats.kurtosis(heavy, axis=0) > 1.5)
    np.testing.assert_allclose(heavy.std(axis=0), gauss.std(axis=0), rtol=0.15)  # unit variance innovations


def test_student_t_needs_more_than_two_degrees_of_freedom():
    with pytest.raises(SpikevaeConfigError, match="noise_t_dof"):
        _noise_only(noise_t_dof=2.0)


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_line_noise_has_power_at_the_mains_and_its_harmonics(mains):
    rec = _noise_only(line_noise_uv=50.0, line_freq_hz=mains, line_harmonics=2)
    f, p = signal.welch(rec.get_traces(0, rec.n_samples)[:, 0], fs=FS, nperseg=int(FS))
    ratio = {k: p[int(k * mains)] / np.median(p[int(k * mains) - 20:int(k * mains) + 20]) for k in (1, 2, 3)}
    assert all(r > 100 for r in ratio.values()), ratio
    off = p[int(4.5 * mains)] / np.median(p[int(4.5 * mains) - 20:int(4.5 * mains) + 20])
    assert off < 5


def test_changed_template_is_wider_with_a_smaller_repolarisation_and_the_same_extremum():
    from spikevae.synth.templates import parametric_templates

    peak = 30
    w = 80.0 * parametric_templates(1, 90, np.random.default_rng(0), fs=FS, peak_index=peak)[0]
    y = changed_template(w, 1.0, peak, width=0.3, repol=0.6)
    assert y[peak] == pytest.approx(w[peak])
    half = lambda v: np.sum(v * np.sign(w[peak]) > 0.5 * abs(w[peak]))  # noqa: E731 - samples above half the extremum
    assert half(y) > half(w)
    after = np.arange(90) > peak
    assert np.max(-np.sign(w[peak]) * y[after]) < 0.7 * np.max(-np.sign(w[peak]) * w[after])
    np.testing.assert_array_equal(changed_template(w, 0.0, peak, 0.3, 0.6), w)


def test_shape_levels_follow_the_bursts_and_are_in_the_traces():
    rec, _ = _sim(duration_s=10.0, burst_prob=0.4, shape_burst=0.5)
    s = rec.spikes
    assert s.level is not None and s.level.max() == 15
    # without drift, only burst followers change shape: the first spike of each unit is level 0
    first = np.unique(s.row, return_index=True)[1]
    assert np.all(s.level[first] == 0)
    np.testing.assert_array_equal(rec.shape_banks[:, 0], rec.units.banks_uv.astype(np.float32))
    drift, _ = _sim(duration_s=10.0, shape_drift=1.0, shape_drift_period_s=5.0)
    assert len(np.unique(drift.spikes.level)) > 8


def test_fast_units_fire_fast_and_overlap():
    rec0, gt0 = _sim(duration_s=10.0, units_min=2)
    rec1, gt1 = _sim(duration_s=10.0, units_min=2, overlap_fraction=1.0)
    assert np.all(rec1.unit_info.unit_rate_hz > 25)
    assert len(gt1.sample_index) > 2 * len(gt0.sample_index)

    def overlap_fraction(gt):
        frac = []
        for e in np.unique(gt.electrode):
            t = np.sort(gt.sample_index[gt.electrode == e])
            frac.append(np.mean(np.diff(t) < 45))
        return np.mean(frac)

    assert overlap_fraction(gt1) > 3 * overlap_fraction(gt0)


def test_all_hard_cases_together_are_chunk_invariant():
    rec, _ = _sim(noise_t_dof=4.0, line_noise_uv=30.0, shape_burst=0.5, shape_drift=0.3, burst_prob=0.3,
                  overlap_fraction=0.5, block_samples=8192, fir_taps=513)
    whole = rec.get_traces(0, rec.n_samples)
    rec2, _ = _sim(noise_t_dof=4.0, line_noise_uv=30.0, shape_burst=0.5, shape_drift=0.3, burst_prob=0.3,
                   overlap_fraction=0.5, block_samples=8192, fir_taps=513)
    parts = [rec2.get_traces(a, min(a + 7001, rec2.n_samples)) for a in range(0, rec2.n_samples, 7001)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_simulate_command_takes_the_hard_case_settings(tmp_path):
    from spikevae.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    out = tmp_path / "sim"
    res = CliRunner().invoke(cli, ["simulate", str(out), "--duration", "1", "--electrodes", "2", "--format", "raw",
                                    "--set", "sim.noise_t_dof=5", "--set", "sim.line_noise_uv=20",
                                    "--set", "sim.shape_burst=0.5", "--set", "sim.overlap_fraction=1"])
    assert res.exit_code == 0, res.output
    assert (out / "ground_truth.npz").exists()
    import json

    sim = json.loads((out / "simulation.json").read_text())
    assert "noise_t_dof" in json.dumps(sim)
