"""Sort many recordings: one output folder each, a summary table across them, locally or on Dask.

``run_batch(["data/*.ns6"], config, "batch/")`` sorts every recording with the same
:func:`~spikevae.pipeline.run_pipeline` as ``spikevae run`` and writes
``batch/batch_summary.csv``. A failing recording does not stop the others. ``scheduler=``
sends the recordings (and their electrodes) to a ``dask.distributed`` cluster; ``workers=``
runs them in local processes. The same input, configuration and seed give the same
``sorting.npz`` bytes whichever engine ran them.
"""
from .engines import ENGINES, choose_engine, dask_available
from .inputs import BatchItem, collect_items
from .run import SUMMARY_CSV, SUMMARY_JSON, BatchResult, failure_message, run_batch
from .task import ROW_FIELDS, TaskOptions, sort_one

__all__ = ["ENGINES", "ROW_FIELDS", "SUMMARY_CSV", "SUMMARY_JSON", "BatchItem", "BatchResult", "TaskOptions",
           "choose_engine", "collect_items", "dask_available", "failure_message", "run_batch", "sort_one"]
