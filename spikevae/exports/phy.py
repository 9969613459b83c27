"""A phy template-GUI folder from a run folder, and the curated sorting back from it.

phy (github.com/cortex-lab/phy) reads the files Kilosort writes; phylib's ``TemplateModel``
says which (names, shapes, dtypes). spikevae writes them so that:

- every sorted unit is one template and one cluster (cluster id = spikevae unit id); the
  spikes the sorting left unsorted form one cluster per electrode, labelled ``noise``, so a
  curator can still move spikes out of them;
- a template sits on its own electrode alone (``template_ind`` has one column): on a Utah
  array a neuron is seen on one electrode, and other sorters' exports that spread templates
  over neighbours drew Utah units on the wrong electrodes (phy issue 1014);
- ``templates.npy`` holds each unit's mean waveform in µV and ``amplitudes.npy`` each
  spike's peak amplitude in µV; the whitening matrices are the identity (spikevae does not
  whiten the traces it exports);
- ``pc_features.npy`` holds the first three features of the run's own feature space (PCA
  or VAE), so phy's feature view shows what the clustering saw;
- ``cluster_group.tsv`` says ``good`` for units with the good label, ``mua`` for the other
  units, ``noise`` for the unsorted clusters; ``cluster_<metric>.tsv`` holds each metric.

``params.py`` points at the recording itself when phy can read it as it is (raw binary,
Blackrock NSx: interleaved samples at a known offset), otherwise, or with
``copy_traces=True``, at ``traces.bin``, a band-passed int16 copy written chunk by chunk.
Big arrays are written chunk by chunk into memory-mapped ``.npy`` files.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting, Spikes
from . import resolve_method

log = logging.getLogger(__name__)

#: The file that marks a folder as spikevae's phy export (and says of which run).
MARKER = "spikevae_export.json"
#: Electrode of each exported spike (phy ignores it; the curation import reads it).
SPIKE_ELECTRODE = "spikevae_spike_electrode.npy"
#: Spikes per block when streaming over spikes.
BLOCK = 100_000
#: Feature columns per spike in ``pc_features.npy``.
N_PCS = 3


@dataclass
class PhyLayout:
    """What the export writes, in phy's order (spikes sorted by time, then electrode).

    Attributes
    ----------
    order : ndarray (n_spikes,) int64
        Index into the run's Sorting of each exported spike.
    spike_index : ndarray (n_spikes,) int64
        Index into the run's Spikes of each exported spike (-1: no waveform was cut).
    clusters : ndarray (n_spikes,) int64
        phy cluster id of each spike (the unit id; unsorted: ``first_unsorted + electrode``).
    templates : ndarray (n_spikes,) int64
        Template index of each spike.
    template_cluster : ndarray (n_templates,) int64
    template_electrode : ndarray (n_templates,) int64
    """

    order: np.ndarray
    spike_index: np.ndarray
    clusters: np.ndarray
    templates: np.ndarray
    template_cluster: np.ndarray
    template_electrode: np.ndarray
    first_unsorted: int


def plan_layout(sorting: Sorting, spikes: Spikes) -> PhyLayout:
    """Cluster and template of every spike of ``sorting`` (see :class:`PhyLayout`)."""
    from ..quality.compute import match_spikes

    order = np.lexsort((sorting.electrode, sorting.sample_index))
    unit, elec = sorting.unit[order], sorting.electrode[order]
    first_unsorted = int(sorting.unit.max(initial=-1)) + 1
    clusters = np.where(unit >= 0, unit, first_unsorted + elec)
    cids, templates = np.unique(clusters, return_inverse=True)
    t_elec = np.zeros(cids.size, np.int64)
    for k, c in enumerate(cids):  # a unit's electrode is its most common one
        t_elec[k] = np.bincount(elec[templates == k]).argmax()
    return PhyLayout(order, match_spikes(spikes, sorting)[order], clusters, templates.astype(np.int64), cids,
                     t_elec, first_unsorted)


def mean_templates(layout: PhyLayout, spikes: Spikes) -> np.ndarray:
    """Mean waveform (µV) of each template on its electrode, streamed over spikes in blocks.

    Returns
    -------
    ndarray of shape (n_templates, n_samples, 1), float32
    """
    n_t, length = layout.template_cluster.size, spikes.n_samples
    total = np.zeros((n_t, length), np.float64)
    count = np.zeros(n_t, np.int64)
    for s in range(0, layout.spike_index.size, BLOCK):
        idx, tpl = layout.spike_index[s:s + BLOCK], layout.templates[s:s + BLOCK]
        ok = idx >= 0
        np.add.at(total, tpl[ok], spikes.waveforms[idx[ok]])
        count += np.bincount(tpl[ok], minlength=n_t)
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)[:, :, None]


def template_similarity(templates: np.ndarray, electrodes: np.ndarray) -> np.ndarray:
    """Cosine similarity of templates on the same electrode (0 across electrodes), (n, n) float32."""
    flat = templates.reshape(templates.shape[0], -1).astype(np.float64)
    flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    sim = flat @ flat.T
    sim[electrodes[:, None] != electrodes[None, :]] = 0.0
    return sim.astype(np.float32)


def _write_streamed(path: Path, shape: tuple, dtype, fill) -> None:
    """An ``.npy`` file written block by block: ``fill(start, stop)`` returns rows ``[start, stop)``."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    for s in range(0, shape[0], BLOCK):
        arr[s:s + BLOCK] = fill(s, min(s + BLOCK, shape[0]))
    arr.flush()
    del arr


def _write_tsv(path: Path, column: str, ids, values) -> None:
    lines = [f"cluster_id\t{column}"] + [f"{int(i)}\t{_tsv_value(v)}" for i, v in zip(ids, values)]
    path.write_text("\n".join(lines) + "\n")


def _tsv_value(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)


def write_cluster_tables(folder: Path, layout: PhyLayout, metrics: list[dict]) -> None:
    """``cluster_group.tsv`` (good / mua / noise) and one ``cluster_<metric>.tsv`` per metric."""
    by_unit = {int(r["unit"]): r for r in metrics}
    cids = layout.template_cluster
    groups = ["noise" if c >= layout.first_unsorted else ("good" if by_unit.get(int(c), {}).get("good") else "mua")
              for c in cids]
    _write_tsv(folder / "cluster_group.tsv", "group", cids, groups)
    skip = {"unit", "good"}
    for key in (k for k in (metrics[0] if metrics else {}) if k not in skip):
        _write_tsv(folder / f"cluster_{key}.tsv", key, cids, [by_unit.get(int(c), {}).get(key) for c in cids])


def _metrics_for(run_dir: Path, method: str, main: str, spikes: Spikes, sorting: Sorting, config: dict,
                 duration_s: float, positions_um=None) -> list[dict]:
    """The run's quality metrics of ``method`` (metrics.json for the main method, else computed)."""
    path = run_dir / "metrics.json"
    if method == main and path.exists():
        return json.loads(path.read_text())["units"]
    from ..params import load_config
    from ..quality import compute_metrics

    cfg = load_config(base={"quality": config.get("quality", {})})
    return compute_metrics(spikes, sorting, cfg.quality, duration_s, positions_um=positions_um)


def _trace_source(run_dir: Path, info: dict, copy_traces: bool):
    """How phy reads the traces: ``("file", params)`` for the recording as it is, else ``("copy", Recording)``,
    or ``("none", None)`` when the run has no traces (a ``.nev`` file)."""
    from ..io import open_recording
    from ..io.binary import BinaryRecording
    from ..io.neo import NeoRecording, _nsx_block
    from ..params import load_config

    rec_info, cfg = info.get("recording", {}), info.get("config", {})
    source = Path(str(rec_info.get("source", "")))
    if rec_info.get("kind") == "nev spikes" or not source.is_file():
        return "none", None
    rec = open_recording(source, load_config(base={"input": cfg.get("input", {})}).input)
    if not copy_traces and isinstance(rec, BinaryRecording) and rec.dtype.kind in "iuf" \
            and np.allclose(rec.offset_uv, 0):
        return "file", {"dat_path": rec.path, "n_channels_dat": rec.n_channels, "dtype": rec.dtype.name,
                        "offset": rec.header_bytes, "hp_filtered": False}
    if not copy_traces and isinstance(rec, NeoRecording) and (block := _nsx_block(rec)) is not None:
        return "file", {"dat_path": rec.path, "n_channels_dat": rec.n_channels, "dtype": str(block["dtype"]),
                        "offset": int(block["offset"]), "hp_filtered": False}
    return "copy", rec


def write_filtered_copy(rec, config: dict, path: Path, chunk_s: float = 1.0, progress: bool = False) -> dict:
    """Band-pass ``rec`` as the run did and write it as interleaved int16, chunk by chunk.

    The scale (µV per bit) is chosen from the largest absolute value so nothing clips.

    Returns
    -------
    dict
        ``params.py`` entries of the copy, with ``uv_per_bit``.
    """
    from ..params import load_config
    from ..preprocess import preprocess

    filt = preprocess(rec, load_config(base={"preprocess": config.get("preprocess", {})}).preprocess)
    step = max(1, int(chunk_s * filt.fs))
    peak = max((float(np.abs(filt.get_traces(s, e)).max(initial=0.0)) for s, e in filt.chunks(step)), default=0.0)
    scale = max(peak, 1e-6) / 32000.0
    chunks = filt.chunks(step)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(list(chunks), desc="phy traces", unit="chunk")
    with open(path, "wb") as fh:
        for s, e in chunks:
            fh.write(np.round(filt.get_traces(s, e) / scale).astype("<i2").tobytes())
    return {"dat_path": path.name, "n_channels_dat": filt.n_channels, "dtype": "int16", "offset": 0,
            "hp_filtered": True, "uv_per_bit": scale}


#: Extensions phy reads as flat binary files (phylib ``EPHYS_RAW_EXTENSIONS``).
PHY_RAW_EXTENSIONS = (".dat", ".bin", ".raw")


def _link_recording(folder: Path, traces: dict) -> dict:
    """phy picks its reader by extension: a recording such as ``.ns5`` is reached through a link
    ``recording.bin`` in the phy folder (no copy); where links cannot be made, its absolute path."""
    import os

    src = Path(traces["dat_path"]).resolve()
    if src.suffix.lower() in PHY_RAW_EXTENSIONS:
        return traces | {"dat_path": src}
    try:
        os.symlink(src, folder / "recording.bin")
    except OSError as exc:  # e.g. Windows without the right to make links
        raise SpikevaeError(f"{src}: phy reads only .dat/.bin/.raw files and a link to this recording could not be "
                            f"made ({exc.strerror}); export with --copy-traces") from None
    return traces | {"dat_path": "recording.bin"}


def _params_py(traces: dict | None, fs: float) -> str:
    if traces is None:  # no continuous data: phy shows what the files hold
        traces = {"dat_path": [], "n_channels_dat": 0, "dtype": "int16", "offset": 0, "hp_filtered": True}
    dat = traces["dat_path"]
    dat = repr(str(dat)) if isinstance(dat, (str, Path)) else repr(dat)
    return (f"dat_path = {dat}\nn_channels_dat = {int(traces['n_channels_dat'])}\n"
            f"dtype = {traces['dtype']!r}\noffset = {int(traces['offset'])}\nsample_rate = {float(fs)!r}\n"
            f"hp_filtered = {bool(traces['hp_filtered'])}\n")


def _check_target(phy_dir: Path) -> None:
    if phy_dir.exists() and (not phy_dir.is_dir() or (any(phy_dir.iterdir()) and not (phy_dir / MARKER).exists())):
        raise SpikevaeError(f"{phy_dir}: exists and is not a spikevae phy export; choose an empty or new folder "
                            "for --phy (an earlier spikevae export there is replaced)")


def export_phy(run_dir, phy_dir, *, method: str | None = None, copy_traces: bool = False,
               progress: bool = False) -> Path:
    """Write the sorting of the run in ``run_dir`` as a phy template-GUI folder.

    Parameters
    ----------
    run_dir : path
        Output folder of ``spikevae run``.
    phy_dir : path
        Folder to write (replaced atomically if it is an earlier spikevae export).
    method : str, optional
        Which sorting (default: the run's main feature method).
    copy_traces : bool
        Write a band-passed int16 copy of the traces even when phy could read the recording.
    progress : bool
        Progress bar while copying traces.

    Returns
    -------
    Path
        ``phy_dir``.

    Raises
    ------
    SpikevaeError
        No run in ``run_dir``, no such sorting, or ``phy_dir`` holds something else.
    """
    from .. import store
    from ..store import atomic_path

    run_dir, phy_dir = Path(run_dir), Path(phy_dir)
    _check_target(phy_dir)
    info = store.load_run_info(run_dir)
    method, main = resolve_method(run_dir, info, method)
    spikes, sorting = store.load_spikes(run_dir), store.load_sorting(run_dir, method)
    if spikes.group_channels is not None:  # phy's templates are per channel; these waveforms are concatenated
        raise SpikevaeError(f"{run_dir}: the run sorted channel groups (input.groups); the phy export does not "
                            "support them yet: export to NWB (--nwb), or rerun without input.groups")
    emb_method = method if method in info["embeddings"] else main
    features = store.load_embedding(run_dir, emb_method).features
    layout = plan_layout(sorting, spikes)
    with atomic_path(phy_dir) as tmp:
        tmp.mkdir()
        _write_spike_files(tmp, layout, sorting, spikes, features)
        templates = _write_template_files(tmp, layout, spikes, info.get("recording", {}))
        dur = float(info.get("recording", {}).get("duration_s", 0.0))
        write_cluster_tables(tmp, layout, _metrics_for(run_dir, method, main, spikes, sorting,
                                                       info.get("config", {}), dur,
                                                       info.get("recording", {}).get("positions_um")))
        kind, src = _trace_source(run_dir, info, copy_traces)
        traces = src if kind == "file" else None
        if kind == "copy":
            traces = write_filtered_copy(src, info.get("config", {}), tmp / "traces.bin",
                                         float(info.get("config", {}).get("run", {}).get("chunk_s", 1.0)), progress)
            traces["dat_path"] = str((phy_dir / "traces.bin").resolve())
        if kind == "file":
            traces = _link_recording(tmp, traces)
        (tmp / "params.py").write_text(_params_py(traces, sorting.fs))
        marker = {"run_dir": str(run_dir.resolve()), "method": method, "run_id": info.get("run_id"),
                  "n_spikes": int(layout.order.size), "first_unsorted_cluster": layout.first_unsorted,
                  "traces": kind, "n_templates": int(templates.shape[0])}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
    log.info("phy export of %s (%s): %d spikes, %d clusters; traces: %s", run_dir, method, layout.order.size,
             layout.template_cluster.size,
             {"file": "the recording itself", "copy": "a band-passed int16 copy (traces.bin)",
              "none": "none (the run has no continuous data)"}[kind])
    return phy_dir


def _template_means(layout: PhyLayout, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (rows of the run's Spikes) over each template's spikes that have them."""
    idx, tpl = layout.spike_index, layout.templates
    ok = idx >= 0
    total = np.zeros((layout.template_cluster.size,) + values.shape[1:], np.float64)
    np.add.at(total, tpl[ok], values[idx[ok]])
    count = np.bincount(tpl[ok], minlength=layout.template_cluster.size).reshape((-1,) + (1,) * (values.ndim - 1))
    return (total / np.maximum(count, 1)).astype(np.float32)


def _write_spike_files(folder: Path, layout: PhyLayout, sorting: Sorting, spikes: Spikes, features) -> None:
    """Per-spike files. Spikes that overlap resolution added to the sorting have no waveform of their
    own: they take their template's mean amplitude and mean features."""
    n = layout.order.size
    np.save(folder / "spike_times.npy", sorting.sample_index[layout.order].astype(np.uint64))
    np.save(folder / "spike_clusters.npy", layout.clusters.astype(np.int32))
    np.save(folder / "spike_templates.npy", layout.templates.astype(np.int32))
    np.save(folder / SPIKE_ELECTRODE, sorting.electrode[layout.order].astype(np.int32))
    idx, tpl = layout.spike_index, layout.templates
    amp = np.abs(spikes.amplitude_uv).astype(np.float32)
    k = min(N_PCS, features.shape[1])
    amp_t, feat_t = _template_means(layout, amp), _template_means(layout, features[:, :k])

    def amplitudes(s, e):
        ok = idx[s:e] >= 0
        return np.where(ok, amp[np.maximum(idx[s:e], 0)], amp_t[tpl[s:e]])

    _write_streamed(folder / "amplitudes.npy", (n,), np.float32, amplitudes)

    def pcs(s, e):
        block = np.zeros((e - s, N_PCS, 1), np.float32)
        ok = idx[s:e] >= 0
        block[ok, :k, 0] = features[idx[s:e][ok], :k]
        block[~ok, :k, 0] = feat_t[tpl[s:e][~ok]]
        return block

    _write_streamed(folder / "pc_features.npy", (n, N_PCS, 1), np.float32, pcs)
    np.save(folder / "pc_feature_ind.npy", layout.template_electrode[:, None].astype(np.int32))


def _write_template_files(folder: Path, layout: PhyLayout, spikes: Spikes, rec_info: dict) -> np.ndarray:
    from ..recording import default_positions

    templates = mean_templates(layout, spikes)
    np.save(folder / "templates.npy", templates)
    np.save(folder / "template_ind.npy", layout.template_electrode[:, None].astype(np.int32))
    np.save(folder / "similar_templates.npy", template_similarity(templates, layout.template_electrode))
    n_ch = spikes.n_electrodes
    pos = np.asarray(rec_info.get("positions_um") or default_positions(n_ch), dtype=np.float64).reshape(-1, 2)
    if pos.shape[0] != n_ch:
        pos = default_positions(n_ch)
    np.save(folder / "channel_map.npy", np.arange(n_ch, dtype=np.int32))
    np.save(folder / "channel_positions.npy", pos)
    np.save(folder / "spikevae_channel_ids.npy", spikes.channel_ids.astype("U"))
    np.save(folder / "whitening_mat.npy", np.eye(n_ch, dtype=np.float64))
    np.save(folder / "whitening_mat_inv.npy", np.eye(n_ch, dtype=np.float64))
    return templates


def import_curation(phy_dir, run_dir) -> Sorting:
    """Read a phy folder after curation back into the run folder (see :mod:`.phy_curation`)."""
    from .phy_curation import import_curation as _import

    return _import(phy_dir, run_dir)
