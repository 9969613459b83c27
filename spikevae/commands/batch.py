"""``spikevae batch INPUTS... -o OUT``: sort many recordings, locally or on a Dask cluster."""
from __future__ import annotations

import logging
import sys

import click

from ..errors import SpikevaeError


@click.command("batch")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="batch folder: one output folder per recording, and batch_summary.csv/.json")
@click.option("--table", type=click.Path(dir_okay=False), default=None,
              help="CSV/TSV of recordings: a 'recording' column, optional 'output', 'gt' and dotted config keys "
                   "(e.g. detect.threshold) as columns")
@click.option("--gt-pattern", default=None,
              help="ground truth per recording, with {dir}, {stem}, {name}: e.g. '{dir}/ground_truth.npz'")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="run on this dask.distributed scheduler (per recording and per electrode): tcp://10.0.0.1:8786, "
                   "or the JSON file of `dask scheduler --scheduler-file FILE`")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="local worker processes without --scheduler (1 = one recording after the other, here)")
@click.option("--engine", type=click.Choice(["auto", "serial", "processes", "dask"]), default="auto", show_default=True,
              help="auto: Dask with --scheduler or --workers > 1 (plain processes when Dask is not installed)")
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 100),
              help="reruns of a recording whose task raised or whose worker died")
@click.option("--electrodes-on-dask/--no-electrodes-on-dask", default=True, show_default=True,
              help="on Dask, cluster each recording's electrodes as Dask tasks too")
@click.option("--force", is_flag=True, help="recompute every stage of every recording (no cached results)")
@click.option("--no-report", is_flag=True, help="skip quality metrics and the HTML reports")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override one configuration value by dotted key, for every recording")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="pipeline configuration (TOML) of every recording")
def batch(inputs, out_dir, table, gt_pattern, scheduler, workers, engine, retries, electrodes_on_dask, force,
          no_report, overrides, config_path):
    """Sort every recording of INPUTS (paths or quoted globs such as 'data/*.ns6') and/or --table
    into OUT/<name>/, as `spikevae run` does, and write OUT/batch_summary.csv.

    A recording that fails does not stop the others; the command then exits 1 naming them.
    """
    from ..batch import TaskOptions, failure_message, run_batch
    from ..params import load_config

    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # Dask's connection chatter, unless --debug
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cfg = load_config(config_path, list(overrides))
    options = TaskOptions(report=not no_report, force=force, electrodes_on_dask=electrodes_on_dask)
    result = run_batch(inputs, cfg, out_dir, table=table, gt_pattern=gt_pattern, scheduler=scheduler,
                       workers=workers, engine=engine, retries=retries, options=options,
                       progress=sys.stderr.isatty())
    _print(result)
    if result.failed:
        raise SpikevaeError(failure_message(result))


def _print(result) -> None:
    for r in result.rows:
        if r["status"] == "failed":
            click.echo(f"  {r['output']}: failed: {r['error']}")
            continue
        acc = f", accuracy {r['accuracy']:.3f}" if r.get("accuracy") is not None else ""
        speed = f", {r['x_realtime']:.1f}x real time" if r.get("x_realtime") else ""
        click.echo(f"  {r['output']}: {r['status']}, {r['n_spikes']} spikes, {r['n_units']} units{acc}{speed}")
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    click.echo(f"{len(result.rows)} recordings ({counts}) in {result.wall_s:.1f} s with the {result.engine} engine; "
               f"summary in {result.out_dir / 'batch_summary.csv'}")


commands = [batch]
