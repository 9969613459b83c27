"""Long recordings clustered in linked time windows (``spikevae.cluster.windows``), on one
electrode built by hand: templates whose amplitude drifts slowly with the spike time, plus
white noise (σ = 1), so every expected label is known."""
import dataclasses

import numpy as np
import pytest

from spikevae.cluster import ClusterConfig
from spikevae.cluster.run import cluster_electrode
from spikevae.cluster.windows import chain_units, link_probability, window_bounds, window_rows
from test_cluster import unit_accuracies as accuracies

L, PEAK, FS = 48, 15, 30000.0


def template():
    t = np.arange(L, dtype=np.float64)
    w = -np.exp(-0.5 * ((t - PEAK) / 2.5) ** 2) + 0.35 * np.exp(-0.5 * ((t - PEAK - 8) / 6.25) ** 2)
    return w / -w[PEAK]


def electrode(seed, units, duration_s=600.0):
    """Features (PCA 3), waveforms, sample indices and true labels of one electrode.

    ``units``: (rate Hz, amplitude σ, drift, first second); the amplitude grows by ``drift``
    x sin from -1 to +1 over the recording (one slow, monotonic sweep)."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    tpl, ts, ws, ls = template(), [], [], []
    for k, (rate, amp, drift, start) in enumerate(units):
        t = np.sort(rng.uniform(start, duration_s, rng.poisson(rate * (duration_s - start))))
        a = amp * (1 + drift * np.sin(np.pi * (t / duration_s - 0.5))) * (1 + 0.05 * rng.normal(size=t.size))
        ts.append(t)
        ws.append(a[:, None] * tpl[None] + rng.normal(size=(t.size, L)))
        ls.append(np.full(t.size, k))
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    wf = np.concatenate(ws)[order]
    return (PCA(3, random_state=0).fit_transform(wf), wf, (t[order] * FS).astype(np.int64),
            np.concatenate(ls)[order])


def sort(x, wf, si, window_s=100.0, seed=(0, 0), **kw):
    cfg = ClusterConfig(n_jobs=1)
    cfg = dataclasses.replace(cfg, windows=dataclasses.replace(cfg.windows, window_s=window_s, **kw))
    return cluster_electrode(x, wf, si, PEAK, FS, cfg, seed)


DRIFTING_PAIR = [(8, 6.0, 0.3, 0.0), (8, 9.0, 0.3, 0.0)]  # 4.2 -> 7.8 and 6.3 -> 11.7 σ


@pytest.mark.parametrize("seed", [0, 1])
def test_drifting_neighbours_are_mixed_up_in_one_piece_and_recovered_in_windows(seed):
    x, wf, si, truth = electrode(seed, DRIFTING_PAIR)
    whole = accuracies(truth, sort(x, wf, si, window_s=0).labels)
    r = sort(x, wf, si)
    windowed = accuracies(truth, r.labels)
    assert whole.min() < 0.6  # the global cloud of each unit is stretched into its neighbour's
    assert windowed.min() > 0.9, windowed
    assert len(np.unique(r.labels[r.labels >= 0])) == 2
    assert r.stats["n_windows"] == 11 and r.stats["window_links"] >= 2 * 10 - 2


def test_a_unit_that_starts_half_way_is_a_unit_of_its_own():
    units = [(8, 6.0, 0.0, 0.0), (8, 12.0, 0.0, 300.0)]  # no drift; the second fires from 300 s on
    x, wf, si, truth = electrode(2, units)
    r = sort(x, wf, si)
    acc = accuracies(truth, r.labels)
    assert acc.min() > 0.9, acc
    late = np.unique(r.labels[truth == 1], return_counts=True)
    unit = late[0][np.argmax(late[1])]
    assert unit >= 0 and np.all(si[r.labels == unit] / FS > 250)  # nothing before it appeared


def test_short_recordings_are_clustered_exactly_as_without_windows():
    x, wf, si, truth = electrode(3, DRIFTING_PAIR, duration_s=150.0)  # 1.5 windows of 100 s
    a, b = sort(x, wf, si), sort(x, wf, si, window_s=0)
    assert "n_windows" not in a.stats
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.extra_index, b.extra_index)


def test_same_input_and_seed_give_the_same_labels_and_another_seed_still_sorts():
    x, wf, si, truth = electrode(4, DRIFTING_PAIR)
    a, b = sort(x, wf, si), sort(x, wf, si)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.extra_unit, b.extra_unit)
    assert accuracies(truth, sort(x, wf, si, seed=(1, 0)).labels).min() > 0.9


def test_window_bounds_cover_the_span_with_the_given_overlap():
    b = window_bounds(0.0, 1000.0, 300.0, 0.5, 2.0)
    assert b[0, 0] == 0 and b[-1, 1] == 1000 and np.allclose(b[:, 1] - b[:, 0], 300)
    assert np.all(b[1:, 0] <= b[:-1, 1] - 150)  # every pair overlaps by half a window or more
    assert window_bounds(0.0, 599.0, 300.0, 0.5, 2.0).shape == (1, 2)  # under two windows: one piece
    assert window_bounds(0.0, 1e4, 0.0, 0.5, 2.0).shape == (1, 2)  # window_s = 0: off
    t = np.linspace(0, 1000, 5001)
    rows, owner = window_rows(t, b)
    assert np.array_equal(np.unique(np.concatenate(rows)), np.arange(t.size))  # every spike clustered
    assert all(np.isin(np.flatnonzero(owner == w), rows[w]).all() for w in range(len(b)))  # owned by one that saw it
    assert np.all(np.diff(owner) >= 0)


def test_links_follow_shared_spikes_and_an_unshared_unit_starts_a_new_one():
    a = np.array([0, 0, 0, 1, 1, 1, -1, 2, 2])
    b = np.array([1, 1, 0, 0, 0, 0, -1, 3, 3])
    prob, ua, ub = link_probability(a, b)
    assert prob.shape == (3, 3) and prob[1, 0] == pytest.approx(3 / 4) and prob[0, 1] == pytest.approx(2 / 3)
    rows = [np.arange(0, 9), np.arange(0, 9)]
    maps, n = chain_units([a, b], rows, 9, 0.3)
    assert maps[1][0] == maps[0][1] and maps[1][1] == maps[0][0] and maps[1][3] == maps[0][2] and n == 3
    maps, n = chain_units([a, np.array([5, 5, 5, 5, 5, 5, 5, 5, 5])], rows, 9, 0.5)
    assert n == 0 and maps[1][5] == 3  # below the threshold: no link, a new unit


def test_local_pair_takes_the_span_where_both_units_fire():
    from spikevae.cluster.refine import local_pair

    t = np.r_[np.linspace(0, 1000, 500), np.linspace(900, 2000, 500)]  # a until 1000 s, b from 900 s
    ia, ib = np.arange(500), np.arange(500, 1000)
    la, lb = local_pair(t, ia, ib, 200.0)
    assert la.size >= 20 and lb.size >= 20 and t[la].min() >= 600 and t[lb].max() <= 1400  # the junction
    assert all(np.array_equal(u, v) for u, v in zip(local_pair(t, ia, ib, 1000.0), (ia, ib)))  # < 3 windows
    far = np.r_[np.linspace(0, 500, 500), np.linspace(1500, 2000, 500)]  # never near each other
    assert all(np.array_equal(u, v) for u, v in zip(local_pair(far, ia, ib, 200.0), (ia, ib)))


def test_sorting_of_long_electrodes_does_not_depend_on_n_jobs():
    from spikevae.cluster import cluster_spikes
    from spikevae.objects import Embedding, Spikes

    parts = [electrode(s, DRIFTING_PAIR, duration_s=400.0) for s in (5, 6)]
    si = np.concatenate([p[2] for p in parts])
    order = np.argsort(si, kind="stable")
    el = np.concatenate([np.full(p[2].size, e) for e, p in enumerate(parts)])[order]
    wf = np.concatenate([p[1] for p in parts])[order]
    spikes = Spikes(si[order], el, wf, wf[:, PEAK], np.ones(2), FS, PEAK, ["e0", "e1"])
    emb = Embedding(np.concatenate([p[0] for p in parts])[order], "pca")
    cfg = ClusterConfig()
    cfg = dataclasses.replace(cfg, windows=dataclasses.replace(cfg.windows, window_s=100.0))
    one = cluster_spikes(spikes, emb, dataclasses.replace(cfg, n_jobs=1))
    two = cluster_spikes(spikes, emb, dataclasses.replace(cfg, n_jobs=2))
    assert one.params["electrodes"]["e0"]["n_windows"] == 7
    np.testing.assert_array_equal(one.unit, two.unit)
    np.testing.assert_array_equal(one.sample_index, two.sample_index)
