"""``spikevae benchmark FILE.toml -o OUT``: accuracy against SNR on simulated recordings."""
from __future__ import annotations

import sys

import click


@click.command("benchmark")
@click.argument("config_path", type=click.Path())
@click.option("-o", "--out", "out_dir", default="spikevae-benchmark", show_default=True)
def benchmark(config_path, out_dir):
    """Simulate at several SNR levels, sort with each feature method, score, tabulate and plot."""
    from ..benchmark import run_benchmark

    rows = run_benchmark(config_path, out_dir, progress=sys.stderr.isatty())
    from ..benchmark import markdown_table

    click.echo(markdown_table(rows))
    click.echo(f"table and plot in {out_dir}/ (table.csv, table.md, accuracy_vs_snr.png)")


commands = [benchmark]
