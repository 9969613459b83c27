"""An NWB file (Neurodata Without Borders, through pynwb) from a run folder.

What the file holds, and where each part comes from:

- ``session_start_time``: the recording's own start time. For Blackrock files that is the
  *time origin* of the NSx (2.2 and later) or NEV basic header, which Blackrock's file
  specification defines as UTC (neo reads the same field of a NEV as ``rec_datetime``); a
  ``rec_datetime`` / ``start_time`` (ISO 8601) in the run's recording info wins when present.
  Fallback, when the recording gives none (raw binary, HDF5, MATLAB, NSx 2.1 without NEV):
  the source file's modification time minus the recording's duration, in UTC (acquisition
  systems write the file while recording, so it ends at the last write), or the run store's
  when the source is gone. The file's ``notes`` say which was used.
- ``identifier``: a UUID made from a SHA-256 of the resolved configuration, the input
  (file name, rate, length, channel ids), the method and the sorting's cache key, so one
  run exported twice gives the same identifier.
- One ``Device`` (``"Utah array"`` by Blackrock Microsystems for Blackrock sources, else
  ``"multielectrode array"``) and one ``ElectrodeGroup`` for the array, or one per channel
  group when the run sorted channel groups (``input.groups``, tetrodes).
- The electrodes table, one row per recording channel: ``x``, ``y`` and ``rel_x``,
  ``rel_y`` (µm, the run's ``positions_um``), ``location`` (``"unknown"`` unless given),
  ``group``, ``filtering`` (the run's software band-pass), ``channel_id`` (the Blackrock
  channel id, a string), ``channel_name`` (neo's channel name) and the label columns of an
  electrode map when the run had one (``map_electrode``, ``bank``, ``pin``, ``label``).
- The Units table, one row per unit of the sorting with its unit id: ``spike_times``
  (seconds from the session start: ``sample_index / fs`` plus the segment's start),
  ``obs_intervals`` (the recorded segment), ``electrodes`` (the unit's channel, or its
  group's channels), ``electrode`` (electrodes-table row of the unit's channel; for a
  channel group the one with the largest mean peak), ``electrode_group``,
  ``waveform_mean``/``waveform_sd`` and every quality metric of ``metrics.json`` (NaN
  where undefined) with the ``good`` label as a bool column.
  The waveforms are stored in **volts** (the run's µV times 1e-6) because NWB readers
  assume the schema's default unit; older schemas fix it to volts. Shape
  ``(n_units, n_samples)``, or ``(n_units, n_samples, k)`` for groups of ``k`` channels
  (padding columns are 0). The SD is the population SD (ddof = 0) of the spikes that have
  a waveform in the run store (spikes added by overlap resolution have none).
- ``subject``: the ``subject`` argument, else the recording info's ``subject``, else
  :data:`UNKNOWN_SUBJECT` (NWB's "unknown" values; the species stays empty).
- Provenance: ``source_script`` and ``source_script_file_name`` are ``"spikevae <version>"``,
  ``was_generated_by`` is ``[["spikevae", version]]`` (where pynwb has it),
  and ``notes`` is a JSON document ``{"spikevae": version, "method", "run_id",
  "session_start_time_source", "config"}`` holding the resolved configuration. ``notes`` is
  a standard text field of ``/general`` that every NWB reader shows and nwbinspector does
  not constrain; ``scratch`` is meant for data not to be shared, and a processing module
  cannot hold text without an extension.

The file is written to a temporary file beside the target that replaces it only when
complete. An existing file is only replaced when it is an NWB file written by spikevae.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import h5py
import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting, Spikes
from . import resolve_method

log = logging.getLogger(__name__)

#: Waveform rows read from the run store at a time.
BLOCK = 65_536
#: Byte offset of the time origin (Windows SYSTEMTIME, 8 x uint16) in Blackrock basic headers.
TIME_ORIGIN_OFFSET = {b"NEURALCD": 294, b"BRSMPGRP": 294, b"NEURALEV": 28, b"BREVENTS": 28}
#: Names the electrodes table already uses: map label columns of these names are prefixed ``map_``.
ELECTRODE_COLUMNS = {"x", "y", "z", "imp", "location", "filtering", "group", "group_name", "rel_x", "rel_y",
                     "rel_z", "reference", "channel_id", "channel_name", "electrode", "id"}
#: Descriptions of the Units columns from ``metrics.json`` (others get a generic one).
METRIC_DESCRIPTIONS = {
    "channel_id": "channel id of the unit's electrode (or its channel group's name)",
    "x_um": "x position of the unit's electrode (µm)",
    "y_um": "y position of the unit's electrode (µm)",
    "n_spikes": "number of spikes",
    "n_spikes_matched": "spikes with a waveform in the run store",
    "firing_rate_hz": "firing rate (Hz)",
    "amplitude_uv": "median amplitude at the aligned peak (µV)",
    "snr": "peak of the mean waveform over the electrode's noise σ",
    "isi_violations_ratio": "ISI violations ratio (Hill et al. 2011)",
    "isi_violations_rate": "ISI violations per second",
    "isi_violations_count": "inter-spike intervals shorter than the refractory period",
    "rp_contamination": "refractory-period contamination estimate",
    "rp_violations": "refractory-period violations",
    "sliding_rp_violation": "sliding refractory-period contamination (IBL)",
    "presence_ratio": "fraction of time bins with spikes",
    "amplitude_cutoff": "estimated fraction of spikes missed below threshold",
    "noise_cutoff": "noise cutoff of the amplitude distribution (IBL)",
    "isolation_distance": "Mahalanobis isolation distance in feature space",
    "l_ratio": "L-ratio in feature space",
    "d_prime": "LDA d' against the other spikes of the electrode",
    "silhouette": "silhouette score in feature space",
    "nn_hit_rate": "nearest-neighbour hit rate",
    "nn_miss_rate": "nearest-neighbour miss rate",
    "good": "spikevae's good label under the run's quality preset",
}


#: The Subject written when neither the caller nor the recording info gives one: every value is
#: NWB's own way of saying "unknown" (sex 'U', age 'P0D/' = zero days or older), so nwbinspector's
#: required subject fields are present without inventing facts; the species stays empty.
UNKNOWN_SUBJECT = {"subject_id": "unknown", "sex": "U", "age": "P0D/",
                   "description": "not known to spikevae: replace with the real subject before sharing the file"}


def _subject(pynwb, rec_info: dict, subject: dict | None):
    """A pynwb Subject from ``subject``, else the recording info's ``subject``, else :data:`UNKNOWN_SUBJECT`."""
    fields = subject or rec_info.get("subject") or UNKNOWN_SUBJECT
    try:
        return pynwb.file.Subject(**fields)
    except TypeError as exc:
        raise SpikevaeError(f"subject {fields}: not valid pynwb Subject fields ({exc}); use keys such as "
                            "subject_id, species, sex, age") from None


def _import_pynwb():
    try:
        import pynwb
    except ImportError:
        raise SpikevaeError("writing NWB files needs pynwb, which is not installed: pip install 'spikevae[nwb]'") \
            from None
    return pynwb


def _version() -> str:
    from .. import __version__

    return f"spikevae {__version__}"


def _generated_by(pynwb) -> dict:
    """``was_generated_by`` (software name and version, NWB 2.7+) where this pynwb has it."""
    from .. import __version__

    names = {a["name"] for a in pynwb.NWBFile.__init__.__docval__["args"]}
    return {"was_generated_by": [["spikevae", __version__]]} if "was_generated_by" in names else {}


def _check_target(path: Path) -> None:
    """Refuse to replace anything but an NWB file spikevae wrote (its ``source_script`` names spikevae)."""
    if not path.exists():
        return
    ours = False
    if path.is_file():
        try:
            with h5py.File(path, "r") as f:
                script = f.get("general/source_script")
                name = script.attrs.get("file_name", b"") if script is not None else b""
                name = name.decode() if isinstance(name, bytes) else str(name)
                ours = "nwb_version" in f.attrs and name.startswith("spikevae")
        except OSError:
            ours = False
    if not ours:
        raise SpikevaeError(f"{path}: exists and is not an NWB file written by spikevae; choose another --nwb path "
                            "(an earlier spikevae NWB export there is replaced)")


# -- session start time and identifier ------------------------------------------------------
def blackrock_time_origin(path) -> datetime | None:
    """The time origin (UTC) in the basic header of a Blackrock NSx (2.2+) or NEV file, or None.

    Parameters
    ----------
    path : path
        A ``.nsX`` or ``.nev`` file; an NSx 2.1 file (no time origin) is looked up through
        the ``.nev`` beside it.

    Returns
    -------
    datetime or None
        Timezone-aware (UTC); None for other files, an unreadable or zero time origin.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(310)
    except OSError:
        return None
    if head[:8] == b"NEURALSG":
        nev = path.with_suffix(".nev")
        return blackrock_time_origin(nev) if nev.exists() else None
    offset = TIME_ORIGIN_OFFSET.get(head[:8])
    if offset is None or len(head) < offset + 16:
        return None
    year, month, _dow, day, hour, minute, second, ms = struct.unpack_from("<8H", head, offset)
    try:
        return datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=timezone.utc)
    except ValueError:  # an all-zero or corrupt time origin
        return None


def session_start_time(rec_info: dict, run_dir: Path) -> tuple[datetime, str]:
    """The recording's start time (timezone-aware) and a phrase saying where it comes from.

    See the module docstring for the order: recording info, Blackrock header, then the
    source file's (else the run store's) modification time minus the duration.
    """
    for key in ("rec_datetime", "start_time"):
        if rec_info.get(key):
            t = datetime.fromisoformat(str(rec_info[key]))
            return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)), f"recording info '{key}'"
    source = Path(str(rec_info.get("source", "")))
    t = blackrock_time_origin(source) if source.is_file() else None
    if t is not None:
        return t, f"time origin in the Blackrock header of {source.name} (UTC)"
    stamp = source if source.is_file() else run_dir / "run.h5"
    t = datetime.fromtimestamp(stamp.stat().st_mtime, tz=timezone.utc)
    t -= timedelta(seconds=float(rec_info.get("duration_s", 0.0) or 0.0))
    log.warning("%s: the recording holds no start time; session_start_time is the modification time of %s minus "
                "its duration (%s)", source, stamp, t.isoformat())
    return t, f"no start time in the recording: modification time of {stamp.name} minus the duration (UTC)"


def run_identifier(info: dict, method: str, sorting_hash: str) -> str:
    """A UUID that depends only on the run's configuration, input, method and sorting."""
    rec = info.get("recording", {})
    doc = {"config": info.get("config", {}), "method": method, "sorting": sorting_hash,
           "input": {"name": Path(str(rec.get("source", ""))).name, "fs": rec.get("fs"),
                     "n_samples": rec.get("n_samples"), "channel_ids": rec.get("channel_ids")}}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return str(uuid.UUID(hex=digest[:32]))


# -- device, groups, electrodes --------------------------------------------------------------
def _is_blackrock(rec_info: dict) -> bool:
    source = str(rec_info.get("source", "")).lower()
    return "Blackrock" in str(rec_info.get("reader", "")) or source.endswith(
        (".ns1", ".ns2", ".ns3", ".ns4", ".ns5", ".ns6", ".nev"))


def _add_device(nwbfile, rec_info: dict):
    """The array as a Device; its maker as a DeviceModel where pynwb has them (NWB 2.9), else the older field."""
    n = int(rec_info.get("n_channels", 0))
    if not _is_blackrock(rec_info):
        return nwbfile.create_device(name="multielectrode array", description=f"multielectrode array ({n} channels)")
    desc = f"Utah multielectrode array recorded with a Blackrock system ({n} channels)"
    if hasattr(nwbfile, "create_device_model"):
        model = nwbfile.create_device_model(name="Utah array model", manufacturer="Blackrock Microsystems",
                                            description="Utah (Blackrock) microelectrode array")
        return nwbfile.create_device(name="Utah array", description=desc, model=model)
    return nwbfile.create_device(name="Utah array", description=desc, manufacturer="Blackrock Microsystems")


def _channel_groups(groups: np.ndarray | None, names, n_channels: int) -> tuple[list[str], np.ndarray]:
    """Names of the ElectrodeGroups and the group index of every recording channel.

    ``groups`` is the run's ``group_channels`` (n_groups, k) (-1 padded), or None: then every
    channel is in one group, ``"array"``. Channels of groups of one stay in ``"array"``.
    """
    of_channel = np.zeros(n_channels, np.int64)
    labels = ["array"]
    for g, row in enumerate(groups if groups is not None else []):
        chans = row[row >= 0]
        if chans.size > 1:
            labels.append(f"group {names[g]}")
            of_channel[chans] = len(labels) - 1
    return labels, of_channel


def _filtering(config: dict) -> str:
    from ..params import load_config

    pre = load_config(base={"preprocess": config.get("preprocess", {})}).preprocess
    lo, hi = pre.band_hz()
    text = (f"software (spikevae): zero-phase (forward-backward) Butterworth band-pass, order {pre.order}, "
            f"{lo:g}-{hi:g} Hz")
    return text + ("; then common median reference" if pre.cmr else "")


def label_columns(rec_info: dict, n_channels: int) -> dict[str, list]:
    """Electrode-map label columns (``electrode_labels`` of the recording info), one value per channel.

    Returns
    -------
    dict
        Column name -> list of ``n_channels`` values: ints (-1 where missing) when every
        known value is an int, else strings ("" where missing). Empty without a map.
    """
    rows = rec_info.get("electrode_labels")
    if not isinstance(rows, list) or len(rows) != n_channels:
        return {}
    rows = [r if isinstance(r, dict) else ({"label": r} if r is not None else {}) for r in rows]
    out = {}
    for key in dict.fromkeys(k for r in rows for k in r):
        vals = [r.get(key) for r in rows]
        known = [v for v in vals if v is not None]
        ints = bool(known) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in known)
        name = f"map_{key}" if key in ELECTRODE_COLUMNS else str(key)
        out[name] = [int(v) if v is not None else -1 for v in vals] if ints else \
            ["" if v is None else str(v) for v in vals]
    return out


def add_electrodes(nwbfile, rec_info: dict, config: dict, group_labels: list[str], of_channel: np.ndarray,
                   location: str) -> list:
    """Create the ElectrodeGroups and the electrodes table (one row per recording channel).

    Returns
    -------
    list of ElectrodeGroup
        In the order of ``group_labels``.
    """
    from ..recording import default_positions

    ids = [str(c) for c in rec_info.get("channel_ids", [])]
    n = len(ids)
    pos = np.asarray(rec_info.get("positions_um") or default_positions(n), dtype=np.float64).reshape(-1, 2)
    if pos.shape[0] != n:
        pos = default_positions(n)
    device = _add_device(nwbfile, rec_info)
    groups = [nwbfile.create_electrode_group(name=g, description=f"{g}: {int(np.sum(of_channel == k))} channels",
                                             location=location, device=device) for k, g in enumerate(group_labels)]
    extra = {"channel_id": ("channel id in the recording (Blackrock: electrode number)", ids)}
    names = rec_info.get("channel_names")
    if isinstance(names, list) and len(names) == n:
        extra["channel_name"] = ("channel name in the file (neo)", [str(x) for x in names])
    for col, vals in label_columns(rec_info, n).items():
        extra[col] = (f"electrode map ({rec_info.get('electrode_map', '')}): {col}", vals)
    for col, (desc, _) in extra.items():
        nwbfile.add_electrode_column(name=col, description=desc)
    filtering = _filtering(config)
    for i in range(n):
        nwbfile.add_electrode(x=float(pos[i, 0]), y=float(pos[i, 1]), rel_x=float(pos[i, 0]), rel_y=float(pos[i, 1]),
                              location=location, filtering=filtering, group=groups[of_channel[i]], id=i,
                              **{col: vals[i] for col, (_, vals) in extra.items()})
    return groups


# -- units -----------------------------------------------------------------------------------
def waveform_stats(spikes: Spikes, sorting: Sorting, unit_ids: np.ndarray,
                   block: int = BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and SD (µV) of each unit's waveforms, read ``block`` rows at a time.

    Parameters
    ----------
    spikes : Spikes
        The run's spikes (:func:`spikevae.store.load_spikes`: their waveforms are read from disk
        block by block).
    sorting : Sorting
    unit_ids : ndarray of shape (n_units,)

    Returns
    -------
    mean, sd : ndarray of shape (n_units, L), float64, µV
        Population SD (ddof = 0); zeros for a unit none of whose spikes has a waveform.
    count : ndarray of shape (n_units,), int64
        Spikes with a waveform per unit.
    """
    wf = spikes.waveforms
    from ..quality.compute import match_spikes

    rows = match_spikes(spikes, sorting)
    unit_of_row = np.full(wf.shape[0], -1, np.int64)
    keep = (rows >= 0) & (sorting.unit >= 0)
    unit_of_row[rows[keep]] = np.searchsorted(unit_ids, sorting.unit[keep])
    total = np.zeros((unit_ids.size, wf.shape[1]), np.float64)
    squares = np.zeros_like(total)
    count = np.bincount(unit_of_row[unit_of_row >= 0], minlength=unit_ids.size).astype(np.int64)
    for s in range(0, wf.shape[0], block):
        u = unit_of_row[s:s + block]
        ok = u >= 0
        if ok.any():
            x = wf[s:s + block][ok].astype(np.float64)
            np.add.at(total, u[ok], x)
            np.add.at(squares, u[ok], x * x)
    n = np.maximum(count, 1)[:, None]
    mean = total / n
    return mean, np.sqrt(np.maximum(squares / n - mean * mean, 0.0)), count


def _metric_columns(metrics: list[dict], unit_ids: np.ndarray) -> dict[str, tuple[str, list]]:
    """Units columns from the metric rows: name -> (description, one value per unit).

    Bool columns stay bool; numbers become float64 with NaN where undefined (ints stay
    ints when every unit has one); anything else becomes a string.
    """
    by_unit = {int(r["unit"]): r for r in metrics}
    missing = [int(u) for u in unit_ids if int(u) not in by_unit]
    if missing:
        raise SpikevaeError(f"metrics.json has no row for units {missing[:5]}; rerun `spikevae report` on the run "
                            "folder to rewrite it")
    out = {}
    for key in dict.fromkeys(k for r in metrics for k in r):
        if key in ("unit", "electrode"):
            continue
        vals = [by_unit[int(u)].get(key) for u in unit_ids]
        known = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
        desc = METRIC_DESCRIPTIONS.get(key, f"quality metric '{key}' (spikevae.quality)")
        if known and all(isinstance(v, (bool, np.bool_)) for v in known):
            vals = [bool(v) for v in vals]
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            vals = [int(v) for v in vals]
        elif all(isinstance(v, (int, float, np.number)) for v in known):
            vals = [math.nan if v is None else float(v) for v in vals]
        else:
            vals = ["" if v is None else str(v) for v in vals]
        out[key] = (desc, vals)
    return out


@dataclass
class ElectrodeLayout:
    """Where units sit.

    Attributes
    ----------
    group_channels : ndarray of shape (n_groups, k), int64, or None
        The run's channel groups (recording-channel indices, -1 padded); None: one channel per electrode.
    electrode_groups : list of pynwb.ecephys.ElectrodeGroup
    of_channel : ndarray of shape (n_channels,), int64
        Index into ``electrode_groups`` of each recording channel.
    """

    group_channels: np.ndarray | None
    electrode_groups: list
    of_channel: np.ndarray


def _unit_channels(groups: np.ndarray | None, electrode: int) -> np.ndarray:
    """Recording-channel indices of a sorting electrode (a channel, or a group's channels)."""
    if groups is None:
        return np.array([electrode], np.int64)
    row = groups[electrode]
    return row[row >= 0]


def add_units(units, sorting: Sorting, stats, metrics: list[dict], layout: ElectrodeLayout,
              interval: tuple[float, float]) -> None:
    """Fill the Units table ``units`` (see the module docstring for its columns).

    Parameters
    ----------
    units : pynwb.misc.Units
    sorting : Sorting
    stats : tuple
        :func:`waveform_stats` of the sorting's units.
    metrics : list of dict
        One row per unit (``metrics.json``'s ``units``).
    layout : ElectrodeLayout
    interval : (float, float)
        Start and end of the sorted segment, s from the session start.
    """
    groups, t0 = layout.group_channels, interval[0]
    unit_ids = sorting.unit_ids
    mean, sd, _ = stats
    k = 1 if groups is None else groups.shape[1]
    mean = mean.reshape(unit_ids.size, k, -1).transpose(0, 2, 1)  # (n_units, L, k)
    sd = sd.reshape(unit_ids.size, k, -1).transpose(0, 2, 1)
    columns = _metric_columns(metrics, unit_ids)
    units.add_column(name="electrode", description="row of the electrodes table of the unit's channel "
                                                   "(for a channel group: the one with the largest mean peak)")
    for key, (desc, _) in columns.items():
        units.add_column(name=key, description=desc)
    order = np.argsort(sorting.unit, kind="stable")
    starts = np.searchsorted(sorting.unit[order], unit_ids)
    ends = np.searchsorted(sorting.unit[order], unit_ids, side="right")
    for j, u in enumerate(unit_ids):
        own = order[starts[j]:ends[j]]  # the unit's spikes; its electrode is their most common one
        chans = _unit_channels(groups, int(np.bincount(sorting.electrode[own]).argmax()))
        main = int(chans[int(np.argmax(np.abs(mean[j, :, :chans.size]).max(axis=0)))]) if chans.size else 0
        times = t0 + np.sort(sorting.sample_index[own]) / sorting.fs
        wm, ws = mean[j] if k > 1 else mean[j, :, 0], sd[j] if k > 1 else sd[j, :, 0]
        units.add_unit(spike_times=times, obs_intervals=[list(interval)], electrodes=chans.tolist(),
                       electrode_group=layout.electrode_groups[layout.of_channel[main]], id=int(u), electrode=main,
                       waveform_mean=(wm * 1e-6).astype(np.float32), waveform_sd=(ws * 1e-6).astype(np.float32),
                       **{key: vals[j] for key, (_, vals) in columns.items()})


def _units_table(nwbfile, fs: float, peak_index: int):
    """An empty Units table with the waveform rate, unit (volts) and resolution set."""
    from pynwb.misc import Units

    kwargs = dict(name="units", description="units sorted by spikevae; waveforms in volts on the unit's "
                                            "electrode(s), mean and SD of the run's aligned spike waveforms",
                  electrode_table=nwbfile.electrodes, waveform_rate=float(fs), waveform_unit="volts",
                  resolution=1.0 / float(fs))
    if "waveform_time_before_peak_in_ms" in {a["name"] for a in Units.__init__.__docval__["args"]}:
        kwargs["waveform_time_before_peak_in_ms"] = 1000.0 * peak_index / float(fs)
    return Units(**kwargs)


def _duration_s(rec_info: dict, fs: float) -> float:
    """Length of the sorted segment, s: its samples over the rate; for a ``.nev`` run (no
    continuous data) the recording info's duration, which ends at the last spike."""
    n = rec_info.get("n_samples")
    return float(n) / fs if n else float(rec_info.get("duration_s", 0.0) or 0.0)


def _metrics(run_dir: Path, method: str, main: str, sorting: Sorting, info: dict) -> list[dict]:
    """The run's metric rows: ``metrics.json`` for the main method (checked against the run's
    manifest), else computed as the phy export does."""
    from .. import store
    from .phy import _metrics_for

    path = run_dir / "metrics.json"
    if method == main and path.exists():
        store.check_output(path)
        return json.loads(path.read_text())["units"]
    dur = float(info.get("recording", {}).get("duration_s", 0.0))
    return _metrics_for(run_dir, method, main, store.load_spikes(run_dir), sorting, info.get("config", {}), dur,
                        info.get("recording", {}).get("positions_um"))


def _new_nwbfile(pynwb, run_dir: Path, info: dict, method: str, subject: dict | None):
    """The NWBFile with its session metadata, subject and provenance (no tables yet)."""
    from .. import store

    rec_info = info.get("recording", {})
    start, start_how = session_start_time(rec_info, run_dir)
    provenance = {"spikevae": _version(), "method": method, "run_id": info.get("run_id"),
                  "session_start_time_source": start_how, "config": info.get("config", {})}
    return pynwb.NWBFile(
        session_description=f"spike sorting by {_version()} ({method} features) of "
                            f"{Path(str(rec_info.get('source', 'a recording'))).name}: "
                            f"{rec_info.get('n_channels')} channels, {rec_info.get('duration_s')} s at "
                            f"{rec_info.get('fs')} Hz",
        identifier=run_identifier(info, method, store.RunStore(run_dir).hash_of(f"sorting/{method}")),
        session_start_time=start, source_script=_version(), source_script_file_name=_version(),
        notes=json.dumps(provenance, indent=1, default=str), keywords=["spike sorting", "spikevae"],
        subject=_subject(pynwb, rec_info, subject), **_generated_by(pynwb))


def export_nwb(run_dir, nwb_path, *, method: str | None = None, location: str = "unknown",
               subject: dict | None = None) -> Path:
    """Write the sorting of the run in ``run_dir`` as an NWB file (orchestrator).

    Parameters
    ----------
    run_dir : path
        Output folder of ``spikevae run`` (``run.h5``, ``metrics.json``).
    nwb_path : path
        File to write; replaced atomically if it is an earlier spikevae NWB export.
    method : str, optional
        Which sorting (default: the run's main feature method).
    location : str
        Brain location of the electrodes (NWB ``location``), ``"unknown"`` by default.
    subject : dict, optional
        Fields of a pynwb ``Subject`` (``subject_id``, ``species``, ``sex``, ``age``, ...);
        default: the recording info's ``subject``, else :data:`UNKNOWN_SUBJECT`.

    Returns
    -------
    Path
        ``nwb_path``.

    Raises
    ------
    SpikevaeError
        pynwb missing, no run in ``run_dir``, no such sorting, or ``nwb_path`` holds something else.
    """
    from .. import store
    from ..store import atomic_path

    pynwb = _import_pynwb()
    run_dir, nwb_path = Path(run_dir), Path(nwb_path)
    if not run_dir.is_dir():
        raise SpikevaeError(f"{run_dir}: no such run folder; run `spikevae run REC -o {run_dir}` first")
    _check_target(nwb_path)
    info = store.load_run_info(run_dir)
    method, main = resolve_method(run_dir, info, method)
    sorting = store.load_sorting(run_dir, method)
    rec_info, config = info.get("recording", {}), info.get("config", {})
    nwbfile = _new_nwbfile(pynwb, run_dir, info, method, subject)
    sp = store.load_spikes(run_dir)  # the waveforms stay on disk; waveform_stats reads them in blocks
    groups = sp.group_channels
    labels, of_channel = _channel_groups(groups, [str(x) for x in sp.channel_ids], len(rec_info.get("channel_ids", [])))
    ele_groups = add_electrodes(nwbfile, rec_info, config, labels, of_channel, location)
    stats = waveform_stats(sp, sorting, sorting.unit_ids)
    peak_index = sp.peak_index
    nwbfile.units = _units_table(nwbfile, sorting.fs, peak_index)
    t0 = float(rec_info.get("t_start_s", 0.0) or 0.0)
    add_units(nwbfile.units, sorting, stats, _metrics(run_dir, method, main, sorting, info),
              ElectrodeLayout(groups, ele_groups, of_channel), (t0, t0 + _duration_s(rec_info, sorting.fs)))
    with atomic_path(nwb_path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")  # the temporary file's name
        with pynwb.NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)
    log.info("NWB export of %s (%s): %d units, %d electrodes -> %s", run_dir, method, sorting.unit_ids.size,
             len(of_channel), nwb_path)
    return nwb_path
