"""``spikevae compare`` on sortings of any format, electrode inference, and sorter-against-sorter agreement."""
import json
from pathlib import Path

import numpy as np
import pytest

from spikevae.compare import agreement, compare_sortings
from spikevae.errors import SpikevaeError
from spikevae.io.sortings import infer_from_recording, infer_from_run, read_sorting
from spikevae.objects import Sorting
from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "sample.ns5"
SAMPLE_GT = ROOT / "sample_data" / "sample_gt.npz"
FS = 30000.0
pytestmark = pytest.mark.filterwarnings("ignore:The extractor is not serializable")




@pytest.fixture(scope="module")
def made():
    """A sorting of the sample data from its ground truth: jittered, 15 % of spikes lost, 200 false
    positives, units 3 and 4 merged, and unit ids shifted by 100 (deterministic)."""
    gt = Sorting.load_npz(SAMPLE_GT)
    rng = np.random.default_rng(0)
    keep = rng.random(gt.unit.size) > 0.15
    t = gt.sample_index[keep] + rng.integers(-3, 4, keep.sum())
    u = np.where(gt.unit[keep] == 4, 3, gt.unit[keep]) + 100
    e = gt.electrode[keep]
    fp = rng.integers(100, int(19 * FS), 200)
    fu = rng.choice(np.unique(u), 200)
    fe = np.array([e[u == k][0] for k in fu])
    order = np.argsort(np.r_[t, fp], kind="stable")
    s = Sorting(np.r_[t, fp][order], np.r_[e, fe][order], np.r_[u, fu][order], FS)
    return gt, s


def _score(capsys, tmp_path, sorting_path, *extra):
    js = tmp_path / f"score_{Path(sorting_path).name}.json"
    code, _, err = run_cli(["-q", "compare", str(sorting_path), "--gt", str(SAMPLE_GT), "--json", str(js), *extra],
                        capsys)
    assert code == 0, err
    return json.loads(js.read_text())


def _same_scores(a: dict, b: dict) -> None:
    assert a["mean_accuracy"] == pytest.approx(b["mean_accuracy"]) and a["n_sorted_units"] == b["n_sorted_units"]
    assert [(u["gt_unit"], u["sorted_unit"], u["tp"], u["fp"]) for u in a["units"]] == \
           [(u["gt_unit"], u["sorted_unit"], u["tp"], u["fp"]) for u in b["units"]]


@pytest.fixture(scope="module")
def native_scores(made):
    gt, s = made
    scores = compare_sortings(gt, s)
    assert 0.3 < scores["mean_accuracy"] < 0.95  # a real, imperfect sorting
    return scores


def _write_phy(folder: Path, s: Sorting, n_ch: int = 16) -> None:
    """A minimal Kilosort folder: one template per unit with its peak on the unit's electrode, a permuted
    channel map, and one extra cluster of noise spikes labelled noise in cluster_group.tsv."""
    folder.mkdir()
    cmap = np.roll(np.arange(n_ch), 5)  # template row k is recording channel cmap[k]
    ids = s.unit_ids
    elec = s.unit_electrode()
    templates = np.zeros((ids.size + 1, 61, n_ch), np.float32)
    for i, u in enumerate(ids):
        templates[i, 30, int(np.flatnonzero(cmap == elec[int(u)])[0])] = -50.0
        templates[i, 30, :] += -np.linspace(0, 5, n_ch)  # small spread elsewhere
    noise_t = np.arange(50) * 1000 + 17
    times = np.r_[s.sample_index, noise_t]
    tmpl = np.r_[np.searchsorted(ids, s.unit), np.full(50, ids.size)]
    clusters = np.r_[s.unit, np.full(50, 999)]
    order = np.argsort(times, kind="stable")
    np.save(folder / "spike_times.npy", times[order].astype(np.uint64)[:, None])
    np.save(folder / "spike_templates.npy", tmpl[order].astype(np.uint32))
    np.save(folder / "spike_clusters.npy", clusters[order].astype(np.int32))
    np.save(folder / "templates.npy", templates)
    np.save(folder / "channel_map.npy", cmap.astype(np.int32)[:, None])
    (folder / "params.py").write_text("dat_path = 'x.dat'\nn_channels_dat = 16\ndtype = 'int16'\n"
                                      "offset = 0\nsample_rate = 30000.\nhp_filtered = False\n")
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n999\tnoise\n" +
                                              "".join(f"{u}\tgood\n" for u in ids))


def test_every_format_scores_like_the_native_npz(made, native_scores, tmp_path, capsys):
    si = pytest.importorskip("spikeinterface.core")

    _, s = made
    s.save_npz(tmp_path / "sorting.npz")
    _same_scores(_score(capsys, tmp_path, tmp_path / "sorting.npz"), native_scores)
    # other key names, times in samples, rate under another name, electrodes included
    np.savez(tmp_path / "other.npz", spike_times=s.sample_index, spike_clusters=s.unit.astype(np.int32),
             sampling_frequency=FS, electrodes=s.electrode)
    _same_scores(_score(capsys, tmp_path, tmp_path / "other.npz"), native_scores)
    # times in seconds: fractional, so the unit must be said
    np.savez(tmp_path / "secs.npz", times=s.sample_index / FS, labels=s.unit, electrode=s.electrode)
    _same_scores(_score(capsys, tmp_path, tmp_path / "secs.npz", "--time-unit", "s"), native_scores)
    # SpikeInterface: a saved NumpySorting folder with an electrode property
    ns = si.NumpySorting.from_samples_and_labels([s.sample_index], [s.unit], FS)
    ns.set_property("electrode", np.array([s.unit_electrode()[int(u)] for u in ns.unit_ids]))
    ns.save(folder=tmp_path / "si_folder")
    _same_scores(_score(capsys, tmp_path, tmp_path / "si_folder"), native_scores)
    # a phy/Kilosort folder: electrodes from templates through channel_map; noise cluster left out
    _write_phy(tmp_path / "phy", s)
    _same_scores(_score(capsys, tmp_path, tmp_path / "phy"), native_scores)


def test_si_npz_needs_electrodes_then_infers_them_from_the_recording(made, native_scores, tmp_path, capsys):
    si = pytest.importorskip("spikeinterface.core")

    gt, s = made
    ns = si.NumpySorting.from_samples_and_labels([s.sample_index], [s.unit], FS)
    si.NpzSortingExtractor.write_sorting(ns, tmp_path / "si.npz")
    code, _, err = run_cli(["compare", str(tmp_path / "si.npz"), "--gt", str(SAMPLE_GT)], capsys)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "has no electrode per unit; give --recording REC or --run OUT" in err and "--ignore-electrodes" in err
    scores = _score(capsys, tmp_path, tmp_path / "si.npz", "--recording", str(SAMPLE))
    _same_scores(scores, native_scores)
    # times only: units on other electrodes may match, so never below the electrode-aware score
    loose = _score(capsys, tmp_path, tmp_path / "si.npz", "--ignore-electrodes")
    assert loose["mean_accuracy"] == pytest.approx(compare_sortings(gt, s, use_electrodes=False)["mean_accuracy"])


def test_electrodes_inferred_from_the_recording_are_the_true_ones(tmp_path):
    gt = Sorting.load_npz(SAMPLE_GT)
    bare = Sorting(gt.sample_index, np.zeros_like(gt.electrode), gt.unit, gt.fs, {"electrode_source": None})
    got = infer_from_recording(bare, SAMPLE)
    assert got.params["electrode_source"] == "recording"
    assert got.unit_electrode() == gt.unit_electrode()
    assert np.unique(list(gt.unit_electrode().values())).size > 10  # a real test: many electrodes


def test_electrodes_inferred_from_a_run_folder(made, tmp_path):
    gt, s = made
    run = tmp_path / "run"
    run.mkdir()
    # the run's detections: every true spike, 2 samples late, labels irrelevant
    Sorting(gt.sample_index + 2, gt.electrode, np.full(gt.unit.size, -1), FS).save_npz(run / "sorting.npz")
    bare = Sorting(s.sample_index, np.zeros_like(s.electrode), s.unit, FS, {"electrode_source": None})
    got = infer_from_run(bare, run)
    assert got.unit_electrode() == s.unit_electrode() and got.params["electrode_source"] == "run"
    # a unit that no detection supports is left out
    lone = Sorting(np.r_[s.sample_index, [5, 6]], np.zeros(s.unit.size + 2), np.r_[s.unit, [77, 77]], FS,
                   {"electrode_source": None})
    assert 77 not in infer_from_run(lone, run).unit_ids


def test_si_main_channel_id_maps_through_channel_ids(made, tmp_path):
    si = pytest.importorskip("spikeinterface.core")

    _, s = made
    ids = [str(c) for c in np.load(SAMPLE_GT)["channel_ids"]]
    ns = si.NumpySorting.from_samples_and_labels([s.sample_index], [s.unit], FS)
    ns.set_property("main_channel_id", np.array([ids[s.unit_electrode()[int(u)]] for u in ns.unit_ids]))
    ns.save(folder=tmp_path / "si")
    got = read_sorting(tmp_path / "si", channel_ids=ids)
    assert got.unit_electrode() == s.unit_electrode()
    with pytest.raises(SpikevaeError, match="main_channel_id.*--recording REC"):
        read_sorting(tmp_path / "si")


def test_npy_layouts(made, tmp_path, capsys):
    gt, s = made
    np.save(tmp_path / "bad.npy", np.zeros((10, 3)))
    code, _, err = run_cli(["compare", str(tmp_path / "bad.npy"), "--gt", str(SAMPLE_GT)], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")
    assert "shape (10, 3)" in err and "(n, 2)" in err
    np.save(tmp_path / "good.npy", np.c_[s.sample_index, s.unit])
    got = read_sorting(tmp_path / "good.npy", fs=FS)
    assert np.array_equal(got.sample_index, s.sample_index) and got.params["electrode_source"] is None
    scores = _score(capsys, tmp_path, tmp_path / "good.npy", "--ignore-electrodes")
    assert scores["mean_accuracy"] == pytest.approx(compare_sortings(gt, s, use_electrodes=False)["mean_accuracy"])


def test_reader_errors_name_the_fix(tmp_path):
    np.savez(tmp_path / "frac.npz", spike_times=np.array([0.5, 1.25]), spike_clusters=np.array([1, 2]), fs=FS)
    with pytest.raises(SpikevaeError, match="fractional.*--time-unit s"):
        read_sorting(tmp_path / "frac.npz")
    np.savez(tmp_path / "nofs.npz", spike_times=np.array([5, 9]), labels=np.array([1, 2]))
    with pytest.raises(SpikevaeError, match="nofs.npz: no sampling rate.*--fs"):
        read_sorting(tmp_path / "nofs.npz")
    assert read_sorting(tmp_path / "nofs.npz", fs=FS).fs == FS
    np.savez(tmp_path / "nolabels.npz", spike_times=np.array([5, 9]))
    with pytest.raises(SpikevaeError, match="no unit labels found.*spike_clusters"):
        read_sorting(tmp_path / "nolabels.npz")
    (tmp_path / "other").mkdir()
    with pytest.raises(SpikevaeError, match="other: a folder that is not"):
        read_sorting(tmp_path / "other")


def test_agreement_with_itself_is_one(made, tmp_path, capsys):
    _, s = made
    s.save_npz(tmp_path / "a.npz")
    code, out, err = run_cli(["-q", "compare", str(tmp_path / "a.npz"), str(tmp_path / "a.npz"),
                           "--json", str(tmp_path / "ag.json")], capsys)
    assert code == 0, err
    d = json.loads((tmp_path / "ag.json").read_text())
    assert all(u["agreement"] == 1.0 and u["match"] == u["unit"] for u in d["units_a"] + d["units_b"])
    assert d["n_agree"] == d["n_units_a"] == s.unit_ids.size and d["n_common_spikes"] == s.unit.size
    assert "spikes in common" in out


def test_agreement_of_two_sortings_on_a_hand_built_case():
    t = np.arange(100) * 1000
    # A: unit 1 = 100 spikes on electrode 0, unit 2 = 50 spikes on electrode 1
    a = Sorting(np.r_[t, t[:50] + 400], np.r_[np.zeros(100), np.ones(50)], np.r_[np.ones(100), np.full(50, 2)], FS)
    # B: unit 7 = 80 of unit 1's spikes + 20 others (electrode 0); unit 8 = unit 2's spikes on electrode 5
    b = Sorting(np.r_[t[:80] + 2, t[:20] + 700, t[:50] + 400], np.r_[np.zeros(100), np.full(50, 5)],
                np.r_[np.full(100, 7), np.full(50, 8)], FS)
    d = agreement(a, b, use_electrodes=True)
    ua = {u["unit"]: u for u in d["units_a"]}
    assert ua[1]["match"] == 7 and ua[1]["n_common"] == 80 and ua[1]["agreement"] == pytest.approx(80 / 120)
    assert ua[2]["match"] == -1 and ua[2]["agreement"] == 0.0  # other electrode: never matched
    assert d["n_matched"] == 1 and d["n_agree"] == 0 and d["n_common_spikes"] == 80
    d = agreement(a, b, use_electrodes=False)
    ua = {u["unit"]: u for u in d["units_a"]}
    assert ua[2]["match"] == 8 and ua[2]["agreement"] == 1.0
    assert d["n_matched"] == 2 and d["n_agree"] == 1 and d["n_common_spikes"] == 130
    assert d["mean_agreement_a"] == pytest.approx((80 / 120 + 1.0) / 2)


def test_compare_needs_gt_or_a_second_sorting(tmp_path, capsys):
    code, _, err = run_cli(["compare", str(SAMPLE_GT)], capsys)
    assert code == 1 and "either --gt GT" in err and "neither" in err
    code, _, err = run_cli(["compare", str(SAMPLE_GT), str(SAMPLE_GT), "--gt", str(SAMPLE_GT)], capsys)
    assert code == 1 and "not both" in err
    # one side without electrodes, the other with: refused between sortings too
    np.save(tmp_path / "x.npy", np.c_[np.arange(5) * 100, np.zeros(5)])
    code, _, err = run_cli(["compare", str(SAMPLE_GT), str(tmp_path / "x.npy")], capsys)
    assert code == 1 and "x.npy has no electrode per unit" in err


def test_ground_truth_in_another_layout_scores_the_same(made, native_scores, tmp_path, capsys):
    gt, s = made
    s.save_npz(tmp_path / "s.npz")
    np.savez(tmp_path / "gt_other.npz", spike_index=gt.sample_index, labels=gt.unit, electrode=gt.electrode,
             sample_rate=FS)
    js = tmp_path / "g.json"
    code, _, err = run_cli(["-q", "compare", str(tmp_path / "s.npz"), "--gt", str(tmp_path / "gt_other.npz"),
                         "--json", str(js)], capsys)
    assert code == 0, err
    _same_scores(json.loads(js.read_text()), native_scores)


def test_kilosort_folder_without_spike_templates(made, tmp_path):
    _, s = made
    _write_phy(tmp_path / "phy", s)
    (tmp_path / "phy" / "spike_templates.npy").unlink()
    # cluster ids (100 ...) are not template ids: no electrode can be read
    got = read_sorting(tmp_path / "phy")
    assert got.params["electrode_source"] is None and 999 not in got.unit_ids
    # before curation Kilosort's cluster id is its template id: electrodes come from the templates
    ids = s.unit_ids
    clusters = np.load(tmp_path / "phy" / "spike_clusters.npy")
    as_template = np.where(clusters == 999, ids.size, np.searchsorted(ids, clusters))
    np.save(tmp_path / "phy" / "spike_clusters.npy", as_template.astype(np.int32))
    (tmp_path / "phy" / "cluster_group.tsv").write_text(f"cluster_id\tgroup\n{ids.size}\tnoise\n")
    got = read_sorting(tmp_path / "phy")
    want = {i: s.unit_electrode()[int(u)] for i, u in enumerate(ids)}
    assert got.params["electrode_source"] == "template" and got.unit_electrode() == want
