"""One recording of a batch: sort it with :func:`~spikevae.pipeline.run_pipeline` and sum it up in a row.

:func:`sort_one` is what every engine runs (in this process, a worker process or a Dask
worker). Errors of the input or the configuration (:class:`~spikevae.errors.SpikevaeError`)
make a ``failed`` row at once: running them again would fail again. Anything else (a bug, a
full disk, a lost network file) propagates, so that the engine can retry it.

After a successful sort the output folder gets ``batch_task.json``: the input's content
identity, the configuration's hash, the ground truth's identity and the run id. A later batch
with the same input, configuration and ground truth, whose folder still holds the outputs
that the run's manifest lists, unchanged, skips the recording (status ``skipped-cached``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SpikevaeError
from .inputs import BatchItem

log = logging.getLogger(__name__)

#: Marker of a finished batch task in its output folder.
MARKER = "batch_task.json"
#: Columns of the batch summary, in order.
ROW_FIELDS = ("recording", "output", "status", "error", "attempts", "n_spikes", "n_units", "n_good", "duration_s",
              "wall_s", "x_realtime", "accuracy", "n_well_detected", "n_gt_units")


@dataclass
class TaskOptions:
    """How each recording of a batch is sorted.

    Attributes
    ----------
    report : bool
        Write quality metrics and the HTML report (as ``spikevae run``).
    force : bool
        Recompute every stage, and never skip a recording as cached.
    electrodes_on_dask : bool
        On a Dask worker, cluster the electrodes as Dask tasks too (else in the worker's
        own processes, ``cluster.n_jobs``).
    hook : callable, optional
        ``hook(item)`` runs in the worker before each attempt (fault injection in tests,
        instrumentation). It must be importable by the workers (a module-level function).
    """

    report: bool = True
    force: bool = False
    electrodes_on_dask: bool = True
    hook: Callable | None = None


def item_config(config_dict: dict, item: BatchItem):
    """The PipelineConfig of one recording: the batch's, with the item's overrides.

    Raises
    ------
    SpikevaeConfigError
        Naming the recording and the key, for an override that is not valid.
    """
    from ..errors import SpikevaeConfigError
    from ..params import load_config

    try:
        return load_config(None, list(item.overrides), base=config_dict)
    except SpikevaeConfigError as exc:
        raise SpikevaeConfigError(f"{item.recording}: {exc}") from None


def sort_one(item: BatchItem, config_dict: dict, options: TaskOptions) -> dict:
    """Sort one recording into ``item.output`` and return its summary row (:data:`ROW_FIELDS`).

    Parameters
    ----------
    item : BatchItem
    config_dict : dict
        The batch's resolved configuration (``spikevae.config.to_dict``).
    options : TaskOptions

    Returns
    -------
    dict
        ``status`` is ``ok``, ``skipped-cached`` or ``failed`` (with ``error``, one line);
        ``notes`` holds the table's note columns.

    Raises
    ------
    Exception
        Anything but a :class:`~spikevae.errors.SpikevaeError`, for the engine to retry.
    """
    t0 = time.perf_counter()
    if options.hook is not None:
        options.hook(item)
    try:
        cfg = item_config(config_dict, item)
        ident = _identity(item, cfg, options)
        if not options.force and _is_cached(item, ident):
            return row_from_folder(item, "skipped-cached", time.perf_counter() - t0)
        from ..execution import allow_children
        from ..pipeline import run_pipeline

        with allow_children(), _electrode_executor(options):
            run_pipeline(item.recording, cfg, item.output, gt=item.gt, progress=False, force=options.force,
                         report=options.report)
        _write_marker(item, ident)
        return row_from_folder(item, "ok", time.perf_counter() - t0)
    except SpikevaeError as exc:
        return failed_row(item, one_line(exc), time.perf_counter() - t0)


def one_line(exc: BaseException, limit: int = 400) -> str:
    """An exception as one line: its type when it is not a user error, then its first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, SpikevaeError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed_row(item: BatchItem, error: str, wall_s: float | None = None) -> dict:
    """The summary row of a recording that could not be sorted."""
    row = dict.fromkeys(ROW_FIELDS)
    row.update(recording=item.recording, output=item.output, status="failed", error=error,
               wall_s=None if wall_s is None else round(wall_s, 3), notes=dict(item.notes))
    return row


def row_from_folder(item: BatchItem, status: str, wall_s: float) -> dict:
    """The summary row of a sorted recording, from its output folder's ``summary.json`` and ``metrics.json``."""
    out = Path(item.output)
    s = json.loads((out / "summary.json").read_text())
    row = dict.fromkeys(ROW_FIELDS)
    dur = float(s.get("duration_s") or 0.0)
    row.update(recording=item.recording, output=item.output, status=status, error="", n_spikes=s.get("spikes"),
               n_units=s.get("units"), duration_s=round(dur, 3), wall_s=round(wall_s, 3),
               x_realtime=round(dur / wall_s, 2) if status == "ok" and wall_s > 0 else None, notes=dict(item.notes))
    metrics = out / "metrics.json"
    if metrics.is_file():
        row["n_good"] = sum(bool(u.get("good")) for u in json.loads(metrics.read_text()).get("units", []))
    gt = s.get("ground_truth", {}).get(s.get("feature_method"))
    if gt:
        row.update(accuracy=round(float(gt["mean_accuracy"]), 4), n_well_detected=gt["n_well_detected"],
                   n_gt_units=gt["n_gt_units"])
    return row


def _electrode_executor(options: TaskOptions):
    """Dask for the electrodes when this task runs on a Dask worker (and it is asked for)."""
    if not options.electrodes_on_dask:
        return contextlib.nullcontext()
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):  # dask not installed, or not on a Dask worker
        return contextlib.nullcontext()
    from ..execution import dask_executor

    return dask_executor(None)


def _identity(item: BatchItem, cfg, options: TaskOptions) -> dict:
    """What a cached result must have been made from: input content, configuration, ground truth."""
    from ..config import config_hash, to_dict
    from ..identity import file_identity
    from ..pipeline import input_identity, open_input

    data = open_input(item.recording, cfg)
    ident = {k: v for k, v in input_identity(item.recording, data).items() if k != "path"}
    return {"input": ident, "config": config_hash(to_dict(cfg)), "report": bool(options.report),
            "gt": file_identity(item.gt) if item.gt else None}


def _is_cached(item: BatchItem, ident: dict) -> bool:
    from ..store import MANIFEST, check_output, read_manifest

    out = Path(item.output)
    marker = out / MARKER
    if not marker.is_file() or not (out / MANIFEST).is_file():
        return False
    try:
        doc = json.loads(marker.read_text())
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    manifest = read_manifest(out)
    if manifest is None or doc.get("made_from") != ident or summary.get("run_id") != doc.get("run_id") \
            or manifest.get("run_id") != doc.get("run_id"):
        return False
    try:
        for name in manifest["files"]:
            if not (out / name).is_file():
                return False
            check_output(out / name)
    except SpikevaeError:
        return False
    return True


def _write_marker(item: BatchItem, ident: dict) -> None:
    from ..store import write_text

    out = Path(item.output)
    run_id = json.loads((out / "summary.json").read_text()).get("run_id")
    write_text(out / MARKER, json.dumps({"run_id": run_id, "made_from": ident}, indent=1, default=str))
