"""Denoising corruptions of the encoder input, chosen by name.

The encoder sees ``corrupt(x)`` and the decoder must return the clean ``x``.
All corruptions work on a batch in the model's normalised units (waveforms divided
by their electrode's noise σ, centred by the mean waveform, divided by one global
scale), where the electrode noise has standard deviation ``noise_std``.

- ``background``: adds real background noise, snippets cut from spike-free
  stretches of the same recording (``Spikes.noise_snippets``), each scaled by its own
  electrode's σ, so the network learns the noise the recording really has;
- ``gaussian``: adds white Gaussian noise of ``noise_scale`` electrode σ;
- ``dropout``: sets a random fraction ``dropout_p`` of the samples to the mean waveform;
- ``none``: no corruption (a plain autoencoder).
"""
from __future__ import annotations

import torch

from ...errors import SpikevaeConfigError, SpikevaeError


class NoCorruption:
    params_doc = "no corruption"

    def __init__(self, config, noise_std: float, noise_bank=None):
        pass

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return x


class GaussianCorruption:
    params_doc = "white Gaussian noise of noise_scale electrode σ"

    def __init__(self, config, noise_std: float, noise_bank=None):
        self.std = float(config.noise_scale) * float(noise_std)

    def __call__(self, x, generator):
        return x + self.std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class DropoutCorruption:
    params_doc = "a random fraction dropout_p of the samples replaced by the mean waveform"

    def __init__(self, config, noise_std: float, noise_bank=None):
        self.p = float(config.dropout_p)

    def __call__(self, x, generator):
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.p
        return x * keep


class BackgroundCorruption:
    params_doc = "real background noise snippets of the recording (scaled by noise_scale)"

    def __init__(self, config, noise_std: float, noise_bank=None):
        if noise_bank is None or len(noise_bank) == 0:
            raise SpikevaeError(
                "corruption 'background' needs noise snippets, but these spikes have none; detect with "
                "detect.noise_snippets > 0, or set features.vae.corruption to gaussian, dropout or none"
            )
        self.bank = noise_bank
        self.scale = float(config.noise_scale)

    def __call__(self, x, generator):
        idx = torch.randint(0, self.bank.shape[0], (x.shape[0],), generator=generator, device=x.device)
        return x + self.scale * self.bank[idx].to(x.dtype)


CORRUPTIONS = {
    "background": BackgroundCorruption,
    "gaussian": GaussianCorruption,
    "dropout": DropoutCorruption,
    "none": NoCorruption,
}


def make_corruption(name: str, config, noise_std: float, noise_bank: torch.Tensor | None = None):
    """The corruption called ``name``.

    Parameters
    ----------
    name : str
        One of ``CORRUPTIONS``.
    config : VAEConfig
        Supplies ``noise_scale`` and ``dropout_p``.
    noise_std : float
        Standard deviation of one electrode's noise in the model's input units.
    noise_bank : Tensor of shape (n_snippets, L), optional
        Normalised background-noise snippets on the training device (``background`` only).

    Raises
    ------
    SpikevaeConfigError
        For an unknown name (the message lists the valid ones).
    SpikevaeError
        For ``background`` without noise snippets.
    """
    if name not in CORRUPTIONS:
        valid = ", ".join(f"{k} ({v.params_doc})" for k, v in CORRUPTIONS.items())
        raise SpikevaeConfigError(f"unknown corruption {name!r}; valid: {valid}")
    return CORRUPTIONS[name](config, noise_std, noise_bank)
