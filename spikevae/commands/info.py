"""``spikevae info PATH``: what a recording (or ``.nev`` spike file) holds, before sorting it."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import SpikevaeError


def _config(fmt, fs, n_channels, dtype, gain_uv, offset_uv, header_bytes, stream, segment, gap_tolerance_ms,
            map_path=None):
    from ..params import load_config

    given = {"format": fmt, "fs": fs, "n_channels": n_channels, "dtype": dtype, "gain_uv": gain_uv,
             "offset_uv": offset_uv, "header_bytes": header_bytes, "stream": stream, "segment": segment,
             "gap_tolerance_ms": gap_tolerance_ms, "map": map_path}
    return load_config(overrides=[(f"input.{k}", v) for k, v in given.items() if v is not None]).input


def describe_path(path, input_config) -> dict:
    """The ``describe()`` facts of a recording, or of a ``.nev`` file's spikes."""
    from ..io import describe_nev, open_recording

    p = Path(path)
    if not p.exists():
        raise SpikevaeError(f"{p}: file not found; check the path")
    if input_config.format == "nev" or (input_config.format == "auto" and p.suffix.lower() == ".nev"):
        d = describe_nev(p)
        if input_config.map:
            from ..io.probe import map_channels, read_map

            d |= map_channels(d["electrode_ids"], read_map(input_config.map), str(p))
        return d
    return open_recording(p, input_config).describe()


def _map_line(d: dict) -> list[str]:
    """The electrode-map line of :func:`format_info` (empty without a map)."""
    if not d.get("electrode_map"):
        return []
    labels = d.get("electrode_labels") or []
    placed = [xy for xy, lab in zip(d.get("positions_um", []), labels) if lab is not None]
    xs, ys = [xy[0] for xy in placed], [xy[1] for xy in placed]
    extent = f"; x {min(xs):g}-{max(xs):g} µm, y {min(ys):g}-{max(ys):g} µm" if placed else ""
    return [f"  electrode map:  {d['electrode_map']} ({len(placed)} of {len(labels)} channels placed{extent})"]


def _ids(ids: list) -> str:
    return ", ".join(ids) if len(ids) <= 10 else f"{', '.join(ids[:5])} ... {', '.join(ids[-3:])}"


def format_info(d: dict) -> str:
    """A readable multi-line summary of :func:`describe_path`'s dict."""
    lines = [f"{d['source']}", f"  reader:         {d.get('reader', '?')}"]
    if "n_spikes" in d:  # a .nev file
        pe = d["spikes_per_electrode"]
        lines += [f"  spikes:         {d['n_spikes']} on {d['n_electrodes']} electrodes "
                  f"(per electrode min {pe['min']}, median {pe['median']:g}, max {pe['max']})",
                  f"  electrodes:     {_ids(d['electrode_ids'])}",
                  f"  waveforms:      {d['waveform_samples']} samples at {d['fs']:g} Hz, µV, peak at sample {d['peak_index']}",
                  f"  time range:     {' - '.join(f'{t:.4f}' for t in d['time_range_s'])} s",
                  f"  median noise:   {d['median_noise_uv']:g} µV (pre-threshold samples); "
                  f"median peak-to-peak {d['median_peak_to_peak_uv']:g} µV"]
        return "\n".join(lines + _map_line(d))
    lines += [f"  channels:       {d['n_channels']} ({_ids(d['channel_ids'])})",
              f"  sampling rate:  {d['fs']:g} Hz",
              f"  duration:       {d['duration_s']:g} s ({d['n_samples']} samples)",
              f"  gain:           {', '.join(f'{g:g}' for g in d['gain_uv'])} µV per unit"]
    if "voltage_scale" in d:
        if not d["voltage_scale"]:
            lines.append("  WARNING:        no voltage scale in the file: traces are raw counts, not µV")
        lines.append(f"  stream:         {d['stream']}, of {len(d['streams'])}: " + "; ".join(
            f"{s['name']} (id {s['id']}, {s['fs']:g} Hz, {s['n_channels']} ch)" for s in d["streams"]))
        lines.append(f"  segment:        {d['segment']}, of {len(d['segments'])}: " + "; ".join(
            f"{s['index']}: {s['duration_s']:g} s from {s['t_start_s']:g} s" for s in d["segments"]))
        lines.append(f"  neo also found: {d['n_spike_channels']} spike channels, {d['n_event_channels']} event channels")
        lines += [f"  neo warning:    {w}" for w in d["neo_warnings"]]
        if d.get("analog_input_ids"):
            lines.append(f"  note:           channel ids {_ids(d['analog_input_ids'])} are above 128: on a Blackrock "
                         "NSP these are analog inputs, not electrodes (select electrodes with input.channels)")
    for key in ("dtype", "header_bytes", "file_bytes", "dataset", "stored_dtype"):
        if key in d:
            lines.append(f"  {key + ':':<15} {d[key]}")
    return "\n".join(lines + _map_line(d))


@click.command("info")
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", default=None, help="reader: auto (by extension), blackrock, nev, raw, hdf5, or a neo IO name")
@click.option("--fs", type=float, default=None, help="sampling rate in Hz (raw binary)")
@click.option("--n-channels", type=int, default=None, help="channel count (raw binary)")
@click.option("--dtype", default=None, help="sample type, e.g. int16 (raw binary)")
@click.option("--gain-uv", type=float, default=None, help="µV per raw unit (raw binary)")
@click.option("--offset-uv", type=float, default=None, help="µV added after scaling (raw binary)")
@click.option("--header-bytes", type=int, default=None, help="bytes to skip before the samples (raw binary)")
@click.option("--stream", default=None, help="neo stream name or id (default: highest sampling rate)")
@click.option("--segment", type=int, default=None, help="segment of a multi-segment file (default 0)")
@click.option("--gap-tolerance-ms", type=float, default=None, help="Blackrock: split at timestamp gaps longer than this")
@click.option("--map", "map_path", type=click.Path(dir_okay=False), default=None,
              help="electrode map (Blackrock .cmp or probeinterface .json): show where each channel sits")
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
def info(path, as_json, **opts):
    """Describe PATH: channels, sampling rate, duration, gain, streams, segments (or a .nev file's spikes)."""
    d = describe_path(path, _config(**opts))
    click.echo(json.dumps(d, indent=2, default=str) if as_json else format_info(d))


commands = [info]
