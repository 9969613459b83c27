"""The HTML report a scientist reads: one self-contained file per run.

``write_report(path, ReportContext(...))`` renders from objects in memory;
``context_from_run(out_dir)`` gathers them from a run folder (``spikevae report OUT``);
``write_run_report(result)`` is the pipeline's hook.
"""
from .build import render, write_report, write_run_report
from .context import ReportContext, context_from_result, context_from_run

__all__ = ["ReportContext", "write_report", "write_run_report", "render", "context_from_run", "context_from_result"]
