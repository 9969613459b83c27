"""Detection ceiling, supervised probe and the diagnose command, on hand-built ground truth."""
import json

import numpy as np
import pytest

from spikevae.diagnose import (by_snr, diagnose, format_diagnosis, ground_truth_labels, load_ground_truth,
                               supervised_probe)
from spikevae.objects import Embedding, Sorting, Spikes

FS = 30000.0
L, PEAK = 48, 15


def _shape(width):
    t = np.arange(L)
    return -np.exp(-0.5 * ((t - PEAK) / width) ** 2)


def small_truth(seed=0, n=300, jitter=0.05):
    """Two electrodes: e0 holds units 0 (SNR 10) and 1 (SNR 4, other shape), e1 holds unit 2 (SNR 6).

    Each ground-truth spike is detected 0-2 samples late; 40 extra detections on e0 are pure noise.
    Returns spikes, PCA-like features (the waveforms themselves), ground truth and unit SNRs.
    """
    rng = np.random.default_rng(seed)
    units = [(0, 10.0, _shape(2.5)), (0, 4.0, _shape(5.0)), (1, 6.0, _shape(2.5))]
    t_gt, u_gt, e_gt, wf, t_det, e_det = [], [], [], [], [], []
    for u, (e, snr, shape) in enumerate(units):
        t = np.sort(rng.choice(np.arange(1000 + 67 * u, 30 * 30000, 200), n, replace=False))  # never within 1 ms
        t_gt.append(t), u_gt.append(np.full(n, u)), e_gt.append(np.full(n, e))
        t_det.append(t + rng.integers(0, 3, n)), e_det.append(np.full(n, e))
        wf.append(snr * (1 + jitter * rng.normal(size=(n, 1))) * shape + rng.normal(size=(n, L)))
    t_det.append(rng.integers(0, 30 * 30000, 40)), e_det.append(np.zeros(40, int))
    wf.append(rng.normal(size=(40, L)))
    order = np.argsort(np.concatenate(t_det), kind="stable")
    w = np.concatenate(wf)[order]
    spikes = Spikes(np.concatenate(t_det)[order], np.concatenate(e_det)[order], w, w[:, PEAK], np.ones(2), FS, PEAK,
                    ["a", "b"])
    gt = Sorting(np.concatenate(t_gt), np.concatenate(e_gt), np.concatenate(u_gt), FS)
    return spikes, Embedding(w, "raw"), gt, {0: 10.0, 1: 4.0, 2: 6.0}


def test_ground_truth_labels_match_within_tolerance_on_the_units_electrode():
    gt = Sorting([100, 1000, 5000, 5000], [0, 0, 0, 1], [0, 0, 0, 1], FS)
    # detections: 12 samples late (= 0.4 ms, inside), 13 late (outside), right time on the wrong electrode,
    # and the electrode-1 spike
    spikes = Spikes([112, 1013, 5000, 5001], [0, 0, 1, 1], np.zeros((4, L)), np.zeros(4), np.ones(2), FS, PEAK,
                    ["a", "b"])
    np.testing.assert_array_equal(ground_truth_labels(spikes, gt, tol_ms=0.4), [0, -1, 1, -1])


def test_ceiling_probe_and_sorting_scores():
    spikes, emb, gt, snr = small_truth()
    labels = ground_truth_labels(spikes, gt)
    perfect = Sorting(spikes.sample_index, spikes.electrode, labels, FS)
    merged = Sorting(spikes.sample_index, spikes.electrode, np.where(labels == 1, 0, labels), FS)
    d = diagnose(spikes, emb, perfect, gt, snr)
    assert d["n_matched"] == 900 and d["n_detected"] == 940
    assert d["ceiling"]["mean_accuracy"] == pytest.approx(1.0)
    assert d["probe"]["mean_accuracy"] > 0.95
    assert d["sorting"]["mean_accuracy"] == pytest.approx(1.0)
    dm = diagnose(spikes, emb, merged, gt, snr)
    assert dm["sorting"]["mean_accuracy"] < 0.75  # one unit lost, the other diluted
    assert dm["sorting"]["by_snr"]["<5"]["mean_accuracy"] == 0.0
    assert dm["fraction_of_probe"]["all"] < 0.8
    assert {k: v["n_units"] for k, v in d["sorting"]["by_snr"].items()} == {"<5": 1, "5-8": 1, ">=8": 1}


def test_probe_is_cross_validated_and_cannot_separate_identical_units():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = np.r_[np.zeros(200, int), np.ones(200, int)]  # same distribution: labels carry no information
    pred = supervised_probe(x, np.zeros(400, int), y)
    assert 0.35 < np.mean(pred == y) < 0.65  # a resubstitution or leaking probe would score higher
    x[y == 1] += 6.0
    assert np.mean(supervised_probe(x, np.zeros(400, int), y) == y) > 0.99


def test_by_snr_and_format():
    spikes, emb, gt, snr = small_truth(seed=1)
    d = diagnose(spikes, emb, Sorting(spikes.sample_index, spikes.electrode, np.full(spikes.n_spikes, -1), FS), gt, snr)
    assert d["sorting"]["mean_accuracy"] == 0.0
    text = format_diagnosis(d)
    for row in ("detection ceiling", "supervised probe", "sorting", "SNR <5", "SNR >=8"):
        assert row in text
    assert by_snr({"units": []}, None) == {}


def test_diagnose_command_on_a_run_store(tmp_path):
    from click.testing import CliRunner

    from spikevae.cli import _add_plugin_commands, cli
    from spikevae.store import RunStore

    spikes, emb, gt, snr = small_truth(seed=2)
    emb = Embedding(emb.features[:, 5:25], "pca")
    labels = ground_truth_labels(spikes, gt)
    store = RunStore(tmp_path)
    store.save_spikes(spikes, {}, "h")
    store.save_embedding(emb, {}, "h")
    store.save_sorting(Sorting(spikes.sample_index, spikes.electrode, labels, FS), "pca", {}, "h")
    gt_path = tmp_path / "gt.npz"
    np.savez(gt_path, sample_index=gt.sample_index, electrode=gt.electrode, unit=gt.unit, fs=FS,
             unit_ids=np.array([0, 1, 2]), unit_snr=np.array([snr[0], snr[1], snr[2]]))
    _add_plugin_commands()
    out = tmp_path / "d.json"
    res = CliRunner().invoke(cli, ["diagnose", str(tmp_path), "--gt", str(gt_path), "--method", "pca",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "supervised probe" in res.output
    d = json.loads(out.read_text())
    assert d["sorting"]["mean_accuracy"] == pytest.approx(1.0)
    g, s = load_ground_truth(gt_path)
    assert s == {0: 10.0, 1: 4.0, 2: 6.0} and len(g.unit) == 900


def test_diagnose_command_without_a_run_is_a_user_error(tmp_path):
    from spikevae.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["diagnose", str(tmp_path), "--gt", str(tmp_path / "gt.npz")])
    assert exc.value.code == 1


def test_windowed_probe_follows_units_that_swap_places_over_time():
    # two units whose feature means cross over time: no fixed line separates them, one per window does
    rng = np.random.default_rng(4)
    n = 800
    t = np.sort(rng.uniform(0, 2, n))
    y = rng.integers(0, 2, n)
    x = rng.normal(scale=0.3, size=(n, 2))
    x[:, 0] += np.where(y == 1, 1.0, -1.0) * np.where(t < 1, 1.0, -1.0) * 2.0
    piece = np.mean(supervised_probe(x, np.zeros(n, int), y) == y)
    windowed = np.mean(supervised_probe(x, np.zeros(n, int), y, window=(t >= 1).astype(int)) == y)
    assert piece < 0.7
    assert windowed > 0.99
