"""``run_batch``: many recordings, one output folder each, one summary table across them."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpikevaeError
from ..params import PipelineConfig
from .engines import choose_engine, connect, run_engine
from .inputs import BatchItem, collect_items
from .task import ROW_FIELDS, TaskOptions, item_config

log = logging.getLogger(__name__)

SUMMARY_CSV = "batch_summary.csv"
SUMMARY_JSON = "batch_summary.json"


@dataclass
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    rows : list of dict
        One row per recording, in input order (columns: :data:`~spikevae.batch.task.ROW_FIELDS`).
    out_dir : Path
        The batch's output folder (``batch_summary.csv`` and ``.json`` are in it).
    engine : str
        ``serial``, ``processes`` or ``dask``.
    wall_s : float
        Seconds for the whole batch.
    """

    rows: list
    out_dir: Path
    engine: str
    wall_s: float

    @property
    def failed(self) -> list[dict]:
        """Rows of the recordings that could not be sorted."""
        return [r for r in self.rows if r["status"] == "failed"]

    def counts(self) -> dict:
        """Recordings per status."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out


def run_batch(inputs=(), config: PipelineConfig | None = None, out_dir="spikevae-batch", *, table=None,
              gt_pattern: str | None = None, items: list[BatchItem] | None = None, scheduler: str | None = None,
              workers: int = 1, engine: str = "auto", retries: int = 2, options: TaskOptions | None = None,
              progress: bool = False) -> BatchResult:
    """Sort many recordings, each into its own folder under ``out_dir``, with the same pipeline as ``spikevae run``.

    Parameters
    ----------
    inputs : sequence of str
        Recording paths and glob patterns.
    config : PipelineConfig, optional
        The configuration of every recording (default: all defaults); a table's columns
        override it per recording.
    out_dir : path
        The batch folder: ``<out_dir>/<name>/`` per recording, and ``batch_summary.csv``/``.json``.
    table : path, optional
        CSV/TSV table of recordings (see :mod:`spikevae.batch.inputs`).
    gt_pattern : str, optional
        Ground truth per recording, e.g. ``{dir}/ground_truth.npz``.
    items : list of BatchItem, optional
        The recordings, already collected (instead of ``inputs``/``table``/``gt_pattern``).
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``).
    workers : int, default 1
        Local worker processes when no scheduler is given (1 = in this process).
    engine : {"auto", "serial", "processes", "dask"}
        See :mod:`spikevae.batch.engines`.
    retries : int, default 2
        Times a recording is run again after its task raised or its worker died.
    options : TaskOptions, optional
        Report, force, per-electrode Dask.
    progress : bool, default False
        A progress bar over recordings.

    Returns
    -------
    BatchResult
        Failed recordings are in its rows; this function does not raise for them.

    Raises
    ------
    SpikevaeError
        Before anything is sorted: no recordings, a missing file, a table or override that is
        not valid, an unknown engine, Dask asked for but missing, or no scheduler at ``scheduler``.
    """
    from ..config import to_dict
    from ..store import check_writable

    t0 = time.perf_counter()
    config = config if config is not None else PipelineConfig()
    options = options or TaskOptions()
    if retries < 0:
        raise SpikevaeError(f"retries {retries}: give 0 or more")
    engine = choose_engine(engine, scheduler, workers)
    items = items if items is not None else collect_items(inputs, out_dir, table, gt_pattern)
    config_dict = to_dict(config)
    for item in items:  # a bad table cell stops the batch before any recording is sorted
        item_config(config_dict, item)
    client = connect(scheduler) if scheduler else None  # an address that does not answer stops here
    try:
        out = check_writable(out_dir)
        log.info("batch: %d recordings -> %s (%s engine%s)", len(items), out, engine,
                 f", scheduler {scheduler}" if scheduler else (f", {workers} workers" if engine != "serial" else ""))
        rows = run_engine(engine, items, config_dict, options, retries=retries, workers=workers, client=client,
                          progress=progress)
    finally:
        if client is not None:
            client.close()
    result = BatchResult(rows, out, engine, time.perf_counter() - t0)
    write_summary(result, config_dict)
    return result


def write_summary(result: BatchResult, config_dict: dict) -> None:
    """``batch_summary.csv`` (one row per recording) and ``batch_summary.json`` (rows, counts, engine, configuration)."""
    from ..pipeline import write_csv
    from ..store import write_text

    notes = list(dict.fromkeys(k for r in result.rows for k in r.get("notes", {})))  # table columns, in order
    rows = [{k: ("" if r.get(k) is None else r.get(k)) for k in ROW_FIELDS[:1]}
            | {k: r.get("notes", {}).get(k, "") for k in notes}
            | {k: ("" if r.get(k) is None else r.get(k)) for k in ROW_FIELDS[1:]} for r in result.rows]
    write_csv(result.out_dir / SUMMARY_CSV, rows)
    doc = {"engine": result.engine, "wall_s": round(result.wall_s, 3), "counts": result.counts(),
           "rows": result.rows, "config": config_dict}
    write_text(result.out_dir / SUMMARY_JSON, json.dumps(doc, indent=2, default=str))


def failure_message(result: BatchResult) -> str:
    """One line naming every failed recording and why."""
    parts = [f"{Path(r['recording']).name} ({r['error']})" for r in result.failed]
    return (f"{len(parts)} of {len(result.rows)} recordings failed: " + "; ".join(parts)
            + f"; see {result.out_dir / SUMMARY_CSV}")
