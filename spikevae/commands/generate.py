"""``spikevae generate``: waveforms, latent traversals and interpolations from a trained VAE.

    spikevae generate MODEL_DIR -o OUT                       # 1000 prior samples
    spikevae generate MODEL_DIR -o OUT --unit 3 --run RUN    # samples like unit 3 of RUN
    spikevae generate MODEL_DIR -o OUT --traversal           # + traversal.png / traversal array
    spikevae generate MODEL_DIR -o OUT --interpolate 10 42 --run RUN

Waveforms are in units of the electrode noise σ; unit samples also come in µV
(``waveforms_uv``, × the unit's electrode noise). See :mod:`spikevae.generate`.
"""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option("--n", type=click.IntRange(min=1), default=1000, show_default=True, help="waveforms to generate")
@click.option("--unit", type=int, default=None, help="sample waveforms like this sorted unit (needs --run)")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None,
              help="run folder (written by `spikevae run`) with the spikes and sorting")
@click.option("--method", default=None, help="which sorting of the run (default: vae if present)")
@click.option("--traversal", is_flag=True, help="also a latent traversal (-3..3 per dimension) and its figure")
@click.option("--interpolate", nargs=2, type=int, default=None, metavar="I J",
              help="interpolate between the latents of spikes I and J of the run (needs --run)")
@click.option("--noise", type=click.Choice(["none", "residual", "background", "white"]), default="none",
              show_default=True,
              help="noise added to the decoded (noise-free) samples: the run's reconstruction residuals (most "
                   "realistic), its background-noise snippets, or white N(0,1) σ; residual/background need --run")
@click.option("--format", "fmt", type=click.Choice(["npy", "h5"]), default="npy", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device for encoding and decoding")
def generate(model_dir, out_dir, n, unit, run_dir, method, traversal, interpolate, noise, fmt, seed, device):
    """Generate spike waveforms (noise σ units) from the trained VAE in MODEL_DIR."""
    from ..generate import GenerateRequest
    from ..generate import generate as run_generate

    req = GenerateRequest(Path(model_dir), Path(out_dir), n=n, unit=unit, run_dir=Path(run_dir) if run_dir else None,
                          method=method, traversal=traversal, interpolate=tuple(interpolate) if interpolate else None,
                          noise=noise, fmt=fmt, seed=seed, device=device)
    run_generate(req)
    click.echo(f"wrote {len(req.written)} files to {out_dir}/: " + ", ".join(p.name for p in req.written))


commands = [generate]
