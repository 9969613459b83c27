"""Per-electrode Gaussian-mixture priors over the latent space, and the VaDE KL term.

Electrode ``e`` has up to K components (``active[e]`` says which are used) with weights
π_e = softmax(logits_e), means μ_ek and covariances Σ_ek = L_ek L_ekᵀ (L lower
triangular with a positive diagonal; diagonal-only with ``covariance = "diag"``).
For a spike of electrode e with encoder posterior q(z | x) = N(m, diag(s²)) and a
sample z from it, the responsibilities are γ_k ∝ π_ek N(z; μ_ek, Σ_ek) and the KL of
q(z, c | x) = q(z | x) γ(c) from p(z, c | e) is (Jiang et al. 2017, eq. 17, full covariance)::

    KL = Σ_k γ_k [ ½ (log |2π Σ_k| + tr(Σ_k⁻¹ diag(s²)) + (m − μ_k)ᵀ Σ_k⁻¹ (m − μ_k))
                   − log π_k + log γ_k ]  −  ½ Σ_d (1 + log 2π + log s²_d)
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class MixturePrior(nn.Module):
    """Gaussian mixtures p(z | e) for ``n_electrodes`` electrodes of up to ``max_components`` components each.

    Parameters
    ----------
    n_electrodes : int
    max_components : int
    latent_dim : int
    diagonal : bool, default False
        Diagonal covariances (the off-diagonal Cholesky entries are held at 0).
    """

    def __init__(self, n_electrodes: int, max_components: int, latent_dim: int, diagonal: bool = False):
        super().__init__()
        e, k, d = int(n_electrodes), int(max_components), int(latent_dim)
        self.diagonal = bool(diagonal)
        self.logits = nn.Parameter(torch.zeros(e, k))
        self.means = nn.Parameter(torch.zeros(e, k, d))
        self.chol_raw = nn.Parameter(torch.zeros(e, k, d, d))  # diagonal holds log of L's diagonal
        self.register_buffer("active", torch.zeros(e, k, dtype=torch.bool))
        self.active[:, 0] = True

    @property
    def n_components(self) -> np.ndarray:
        """Active components per electrode, shape (n_electrodes,), int64."""
        return self.active.sum(dim=1).cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def set_electrode(self, e: int, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> None:
        """Initialise electrode ``e`` from a fitted mixture: weights (k,), means (k, D), covariances (k, D, D)."""
        k = len(weights)
        dev = self.means.device
        chol = torch.linalg.cholesky(torch.as_tensor(np.asarray(covariances), dtype=torch.float32, device=dev))
        raw = torch.tril(chol, -1) + torch.diag_embed(torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)))
        self.active[e] = False
        self.active[e, :k] = True
        self.logits[e] = 0.0
        self.logits[e, :k] = torch.log(torch.as_tensor(np.asarray(weights), dtype=torch.float32, device=dev))
        self.means[e, :k] = torch.as_tensor(np.asarray(means), dtype=torch.float32, device=dev)
        self.chol_raw[e] = 0.0
        self.chol_raw[e, :k] = raw if not self.diagonal else torch.diag_embed(torch.diagonal(raw, dim1=-2, dim2=-1))

    def _cholesky(self) -> torch.Tensor:
        """L of every component, (E, K, D, D)."""
        diag = torch.exp(torch.diagonal(self.chol_raw, dim1=-2, dim2=-1))
        low = torch.zeros_like(self.chol_raw) if self.diagonal else torch.tril(self.chol_raw, -1)
        return low + torch.diag_embed(diag)

    def _components(self, electrode: torch.Tensor):
        """log π (B, K) (−inf where inactive), μ (B, K, D), Σ⁻¹ (B, K, D, D), log|Σ| (B, K) of each spike's electrode."""
        chol = self._cholesky()
        eye = torch.eye(chol.shape[-1], device=chol.device, dtype=chol.dtype).expand_as(chol)
        inv_chol = torch.linalg.solve_triangular(chol, eye, upper=False)
        precision = inv_chol.transpose(-1, -2) @ inv_chol
        logdet = 2.0 * torch.diagonal(self.chol_raw, dim1=-2, dim2=-1).sum(-1)
        log_pi = torch.log_softmax(self.logits.masked_fill(~self.active, -torch.inf), dim=1)
        return log_pi[electrode], self.means[electrode], precision[electrode], logdet[electrode]

    def log_joint(self, z: torch.Tensor, electrode: torch.Tensor) -> torch.Tensor:
        """log π_k + log N(z; μ_k, Σ_k) of latents ``z`` (B, D) on their electrodes (B,) -> (B, K)."""
        log_pi, mu, prec, logdet = self._components(electrode)
        return log_pi + _log_normal(z, mu, prec, logdet)

    def responsibilities(self, z: torch.Tensor, electrode: torch.Tensor) -> torch.Tensor:
        """Posterior component probabilities (B, K); 0 for inactive components, rows sum to 1."""
        return torch.softmax(self.log_joint(z, electrode), dim=1)

    def kl(self, z: torch.Tensor, mu_q: torch.Tensor, logvar_q: torch.Tensor, electrode: torch.Tensor) -> torch.Tensor:
        """KL(q(z, c | x) ‖ p(z, c | e)) per spike (B,), with γ taken at the sample ``z`` (module docstring)."""
        log_pi, mu, prec, logdet = self._components(electrode)
        log_joint = log_pi + _log_normal(z, mu, prec, logdet)
        gamma = torch.softmax(log_joint, dim=1)
        log_gamma = torch.log_softmax(log_joint, dim=1)
        diff = mu_q[:, None, :] - mu
        maha = torch.einsum("bkd,bkde,bke->bk", diff, prec, diff)
        trace = (logvar_q.exp()[:, None, :] * torch.diagonal(prec, dim1=-2, dim2=-1)).sum(-1)
        d = mu_q.shape[1]
        cross = 0.5 * (logdet + trace + maha + d * math.log(2 * math.pi))
        off = ~self.active[electrode]  # inactive: γ = 0 exactly; finite stand-ins keep the gradients finite
        per_k = gamma * (cross - log_pi.masked_fill(off, 0.0) + log_gamma.masked_fill(off, 0.0))
        entropy = 0.5 * (1.0 + math.log(2 * math.pi) + logvar_q).sum(dim=1)
        return per_k.sum(dim=1) - entropy


def _log_normal(z: torch.Tensor, mu: torch.Tensor, prec: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
    """log N(z; μ_k, Σ_k) for z (B, D), μ (B, K, D), Σ⁻¹ (B, K, D, D), log|Σ| (B, K) -> (B, K)."""
    diff = z[:, None, :] - mu
    maha = torch.einsum("bkd,bkde,bke->bk", diff, prec, diff)
    return -0.5 * (maha + logdet + z.shape[1] * math.log(2 * math.pi))
