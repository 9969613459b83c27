"""``spikevae export OUT --phy DIR --nwb FILE`` and ``spikevae import-curation PHY_DIR OUT``."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import SpikevaeError


def export_run(out_dir, *, phy=None, nwb=None, method=None, copy_traces=False, progress=False,
               echo=click.echo) -> None:
    """Write the exports a user asked for from the run folder ``out_dir`` (the one place both
    ``export`` and ``run --phy/--nwb`` go through)."""
    if phy:
        from ..exports.phy import export_phy

        path = export_phy(out_dir, phy, method=method, copy_traces=copy_traces, progress=progress)
        echo(f"phy: {path} (open with `phy template-gui {Path(path) / 'params.py'}`)")
    if nwb:
        from ..exports.nwb import export_nwb

        path = export_nwb(out_dir, nwb, method=method)
        echo(f"NWB: {path}")


@click.command("export")
@click.argument("out_dir", type=click.Path())
@click.option("--phy", "phy_dir", type=click.Path(file_okay=False), default=None,
              help="write a phy template-GUI folder here")
@click.option("--nwb", "nwb_path", type=click.Path(dir_okay=False), default=None,
              help="write an NWB file here (needs pynwb: pip install 'spikevae[nwb]')")
@click.option("--method", default=None, help="which sorting of the run (default: the run's main feature method)")
@click.option("--copy-traces", is_flag=True,
              help="phy: write a filtered int16 copy of the recording beside it instead of pointing at the original")
def export(out_dir, phy_dir, nwb_path, method, copy_traces):
    """Export the sorting of the run folder OUT_DIR to phy and/or NWB."""
    if not (phy_dir or nwb_path):
        raise SpikevaeError("nothing to export: give --phy DIR and/or --nwb FILE")
    import sys

    export_run(out_dir, phy=phy_dir, nwb=nwb_path, method=method, copy_traces=copy_traces,
               progress=sys.stderr.isatty())


@click.command("import-curation")
@click.argument("phy_dir", type=click.Path(file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def import_curation_cmd(phy_dir, out_dir):
    """Read a phy folder after curation (merges, splits, labels) back into the run folder OUT_DIR.

    Writes OUT_DIR/sorting_curated.npz; `spikevae report OUT_DIR --method curated` and
    `spikevae compare OUT_DIR --method curated --gt GT` work on it.
    """
    from ..exports.phy import import_curation

    sorting = import_curation(phy_dir, out_dir)
    click.echo(f"{sorting!r} -> {Path(out_dir) / 'sorting_curated.npz'}")


commands = [export, import_curation_cmd]
