"""The ``spikevae`` command line: a thin shell over the same config objects as the Python API.

Every command builds a :class:`~spikevae.params.PipelineConfig` through
:func:`~spikevae.params.load_config` (``-c FILE.toml`` and ``--set key=value``) and calls a
library function. User errors print one line and exit 1; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path

import click

from .errors import SpikevaeError

DEFAULT_SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "sample.ns5"
DEFAULT_OUT = "spikevae-out"
#: modules under spikevae/commands that contribute commands (module-level list ``commands``)
COMMAND_MODULES = ("info", "simulate", "compare", "diagnose", "vae", "report", "benchmark", "generate", "export",
                   "track", "classify", "batch")


def config_options(f):
    """``-c/--config`` and repeated ``--set key=value`` options."""
    f = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="override one configuration value by dotted key, e.g. detect.threshold=5")(f)
    f = click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="pipeline configuration (TOML), e.g. pipelines/utah_array.toml")(f)
    return f


def input_options(f):
    """Reader options for files that do not describe themselves (raw binary)."""
    opts = [
        click.option("--format", "fmt", default=None, help="reader: auto, blackrock, nev, raw, hdf5, or a neo IO name"),
        click.option("--fs", type=float, default=None, help="sampling rate in Hz (raw binary)"),
        click.option("--n-channels", type=int, default=None, help="channel count (raw binary)"),
        click.option("--dtype", default=None, help="sample type, e.g. int16 (raw binary)"),
        click.option("--gain-uv", type=float, default=None, help="µV per raw unit (raw binary)"),
        click.option("--offset-uv", type=float, default=None, help="µV offset after scaling (raw binary)"),
        click.option("--map", "map_path", type=click.Path(dir_okay=False), default=None,
                     help="electrode map: Blackrock .cmp or probeinterface .json (sets input.map)"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def build_config(config_path=None, overrides=(), fmt=None, fs=None, n_channels=None, dtype=None,
                 gain_uv=None, offset_uv=None, map_path=None, **_):
    """The PipelineConfig of a command's options."""
    from .params import load_config

    extra = [(k, v) for k, v in (("input.format", fmt), ("input.fs", fs), ("input.n_channels", n_channels),
                                 ("input.dtype", dtype), ("input.gain_uv", gain_uv), ("input.offset_uv", offset_uv),
                                 ("input.map", map_path))
             if v is not None]
    return load_config(config_path, list(extra) + list(overrides))


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="show tracebacks and debug logging")
@click.option("-q", "--quiet", is_flag=True, help="only warnings and errors")
@click.version_option(package_name="spikevae")
def cli(debug: bool, quiet: bool) -> None:
    """spikevae: spike sorting for Utah arrays and multichannel probes, with PCA and VAE features."""
    level = logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("matplotlib", "PIL", "numba", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@click.argument("recording", required=False, type=click.Path())
@click.option("-o", "--out", "out_dir", default=DEFAULT_OUT, show_default=True, help="output folder")
@click.option("--gt", type=click.Path(), default=None, help="ground truth (.npz) to score against")
@click.option("--force", is_flag=True, help="recompute every stage")
@click.option("--no-report", is_flag=True, help="skip quality metrics and the HTML report")
@click.option("--phy", "phy_dir", type=click.Path(file_okay=False), default=None,
              help="also export a phy template-GUI folder here")
@click.option("--nwb", "nwb_path", type=click.Path(dir_okay=False), default=None,
              help="also export an NWB file here")
@config_options
@input_options
def run(recording, out_dir, gt, force, no_report, phy_dir, nwb_path, **opts):
    """Sort RECORDING (default: the sample data) and write the results to --out."""
    from .pipeline import run_pipeline

    cfg = build_config(**opts)
    if recording is None:
        recording = DEFAULT_SAMPLE
        if gt is None and DEFAULT_SAMPLE.with_name("sample_gt.npz").exists():
            gt = DEFAULT_SAMPLE.with_name("sample_gt.npz")
        click.echo(f"no recording given: sorting the sample data {recording}")
    result = run_pipeline(recording, cfg, out_dir, gt=gt, progress=sys.stderr.isatty(), force=force,
                          report=not no_report)
    print_summary(result)
    if phy_dir or nwb_path:
        from .commands.export import export_run

        export_run(out_dir, phy=phy_dir, nwb=nwb_path, progress=sys.stderr.isatty())


def print_summary(result) -> None:
    from .pipeline import summary

    s = summary(result)
    click.echo(f"\n{s['input']}: {s['duration_s']:.1f} s, {s['electrodes']} electrodes "
               f"({s['electrodes_with_spikes']} with spikes), {s['spikes']} spikes")
    a = s.get("artefacts")
    if a and (a["n_events"] or a["excluded_electrodes"]):
        left = f", {len(a['excluded_electrodes'])} artefact electrodes left out" if a["excluded_electrodes"] else ""
        click.echo(f"  artefacts: {a['n_events']} events removed {a['n_spikes_removed']} of {a['n_spikes_before']} "
                   f"spikes{left} (artefacts.csv)")
    for m, n in s["units_per_method"].items():
        click.echo(f"  {m}: {n} units" + (" (main)" if m == s["feature_method"] else ""))
    click.echo("  seconds per stage: " + ", ".join(f"{k} {v['seconds']:.2f}" for k, v in s["stages"].items()))
    if s["skipped_stages"]:
        click.echo("  reused from the run store: " + ", ".join(s["skipped_stages"]))
    for m, g in s.get("ground_truth", {}).items():
        click.echo(f"  ground truth ({m}): mean accuracy {g['mean_accuracy']:.3f}, "
                   f"well detected {g['n_well_detected']}/{g['n_gt_units']}")
    click.echo(f"results in {result.out_dir}/ (sorting.npz, units.csv, report.html)")


@cli.command()
@click.argument("recording", type=click.Path())
@click.option("-o", "--out", "out_path", required=True, help="output HDF5 file of filtered traces")
@config_options
@input_options
def filter(recording, out_path, **opts):  # noqa: A001 - the stage's name
    """Bandpass-filter RECORDING (and optional CMR) into an HDF5 file, chunk by chunk."""
    from .io.hdf5 import write_hdf5
    from .pipeline import open_input
    from .preprocess import preprocess
    from .store import check_writable, refuse_foreign_file, refuse_input_as_output

    cfg = build_config(**opts)
    refuse_input_as_output(recording, out_path)
    refuse_foreign_file(out_path)
    rec = open_input(recording, cfg)
    check_writable(Path(out_path).parent)
    if not hasattr(rec, "get_traces"):
        raise SpikevaeError(f"{recording}: a .nev file holds spikes, not traces; there is nothing to filter")
    write_hdf5(out_path, preprocess(rec, cfg.preprocess), chunk_s=cfg.run.chunk_s)
    click.echo(f"wrote {out_path}")


@cli.command()
@click.argument("recording", type=click.Path())
@click.option("-o", "--out", "out_dir", default=DEFAULT_OUT, show_default=True)
@config_options
@input_options
def detect(recording, out_dir, **opts):
    """Filter and detect spikes in RECORDING; store them in OUT/run.h5."""
    from .config import to_dict
    from .execution.spill import spill_to
    from .pipeline import _artefact_stage, _detect_stage, input_identity, open_input, spikes_key
    from .store import RunStore, check_writable, refuse_input_as_output

    cfg = build_config(**opts)
    refuse_input_as_output(recording, out_dir, out_is_dir=True)
    data = open_input(recording, cfg)
    d = to_dict(cfg)
    key = spikes_key(input_identity(recording, data), cfg)
    store = RunStore(check_writable(out_dir)).recover()
    with spill_to(out_dir):  # as in `run`: waveforms streamed to OUT/waveforms.h5, per-spike columns on disk
        spikes = data if not hasattr(data, "get_traces") else _detect_stage(data, cfg, sys.stderr.isatty(),
                                                                            store.waveform_path, key)
        spikes, artefacts = _artefact_stage(spikes, cfg, str(recording))
        store.save_artefacts(artefacts, key)
        store.save_spikes(spikes, {k: d[k] for k in ("input", "preprocess", "detect", "artefact")}, key)
    click.echo(f"{spikes!r} -> {out_dir}/run.h5" + (f" ({artefacts.n_events} artefact events removed "
                                                   f"{artefacts.n_spikes_removed} spikes)" if artefacts.found else ""))


@cli.command()
@click.argument("out_dir", type=click.Path())
@click.option("--method", default=None, help="feature method (default: features.method)")
@config_options
def features(out_dir, method, **opts):
    """Compute features (PCA or VAE) of the spikes in OUT_DIR/run.h5."""
    from .execution.spill import spill_to
    from .pipeline import _features_stage, embedding_key, features_section
    from .store import RunStore

    cfg = build_config(**opts)
    method = method or cfg.features.method
    store = RunStore(out_dir)
    with spill_to(out_dir):  # per-spike arrays on disk, as in `run`
        spikes = store.load_spikes()
        emb_hash = embedding_key(store.hash_of("spikes"), method, cfg)
        emb = _features_stage(spikes, method, cfg, Path(out_dir), sys.stderr.isatty(), store.feature_path(method),
                              {"hash": emb_hash})
        emb = store.save_embedding(emb, features_section(cfg, method), emb_hash, spikes.electrode)
    click.echo(f"{emb!r} -> {store.feature_path(method)}")


@cli.command()
@click.argument("out_dir", type=click.Path())
@click.option("--method", default=None, help="which features to cluster (default: features.method)")
@config_options
def cluster(out_dir, method, **opts):
    """Cluster the features in OUT_DIR/run.h5, electrode by electrode; writes sorting_<method>.npz."""
    from .config import to_dict
    from .execution.spill import spill_to
    from .pipeline import _cluster_stage, sorting_key
    from .store import RunStore

    cfg = build_config(**opts)
    method = method or cfg.features.method
    store = RunStore(out_dir)
    with spill_to(out_dir):  # per-spike arrays on disk, as in `run`
        spikes = store.load_spikes()
        emb = store.load_embedding(method, spikes.electrode, getattr(spikes.waveforms, "row", None))
        sorting = _cluster_stage(spikes, emb, cfg, sys.stderr.isatty())
        store.save_sorting(sorting, method, to_dict(cfg)["cluster"],
                           sorting_key(store.hash_of(f"embedding/{method}"), cfg))
        sorting.save_npz(Path(out_dir) / f"sorting_{method}.npz")
    click.echo(f"{sorting!r} -> {out_dir}/sorting_{method}.npz")


@cli.group()
def config():
    """Show or validate a pipeline configuration."""


@config.command("show")
@config_options
def config_show(**opts):
    """Print the resolved configuration, with each key's description."""
    from .config import describe

    cfg = build_config(**opts)
    for key, value, text in describe(cfg):
        click.echo(f"{key} = {json.dumps(value)}    # {text}")


@config.command("validate")
@config_options
def config_validate(**opts):
    """Check a configuration; exits 1 with the first problem."""
    build_config(**opts)
    click.echo("configuration is valid")


def _add_plugin_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"spikevae.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("spikevae.commands"):
                continue
            raise
        for cmd in getattr(mod, "commands", []):
            cli.add_command(cmd)


def main(argv=None) -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 1."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    _add_plugin_commands()
    try:
        cli.main(args=argv, prog_name="spikevae", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("interrupted; rerun the same command to resume from the last finished stage", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SpikevaeError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if debug:
            raise
        click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
