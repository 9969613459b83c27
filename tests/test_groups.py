"""Channel groups (tetrodes): one event per group, concatenated waveforms, one unit per neuron."""
from __future__ import annotations

import numpy as np
import pytest

from spikevae.compare import compare_sortings, estimate_offset, load_ground_truth
from spikevae.errors import SpikevaeConfigError, SpikevaeError
from spikevae.groups import cut_group_waveforms, merge_events, resolve_groups
from spikevae.objects import Sorting, Spikes
from spikevae.params import load_config
from spikevae.pipeline import run_pipeline
from spikevae.recording import ArrayRecording
from spikevae.store import RunStore

FS = 30000.0


def _rec(n_ch=4, ids=None):
    return ArrayRecording(np.zeros((3000, n_ch), np.float32), FS, channel_ids=ids)


def test_resolve_groups_forms():
    rec = _rec(6, [str(i + 1) for i in range(6)])
    assert resolve_groups([], rec) is None
    assert resolve_groups(["all"], rec) == [[0, 1, 2, 3, 4, 5]]
    assert resolve_groups([["1", "2", "3", "4"]], rec) == [[0, 1, 2, 3], [4], [5]]
    assert resolve_groups(["1+2", "6+5"], rec) == [[0, 1], [5, 4], [2], [3]]  # --set input.groups=1+2,6+5


@pytest.mark.parametrize("spec, match", [
    ([["1", "9"]], r"input.groups: no channel 9 in .*channel ids are 1, 2, 3, 4"),
    ([["1", "2"], ["2", "3"]], r"input.groups: channel 2 is in more than one group"),
    (["probe"], r"input.groups=probe: .* has no channel groups in its electrode map"),
])
def test_resolve_groups_errors(spec, match):
    with pytest.raises(SpikevaeConfigError, match=match):
        resolve_groups(spec, _rec(4, ["1", "2", "3", "4"]))


def test_probe_groups_from_channel_groups():
    rec = _rec(4)
    rec.channel_groups = np.array([1, 0, 1, 0])  # shank ids from an electrode map
    assert resolve_groups(["probe"], rec) == [[1, 3], [0, 2]]


def test_merge_events_keeps_largest_peak_per_group_and_dead_time():
    t = np.array([100, 102, 103, 100, 500, 900, 905], np.int64)
    ch = np.array([0, 1, 2, 3, 1, 0, 0], np.int64)
    size = np.array([5.0, 9.0, 4.0, 7.0, 6.0, 5.0, 8.0])
    group_of = np.array([0, 0, 0, 1])
    keep, grp = merge_events(t, ch, size, group_of, dead=15)
    # group 0: {100,102,103} -> ch 1 (9 σ); 500 alone; {900,905} -> the 8 σ one; group 1: 100 alone
    assert sorted(zip(grp.tolist(), t[keep].tolist(), ch[keep].tolist())) == [
        (0, 102, 1), (0, 500, 1), (0, 905, 0), (1, 100, 3)]


def test_cut_group_waveforms_concatenates_channels_in_group_order():
    x = np.arange(2000 * 3, dtype=np.float32).reshape(2000, 3)
    rec = ArrayRecording(x, FS)
    chans = np.array([[2, 0], [1, -1]])
    wf = cut_group_waveforms(rec, np.array([100, 1500]), np.array([0, 1]), chans, pre=2, length=5, chunk=700)
    assert wf.shape == (2, 10)
    np.testing.assert_array_equal(wf[0, :5], x[98:103, 2])
    np.testing.assert_array_equal(wf[0, 5:], x[98:103, 0])
    np.testing.assert_array_equal(wf[1, :5], x[1498:1503, 1])
    assert not wf[1, 5:].any()  # padding of the one-channel group


def _grouped_spikes(**kw):
    wf = np.zeros((2, 8), np.float32)
    wf[0, 2], wf[0, 6], wf[1, 2], wf[1, 6] = -20, -60, -30, -10
    args = dict(sample_index=[10, 20], electrode=[0, 0], waveforms=wf, amplitude_uv=[-60, -30],
                noise_uv=[7.5], fs=FS, peak_index=2, channel_ids=["1+2"],
                group_channels=[[0, 1]], segment_noise_uv=[[10.0, 5.0]])
    return Spikes(**(args | kw))


def test_grouped_spikes_scale_each_segment_by_its_channel_noise():
    s = _grouped_spikes()
    assert s.segment_length == 4
    np.testing.assert_allclose(s.scaled_waveforms()[0, [2, 6]], [-2.0, -12.0])
    np.testing.assert_allclose(s.peak_scaled(), [-12.0, -3.0])  # the segment with the largest peak
    assert s.subset([1]).group_channels.tolist() == [[0, 1]]


@pytest.mark.parametrize("kw, match", [
    (dict(segment_noise_uv=None), "group_channels and segment_noise_uv come together"),
    (dict(group_channels=[[0, 1, 2]], segment_noise_uv=[[1.0, 1.0, 1.0]]), "not a multiple of the 3 channels"),
    (dict(group_channels=[[0, 1]] * 2, segment_noise_uv=[[1.0, 1.0]] * 2), r"must both be \(n_electrodes=1, k\)"),
    (dict(peak_index=5), "peak_index 5 is outside the segment length 4"),
])
def test_grouped_spikes_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        _grouped_spikes(**kw)


def test_grouped_spikes_round_trip_through_the_run_store(tmp_path):
    s = _grouped_spikes()
    store = RunStore(tmp_path)
    store.save_spikes(s, {}, "h")
    back = store.load_spikes()
    np.testing.assert_array_equal(back.group_channels, s.group_channels)
    np.testing.assert_array_equal(back.segment_noise_uv, s.segment_noise_uv)
    np.testing.assert_array_equal(back.scaled_waveforms(), s.scaled_waveforms())


def _tetrode_recording(seed=0, duration_s=8.0, rate_hz=12.0):
    """4 channels of white noise (σ 10 µV) with one unit seen on all four at different sizes."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FS)
    x = rng.normal(0, 10, (n, 4)).astype(np.float32)
    t = np.sort(rng.choice(np.arange(200, n - 200, 60), int(rate_hz * duration_s), replace=False))
    u = np.arange(-15, 30)
    shape = -np.exp(-0.5 * (u / 3.0) ** 2) + 0.35 * np.exp(-0.5 * ((u - 9) / 5.0) ** 2)
    for ch, amp in enumerate((150.0, 110.0, 80.0, 60.0)):
        for ti in t:
            x[ti + u, ch] += amp * shape
    return ArrayRecording(x, FS, channel_ids=["1", "2", "3", "4"]), Sorting(t, np.zeros(t.size), np.ones(t.size), FS)


def _cell_accuracies(sorting: Sorting, gt: Sorting, offset: int) -> list[float]:
    """Accuracy of every unit of ``sorting`` for the (single) ground-truth unit."""
    out = []
    for u in sorting.unit_ids:
        m = sorting.unit == u
        one = Sorting(sorting.sample_index[m], sorting.electrode[m], sorting.unit[m], sorting.fs)
        out.append(compare_sortings(gt, one, offset_samples=offset)["units"][0]["accuracy"])
    return out


def test_one_unit_on_four_channels_is_one_unit_when_grouped(tmp_path):
    rec, gt = _tetrode_recording()
    base = ["run.n_jobs=1", "cluster.n_jobs=1", "features.noise_crossings=0"]
    alone = run_pipeline(rec, load_config(None, base), tmp_path / "alone", report=False)
    grouped = run_pipeline(rec, load_config(None, base + ["input.groups=all"]), tmp_path / "grouped", report=False)
    acc_alone = _cell_accuracies(alone.sorting, gt, 0)
    acc_grouped = _cell_accuracies(grouped.sorting, gt, 0)
    assert sum(a > 0.8 for a in acc_alone) == 4  # channel by channel: the neuron four times
    assert sum(a > 0.5 for a in acc_grouped) == 1 and max(acc_grouped) > 0.95
    assert grouped.spikes.n_electrodes == 1 and grouped.spikes.channel_ids.tolist() == ["1+2+3+4"]
    assert grouped.spikes.n_samples == 4 * alone.spikes.n_samples
    assert set(grouped.sorting.electrode.tolist()) == {0}
    from spikevae.exports.phy import export_phy

    with pytest.raises(SpikevaeError, match="the run sorted channel groups .*phy export does not support them"):
        export_phy(tmp_path / "grouped", tmp_path / "phy")


def test_groups_from_a_toml_file(tmp_path):
    (tmp_path / "tetrodes.toml").write_text('[input]\ngroups = [["1", "2", "3", "4"], ["5", "6", "7", "8"]]\n')
    cfg = load_config(tmp_path / "tetrodes.toml")
    rec = _rec(9, [str(i + 1) for i in range(9)])
    assert resolve_groups(cfg.input.groups, rec) == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def test_vae_features_refuse_groups(tmp_path):
    rec, _ = _tetrode_recording(duration_s=2.0)
    cfg = load_config(None, ["run.n_jobs=1", "cluster.n_jobs=1", "input.groups=all", "features.method=vae"])
    with pytest.raises(SpikevaeError, match="VAE features do not support channel groups"):
        run_pipeline(rec, cfg, tmp_path / "o", report=False)


def test_harris_tetrode_cell_reported_once(shared_data, tmp_path):
    path = shared_data / "harris2000_hc1_d533101" / "harris_d533101_5sec.mat"
    gt = load_ground_truth(path)
    base = ["run.n_jobs=1", "cluster.n_jobs=1"]
    alone = run_pipeline(path, load_config(None, base), tmp_path / "alone", report=False).sorting
    grouped = run_pipeline(path, load_config(None, base + ["input.groups=all"]), tmp_path / "g", report=False).sorting
    offset = estimate_offset(gt, alone)
    acc_alone, acc_grouped = _cell_accuracies(alone, gt, offset), _cell_accuracies(grouped, gt, offset)
    assert sum(a >= 0.5 for a in acc_alone) == 4  # the cell on each of the four channels
    assert sum(a >= 0.5 for a in acc_grouped) == 1
    assert max(acc_grouped) >= max(acc_alone)
