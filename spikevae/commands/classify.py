"""``spikevae classify RUN REC -o OUT``: label a new recording with a finished run's model, chunk by chunk."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..cli import input_options


@click.command("classify")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("recording", type=click.Path())
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option("--chunk-s", default=1.0, show_default=True, type=float, help="seconds per chunk")
@click.option("--method", default=None, help="which of the run's sortings to follow (default: features.method)")
@click.option("--offline", "offline", type=click.Path(dir_okay=False), default=None,
              help="an offline sorting.npz of the same recording: report the agreement with it")
@input_options
def classify(run_dir, recording, out_dir, chunk_s, method, offline, fmt, map_path, **reader):
    """Label the spikes of RECORDING with the model of the finished run RUN_DIR (no refitting).

    Writes OUT/sorting.npz (the usual contract; -1 = unsorted) and OUT/summary.json: unsorted
    spikes per electrode (noise, or of no known unit: sort again when these grow), spikes per
    second and the median and 95th-percentile chunk latency.
    """
    from ..config import set_value
    from ..errors import SpikevaeError
    from ..io import open_recording
    from ..objects import Sorting
    from ..online import agreement_with, classify_recording, load_online_model
    from ..store import check_writable, refuse_input_as_output, write_text

    if chunk_s <= 0:
        raise SpikevaeError(f"--chunk-s {chunk_s}: the chunk length must be positive (seconds)")
    refuse_input_as_output(recording, out_dir, out_is_dir=True)
    model = load_online_model(run_dir, method)
    cfg = model.config
    for key, value in (("format", fmt), ("map", map_path), *((k, v) for k, v in reader.items())):
        if value is not None:
            set_value(cfg.input, key, value, "input.")
    if not Path(recording).exists():
        raise SpikevaeError(f"{recording}: file not found")
    rec = open_recording(recording, cfg.input)
    result = classify_recording(model, rec, chunk_s, progress=sys.stderr.isatty())
    if offline:
        result.extra["agreement_with_offline"] = agreement_with(Sorting.load_npz(offline), result.sorting)
    out = check_writable(out_dir)
    result.sorting.save_npz(out / "sorting.npz")
    summary = {"run": str(run_dir), "recording": str(recording), "model": model.description,
               "n_electrodes": model.n_electrodes, "duration_s": rec.duration_s} | result.summary(model.channel_ids)
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    lat = summary["chunk_latency_ms"]
    click.echo(f"{summary['n_spikes']} spikes, {summary['n_sorted']} sorted, {summary['n_unsorted']} unsorted "
               f"({summary['n_no_known_unit']} of no known unit); {summary['spikes_per_s']:.0f} spikes/s, "
               f"chunk latency median {lat['median']:.1f} ms, p95 {lat['p95']:.1f} ms -> {out_dir}/sorting.npz")
    if offline:
        a = result.extra["agreement_with_offline"]
        click.echo(f"agreement with {offline}: {a['agreement']:.3f} of {a['n_offline_sorted']} sorted spikes "
                   f"(found {a['found']:.3f})")


commands = [classify]
