"""``spikevae track RUN_1 RUN_2 ... -o TRACK``: the same neurons across sessions of one array."""
from __future__ import annotations

import sys

import click


@click.command("track")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option("--model", default="first", show_default=True, type=click.Choice(["first", "all"]),
              help="shared feature space: the first session's model, or one fitted on all sessions pooled")
@click.option("--features", default="auto", show_default=True, type=click.Choice(["auto", "pca", "vae", "vade"]),
              help="auto: the first run's own learned model (VAE or VaDE) when it has one, else PCA")
@click.option("--method", default="bhattacharyya", show_default=True,
              type=click.Choice(["bhattacharyya", "wasserstein", "correlation"]),
              help="how units are compared (correlation: the mean-waveform baseline)")
@click.option("--drift", default=0.15, show_default=True, type=float,
              help="allowed relative amplitude drift per session (SD)")
@click.option("--min-probability", default=0.05, show_default=True, type=float,
              help="least match probability of a link (latent methods)")
@click.option("--min-correlation", default=0.9, show_default=True, type=float,
              help="least waveform correlation of a link (correlation baseline)")
@click.option("--sorting", default=None, help="which sorting of each run (default: its features.method)")
@click.option("--truth", type=click.Path(dir_okay=False), default=None,
              help="tracking_truth.csv of simulated sessions: score the links (needs each run's --gt scores)")
def track(runs, out_dir, model, features, method, drift, min_probability, min_correlation, sorting, truth):
    """Link the units of sorted sessions RUNS (oldest first) into tracks, one per neuron.

    Writes OUT/units.csv (session, unit, electrode, track, match_probability, ...), a figure of
    each electrode's mean waveforms over the sessions, summary.json and report.html.
    """
    from ..config import set_value
    from ..tracking.track import TrackConfig, track_runs

    cfg = TrackConfig()
    for key, value in (("model", model), ("features", features), ("method", method), ("drift", drift),
                       ("min_probability", min_probability), ("min_correlation", min_correlation)):
        set_value(cfg, key, value, "track.")
    result = track_runs(list(runs), out_dir, cfg, sorting, progress=sys.stderr.isatty())
    tracks = result.tracks()
    multi = sum(1 for t in tracks.values() if len(t) > 1)
    click.echo(f"{len(runs)} sessions, {len(result.rows)} units -> {len(tracks)} tracks ({multi} in several "
               f"sessions); shared space: {result.model}; {out_dir}/units.csv, {out_dir}/report.html")
    if truth:
        from ..tracking.score import score_runs

        s = score_runs(list(runs), truth, result)
        click.echo(f"against {truth}: precision {s['precision']:.3f}, recall {s['recall']:.3f} "
                   f"({s['n_correct']} of {s['n_true']} true links; {s['vanished_left_unmatched']} of "
                   f"{s['n_vanished']} vanished units left unmatched)")


commands = [track]
