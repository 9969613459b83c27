"""spikevae sortings as SpikeInterface sortings, and back.

- :func:`to_spikeinterface`: a :class:`~spikevae.objects.Sorting` as a ``NumpySorting``
  whose units carry the properties ``electrode`` (index into the recording's channels),
  ``main_channel_id`` (that channel's id, when the ids are given; the name
  SpikeInterface's own ground-truth generator uses) and every quality metric given;
- :func:`sorting_from_run`: the same from a run folder, with the run's channel ids and metrics;
- :func:`from_spikeinterface`: any SpikeInterface sorting back as a spikevae Sorting, each
  unit on the electrode its ``main_channel_id`` or ``electrode`` property names;
- :func:`save_spikeinterface`: a SpikeInterface sorting folder (``spikeinterface.core.load``
  reads it back), written atomically.

Unsorted spikes (unit -1) have no SpikeInterface unit and are left out.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..io.spikeinterface import require_spikeinterface
from ..objects import Sorting
from . import resolve_method

log = logging.getLogger(__name__)

#: Metric-row keys that are not unit properties of their own (the unit, and what electrode/main_channel_id say).
_NOT_PROPERTIES = ("unit", "electrode", "channel_id")


def _property_column(values: list) -> np.ndarray:
    """One property's values (None = missing) as a typed array: bool, float (NaN missing) or str."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([bool(v) if v is not None else False for v in values])
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values])


def unit_property_arrays(unit_ids, rows: list[dict]) -> dict[str, np.ndarray]:
    """Metric rows (one dict per unit, with ``unit``) as one array per metric, in ``unit_ids`` order.

    Parameters
    ----------
    unit_ids : array-like of int, shape (n_units,)
    rows : list of dict
        E.g. :func:`spikevae.quality.compute_metrics` output or ``metrics.json``'s ``units``.

    Returns
    -------
    dict of str to ndarray of shape (n_units,)
        Units without a row get NaN (numbers), False (bools) or "" (text).
    """
    by_unit = {}
    for i, r in enumerate(rows):
        if "unit" not in r:
            raise SpikevaeError(f"unit_properties row {i} has no 'unit' key; each row must name its unit "
                                "(as compute_metrics and metrics.json rows do)")
        by_unit[int(r["unit"])] = r
    keys = [k for r in rows for k in r if k not in _NOT_PROPERTIES]
    keys = list(dict.fromkeys(keys))
    return {k: _property_column([by_unit.get(int(u), {}).get(k) for u in unit_ids]) for k in keys}


def to_spikeinterface(sorting: Sorting, channel_ids=None, unit_properties: list[dict] | None = None):
    """A spikevae Sorting as a SpikeInterface ``NumpySorting`` (one segment).

    Parameters
    ----------
    sorting : Sorting
        Spike samples (from the recording's start), electrodes and units (-1 = unsorted, left out).
    channel_ids : array-like of str, shape (n_electrodes,), optional
        The recording's channel ids (``Recording.channel_ids``, ``Spikes.channel_ids``): sets
        the ``main_channel_id`` unit property. Without them only ``electrode`` is set.
    unit_properties : list of dict, optional
        Quality metrics, one row per unit with its ``unit`` (:func:`~spikevae.quality.compute_metrics`
        output, or ``metrics.json``'s ``units``): each column becomes a unit property.

    Returns
    -------
    spikeinterface.core.NumpySorting
        Unit ids are spikevae's (int64); properties ``electrode`` (int64), ``main_channel_id``
        (str, with ``channel_ids``) and the metrics.

    Raises
    ------
    SpikevaeError
        When a unit's electrode is not an index into ``channel_ids``.
    """
    si_core = require_spikeinterface()
    keep = sorting.unit >= 0
    order = np.argsort(sorting.sample_index[keep], kind="stable")
    unit_ids = sorting.unit_ids.astype(np.int64)
    si = si_core.NumpySorting.from_samples_and_labels([sorting.sample_index[keep][order]],
                                                      [sorting.unit[keep][order]], sorting.fs, unit_ids=unit_ids)
    electrode = np.array([sorting.unit_electrode()[int(u)] for u in unit_ids], dtype=np.int64)
    si.set_property("electrode", electrode)
    if channel_ids is not None:
        ids = np.asarray(channel_ids).astype(str)
        bad = electrode[(electrode < 0) | (electrode >= ids.size)]
        if bad.size:
            raise SpikevaeError(f"electrode {int(bad[0])} is not an index into the {ids.size} channel_ids given; "
                                "pass the channel ids of the recording the sorting was made from")
        si.set_property("main_channel_id", ids[electrode])
    for key, values in unit_property_arrays(unit_ids, unit_properties or []).items():
        si.set_property(key, values)
    return si


def _run_metrics(run_dir: Path, method: str, main: str) -> list[dict] | None:
    """The run's metrics.json rows for its main method (None otherwise, or when it wrote none)."""
    path = run_dir / "metrics.json"
    if method != main or not path.is_file():
        return None
    return json.loads(path.read_text())["units"]


def sorting_from_run(run_dir, method: str | None = None):
    """The sorting of a run folder as a SpikeInterface ``NumpySorting``.

    Parameters
    ----------
    run_dir : path
        Output folder of ``spikevae run``.
    method : str, optional
        Which sorting (``pca``, ``vae``; default: the run's main feature method).

    Returns
    -------
    spikeinterface.core.NumpySorting
        As :func:`to_spikeinterface`, with the run's channel ids; the quality metrics of
        ``metrics.json`` are unit properties for the main method.

    Raises
    ------
    SpikevaeError
        No run in ``run_dir``, or no such sorting (the message lists those it has).
    """
    from .. import store

    run_dir = Path(run_dir)
    info = store.load_run_info(run_dir)
    method, main = resolve_method(run_dir, info, method, hint="method=")
    spikes, sorting = store.load_spikes(run_dir), store.load_sorting(run_dir, method)
    return to_spikeinterface(sorting, spikes.channel_ids, _run_metrics(run_dir, method, main))


def _spikevae_unit_ids(unit_ids) -> np.ndarray:
    """SpikeInterface unit ids as spikevae's non-negative ints: themselves when they are, else 0..n-1."""
    try:
        ints = np.asarray(unit_ids).astype(np.int64)
    except (TypeError, ValueError):
        ints = None
    if ints is not None and (ints >= 0).all() and np.unique(ints).size == ints.size:
        return ints
    log.info("SpikeInterface unit ids %s... are not non-negative integers; numbered 0..%d in their order",
             list(unit_ids)[:3], len(unit_ids) - 1)
    return np.arange(len(unit_ids), dtype=np.int64)


def unit_electrodes(si_sorting, channel_ids=None) -> np.ndarray:
    """Electrode index of each unit of a SpikeInterface sorting, from its unit properties.

    ``main_channel_id`` is used when ``channel_ids`` are given, else ``electrode``.

    Returns
    -------
    ndarray of shape (n_units,), int64

    Raises
    ------
    SpikevaeError
        Naming what is missing: both properties, the ``channel_ids`` that ``main_channel_id``
        needs, or a channel id or electrode the recording does not have.
    """
    keys = set(si_sorting.get_property_keys())
    ids = None if channel_ids is None else np.asarray(channel_ids).astype(str)
    if ids is not None and "main_channel_id" in keys:
        index = {c: i for i, c in enumerate(ids)}
        main = np.asarray(si_sorting.get_property("main_channel_id")).astype(str)
        missing = [(u, c) for u, c in zip(si_sorting.unit_ids, main) if c not in index]
        if missing:
            raise SpikevaeError(f"unit {missing[0][0]}: main_channel_id '{missing[0][1]}' is not one of the "
                                f"{ids.size} channel_ids given; pass the channel ids of the sorted recording")
        return np.array([index[c] for c in main], dtype=np.int64)
    if "electrode" in keys:
        electrode = np.asarray(si_sorting.get_property("electrode")).astype(np.int64)
        if ids is not None and ((electrode < 0) | (electrode >= ids.size)).any():
            raise SpikevaeError(f"unit property 'electrode' holds {int(electrode.max())}, outside the "
                                f"{ids.size} channel_ids given; pass the channel ids of the sorted recording")
        return electrode
    if "main_channel_id" in keys:
        raise SpikevaeError("the SpikeInterface sorting names each unit's main_channel_id but no channel_ids were "
                            "given to turn them into electrodes; pass channel_ids=recording.channel_ids")
    raise SpikevaeError("the SpikeInterface sorting has no 'main_channel_id' or 'electrode' unit property, so its "
                        "units have no electrode; set one with si_sorting.set_property('main_channel_id', ids), "
                        "or score it with `spikevae compare`, which infers electrodes from the waveforms")


def from_spikeinterface(si_sorting, channel_ids=None, segment: int = 0) -> Sorting:
    """A SpikeInterface sorting (one segment) as a spikevae Sorting.

    Parameters
    ----------
    si_sorting : spikeinterface.core.BaseSorting
        With a ``main_channel_id`` (needs ``channel_ids``) or ``electrode`` unit property.
    channel_ids : array-like of str, optional
        The sorted recording's channel ids, to map ``main_channel_id`` to electrode indices.
    segment : int, default 0

    Returns
    -------
    Sorting
        Spikes in time order; unit ids are SpikeInterface's when they are non-negative
        integers, else 0..n-1 in ``unit_ids`` order (``params["si_unit_ids"]`` keeps them).

    Raises
    ------
    SpikevaeError
        For a missing segment, or units without an electrode (see :func:`unit_electrodes`).
    """
    n_seg = si_sorting.get_num_segments()
    if not 0 <= int(segment) < n_seg:
        raise SpikevaeError(f"the SpikeInterface sorting has no segment {segment}; it has {n_seg}, 0..{n_seg - 1}")
    electrode = unit_electrodes(si_sorting, channel_ids)
    units = _spikevae_unit_ids(si_sorting.unit_ids)
    sv = si_sorting.to_spike_vector()
    sv = sv[sv["segment_index"] == int(segment)]
    order = np.lexsort((electrode[sv["unit_index"]], sv["sample_index"]))
    sv = sv[order]
    params = {"source": "spikeinterface", "si_unit_ids": [str(u) for u in si_sorting.unit_ids]}
    return Sorting(sv["sample_index"], electrode[sv["unit_index"]], units[sv["unit_index"]],
                   si_sorting.get_sampling_frequency(), params)


def save_spikeinterface(si_sorting, folder) -> Path:
    """Save a SpikeInterface sorting as a folder that ``spikeinterface.core.load(folder)`` reads.

    Parameters
    ----------
    si_sorting : spikeinterface.core.BaseSorting
        E.g. from :func:`to_spikeinterface` or :func:`sorting_from_run` (properties are kept).
    folder : path
        Written atomically; an earlier SpikeInterface folder there is replaced.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    SpikevaeError
        When ``folder`` exists and is not a SpikeInterface folder (it is never replaced).
    """
    from ..store import atomic_path

    folder = Path(folder)
    foreign = folder.is_dir() and any(folder.iterdir()) and not (folder / "si_folder.json").exists()
    if foreign or folder.is_file():
        raise SpikevaeError(f"{folder}: exists and is not a SpikeInterface folder; choose another folder "
                            "(an earlier SpikeInterface folder would be replaced)")
    with atomic_path(folder) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The extractor is not serializable")  # in-memory: no provenance
        si_sorting.save(folder=tmp)
    log.info("SpikeInterface sorting (%d units) saved in %s", len(si_sorting.unit_ids), folder)
    return folder
