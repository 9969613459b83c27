"""The 1-D convolutional (β-)VAE for spike waveforms.

Encoder: ``n_blocks`` strided convolutions (each halves the length, then the
activation), flatten, a dense layer, then linear heads for μ and log σ².
Decoder: the mirror (dense, reshape, ``n_blocks`` × [nearest upsampling ×2, conv,
activation], a 1×1 conv to one channel). With ``arch = "dual"`` a dense branch runs
beside the conv branch: its features are concatenated before the heads, and the
decoder adds a dense reconstruction to the conv one. Waveforms of any length L are
zero-padded on the right to a multiple of 2**n_blocks and cropped back.

Strided convolutions (not max pooling) keep the network exactly linear when
``activation = "linear"``; a linear AE trained with squared error then spans the
principal subspace, which the tests use to check the training loop.

Every layer size derives from the config and the waveform length; the module holds
no counters and does no I/O. The reconstruction term is the Gaussian negative
log-likelihood (up to a constant) with the electrode noise as the likelihood scale:
inputs are in normalised units whose noise variance is the buffer ``noise_var``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import VAEConfig
from .schedule import capacity, kl_weight


class LossTerms(NamedTuple):
    """Batch-mean loss terms (scalar tensors)."""

    recon: torch.Tensor
    kl: torch.Tensor
    total: torch.Tensor


def _activation(name: str) -> nn.Module:
    return {"elu": nn.ELU(), "relu": nn.ReLU(), "linear": nn.Identity()}[name]


def padded_length(n_samples: int, n_blocks: int) -> int:
    """Smallest multiple of 2**n_blocks that is >= n_samples."""
    f = 2 ** n_blocks
    return -(-n_samples // f) * f


class SpikeVAE(nn.Module):
    """Convolutional encoder/decoder with μ and log σ² heads.

    Parameters
    ----------
    config : VAEConfig
        Sizes and loss settings.
    n_samples : int
        Waveform length L (48 at 30 kHz).
    noise_var : float, default 1.0
        Variance of the background noise in the model's input units (the likelihood scale).
    """

    def __init__(self, config: VAEConfig, n_samples: int, noise_var: float = 1.0):
        super().__init__()
        if config.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {config.kernel_size}")
        self.config = config
        self.n_samples = int(n_samples)
        self.length = padded_length(self.n_samples, config.n_blocks)
        self.reduced = self.length // 2 ** config.n_blocks
        self.register_buffer("noise_var", torch.tensor(float(noise_var)))
        c, k, h, d = config.channels, config.kernel_size, config.hidden, config.latent_dim
        act = config.activation
        enc = []
        for i in range(config.n_blocks):
            enc += [nn.Conv1d(1 if i == 0 else c, c, k, stride=2, padding=k // 2), _activation(act)]
        self.enc_conv = nn.Sequential(*enc, nn.Flatten(), nn.Linear(c * self.reduced, h), _activation(act))
        width = h
        if config.arch == "dual":
            self.enc_dense = nn.Sequential(nn.Linear(self.length, h), _activation(act))
            width += h
        self.mu = nn.Linear(width, d)
        self.logvar = nn.Linear(width, d)
        self.dec_in = nn.Sequential(nn.Linear(d, h), _activation(act), nn.Linear(h, c * self.reduced), _activation(act))
        dec = []
        for _ in range(config.n_blocks):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(c, c, k, padding=k // 2), _activation(act)]
        self.dec_conv = nn.Sequential(*dec, nn.Conv1d(c, 1, 1))
        if config.arch == "dual":
            self.dec_dense = nn.Sequential(nn.Linear(d, h), _activation(act), nn.Linear(h, self.length))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_samples:
            raise ValueError(f"waveforms have {x.shape[-1]} samples; this model was built for {self.n_samples}")
        return nn.functional.pad(x, (0, self.length - self.n_samples))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of waveforms ``x`` (batch, L) -> (μ, log σ²), each (batch, latent_dim)."""
        xp = self._pad(x)
        feats = self.enc_conv(xp[:, None, :])
        if self.config.arch == "dual":
            feats = torch.cat([feats, self.enc_dense(xp)], dim=1)
        return self.mu(feats), self.logvar(feats)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I) drawn from ``generator`` (μ itself for kind = ae)."""
        if self.config.kind == "ae":
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Waveforms (batch, L) from latents (batch, latent_dim)."""
        h = self.dec_in(z).view(z.shape[0], self.config.channels, self.reduced)
        out = self.dec_conv(h)[:, 0, :]
        if self.config.arch == "dual":
            out = out + self.dec_dense(z)
        return out[:, : self.n_samples]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(reconstruction, μ, log σ²); z is sampled in training mode, z = μ in eval mode."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if self.training else mu
        return self.decode(z), mu, logvar

    def loss(self, x_clean: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor, step: int) -> LossTerms:
        """Loss terms at global training ``step`` (see the module docstring of ``config``).

        recon = 0.5 · Σ_samples (x − x̂)² / noise_var, KL = Σ_latent KL(q(z|x) ‖ N(0, I)),
        both averaged over the batch.
        """
        cfg = self.config
        recon_term = 0.5 * ((recon.float() - x_clean.float()) ** 2).sum(dim=1).mean() / self.noise_var
        mu, logvar = mu.float(), logvar.float()
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1)).mean()
        if cfg.kind == "ae":
            return LossTerms(recon_term, torch.zeros_like(recon_term), recon_term)
        w = kl_weight(step, cfg.kl_warmup_start, cfg.kl_warmup_steps)
        if cfg.kind == "vae":
            total = recon_term + cfg.beta * w * kl
        else:
            c = capacity(step, cfg.capacity_max, cfg.capacity_ramp_steps)
            total = recon_term + cfg.gamma * w * (kl - c).abs()
        return LossTerms(recon_term, kl, total)
