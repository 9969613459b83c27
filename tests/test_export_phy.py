"""phy export (read back with phylib's TemplateModel) and the curated sorting back from phy."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spikevae.cli import main
from spikevae.errors import SpikevaeError

pytest.importorskip("phylib")
from phylib.io.model import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "sample.ns5"
SAMPLE_GT = ROOT / "sample_data" / "sample_gt.npz"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The sample data sorted once, with a phy export written by `spikevae run --phy`."""
    d = tmp_path_factory.mktemp("phy")
    _cli(["run", str(SAMPLE), "-o", str(d / "out"), "--phy", str(d / "phy")])
    return d / "out", d / "phy"


def _cli(argv) -> None:
    """Run a spikevae command; it must succeed."""
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), f"spikevae {' '.join(argv)} exited {exc.code}"


def _sorting(out: Path):
    from spikevae.objects import Sorting

    return Sorting.load_npz(out / "sorting.npz")


def test_phylib_reads_the_export(run_dir):
    out, phy = run_dir
    sorting = _sorting(out)
    model = load_model(phy / "params.py")
    assert model.n_spikes == sorting.sample_index.size
    np.testing.assert_array_equal(model.spike_samples, np.sort(sorting.sample_index))
    # every sorted unit is a cluster with its own id; unsorted spikes are noise clusters
    order = np.lexsort((sorting.electrode, sorting.sample_index))
    unit = sorting.unit[order]
    np.testing.assert_array_equal(model.spike_clusters[unit >= 0], unit[unit >= 0])
    assert np.all(model.spike_clusters[unit < 0] > sorting.unit.max())
    groups = model.metadata["group"]
    assert {groups[c] for c in model.spike_clusters[unit < 0]} == {"noise"}
    assert {groups[int(u)] for u in sorting.unit_ids} <= {"good", "mua"}
    assert np.all(model.amplitudes > 0)
    from spikevae.store import load_run_info

    positions = np.asarray(load_run_info(out)["recording"]["positions_um"])
    np.testing.assert_allclose(model.channel_positions, positions)


def test_each_template_sits_on_its_units_electrode(run_dir):
    out, phy = run_dir
    sorting = _sorting(out)
    model = load_model(phy / "params.py")
    for u, e in sorting.unit_electrode().items():
        assert list(model.get_cluster_channels(u)) == [e]
        tpl = model.get_template(int(model.spike_templates[model.spike_clusters == u][0]))
        assert tpl.channel_ids[0] == e and np.argmax(np.abs(tpl.template).max(0)) == 0


def test_template_is_the_mean_waveform_and_features_are_the_runs(run_dir):
    from spikevae.store import load_embedding, load_spikes

    out, phy = run_dir
    sorting, spikes = _sorting(out), load_spikes(out)
    model = load_model(phy / "params.py")
    u = int(sorting.unit_ids[0])
    key = {(int(t), int(e)): i for i, (t, e) in enumerate(zip(spikes.sample_index, spikes.electrode))}
    idx = [key[(int(t), int(e))] for t, e in zip(sorting.sample_index[sorting.unit == u],
                                                  sorting.electrode[sorting.unit == u]) if (int(t), int(e)) in key]
    tid = int(model.spike_templates[model.spike_clusters == u][0])
    np.testing.assert_allclose(np.load(phy / "templates.npy")[tid, :, 0], spikes.waveforms[idx].mean(0), rtol=1e-4,
                               atol=1e-3)
    feats = load_embedding(out, "pca").features
    first = np.flatnonzero(model.spike_clusters == u)[0]
    t, e = int(model.spike_samples[first]), int(np.load(phy / "spikevae_spike_electrode.npy")[first])
    np.testing.assert_allclose(np.ravel(model.features[first]), feats[key[(t, e)], :3], rtol=1e-6)


def test_params_point_at_the_recording_itself(run_dir):
    from spikevae.io import open_recording

    _, phy = run_dir
    model = load_model(phy / "params.py")
    rec = open_recording(SAMPLE)
    np.testing.assert_allclose(np.asarray(model.traces[5000:5100, :]) * rec.gain_uv[0], rec.get_traces(5000, 5100))


def test_block_size_does_not_change_the_files(run_dir, tmp_path, monkeypatch):
    import spikevae.exports.phy as phy_mod

    out, phy = run_dir
    monkeypatch.setattr(phy_mod, "BLOCK", 777)
    small = phy_mod.export_phy(out, tmp_path / "phy")
    for name in ("amplitudes.npy", "pc_features.npy", "templates.npy", "spike_times.npy", "spike_clusters.npy"):
        assert (small / name).read_bytes() == (phy / name).read_bytes(), name


def test_copy_traces_writes_the_filtered_recording(run_dir, tmp_path):
    from spikevae.exports.phy import export_phy
    from spikevae.io import open_recording
    from spikevae.params import load_config
    from spikevae.preprocess import preprocess

    out, _ = run_dir
    phy = export_phy(out, tmp_path / "phy", copy_traces=True)
    model = load_model(phy / "params.py")
    assert model.traces.shape == (240000, 16)  # 8 s x 16 electrodes
    filt = preprocess(open_recording(SAMPLE), load_config().preprocess).get_traces(20000, 20300)
    scale = np.abs(filt).max() / np.abs(np.asarray(model.traces[20000:20300, :], np.float64)).max()
    np.testing.assert_allclose(np.asarray(model.traces[20000:20300, :]) * scale, filt, atol=2 * scale + 1e-3)
    assert "hp_filtered = True" in (phy / "params.py").read_text()


def test_a_folder_that_is_not_an_export_is_not_overwritten(run_dir, tmp_path):
    from spikevae.exports.phy import export_phy

    out, _ = run_dir
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a curator's notes")
    with pytest.raises(SpikevaeError, match=r"exists and is not a spikevae phy export"):
        export_phy(out, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "a curator's notes"


def _curate(phy: Path, sorting) -> dict:
    """What a person does in phy: merge two units, split one, label one noise; saved as phy saves."""
    clusters = np.load(phy / "spike_clusters.npy")
    by_elec: dict = {}
    for u, e in sorting.unit_electrode().items():
        by_elec.setdefault(e, []).append(u)
    a, b = next(v for v in by_elec.values() if len(v) >= 2)[:2]
    rest = [int(u) for u in sorting.unit_ids if u not in (a, b)]
    split, noise = rest[0], rest[1]
    new = int(clusters.max()) + 1
    clusters[clusters == b] = a
    members = np.flatnonzero(clusters == split)
    clusters[members[::2]] = new
    np.save(phy / "spike_clusters.npy", clusters)
    groups = dict(line.split("\t") for line in (phy / "cluster_group.tsv").read_text().split("\n")[1:] if line)
    groups.pop(str(b), None)
    groups[str(noise)] = "noise"
    groups[str(new)] = "good"
    (phy / "cluster_group.tsv").write_text("cluster_id\tgroup\n" + "".join(f"{k}\t{v}\n" for k, v in groups.items()))
    return {"a": a, "b": b, "split": split, "new": new, "noise": noise}


def test_curation_comes_back(run_dir, tmp_path):
    import shutil

    from spikevae.exports.phy import export_phy
    from spikevae.objects import Sorting

    out0, _ = run_dir
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    phy = export_phy(out, tmp_path / "phy")
    before = _sorting(out)
    c = _curate(phy, before)
    _cli(["import-curation", str(phy), str(out)])
    cur = Sorting.load_npz(out / "sorting_curated.npz")
    units = set(cur.unit_ids.tolist())
    assert c["b"] not in units and c["noise"] not in units and {c["a"], c["new"], c["split"]} <= units
    assert (cur.unit == c["a"]).sum() == (before.unit == c["a"]).sum() + (before.unit == c["b"]).sum()
    assert (cur.unit == c["split"]).sum() + (cur.unit == c["new"]).sum() == (before.unit == c["split"]).sum()
    assert (cur.unit == -1).sum() == (before.unit == -1).sum() + (before.unit == c["noise"]).sum()
    # compare and report work on the curated sorting
    _cli(["compare", str(out), "--method", "curated", "--gt", str(SAMPLE_GT), "--json", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text())["n_sorted_units"] == len(units)
    _cli(["report", str(out)])
    assert "curated" in (out / "report.html").read_text()


def test_curation_of_other_spikes_is_refused(run_dir, tmp_path):
    from spikevae.exports.phy import export_phy, import_curation

    out, _ = run_dir
    phy = export_phy(out, tmp_path / "phy")
    times = np.load(phy / "spike_times.npy")
    np.save(phy / "spike_times.npy", times[:-1])
    np.save(phy / "spike_clusters.npy", np.load(phy / "spike_clusters.npy")[:-1])
    with pytest.raises(SpikevaeError, match=r"are not the \d+ spikes of the 'pca' sorting"):
        import_curation(phy, out)
