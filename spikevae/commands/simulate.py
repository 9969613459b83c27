"""``spikevae simulate OUT_DIR``: a synthetic Utah-array recording with ground truth."""
from __future__ import annotations

import click

from ..errors import SpikevaeConfigError


def sim_config(duration: float, electrodes: int, overrides=()):
    """A SimConfig from the command's options and ``--set sim.key=value`` overrides."""
    from ..config import parse_override, set_value
    from ..synth import SimConfig

    cfg = SimConfig()
    # the options go through the same validation as --set (bounds, types)
    set_value(cfg, "duration_s", duration, "sim.")
    set_value(cfg, "n_electrodes", electrodes, "sim.")
    for item in overrides:
        key, value = parse_override(item)
        if not key.startswith("sim."):
            raise SpikevaeConfigError(f"--set {item}: simulation keys start with 'sim.', e.g. --set sim.snr_min=4")
        set_value(cfg, key[4:], value, "sim.")
    return cfg


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--duration", default=60.0, show_default=True, type=float, help="seconds to simulate")
@click.option("--electrodes", default=96, show_default=True, type=int,
              help="electrodes, the first N of a 10 x 10 Utah array without corners (0 = all 96)")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed (same seed, same recording)")
@click.option("--format", "fmt", default="nsx", show_default=True, type=click.Choice(["nsx", "raw", "hdf5"]),
              help="recording.ns5 (Blackrock), recording.dat + .json (int16), or recording.h5")
@click.option("--chunk-s", default=1.0, show_default=True, type=float, help="seconds written per chunk")
@click.option("--templates-from", "templates_from", type=click.Path(file_okay=False), default=None,
              help="draw spike shapes from a trained VAE model folder (default: parametric shapes)")
@click.option("--latent-scale", default=1.0, show_default=True, type=float,
              help="standard deviation of the latent draws for --templates-from")
@click.option("--noise-from", "noise_from", type=click.Path(), default=None,
              help="take the background from this recording (e.g. a Blackrock .ns5/.ns6; high-passed, its own "
                   "spikes blanked, see sim.noise_from_*) instead of 1/f + white noise; sim.fs must match its rate")
@click.option("--set", "overrides", multiple=True, metavar="sim.KEY=VALUE",
              help="override a simulation setting, e.g. --set sim.snr_min=4 (see spikevae.synth.SimConfig)")
@click.option("--sessions", default=1, show_default=True, type=int,
              help="N > 1: N sessions of one array in OUT_DIR/session_<k>/ with tracking_truth.csv (unit identities)")
@click.option("--drift", default=0.1, show_default=True, type=float,
              help="with --sessions: SD of the log-amplitude change of each unit per session (time stretch: half)")
@click.option("--turnover", default=0.2, show_default=True, type=float,
              help="with --sessions: fraction of units that appear or vanish part-way")
def simulate(out_dir, duration, electrodes, seed, fmt, chunk_s, templates_from, latent_scale, noise_from, overrides,
             sessions, drift, turnover):
    """Simulate a Utah-array recording with ground truth into OUT_DIR.

    Writes the recording, ground_truth.npz (sample_index, unit, electrode, fs and per-unit
    unit_ids, unit_electrode, unit_snr, unit_rate_hz) and simulation.json.
    """
    from ..synth import simulate_recording
    from ..synth.export import write_simulation

    cfg = sim_config(duration, electrodes, overrides)
    template_fn = noise = None
    if templates_from is not None:
        from ..synth.vae_templates import VAETemplates

        template_fn = VAETemplates(templates_from, latent_scale=latent_scale)
    if noise_from is not None:
        from ..io import open_recording

        noise = open_recording(noise_from)
    if sessions > 1:
        from ..tracking.simulate import simulate_sessions, write_sessions

        if noise is not None:
            raise SpikevaeConfigError("--noise-from is not supported with --sessions; use the 1/f + white noise model")
        sims = simulate_sessions(cfg, sessions, drift, seed, turnover=turnover, template_fn=template_fn)
        done = write_sessions(out_dir, sims, cfg, fmt, chunk_s)
        n_id = len({int(i) for ss in sims for i in ss.truth.identity})
        click.echo(f"wrote {sessions} sessions {out_dir}/session_0..{sessions - 1} ({done[0]['n_electrodes']} electrodes, "
                   f"{done[0]['duration_s']:g} s each; {n_id} units, drift {drift:g}) and {out_dir}/tracking_truth.csv")
        return
    rec, gt = simulate_recording(cfg, seed, template_fn=template_fn, noise_recording=noise)
    s = write_simulation(out_dir, rec, gt, cfg, seed, fmt, chunk_s)
    snr = "" if not s["snr_range"] else f", SNR {s['snr_range'][0]:.1f}-{s['snr_range'][1]:.1f}"
    click.echo(f"wrote {out_dir}/{s['recording']} ({s['n_electrodes']} electrodes, {s['duration_s']:g} s) and "
               f"{out_dir}/{s['ground_truth']} ({s['n_units']} units{snr}, {s['n_spikes']} spikes; "
               f"{s['n_hard_units']} on look-alike electrodes, {s['n_background_units']} unscored background units)")


commands = [simulate]
