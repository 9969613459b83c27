"""Quality metrics: hand-built cases with exact answers, statistical checks, the good label, the tables."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from spikevae.errors import SpikevaeConfigError
from spikevae.objects import Sorting
from spikevae.quality import METRIC_COLUMNS, compute_metrics, failed_rules, match_spikes, write_metrics
from spikevae.quality import amplitude as amp
from spikevae.quality import isolation as iso
from spikevae.quality import spiketrain as st
from spikevae.quality.synthetic import make_units, poisson_train
from spikevae.quality_config import QualityConfig
from spikevae.config import set_value

FS = 30000.0


# --- spike-train metrics -------------------------------------------------------------------

def test_presence_ratio_counts_whole_bins_only():
    n = int(150 * FS)  # two whole 60 s bins; the last 30 s are ignored
    first_bin_only = np.array([10, int(30 * FS)])
    assert st.presence_ratio(first_bin_only, n, FS, 60) == 0.5
    assert st.presence_ratio(np.array([10, int(70 * FS)]), n, FS, 60) == 1.0
    assert st.presence_ratio(np.array([10, int(130 * FS)]), n, FS, 60) == 0.5  # partial bin ignored
    assert math.isnan(st.presence_ratio(first_bin_only, int(50 * FS), FS, 60))  # shorter than a bin


def test_isi_violations_hand_computed():
    # ISIs of 10, 90 and 30 samples; 1.5 ms = 45 samples -> two violations, 4 spikes in 1 s.
    r = st.isi_violations(np.array([0, 10, 100, 130]), FS, 1.0, refractory_ms=1.5)
    assert r["isi_violations_count"] == 2
    assert r["isi_violations_rate"] == pytest.approx(2.0)
    assert r["isi_violations_ratio"] == pytest.approx((2 / (2 * 4 * 0.0015)) / 4.0)
    r = st.isi_violations(np.array([0, 10, 100, 130]), FS, 1.0, refractory_ms=1.5, censored_ms=0.5)
    assert r["isi_violations_ratio"] == pytest.approx((2 / (2 * 4 * 0.001)) / 4.0)


def test_rp_violations_count_every_pair():
    # Three spikes within 1.5 ms make three violating pairs (the ISI count would be two).
    cont, n_v = st.rp_contamination(np.array([0, 10, 30, 3000, 6000]), FS, int(FS), 1.5)
    assert n_v == 3
    cont, n_v = st.rp_contamination(np.arange(0, 30000, 300), FS, int(FS), 1.5)
    assert n_v == 0 and cont == 0.0


@pytest.mark.parametrize("c_true", [0.0, 0.1, 0.3])
def test_rp_contamination_recovers_known_contamination(c_true):
    rng = np.random.default_rng(3)
    n = int(600 * FS)
    clean = poisson_train(15.0, n, FS, 2e-3, rng)
    extra = rng.integers(0, n, int(c_true / (1 - c_true) * clean.size))
    times = np.sort(np.concatenate([clean, extra]))
    cont, _ = st.rp_contamination(times, FS, n, refractory_ms=1.5)
    assert cont == pytest.approx(c_true, abs=0.04)


def test_sliding_rp_separates_clean_from_contaminated():
    rng = np.random.default_rng(4)
    n = int(600 * FS)
    clean = poisson_train(10.0, n, FS, 2e-3, rng)
    assert st.sliding_rp_violation(clean, FS, 600.0) <= 0.02
    dirty = np.sort(np.concatenate([clean, rng.integers(0, n, int(0.4 * clean.size))]))
    v = st.sliding_rp_violation(dirty, FS, 600.0)
    assert math.isnan(v) or v >= 0.1  # NaN: no contamination up to 35 % is excluded


# --- amplitude metrics ---------------------------------------------------------------------

def test_snr_is_template_peak_over_noise():
    rng = np.random.default_rng(0)
    tmpl = np.zeros(48)
    tmpl[15] = -50.0
    w = tmpl + rng.normal(0, 10, (4000, 48))
    assert amp.snr(w.astype(np.float32), 10.0) == pytest.approx(5.0, rel=0.02)


def test_amplitude_cutoff_measures_the_missing_tail():
    rng = np.random.default_rng(1)
    a = rng.normal(100, 15, 20000)
    assert amp.amplitude_cutoff(a) < 0.01
    cut = a[a > 100 - 15]  # 15.9 % of the spikes below threshold
    assert amp.amplitude_cutoff(cut) == pytest.approx(0.159, abs=0.03)
    assert amp.amplitude_cutoff(a[a > 100]) == pytest.approx(0.5, abs=0.02)
    assert math.isnan(amp.amplitude_cutoff(a[:100]))  # fewer than 5 spikes per bin


def test_noise_cutoff_flags_truncated_distributions():
    rng = np.random.default_rng(2)
    a = rng.normal(100, 15, 20000)
    assert abs(amp.noise_cutoff(a)) < 1  # complete: low tail as sparse as the high tail
    values = [amp.noise_cutoff(a[a > c]) for c in (80, 90, 100, 110)]
    assert np.all(np.diff(values) > 0) and values[2] > 5  # cut at the mode: fails IBL's < 5


# --- isolation metrics ---------------------------------------------------------------------

def _two_clusters(sep: float, n=2000, d=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, (n, d))
    b = rng.normal(0, 1, (n, d))
    b[:, 0] += sep
    return a, b


def test_isolation_metrics_separated_versus_identical():
    a, b = _two_clusters(12.0)
    dist, lr = iso.mahalanobis_metrics(a, b)
    assert dist > 50 and lr < 1e-6
    assert iso.d_prime(a, b) == pytest.approx(12.0, rel=0.05)
    assert iso.simplified_silhouette(a, b.mean(axis=0, keepdims=True)) > 0.7
    a, b = _two_clusters(0.0)
    dist, lr = iso.mahalanobis_metrics(a, b)
    # Same distribution: each other spike's chi2 survival is uniform, so L = 0.5 n_other / n_self.
    assert lr == pytest.approx(0.5, abs=0.05)
    assert iso.d_prime(a, b) < 0.2


def test_isolation_distance_undefined_when_fewer_other_spikes():
    a, b = _two_clusters(5.0)
    dist, lr = iso.mahalanobis_metrics(a, b[:100])
    assert math.isnan(dist) and not math.isnan(lr)


def test_nearest_neighbour_rates():
    a, b = _two_clusters(12.0, n=500)
    x = np.vstack([a, b])
    labels = np.r_[np.zeros(500, int), np.ones(500, int)]
    r = iso.nearest_neighbour_rates(x, labels, [0, 1], n_neighbors=5)
    assert r[0] == (1.0, 0.0) and r[1] == (1.0, 0.0)
    a, b = _two_clusters(0.0, n=500)
    r = iso.nearest_neighbour_rates(np.vstack([a, b]), labels, [0], n_neighbors=5)
    assert r[0][0] == pytest.approx(0.5, abs=0.06) and r[0][1] == pytest.approx(0.5, abs=0.06)


def test_electrode_pca_orders_components_by_variance():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (1000, 48)) * np.linspace(5, 0.1, 48)
    p = iso.electrode_pca(x, 5)
    assert p.shape == (1000, 5)
    v = p.var(axis=0)
    assert np.all(np.diff(v) < 0) and v[0] == pytest.approx(25, rel=0.15)


# --- compute_metrics -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def units():
    return make_units(n_electrodes=3, units_per_electrode=2, duration_s=130.0, rate_hz=8.0,
                      amplitudes_uv=(60, 150), unsorted_fraction=0.05, seed=11)


def test_compute_metrics_on_clean_units(units):
    spikes, sorting = units
    rows = compute_metrics(spikes, sorting, QualityConfig(), 130.0)
    assert [r["unit"] for r in rows] == list(range(6))
    assert all(list(r) == list(METRIC_COLUMNS) for r in rows)
    for r in rows:
        assert r["electrode"] == r["unit"] // 2
        assert r["n_spikes"] == np.sum(sorting.unit == r["unit"]) == r["n_spikes_matched"]
        assert r["firing_rate_hz"] == pytest.approx(r["n_spikes"] / 130.0)
        assert r["isi_violations_count"] == 0 and r["rp_contamination"] == 0
        assert r["presence_ratio"] == 1.0
        assert r["nn_hit_rate"] > 0.95 and r["isolation_distance"] > 20
        assert r["good"], failed_rules(r, "spikevae")
    assert [round(r["snr"]) for r in rows[:2]] == [6, 15]  # 60 and 150 µV over σ = 10 µV


def test_metrics_in_threads_equal_one_thread(units):
    """``n_jobs`` threads over electrodes give the one-thread values exactly (NaN where NaN), with a
    bounded isolation space too (its lowest allowed size, below the ~2000 spikes of each electrode here)."""
    spikes, sorting = units
    assert min(np.bincount(spikes.electrode)) > 1000
    for cfg in (QualityConfig(), QualityConfig(isolation_max_spikes=1000, nn_max_spikes=200)):
        one = compute_metrics(spikes, sorting, cfg, 130.0)
        many = compute_metrics(spikes, sorting, cfg, 130.0, n_jobs=3)
        cfg.n_jobs = 2  # quality.n_jobs: the threads when the caller does not say
        by_config = compute_metrics(spikes, sorting, cfg, 130.0)
        assert len(one) == len(many) == len(by_config) == 6
        for a, b in [*zip(one, many), *zip(one, by_config)]:
            assert list(a) == list(b)
            for k in a:
                assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), (k, a[k], b[k])


def test_compute_metrics_flags_contamination_and_uses_matched_spikes(units):
    spikes, sorting = units
    rng = np.random.default_rng(0)
    u0 = np.nonzero(sorting.unit == 0)[0]
    # Doublets 5 samples after unit 0's spikes, present in the sorting only (as overlap resolution adds).
    extra = rng.choice(u0, int(0.3 * u0.size), replace=False)
    s2 = Sorting(np.r_[sorting.sample_index, sorting.sample_index[extra] + 5],
                 np.r_[sorting.electrode, sorting.electrode[extra]], np.r_[sorting.unit, np.zeros(extra.size, int)],
                 sorting.fs)
    rows = {r["unit"]: r for r in compute_metrics(spikes, s2, QualityConfig(), 130.0)}
    r0 = rows[0]
    assert r0["n_spikes"] == u0.size + extra.size and r0["n_spikes_matched"] == u0.size
    assert r0["isi_violations_count"] == extra.size
    assert r0["rp_contamination"] > 0.1 and not r0["good"]
    assert rows[1]["good"]


def test_shared_space_and_unsorted_option(units):
    spikes, sorting = units
    # Features that encode the true unit make every unit perfectly isolated.
    feats = np.eye(7)[sorting.unit + 1] * 50 + np.random.default_rng(1).normal(0, 1, (spikes.n_spikes, 7))
    rows = compute_metrics(spikes, sorting, QualityConfig(), 130.0, features=feats)
    assert all(r["nn_hit_rate"] == 1.0 and r["l_ratio"] < 1e-9 for r in rows)
    with pytest.raises(ValueError, match="features have 3 rows"):
        compute_metrics(spikes, sorting, QualityConfig(), 130.0, features=feats[:3])
    with pytest.raises(ValueError, match="duration_s must be > 0"):
        compute_metrics(spikes, sorting, QualityConfig(), 0.0)
    with pytest.raises(SpikevaeConfigError, match="censored_ms=2.0 must be shorter than quality.refractory_ms=1.5"):
        compute_metrics(spikes, sorting, QualityConfig(censored_ms=2.0), 130.0)
    cfg = QualityConfig()
    set_value(cfg, "include_unsorted", False)
    with_u = compute_metrics(spikes, sorting, QualityConfig(), 130.0)
    without = compute_metrics(spikes, sorting, cfg, 130.0)
    assert all(a["l_ratio"] >= b["l_ratio"] for a, b in zip(with_u, without))
    assert any(a["l_ratio"] > b["l_ratio"] for a, b in zip(with_u, without))


def test_match_spikes_by_time_and_electrode(units):
    spikes, _ = units
    s = Sorting(np.r_[spikes.sample_index[[5, 2]], 7], np.r_[spikes.electrode[[5, 2]], 0], [0, 0, 0], FS)
    wrong_el = Sorting(spikes.sample_index[[5]], (spikes.electrode[[5]] + 1) % 3, [0], FS)
    assert list(match_spikes(spikes, s)) == [5, 2, -1]
    assert list(match_spikes(spikes, wrong_el)) == [-1]


# --- good label ----------------------------------------------------------------------------

def _row(**kw):
    base = {k: float("nan") for k in METRIC_COLUMNS}
    base |= {"n_spikes": 1000, "snr": 6.0, "rp_contamination": 0.0, "presence_ratio": 1.0, "amplitude_cutoff": 0.01,
             "nn_hit_rate": 0.99, "isi_violations_ratio": 0.0, "sliding_rp_violation": 0.05, "noise_cutoff": 1.0,
             "amplitude_uv": -80.0}
    return base | kw


def test_presets_apply_their_published_thresholds():
    assert failed_rules(_row(), "spikevae") == [] == failed_rules(_row(), "allen") == failed_rules(_row(), "ibl")
    assert failed_rules(_row(presence_ratio=0.85), "allen") and not failed_rules(_row(presence_ratio=0.85), "spikevae")
    assert failed_rules(_row(amplitude_uv=-45.0), "ibl") == ["abs_amplitude_uv 45 not >= 50"]
    assert failed_rules(_row(sliding_rp_violation=float("nan")), "ibl") == ["sliding_rp_violation undefined"]
    assert failed_rules(_row(amplitude_cutoff=float("nan")), "allen") == ["amplitude_cutoff undefined"]
    assert failed_rules(_row(amplitude_cutoff=float("nan"), nn_hit_rate=float("nan")), "spikevae") == []
    assert failed_rules(_row(snr=2.5), "spikevae") == ["snr 2.5 not >= 3"]
    assert failed_rules(_row(noise_cutoff=3.0, nn_hit_rate=0.85), "spikevae") == [
        "noise_cutoff 3 not < 2", "nn_hit_rate 0.85 not >= 0.9"]
    with pytest.raises(SpikevaeConfigError, match="not one of"):
        failed_rules(_row(), "kilosort")
    with pytest.raises(SpikevaeConfigError, match="not one of"):
        set_value(QualityConfig(), "preset", "kilosort")


# --- tables --------------------------------------------------------------------------------

def test_write_metrics_tables(units, tmp_path):
    spikes, sorting = units
    rows = compute_metrics(spikes, sorting, QualityConfig(), 50.0)  # shorter than a presence bin
    csv_path, json_path = write_metrics(tmp_path / "out", rows, preset="spikevae")
    table = list(csv.DictReader(open(csv_path)))
    assert len(table) == 6 and list(table[0]) == list(METRIC_COLUMNS)
    assert table[0]["presence_ratio"] == "" and float(table[0]["snr"]) == pytest.approx(rows[0]["snr"])
    doc = json.loads(json_path.read_text())
    assert doc["units"][0]["presence_ratio"] is None and doc["preset"]["name"] == "spikevae"
    assert doc["units"][3]["good"] is True
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "units.csv"]


def test_sorting_without_units(units, tmp_path):
    spikes, sorting = units
    empty = Sorting(sorting.sample_index, sorting.electrode, np.full(sorting.unit.shape, -1), sorting.fs)
    assert compute_metrics(spikes, empty, QualityConfig(), 130.0) == []
    csv_path, json_path = write_metrics(tmp_path, [])
    assert csv_path.read_text().splitlines() == [",".join(METRIC_COLUMNS)]
    assert json.loads(json_path.read_text())["units"] == []


def test_nearest_neighbours_exclude_each_spike_itself_even_among_duplicates():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    ref = NearestNeighbors(n_neighbors=5).fit(x).kneighbors(return_distance=False)
    assert np.array_equal(iso._neighbours(x, 5), ref)
    dup = np.repeat(x[:50], 8, axis=0)  # 8 copies of each point: every neighbour is at distance 0
    idx = iso._neighbours(dup, 5)
    assert idx.shape == (400, 5) and not (idx == np.arange(400)[:, None]).any()
    assert (idx // 8 == np.arange(400)[:, None] // 8).all()  # its own copies, not itself
    assert all(len(set(r)) == 5 for r in idx.tolist())


def test_silhouette_in_blocks_is_the_whole_computation(monkeypatch):
    rng = np.random.default_rng(4)
    own, cents = rng.normal(size=(1000, 4)), rng.normal(3, 1, size=(6, 4))
    whole = iso.simplified_silhouette(own, cents)
    monkeypatch.setattr(iso, "SILHOUETTE_BLOCK", 7)
    assert iso.simplified_silhouette(own, cents) == whole
    dist = np.linalg.norm(own[:, None] - cents[None], axis=2)  # the definition, all at once
    a, b = np.linalg.norm(own - own.mean(0), axis=1), dist[:, np.argmin(dist.mean(0))]
    assert whole == pytest.approx(np.mean((b - a) / np.maximum(a, b)))


@pytest.mark.parametrize("block", [1 << 18, 37])  # one block, and many (the counting sort's blocks meet)
def test_group_indices_are_stable_int32_groups_of_each_value(monkeypatch, block):
    import spikevae.objects
    from spikevae.quality import group_indices

    monkeypatch.setattr(spikevae.objects, "GROUP_BLOCK", block)
    rng = np.random.default_rng(5)
    for values in (rng.integers(-1, 40, 5000), rng.integers(0, 3, 100) * 10**6, rng.integers(-2**40, 2**40, 300)):
        groups = group_indices(values)
        assert list(groups) == sorted(set(values.tolist()))
        for v, idx in groups.items():
            assert idx.dtype == np.int32 and np.array_equal(idx, np.flatnonzero(values == v))
    assert group_indices(np.zeros(0, np.int64)) == {}


@pytest.mark.parametrize("block", [1 << 18, 37])
def test_count_values_is_bincount_a_block_at_a_time(monkeypatch, block):
    import spikevae.objects
    from spikevae.objects import count_values

    monkeypatch.setattr(spikevae.objects, "GROUP_BLOCK", block)
    rng = np.random.default_rng(6)
    values = rng.integers(0, 40, 5000).astype(np.int32)
    values[:3000] %= 7  # the first blocks hold small values only: counts grow as later blocks arrive
    assert np.array_equal(count_values(values), np.bincount(values))
    assert np.array_equal(count_values(values, 96), np.bincount(values, minlength=96))
    assert np.array_equal(count_values(values + 5, 50, lo=5), np.bincount(values, minlength=50))
    assert count_values(np.zeros(0, np.int32), 4).tolist() == [0, 0, 0, 0]


def test_metrics_of_large_electrodes_use_a_bounded_subsample_and_blockwise_means(monkeypatch):
    import spikevae.quality.compute as qc

    spikes, sorting = make_units(n_electrodes=1, units_per_electrode=3, duration_s=120.0, rate_hz=15.0, seed=2)
    whole = {r["unit"]: r for r in compute_metrics(spikes, sorting, QualityConfig(), 120.0)}
    monkeypatch.setattr(qc, "MEAN_BLOCK", 100)  # the SNR's mean summed block by block
    seen = []
    space = qc.electrode_space
    monkeypatch.setattr(qc, "electrode_space", lambda sp, idx, *a: seen.append(idx.size) or space(sp, idx, *a))
    cfg = QualityConfig()
    set_value(cfg, "isolation_max_spikes", 1000)
    part = {r["unit"]: r for r in compute_metrics(spikes, sorting, cfg, 120.0)}
    assert seen == [1000] < [spikes.n_spikes]
    for u, r in whole.items():
        assert part[u]["snr"] == pytest.approx(r["snr"], rel=1e-9)
        assert part[u]["n_spikes"] == r["n_spikes"] and part[u]["amplitude_cutoff"] == r["amplitude_cutoff"]
        # well-separated units stay well separated on the regular subsample
        assert part[u]["isolation_distance"] == pytest.approx(r["isolation_distance"], rel=0.3)
        assert part[u]["nn_hit_rate"] > 0.95 and part[u]["d_prime"] == pytest.approx(r["d_prime"], rel=0.2)


def test_match_spikes_in_detection_order_equals_the_key_search():
    from spikevae.objects import Sorting

    spikes, _ = make_units(n_electrodes=3, units_per_electrode=2, duration_s=20.0, rate_hz=30.0, seed=6)
    rng = np.random.default_rng(6)
    t = np.r_[spikes.sample_index, spikes.sample_index[:50], rng.integers(0, 20 * 30000, 50)]
    e = np.r_[spikes.electrode, (spikes.electrode[:50] + 1) % 3, rng.integers(0, 3, 50)]
    perm = rng.permutation(t.size)
    for order in (np.arange(t.size), perm):  # the run's own head first, and a shuffled foreign sorting
        s = Sorting(t[order], e[order], np.zeros(t.size, np.int64), spikes.fs)
        got = match_spikes(spikes, s)
        key = spikes.sample_index * 3 + spikes.electrode
        want = np.array([int(np.flatnonzero(key == k)[0]) if (key == k).any() else -1
                         for k in s.sample_index * 3 + s.electrode])
        assert got.dtype == np.int32 and np.array_equal(got, want)  # half the memory of int64 per spike
    shuffled = spikes.subset(rng.permutation(spikes.n_spikes))  # spikes not in detection order: the sorted-key path
    s = Sorting(spikes.sample_index, spikes.electrode, np.zeros(spikes.n_spikes, np.int64), spikes.fs)
    m = match_spikes(shuffled, s)
    assert np.array_equal(shuffled.sample_index[m], s.sample_index) and np.array_equal(shuffled.electrode[m], s.electrode)
    twice = spikes.subset(np.r_[np.arange(spikes.n_spikes), 7, 3])  # a spike held twice: the first is its match
    assert match_spikes(twice, s)[[3, 7]].tolist() == [3, 7]


def test_spike_match_of_a_runs_own_sorting_holds_no_index_and_equals_match_spikes():
    from spikevae.objects import Sorting
    from spikevae.quality.compute import SpikeMatch

    spikes, _ = make_units(n_electrodes=3, units_per_electrode=2, duration_s=20.0, rate_hz=30.0, seed=8)
    n, rng = spikes.n_spikes, np.random.default_rng(8)
    extra_t = rng.integers(0, 20 * 30000, 40)
    extra_t = extra_t[~np.isin(extra_t, spikes.sample_index)]
    own = Sorting(np.r_[spikes.sample_index, extra_t], np.r_[spikes.electrode, np.zeros(extra_t.size, int)],
                  rng.integers(-1, 6, n + extra_t.size), spikes.fs)
    foreign = Sorting(own.sample_index[::-1], own.electrode[::-1], own.unit[::-1], spikes.fs)
    also_detected = Sorting(np.r_[own.sample_index, spikes.sample_index[5]], np.r_[own.electrode, spikes.electrode[5]],
                            np.r_[own.unit, 3], spikes.fs)  # an extra that is a detected spike
    sel = np.r_[0:n + extra_t.size:7, n + 1].astype(np.int32)
    for s, holds_index in ((own, False), (foreign, True), (also_detected, True)):
        m = SpikeMatch(spikes, s)
        assert (m.index is not None) == holds_index
        got = m[sel]
        assert got.dtype == np.int32 and np.array_equal(got, match_spikes(spikes, s)[sel])


def test_spike_units_of_a_runs_own_sorting_are_its_labels_without_a_copy():
    from spikevae.quality.compute import spike_units

    spikes, _ = make_units(n_electrodes=3, units_per_electrode=2, duration_s=20.0, rate_hz=30.0, seed=7)
    n = spikes.n_spikes
    rng = np.random.default_rng(7)
    unit = rng.integers(-1, 6, n + 40)
    extra_t = rng.integers(0, 20 * 30000, 40)  # overlap extras after the detected spikes: none is a detected spike
    extra_t = extra_t[~np.isin(extra_t, spikes.sample_index)]
    t = np.r_[spikes.sample_index, extra_t]
    own = Sorting(t, np.r_[spikes.electrode, np.zeros(extra_t.size, int)], unit[:t.size], spikes.fs)
    lab = spike_units(spikes, own)
    assert np.shares_memory(lab, own.unit) and not lab.flags.writeable
    np.testing.assert_array_equal(lab, own.unit[:n])
    lab_m = spike_units(spikes, own, match_spikes(spikes, own))
    assert np.shares_memory(lab_m, own.unit)
    # an extra that is a detected spike, or a sorting in another order: looked up spike by spike
    for s in (Sorting(np.r_[t, spikes.sample_index[5]], np.r_[own.electrode, spikes.electrode[5]],
                      np.r_[own.unit, 99], spikes.fs),
              Sorting(t[::-1], own.electrode[::-1], own.unit[::-1], spikes.fs)):
        got = spike_units(spikes, s)
        assert not np.shares_memory(got, s.unit)
        m = match_spikes(spikes, s)
        want = np.full(n, -1)
        want[m[m >= 0]] = s.unit[m >= 0]
        np.testing.assert_array_equal(got, want)


def test_matching_a_long_sorting_allocates_an_int32_per_spike_and_no_more(monkeypatch):
    """On hours of recording every int64 copy of every spike is tens of MB: matching a sorting to its spikes
    (detection's order with one spike held twice, or any order) grows by its int32 result and an int32
    grouping per spike (the blocks' temporaries are fixed), and a run's own SpikeMatch by nothing."""
    import tracemalloc

    from spikevae.objects import Sorting, Spikes
    from spikevae.quality.compute import SpikeMatch

    def peaks(n):
        rng = np.random.default_rng(0)
        t, e = np.sort(rng.integers(0, 3600 * 30000, n)), rng.integers(0, 96, n).astype(np.int32)
        t[1000], e[1000] = t[999], e[999]  # a spike held twice breaks detection's strict order
        o = np.lexsort((e, t))
        spikes = Spikes(t[o], e[o], np.zeros((n, 1), np.float32), np.zeros(n, np.float32), np.ones(96, np.float32),
                        30000.0, 0, np.arange(96))
        own = Sorting(np.r_[spikes.sample_index, 7], np.r_[spikes.electrode, 3], np.zeros(n + 1, np.int32), 30000.0)
        shuffled = rng.permutation(n)
        foreign = Sorting(spikes.sample_index[shuffled], spikes.electrode[shuffled], np.zeros(n, np.int32), 30000.0)
        out = []
        for f, s in ((match_spikes, own), (match_spikes, foreign), (SpikeMatch, own)):
            tracemalloc.start()
            m = f(spikes, s)
            out.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            if f is match_spikes:
                assert m.dtype == np.int32 and np.array_equal(spikes.sample_index[m[:n]], s.sample_index[:n])
        return np.array(out)

    import spikevae.quality.compute as compute

    monkeypatch.setattr(compute, "BLOCK", 1 << 15)  # blocks well under n: their temporaries do not grow with it
    monkeypatch.setattr(compute, "QUERY_BLOCK", 1 << 15)
    n = 400_000
    per_spike = (peaks(2 * n) - peaks(n)) / n
    # own: the int32 result (4); a foreign sorting: the result and the int32 indices found (8); the order
    # checks' boolean blocks (1 MB) are longer than these n, so they count too (1): no int64 copy of every spike
    assert per_spike[0] < 6 and per_spike[1] < 10 and per_spike[2] < 2, per_spike
