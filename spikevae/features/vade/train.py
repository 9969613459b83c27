"""VaDE training after the VAE pretraining: per-electrode mixtures sized by BIC, then joint training.

Reproducibility as in :mod:`spikevae.features.vae.train`: scikit-learn mixtures take
``seed``; one ``torch.Generator`` seeded with ``seed + 1`` draws the batch order, the
corruption and the reparameterisation noise of the joint training; deterministic
algorithms are on.
"""
from __future__ import annotations

import logging
import math
import sys
import time

import numpy as np
import torch

from ...errors import SpikevaeError
from ..vae.corrupt import make_corruption
from ..vae.train import cpu_threads, deterministic
from .config import VaDEConfig
from .prior import MixturePrior

log = logging.getLogger(__name__)


def select_mixture(z: np.ndarray, cfg: VaDEConfig, seed: int):
    """The mixture with the lowest BIC over 1 .. k components (stopping after two sizes without a gain).

    Parameters
    ----------
    z : ndarray of shape (n, latent_dim)
        Posterior means of one electrode's spikes (a subsample of at most ``bic_fit_spikes``).

    Returns
    -------
    FullGaussianMixture or sklearn.mixture.GaussianMixture
        As ``spikevae.cluster.mixture.fit_mixture`` gives for ``cfg.covariance``.
    """
    from ...cluster.mixture import select_size

    return select_size(z, cfg, seed, min_per_component=cfg.min_spikes_per_component)


def _full_covariances(gm) -> np.ndarray:
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    return np.stack([np.diag(c) for c in cov]) if gm.covariance_type == "diag" else cov


@torch.no_grad()
def posterior(model, x: np.ndarray, batch_size: int, device, num_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and variances of model-unit waveforms ``x`` (n, L) -> two (n, latent_dim) float32 arrays."""
    model.eval()
    mus, vars_ = [], []
    with cpu_threads(num_threads):
        for start in range(0, x.shape[0], batch_size):
            mu, logvar = model.encode(torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device))
            mus.append(mu.float().cpu().numpy())
            vars_.append(logvar.float().exp().cpu().numpy())
    d = model.config.latent_dim
    return (np.concatenate(mus) if mus else np.zeros((0, d), np.float32),
            np.concatenate(vars_) if vars_ else np.zeros((0, d), np.float32))


def init_prior(prior: MixturePrior, z: np.ndarray, var: np.ndarray, electrode: np.ndarray, cfg: VaDEConfig,
               seed: int, progress: bool = False) -> None:
    """Size and initialise every electrode's mixture from the pretrained latents.

    The mixture is sized and fitted on the posterior means; each component's covariance
    then gets the electrode's mean posterior variance added on its diagonal, so that it
    describes the latent samples z (Cov z = Cov μ + E σ²), not only their means: a latent
    dimension the pretrained VAE left unused (μ constant, σ² ≈ 1) would otherwise get a
    near-zero prior variance and a huge KL.

    Parameters
    ----------
    prior : MixturePrior
    z : ndarray of shape (n, latent_dim), float32
        Posterior means of the training spikes.
    var : ndarray of shape (n, latent_dim), float32
        Posterior variances of the same spikes.
    electrode : ndarray of shape (n,), int
    cfg : VaDEConfig
    seed : int
    progress : bool
        tqdm bar over electrodes.

    Electrodes with fewer than ``min_spikes_per_component`` spikes keep one component at
    the mean of their spikes (or N(0, I) without spikes) with unit covariance.
    """
    from tqdm.auto import tqdm

    d = z.shape[1]
    rng = np.random.default_rng(seed)
    for e in tqdm(range(prior.active.shape[0]), desc="VaDE mixtures", disable=not progress, leave=False):
        sel = electrode == e
        ze = z[sel].astype(np.float64)
        if ze.shape[0] < max(cfg.min_spikes_per_component, d + 2):
            mean = ze.mean(axis=0) if len(ze) else np.zeros(d)
            prior.set_electrode(e, np.ones(1), mean[None], np.eye(d)[None])
            continue
        extra = np.diag(var[sel].astype(np.float64).mean(axis=0))
        if ze.shape[0] > cfg.bic_fit_spikes:
            ze = ze[np.sort(rng.choice(ze.shape[0], cfg.bic_fit_spikes, replace=False))]
        gm = select_mixture(ze, cfg, seed)
        prior.set_electrode(e, gm.weights_, gm.means_, _full_covariances(gm) + extra[None])


def _joint_epoch(model, prior, optimizer, xt, et, corrupt, generator, cfg: VaDEConfig, show: bool, epoch: int):
    """One pass of joint training; returns the mean (recon, kl, total) per spike."""
    from tqdm.auto import tqdm

    n, bs = xt.shape[0], cfg.net.batch_size
    perm = torch.randperm(n, generator=generator, device=xt.device)
    sums = torch.zeros(3, device=xt.device)
    bar = tqdm(range(0, n, bs), desc=f"VaDE epoch {epoch}/{cfg.epochs}", disable=not show, leave=False)
    for start in bar:
        idx = perm[start:start + bs]
        xb, eb = xt[idx], et[idx]
        model.train()
        mu, logvar = model.encode(corrupt(xb, generator))
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = 0.5 * ((model.decode(z) - xb) ** 2).sum(dim=1).mean() / model.noise_var
        kl = prior.kl(z, mu, logvar, eb).mean()
        total = recon + cfg.mixture_weight * kl
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        sums += torch.stack([recon.detach(), kl.detach(), total.detach()]) * xb.shape[0]
    return (sums / n).tolist()


def train_joint(model, prior: MixturePrior, x_train: np.ndarray, e_train: np.ndarray, bank, noise_std: float,
                cfg: VaDEConfig, device, progress: bool = False) -> list[dict]:
    """Train network and mixtures together for ``cfg.epochs`` epochs (in place).

    Parameters
    ----------
    model : SpikeVAE
        Pretrained, on ``device``.
    prior : MixturePrior
        Initialised (:func:`init_prior`), on ``device``.
    x_train : ndarray of shape (n, L), float32
        Clean waveforms in model units.
    e_train : ndarray of shape (n,), int
        Electrode of each waveform.
    bank : ndarray of shape (n_snippets, L), float32, or None
        Background noise in model units (corruption ``background``).
    noise_std : float
        Electrode noise σ in model units.

    Returns
    -------
    list of dict
        Per epoch: epoch, seconds, recon, kl, total (means per spike).
    """
    xt = torch.from_numpy(np.ascontiguousarray(x_train)).to(device)
    et = torch.from_numpy(np.asarray(e_train, dtype=np.int64)).to(device)
    bank_t = None if bank is None else torch.from_numpy(bank).to(device)
    corrupt = make_corruption(cfg.net.corruption, cfg.net, noise_std, bank_t)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(prior.parameters()), lr=cfg.lr)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.net.seed + 1)
    show = progress and sys.stderr.isatty()
    history = []
    with deterministic(), cpu_threads(cfg.net.num_threads):
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            recon, kl, total = _joint_epoch(model, prior, optimizer, xt, et, corrupt, generator, cfg, show, epoch)
            if not math.isfinite(total):
                raise SpikevaeError(f"VaDE joint training diverged at epoch {epoch} (loss {total}); lower "
                                    f"features.vade.lr (now {cfg.lr:g}) or raise features.vade.reg_covar")
            history.append({"epoch": epoch, "seconds": time.perf_counter() - t0, "recon": recon, "kl": kl,
                            "total": total})
            log.info("VaDE epoch %d: total %.3f (recon %.3f, mixture KL %.3f), %.1f s", epoch, total, recon, kl,
                     history[-1]["seconds"])
    model.eval()
    prior.eval()
    return history
