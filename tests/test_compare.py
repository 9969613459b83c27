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


def _gt_and_sorting(seed=0, n_el=6, per_el=3, duration=300_000):
    """A ground truth of ``n_el`` x ``per_el`` units and a sorting of it: jittered, 10 % missed, noise added,
    labels permuted, one unit split in two and one merged with its neighbour."""
    rng = np.random.default_rng(seed)
    t, e, u = [], [], []
    for k in range(n_el * per_el):
        n = int(rng.integers(50, 300))
        t.append(np.sort(rng.choice(duration, n, replace=False)))
        e.append(np.full(n, k // per_el))
        u.append(np.full(n, k))
    t, e, u = np.concatenate(t), np.concatenate(e), np.concatenate(u)
    order = np.argsort(t, kind="stable")
    gt = Sorting(t[order], e[order], u[order], 30000.0)
    keep = rng.random(t.size) > 0.1
    st = t[keep] + rng.integers(-8, 9, keep.sum())
    su = (u[keep] * 7 + 3) % 101  # other ids
    su[(u[keep] == 4) & (rng.random(keep.sum()) < 0.5)] = 500  # unit 4 split
    su[u[keep] == 8] = (7 * 7 + 3) % 101  # unit 8 merged into unit 7's
    noise = rng.integers(0, duration, 400)
    st, se = np.r_[st, noise], np.r_[e[keep], rng.integers(0, n_el, 400)]
    su = np.r_[su, rng.integers(-1, 101, 400)]
    order = np.argsort(st, kind="stable")
    return gt, Sorting(st[order], se[order], su[order], 30000.0)


@pytest.mark.parametrize("use_electrodes", [None, False])
def test_scores_against_a_file_read_in_batches_equal_those_in_memory(tmp_path, monkeypatch, use_electrodes):
    """A ground truth of hours is scored from its file a batch of electrodes at a time, each pass reading
    blocks: the scores are those of the whole thing in memory, with or without an offset."""
    import spikevae.compare as compare
    from spikevae.objects import SortingFile

    gt, s = _gt_and_sorting()
    whole = [compare_sortings(gt, s, use_electrodes=use_electrodes, offset_samples=k) for k in (0, 5)]
    assert 0.2 < whole[0]["mean_accuracy"] < 0.95 and whole[0]["n_gt_units"] == 18
    gt.save_npz(tmp_path / "gt.npz")
    passes = []
    real = compare._unit_times
    monkeypatch.setattr(compare, "_unit_times", lambda *a, **k: passes.append(1) or real(*a, **k))
    monkeypatch.setattr(compare, "SCORE_BATCH", 700)  # batches of a few electrodes
    monkeypatch.setattr(compare, "PASS_BLOCK", 333)  # blocks that cut through units and electrodes
    f = SortingFile.open(tmp_path / "gt.npz")
    assert isinstance(f, SortingFile) and f.n_spikes == gt.sample_index.size
    for k, ref in zip((0, 5), whole):
        passes.clear()
        assert compare_sortings(f, s, use_electrodes=use_electrodes, offset_samples=k) == ref
        # one pass over each side per batch: one batch without electrodes, several with them
        assert len(passes) == 2 if use_electrodes is False else len(passes) >= 6, len(passes)
        assert compare_sortings(gt, s, use_electrodes=use_electrodes, offset_samples=k) == ref
    shuffled = np.random.default_rng(1).permutation(gt.sample_index.size)  # a file need not be in time order
    Sorting(gt.sample_index[shuffled], gt.electrode[shuffled], gt.unit[shuffled], gt.fs).save_npz(tmp_path / "x.npz")
    assert compare_sortings(SortingFile.open(tmp_path / "x.npz"), s, use_electrodes=use_electrodes) == whole[0]
    a = compare.agreement(gt, s)
    assert a["units_a"][0]["electrode"] == 0 and a["n_units_b"] == len(np.unique(s.unit[s.unit >= 0]))


def test_a_ground_truth_file_that_is_not_integer_arrays_is_read_whole(tmp_path):
    from spikevae.objects import SortingFile

    np.savez(tmp_path / "f.npz", sample_index=np.array([10.0, 20.0]), unit=np.array([0, 1]), fs=30000.0)
    np.savez_compressed(tmp_path / "c.npz", sample_index=np.array([10, 20]), unit=np.array([0, 1]),
                        electrode=np.array([2, 3]), fs=30000.0)
    assert isinstance(SortingFile.open(tmp_path / "f.npz"), Sorting)
    c = SortingFile.open(tmp_path / "c.npz")
    assert isinstance(c, SortingFile)
    (t, e, u), = list(c.blocks())
    assert t.tolist() == [10, 20] and e.tolist() == [2, 3] and u.tolist() == [0, 1] and t.dtype == np.int64
    with pytest.raises(SpikevaeError, match="missing array"):
        SortingFile.open(_npz(tmp_path / "m.npz", sample_index=np.array([1]), fs=30000.0))


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path
