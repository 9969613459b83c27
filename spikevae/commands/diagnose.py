"""``spikevae diagnose OUT_DIR --gt GT.npz``: detection ceiling, supervised probe and sorting, by SNR band."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import SpikevaeError


@click.command("diagnose")
@click.argument("out_dir", type=click.Path())
@click.option("--gt", "gt_path", required=True, type=click.Path(), help="ground truth .npz (with unit_snr for SNR bands)")
@click.option("--method", default=None, help="feature space of the sorting to diagnose: pca or vae (default: the run's)")
@click.option("--tol-ms", default=0.4, show_default=True, help="matching tolerance")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the diagnosis as JSON")
def diagnose_command(out_dir, gt_path, method, tol_ms, json_path):
    """Show how much of what the waveforms allow the sorting of run OUT_DIR reaches."""
    from ..diagnose import diagnose_run
    from ..store import store_path, write_text

    if not store_path(out_dir).exists():
        raise SpikevaeError(f"{out_dir}: no run store found ({store_path(out_dir).name}); run `spikevae run` first")
    if not Path(gt_path).exists():
        raise SpikevaeError(f"{gt_path}: ground-truth file not found")
    d = diagnose_run(out_dir, gt_path, method=method, echo=click.echo, tol_ms=tol_ms)
    if json_path:
        write_text(json_path, json.dumps(d, indent=2, default=str))


commands = [diagnose_command]
