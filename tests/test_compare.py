"""Ground-truth scoring: SpikeForest accuracy, Hungarian matching, offsets."""
import numpy as np
import pytest

from spikevae.compare import compare_sortings, estimate_offset, match_times
from spikevae.errors import SpikevaeError
from spikevae.objects import Sorting

FS = 30000.0


def test_match_times_is_one_to_one_within_tolerance():
    a = np.array([100, 200, 300, 400])
    b = np.array([101, 199, 205, 700])
    ia, ib = match_times(a, b, tol=3)
    pairs = sorted(zip(a[ia].tolist(), b[ib].tolist()))
    assert pairs == [(100, 101), (200, 199)]


def test_accuracy_counts_tp_fn_fp():
    gt = Sorting(np.arange(10) * 1000, np.zeros(10), np.zeros(10), FS)
    # 8 of 10 found (within 0.4 ms = 12 samples), 2 false positives
    t = np.r_[np.arange(8) * 1000 + 5, 50000, 60000]
    s = Sorting(t, np.zeros(10), np.full(10, 7), FS)
    r = compare_sortings(gt, s)
    u = r["units"][0]
    assert (u["tp"], u["fn"], u["fp"]) == (8, 2, 2)
    assert u["accuracy"] == pytest.approx(8 / 12)
    assert u["precision"] == pytest.approx(0.8) and u["recall"] == pytest.approx(0.8)
    assert r["n_well_detected"] == 0 and r["n_sorted_units"] == 1


def test_hungarian_assigns_each_sorted_unit_once():
    t = np.arange(20) * 1000
    gt = Sorting(np.r_[t, t + 300], np.zeros(40), np.r_[np.zeros(20), np.ones(20)], FS)
    # sorted unit 5 = all of gt 0 plus half of gt 1; unit 6 = the other half of gt 1
    s = Sorting(np.r_[t, t[:10] + 300, t[10:] + 300], np.zeros(40),
                np.r_[np.full(20, 5), np.full(10, 5), np.full(10, 6)], FS)
    r = compare_sortings(gt, s)
    m = {u["gt_unit"]: u["sorted_unit"] for u in r["units"]}
    assert m == {0: 5, 1: 6}
    assert r["units"][0]["accuracy"] == pytest.approx(20 / 30)
    assert r["units"][1]["accuracy"] == pytest.approx(0.5)


def test_units_on_other_electrodes_never_match():
    gt = Sorting(np.arange(10) * 1000, np.full(10, 3), np.zeros(10), FS)
    s = Sorting(np.arange(10) * 1000, np.full(10, 4), np.zeros(10), FS)
    assert compare_sortings(gt, s)["mean_accuracy"] == 0.0


def test_offset_estimate_and_use():
    gt = Sorting(np.arange(50) * 997, np.zeros(50), np.zeros(50), FS)
    s = Sorting(np.arange(50) * 997 + 20, np.zeros(50), np.zeros(50), FS)
    assert compare_sortings(gt, s)["mean_accuracy"] == 0.0
    off = estimate_offset(gt, s)
    assert off == 20
    assert compare_sortings(gt, s, offset_samples=off)["mean_accuracy"] == 1.0


def test_rate_mismatch_is_an_error():
    with pytest.raises(SpikevaeError, match="10000 Hz"):
        compare_sortings(Sorting([1], [0], [0], 10000), Sorting([1], [0], [0], FS))


def test_npz_round_trip_and_missing_keys(tmp_path):
    s = Sorting(np.array([5, 9]), np.array([1, 2]), np.array([0, -1]), FS)
    s.save_npz(tmp_path / "s.npz")
    z = np.load(tmp_path / "s.npz")
    assert z["sample_index"].dtype == np.int64 and float(z["fs"]) == FS
    back = Sorting.load_npz(tmp_path / "s.npz")
    assert np.array_equal(back.unit, s.unit) and np.array_equal(back.electrode, s.electrode)
    np.savez(tmp_path / "bad.npz", times=np.arange(3))
    with pytest.raises(SpikevaeError, match="missing array"):
        Sorting.load_npz(tmp_path / "bad.npz")
    with pytest.raises(SpikevaeError, match="file not found"):
        Sorting.load_npz(tmp_path / "nope.npz")


def test_npz_labels_are_read_a_block_at_a_time_into_int32_where_they_fit(tmp_path, monkeypatch):
    import spikevae.objects as objects

    n = 2500
    t, e, u = np.arange(n) * 7, np.arange(n) % 96, np.arange(n) % 13 - 1  # int64, as numpy writes them
    np.savez(tmp_path / "gt.npz", sample_index=t, electrode=e, unit=u, fs=FS)
    real = objects._npz_ints
    monkeypatch.setattr(objects, "_npz_ints", lambda z, name, path: real(z, name, path, block=1000))  # 3 blocks
    np.savez_compressed(tmp_path / "gtz.npz", sample_index=t, electrode=e, unit=u, fs=FS)
    for name in ("gt.npz", "gtz.npz"):
        s = Sorting.load_npz(tmp_path / name)
        assert s.electrode.dtype == s.unit.dtype == np.int32
        assert np.array_equal(s.electrode, e) and np.array_equal(s.unit, u) and np.array_equal(s.sample_index, t)
    big = u.copy()
    big[-1] = 2**40  # an id past int32 in the last block: the whole array is int64, no value lost
    np.savez(tmp_path / "big.npz", sample_index=t, unit=big, fs=FS)
    s = Sorting.load_npz(tmp_path / "big.npz")
    assert s.unit.dtype == np.int64 and np.array_equal(s.unit, big) and not s.electrode.any()
    np.savez(tmp_path / "float.npz", sample_index=t[:3], unit=np.array([0.0, 1.0, 1.5]), fs=FS)
    with pytest.raises(ValueError, match="integers"):
        Sorting.load_npz(tmp_path / "float.npz")
