"""Reading a sorting made by any sorter, for ``spikevae compare``.

:func:`read_sorting` detects the kind of ``path``:

- a spikevae run folder (its ``sorting.npz`` or ``sorting_<method>.npz``) or a ``sorting*.npz``
  (``sample_index``, ``unit``, ``fs``, optional ``electrode``);
- an ``.npz`` of times and labels under other common names (:data:`TIME_KEYS`,
  :data:`LABEL_KEYS`, :data:`FS_KEYS`, :data:`ELECTRODE_KEYS`), or SpikeInterface's
  ``NpzSortingExtractor`` layout (``unit_ids``, ``spike_indexes_seg0``, ``spike_labels_seg0``,
  ``sampling_frequency``, ``num_segment``);
- a phy / Kilosort folder (``params.py``, ``spike_times.npy``, ``spike_clusters.npy`` or
  ``spike_templates.npy``); a unit's electrode is its template's peak channel mapped through
  ``channel_map.npy``; clusters labelled ``noise`` in ``cluster_group.tsv`` (else
  ``cluster_KSLabel.tsv``) are left out (their spikes become unsorted, -1); ``mua`` is kept;
- a folder saved by SpikeInterface (``sorting.save(folder=...)``), electrode from the unit
  property ``electrode`` (an index) or ``main_channel_id`` (a channel id, mapped through
  ``channel_ids``);
- an ``.npy`` of shape (n, 2): columns (time in samples, label);
- a ``.mat`` ground truth of the public benchmarks (:mod:`spikevae.io.mat`).

Times are samples unless they are fractional floats, which need ``time_unit`` ("s" or "ms"):
seconds and milliseconds cannot be told apart from the values alone.

``sorting.params["electrode_source"]`` says where the electrodes came from (``file``,
``template``, ``property``, ``recording``, ``run``) or is None when the sorting has none;
:func:`infer_from_recording` and :func:`infer_from_run` fill them in.
"""
from __future__ import annotations

import ast
import logging
import zipfile
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting

log = logging.getLogger(__name__)

TIME_KEYS = ("sample_index", "spike_times", "times", "spike_indexes", "spike_index", "samples")
LABEL_KEYS = ("unit", "spike_clusters", "labels", "spike_labels", "clusters", "units", "unit_index")
FS_KEYS = ("fs", "sampling_frequency", "sample_rate", "sr")
ELECTRODE_KEYS = ("electrode", "electrodes", "spike_electrode")
TIME_UNITS = {"samples": None, "s": 1.0, "ms": 1e-3}
LAYOUTS = ("a spikevae run folder or sorting.npz; an .npz of times (" + "/".join(TIME_KEYS[:4]) + ") and labels ("
           + "/".join(LABEL_KEYS[:5]) + "); a SpikeInterface npz or saved folder; a phy/Kilosort folder; "
           "an .npy of shape (n, 2) with (sample, label) rows")


def read_sorting(path, *, fs: float | None = None, recording=None, run_dir=None, method: str | None = None,
                 time_unit: str | None = None, channel_ids=None) -> Sorting:
    """Read a sorting of any supported kind (see the module docstring).

    Parameters
    ----------
    path : str or Path
        File or folder.
    fs : float, optional
        Sampling rate (Hz) for files that do not store it, or the ``.mat`` rate.
    recording : str or Path, optional
        The recording sorted; electrodes are inferred from its waveforms when the
        sorting has none (:func:`infer_from_recording`).
    run_dir : str or Path, optional
        A spikevae run folder of the same recording; electrodes are inferred from its
        detections when the sorting has none (:func:`infer_from_run`).
    method : str, optional
        Which sorting of a spikevae run folder (``sorting_<method>.npz``).
    time_unit : {"samples", "s", "ms"}, optional
        Unit of the times; required for fractional times.
    channel_ids : sequence of str, optional
        Channel ids in electrode order, to map SpikeInterface ``main_channel_id`` values.

    Returns
    -------
    Sorting
        ``params["electrode_source"]`` is None when no electrode is known.
    """
    path = Path(path)
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise SpikevaeError(f"--time-unit {time_unit!r}: use one of {', '.join(TIME_UNITS)}")
    if not path.exists():
        raise SpikevaeError(f"{path}: file or folder not found; pass {LAYOUTS}")
    s = _read_any(path, fs, method, time_unit, lambda: channel_ids if channel_ids is not None
                  else _channel_ids_of(path, recording, run_dir))
    log.info("read %r from %s (electrodes: %s)", s, path, s.params.get("electrode_source"))
    if s.params.get("electrode_source") is None and recording is not None:
        s = infer_from_recording(s, recording)
    elif s.params.get("electrode_source") is None and run_dir is not None:
        s = infer_from_run(s, run_dir)
    return s


def _channel_ids_of(path, recording, run_dir):
    """Channel ids in electrode order, from the recording or the run folder (None if neither)."""
    if recording is not None:
        from ..recording import Recording
        from . import open_recording

        rec = recording if isinstance(recording, Recording) else open_recording(recording)
        return [str(c) for c in rec.channel_ids]
    if run_dir is not None:
        from ..store import load_run_info

        return [str(c) for c in load_run_info(run_dir).get("recording", {}).get("channel_ids", [])] or None
    return None


def _read_any(path: Path, fs, method, time_unit, channel_ids) -> Sorting:
    if path.is_dir():
        if (path / "params.py").is_file() and (path / "spike_times.npy").is_file():
            return read_phy_folder(path)
        if (path / "sorting.npz").is_file() or (path / "run.h5").is_file():
            return _read_native(path / (f"sorting_{method}.npz" if method else "sorting.npz"))
        if any((path / f).exists() for f in ("si_folder.json", "provenance.json", "spikeinterface_info.json")):
            return read_si_folder(path, channel_ids)  # channel_ids: called only if units name channels
        raise SpikevaeError(f"{path}: a folder that is not a spikevae run, a phy/Kilosort output or a "
                            f"SpikeInterface-saved sorting; pass {LAYOUTS}")
    ext = path.suffix.lower()
    if ext == ".npz":
        return read_npz_sorting(path, fs=fs, time_unit=time_unit)
    if ext == ".npy":
        return read_npy_sorting(path, fs=fs, time_unit=time_unit)
    if ext == ".mat":
        from .mat import read_mat_ground_truth

        return _tag(read_mat_ground_truth(path, fs or 0.0), None)
    raise SpikevaeError(f"{path}: unknown sorting file type {ext or '(none)'!r}; pass {LAYOUTS}")


def _tag(s: Sorting, source: str | None) -> Sorting:
    s.params = {**s.params, "electrode_source": source}
    return s


def _read_native(path: Path) -> Sorting:
    s = Sorting.load_npz(path)
    with np.load(path, allow_pickle=False) as z:
        has = "electrode" in z.files
    return _tag(s, "file" if has else None)


def _open_npz(path: Path):
    if not zipfile.is_zipfile(path):
        raise SpikevaeError(f"{path}: not an .npz file (an .npz is a zip archive of named arrays); pass {LAYOUTS}")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise SpikevaeError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None


def read_npz_sorting(path, *, fs: float | None = None, time_unit: str | None = None) -> Sorting:
    """A sorting from an ``.npz``: spikevae's layout, SpikeInterface's, or times and labels under common names."""
    path = Path(path)
    with _open_npz(path) as z:
        keys = set(z.files)
        if {"sample_index", "unit", "fs"} <= keys:
            return _read_native(path)
        if "spike_indexes_seg0" in keys and "spike_labels_seg0" in keys:
            return _si_npz(path, z)
        tkey = next((k for k in TIME_KEYS if k in keys), None)
        lkey = next((k for k in LABEL_KEYS if k in keys), None)
        if tkey is None or lkey is None:
            what, names = ("spike times", TIME_KEYS) if tkey is None else ("unit labels", LABEL_KEYS)
            raise SpikevaeError(f"{path}: no {what} found among its arrays ({', '.join(sorted(keys))}); "
                                f"name them one of {', '.join(names)}")
        rate = next((float(z[k].ravel()[0]) for k in FS_KEYS if k in keys and z[k].size == 1), None) or fs
        ekey = next((k for k in ELECTRODE_KEYS if k in keys), None)
        elec = z[ekey].ravel() if ekey else None
        return _from_arrays(path, z[tkey].ravel(), z[lkey].ravel(), rate, time_unit, elec)


def _si_npz(path: Path, z) -> Sorting:
    n_seg = int(z["num_segment"].ravel()[0]) if "num_segment" in z.files else 1
    if n_seg != 1:
        raise SpikevaeError(f"{path}: a SpikeInterface sorting with {n_seg} segments; spikevae compares one "
                            "segment, save each segment as its own sorting")
    labels = _int_labels(z["spike_labels_seg0"].ravel(), path)
    return _tag(Sorting(z["spike_indexes_seg0"].ravel(), np.zeros(labels.size, np.int64), labels,
                        float(z["sampling_frequency"].ravel()[0])), None)


def read_npy_sorting(path, *, fs: float | None = None, time_unit: str | None = None) -> Sorting:
    """A sorting from an ``.npy`` array of shape (n, 2): (time, label) rows."""
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise SpikevaeError(f"{path}: not a readable .npy file ({type(exc).__name__}); pass {LAYOUTS}") from None
    if a.ndim != 2 or a.shape[1] != 2:
        raise SpikevaeError(f"{path}: an .npy of shape {a.shape} is not a sorting; accepted layouts: {LAYOUTS}")
    return _from_arrays(path, a[:, 0], a[:, 1], fs, time_unit, None)


def _from_arrays(path, times, labels, fs, time_unit, electrode) -> Sorting:
    if times.size != labels.size:
        raise SpikevaeError(f"{path}: {times.size} spike times but {labels.size} labels; they must pair up")
    if not fs:
        raise SpikevaeError(f"{path}: no sampling rate in the file (fs or sampling_frequency); pass it with --fs")
    samples = _to_samples(path, np.asarray(times), float(fs), time_unit)
    labels = _int_labels(labels, path)
    elec = np.zeros(labels.size, np.int64) if electrode is None else electrode
    order = np.argsort(samples, kind="stable")
    s = Sorting(samples[order], np.asarray(elec)[order], labels[order], float(fs))
    return _tag(s, None if electrode is None else "file")


def _to_samples(path, t: np.ndarray, fs: float, time_unit: str | None) -> np.ndarray:
    scale = TIME_UNITS.get(time_unit or "samples")
    if scale is not None:
        return np.round(t.astype(np.float64) * scale * fs).astype(np.int64)
    if t.dtype.kind == "f" and np.any(t != np.round(t)):
        raise SpikevaeError(f"{path}: the spike times are fractional, so not samples; say their unit with "
                            "--time-unit s or --time-unit ms (and --fs if the file has no rate)")
    if t.dtype.kind not in "iuf":
        raise SpikevaeError(f"{path}: spike times of type {t.dtype} are not numbers")
    return t.astype(np.int64)


def _int_labels(labels: np.ndarray, path) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        return labels.astype(np.int64)
    try:
        return np.array([int(x) for x in labels], dtype=np.int64)
    except ValueError:
        names, inv = np.unique(labels, return_inverse=True)
        log.warning("%s: unit labels are not integers; numbered 0..%d in sorted order of %s", path,
                    names.size - 1, ", ".join(map(str, names[:5])))
        return inv.astype(np.int64)


def _phy_params(folder: Path) -> dict:
    out = {}
    for line in (folder / "params.py").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            try:
                out[name.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                continue
    return out


def _phy_labels(folder: Path) -> dict[int, str]:
    for name in ("cluster_group.tsv", "cluster_KSLabel.tsv"):
        f = folder / name
        if f.is_file():
            rows = [r.split("\t") for r in f.read_text().splitlines()[1:] if r.strip()]
            return {int(r[0]): r[1].strip() for r in rows if len(r) >= 2}
    return {}


def read_phy_folder(folder) -> Sorting:
    """A sorting from a phy / Kilosort output folder (see the module docstring).

    Clusters labelled ``noise`` become unsorted (-1); a unit's electrode is the peak channel
    (largest peak-to-peak) of its most common template, through ``template_ind.npy`` when
    present, then ``channel_map.npy``.
    """
    folder = Path(folder)
    fs = _phy_params(folder).get("sample_rate")
    if not fs:
        raise SpikevaeError(f"{folder / 'params.py'}: no sample_rate; a phy params.py sets sample_rate = <Hz>")
    times = np.load(folder / "spike_times.npy").ravel().astype(np.int64)
    tmpl_path, clu_path = folder / "spike_templates.npy", folder / "spike_clusters.npy"
    if not tmpl_path.is_file() and not clu_path.is_file():
        raise SpikevaeError(f"{folder}: neither spike_clusters.npy nor spike_templates.npy; a phy folder needs one")
    templ = np.load(tmpl_path).ravel().astype(np.int64) if tmpl_path.is_file() else None
    clusters = np.load(clu_path).ravel().astype(np.int64) if clu_path.is_file() else templ.copy()
    if clusters.size != times.size:
        raise SpikevaeError(f"{folder}: spike_times.npy has {times.size} spikes but the cluster file {clusters.size}")
    noise = [c for c, g in _phy_labels(folder).items() if g == "noise"]
    unit = np.where(np.isin(clusters, noise), -1, clusters)
    elec, source = _phy_electrodes(folder, unit, templ)
    return _tag(Sorting(times, elec, unit, float(fs)), source)


def _phy_electrodes(folder: Path, unit: np.ndarray, templ: np.ndarray | None):
    if not (folder / "templates.npy").is_file():
        return np.zeros(unit.size, np.int64), None
    templates = np.load(folder / "templates.npy", mmap_mode="r")
    if templ is None:  # Kilosort before curation: cluster id = template id
        if unit.max(initial=-1) >= templates.shape[0]:
            return np.zeros(unit.size, np.int64), None
        templ = np.maximum(unit, 0)
    ind = np.load(folder / "template_ind.npy") if (folder / "template_ind.npy").is_file() else None
    cmap_path = folder / "channel_map.npy"
    cmap = np.load(cmap_path).ravel().astype(np.int64) if cmap_path.is_file() else np.arange(templates.shape[2])
    elec = np.zeros(unit.size, np.int64)
    for u in np.unique(unit[unit >= 0]):
        sel = unit == u
        t = int(np.bincount(templ[sel]).argmax())
        w = np.asarray(templates[t])
        k = int(np.argmax(w.max(axis=0) - w.min(axis=0)))
        elec[sel] = cmap[int(ind[t, k]) if ind is not None else k]
    return elec, "template"


def read_si_folder(folder, channel_ids=None) -> Sorting:
    """A sorting saved by SpikeInterface (``sorting.save(folder=...)``), first segment only.

    The electrode of a unit comes from its ``electrode`` property (an index) or its
    ``main_channel_id`` property mapped through ``channel_ids``.
    """
    folder = Path(folder)
    from .spikeinterface import require_spikeinterface

    si = require_spikeinterface()
    try:
        sorting = si.load(folder)
    except Exception as exc:  # noqa: BLE001 - SI raises many kinds for a folder it cannot read
        raise SpikevaeError(f"{folder}: SpikeInterface cannot load this folder ({type(exc).__name__}: {exc})") from None
    if sorting.get_num_segments() != 1:
        raise SpikevaeError(f"{folder}: a SpikeInterface sorting with {sorting.get_num_segments()} segments; "
                            "spikevae compares one segment")
    ids = np.asarray(sorting.get_unit_ids())
    vec = sorting.to_spike_vector()
    unit_num = _int_labels(ids, folder)
    labels = unit_num[vec["unit_index"]]
    per_unit, source = _si_unit_electrodes(sorting, folder, channel_ids)
    elec = per_unit[vec["unit_index"]] if per_unit is not None else np.zeros(labels.size, np.int64)
    return _tag(Sorting(vec["sample_index"], elec, labels, sorting.get_sampling_frequency()), source)


def _si_unit_electrodes(sorting, folder, channel_ids):
    props = sorting.get_property_keys()
    if "electrode" in props:
        return np.asarray(sorting.get_property("electrode")).astype(np.int64), "property"
    if "main_channel_id" not in props:
        return None, None
    main = [str(c) for c in sorting.get_property("main_channel_id")]
    channel_ids = channel_ids() if callable(channel_ids) else channel_ids
    if channel_ids is None:
        raise SpikevaeError(f"{folder}: units name their main_channel_id but the channel order is unknown; "
                            "give --recording REC (or --run OUT) so channel ids map to electrodes")
    index = {str(c): i for i, c in enumerate(channel_ids)}
    missing = sorted(set(main) - set(index))
    if missing:
        raise SpikevaeError(f"{folder}: main_channel_id {', '.join(missing[:5])} not among the recording's "
                            f"channel ids ({', '.join(map(str, list(channel_ids)[:8]))} ...)")
    return np.array([index[c] for c in main], np.int64), "property"


def infer_from_run(sorting: Sorting, run_dir, tol_ms: float = 0.4) -> Sorting:
    """Electrodes from a spikevae run of the same recording: each spike takes the electrode of the
    run's detection nearest in time (within ``tol_ms``), each unit the majority over its spikes.

    Units none of whose spikes match a detection are left out (unsorted), with a warning.
    """
    run = Sorting.load_npz(Path(run_dir) / "sorting.npz")
    if abs(run.fs - sorting.fs) > 1e-6 * run.fs:
        raise SpikevaeError(f"{run_dir}: the run is at {run.fs:g} Hz but the sorting at {sorting.fs:g} Hz")
    order = np.argsort(run.sample_index, kind="stable")
    t, e = run.sample_index[order], run.electrode[order]
    tol = int(round(tol_ms * 1e-3 * sorting.fs))
    j = np.clip(np.searchsorted(t, sorting.sample_index), 1, max(t.size - 1, 1))
    nearest = np.where(np.abs(t[j - 1] - sorting.sample_index) <= np.abs(t[j] - sorting.sample_index), j - 1, j)
    ok = np.abs(t[nearest] - sorting.sample_index) <= tol if t.size else np.zeros(sorting.unit.size, bool)
    per_spike = np.where(ok, e[nearest] if t.size else 0, -1)
    return _assign_majority(sorting, per_spike, "run", f"no spike within {tol_ms} ms of a detection of {run_dir}")


def _assign_majority(sorting: Sorting, per_spike: np.ndarray, source: str, why: str) -> Sorting:
    elec, unit = np.zeros(sorting.unit.size, np.int64), sorting.unit.copy()
    dropped = []
    for u in sorting.unit_ids:
        sel = sorting.unit == u
        vals = per_spike[sel]
        vals = vals[vals >= 0]
        if vals.size:
            elec[sel] = np.bincount(vals).argmax()
        else:
            unit[sel] = -1
            dropped.append(int(u))
    if dropped:
        log.warning("%d unit(s) left out, %s: %s", len(dropped), why, ", ".join(map(str, dropped[:10])))
    return _tag(Sorting(sorting.sample_index, elec, unit, sorting.fs, sorting.params), source)


def infer_from_recording(sorting: Sorting, recording, max_spikes: int = 200, half_ms: float = 1.0,
                         chunk_s: float = 1.0) -> Sorting:
    """Electrodes from the waveforms: the channel of largest peak-to-peak of each unit's mean
    filtered waveform (up to ``max_spikes`` spikes, evenly spread, ±``half_ms`` around each time).

    ``recording`` is a path (opened with :func:`spikevae.io.open_recording`, filtered with the
    default preprocessing) or a :class:`~spikevae.recording.Recording`. Only the 1 s chunks that
    hold chosen spikes are read.
    """
    rec = _filtered(recording)
    if abs(rec.fs - sorting.fs) > 1e-6 * rec.fs:
        raise SpikevaeError(f"{recording}: the recording is at {rec.fs:g} Hz but the sorting at {sorting.fs:g} Hz")
    half = max(1, int(round(half_ms * 1e-3 * rec.fs)))
    pick = _pick_spikes(sorting, max_spikes, half, rec.n_samples)
    ids = sorting.unit_ids
    sums = np.zeros((ids.size, 2 * half, rec.n_channels))
    counts = np.zeros(ids.size)
    row = np.searchsorted(ids, sorting.unit[pick])
    chunk = max(int(chunk_s * rec.fs), 4 * half)
    for c in np.unique(sorting.sample_index[pick] // chunk):
        sel = pick[sorting.sample_index[pick] // chunk == c]
        lo = max(0, int(sorting.sample_index[sel].min()) - half)
        x = rec.get_traces(lo, int(sorting.sample_index[sel].max()) + half)
        for i, t in zip(row[np.isin(pick, sel)], sorting.sample_index[sel]):
            sums[i] += x[t - half - lo:t + half - lo]
            counts[i] += 1
    ptp = np.ptp(sums / np.maximum(counts, 1)[:, None, None], axis=1)
    per_unit = np.where(counts > 0, ptp.argmax(axis=1), -1)
    lookup = dict(zip(ids.tolist(), per_unit.tolist()))
    per_spike = np.array([lookup.get(int(u), -1) for u in sorting.unit], np.int64)
    return _assign_majority(sorting, per_spike, "recording", f"no spike inside {recording}")


def _filtered(recording):
    from ..preprocess import PreprocessConfig, preprocess
    from ..recording import Recording
    from . import open_recording

    rec = recording if isinstance(recording, Recording) else open_recording(recording)
    return preprocess(rec, PreprocessConfig())


def _pick_spikes(sorting: Sorting, max_spikes: int, half: int, n_samples: int) -> np.ndarray:
    """Indices of up to ``max_spikes`` spikes per unit, evenly spread, whose window fits the recording."""
    t = sorting.sample_index
    inside = (t >= half) & (t + half <= n_samples)
    out = []
    for u in sorting.unit_ids:
        idx = np.flatnonzero((sorting.unit == u) & inside)
        if idx.size > max_spikes:
            idx = idx[np.linspace(0, idx.size - 1, max_spikes).astype(np.int64)]
        out.append(idx)
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
