"""``spikevae train`` and ``spikevae embed``: the VAE stages on a run folder.

``train OUT_DIR`` fits the VAE on the spikes in ``OUT_DIR/run.h5`` (all electrodes
pooled) and writes ``OUT_DIR/vae_model/``; checkpoints go to ``OUT_DIR/vae_checkpoints/``
so an interrupted training resumes when the command is run again.
``embed OUT_DIR --model DIR`` embeds those spikes with a trained model (from this or
any other recording) and stores the features as ``embedding/vae`` in the run store.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from ..cli import config_options

DEVICE_HELP = "torch device: auto (CUDA if present, else CPU), cpu, cuda, cuda:N (default: features.vae.device)"


def _load_spikes(out_dir):
    from ..errors import SpikevaeError
    from ..store import load_spikes, store_path

    if not store_path(out_dir).exists():
        raise SpikevaeError(f"{store_path(out_dir)}: no run store; detect spikes first with `spikevae run` "
                            "(or `spikevae detect`) into this folder")
    return load_spikes(out_dir)


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--device", default=None, help=DEVICE_HELP)
@click.option("--model-dir", default=None, type=click.Path(file_okay=False),
              help="where to write the model (default: OUT_DIR/vae_model)")
@config_options
def train(out_dir, device, model_dir, config_path, overrides):
    """Train the VAE on the spikes of the run in OUT_DIR; writes OUT_DIR/vae_model/."""
    from ..features.vae import VAEFeatures
    from ..params import load_config

    cfg = load_config(config_path, overrides)
    spikes = _load_spikes(out_dir)
    ex = VAEFeatures(cfg.features.vae).configure_run(out_dir=out_dir, device=device, progress=sys.stderr.isatty())
    ex.fit(spikes)
    target = ex.save(Path(model_dir) if model_dir else Path(out_dir) / "vae_model")
    h = ex.history_[-1]
    click.echo(f"trained on {spikes.n_spikes} spikes: {len(ex.history_)} epochs, {ex.step_} steps, "
               f"validation loss {h['val_total']:.3f} (recon {h['val_recon']:.3f}, KL {h['val_kl']:.3f}); "
               f"model in {target}/")


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--model", "model", required=True, type=click.Path(file_okay=False),
              help="a model folder written by `spikevae train` (config.json, state_dict.pt, normalisation.json)")
@click.option("--device", default=None, help=DEVICE_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="waveforms per forward pass")
@click.option("--noise-crossings", type=click.IntRange(min=0), default=None,
              help="synthetic noise threshold crossings per electrode for the clustering's noise class "
                   "(default: features.noise_crossings)")
def embed(out_dir, model, device, batch_size, noise_crossings):
    """Embed the spikes of the run in OUT_DIR with a trained VAE; stores embedding/vae in run.h5.

    Synthetic noise threshold crossings (detected with the run's detection settings) are
    embedded too, as the clustering's noise class."""
    from ..config import config_hash
    from ..detect import DetectConfig
    from ..features.base import embed_noise_class
    from ..features.config import FeaturesConfig
    from ..features.vae import VAEFeatures
    from ..store import RunStore

    ex = VAEFeatures.load(model, device=device)
    spikes = _load_spikes(out_dir)
    store = RunStore(out_dir)
    det = {**dataclasses.asdict(DetectConfig()), **store.stage_config("spikes").get("detect", {})}
    n_noise = FeaturesConfig().noise_crossings if noise_crossings is None else noise_crossings
    emb = ex.transform(spikes, batch_size=batch_size)
    emb = embed_noise_class(ex, spikes, emb, n_noise, det["threshold"], det["polarity"], det["dead_time_ms"])
    emb.params["model"] = str(Path(model).resolve())
    store.save_embedding(emb, {"method": "vae", "vae": ex.get_params(), "model": str(model), "noise_crossings": n_noise},
                         config_hash({"model": str(Path(model).resolve()), "vae": ex.get_params(),
                                      "noise_crossings": n_noise}), spikes.electrode)
    click.echo(f"embedded {emb.n_spikes} spikes into {emb.features.shape[1]} VAE features; "
               f"stored as embedding/vae, features in {store.feature_path('vae')}")


commands = [train, embed]
