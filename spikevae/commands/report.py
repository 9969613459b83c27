"""``spikevae report OUT [--gt GT.npz] [--method curated]``: regenerate a run's quality tables and HTML report."""
from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("report")
@click.argument("out_dir", type=click.Path())
@click.option("--gt", type=click.Path(), default=None,
              help="ground truth (.npz: sample_index, unit, fs[, electrode]) to score every sorting against")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="report file (default: OUT/report.html)")
@click.option("--preset", type=click.Choice(["spikevae", "allen", "ibl"]), default=None,
              help="good-label rules (default: the run's quality.preset)")
@click.option("--method", default=None,
              help="sorting shown first and written to units.csv, e.g. curated (default: the run's features.method)")
def report(out_dir, gt, output, preset, method):
    """Recompute the quality metrics of the run in OUT (units.csv, metrics.json) and write its HTML report."""
    from ..execution.spill import spill_to
    from ..objects import Sorting
    from ..quality import write_metrics
    from ..report import context_from_run, write_report
    from ..report.build import ensure_metrics

    t0 = time.perf_counter()
    gt_sorting = Sorting.load_npz(gt) if gt else None
    with spill_to(out_dir):  # per-spike arrays on disk, as in the run
        ctx = context_from_run(out_dir, gt_sorting, method)
        if preset:
            ctx.config.setdefault("quality", {})["preset"] = preset
        ctx.metrics = ensure_metrics(ctx)
        main = ctx.metrics[ctx.main_method]
        write_metrics(out_dir, main, preset=ctx.config.get("quality", {}).get("preset", "spikevae"))
        path = write_report(Path(output) if output else Path(out_dir) / "report.html", ctx)
    _record(out_dir, path)
    size_mb = path.stat().st_size / 1e6
    click.echo(f"{ctx.main_method}: {len(main)} units, {sum(r['good'] for r in main)} good; "
               f"{Path(out_dir) / 'units.csv'}, {path} ({size_mb:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    if ctx.gt_scores:
        for m, s in ctx.gt_scores.items():
            click.echo(f"  {m}: ground-truth mean accuracy {s['mean_accuracy']:.3f}, "
                       f"{s['n_well_detected']}/{s['n_gt_units']} well detected")


def _record(out_dir, report_path: Path) -> None:
    """Add the rewritten tables and report to the run folder's manifest (same run)."""
    from ..store import RunStore, record_outputs

    run_id = RunStore(out_dir).root_attrs().get("run_id")
    if run_id:
        names = ["units.csv", "metrics.json"] + ([report_path.name] if report_path.parent == Path(out_dir) else [])
        record_outputs(out_dir, run_id, names)


commands = [report]
