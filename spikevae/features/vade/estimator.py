"""``VaDEFeatures``: the clustering-aware VAE behind the feature-extractor contract.

``fit`` pretrains the shared network as :class:`~spikevae.features.vae.VAEFeatures` does
(same normalisation: waveforms divided by their electrode's noise σ, never per spike,
so amplitude stays information), sizes one Gaussian mixture per electrode by BIC in
its latent space, then trains network and mixtures together on the VaDE bound.
``transform`` returns posterior means, which the pipeline clusters and refines as any
other feature space; ``responsibilities`` and ``predict`` expose the learned mixtures.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from ...errors import SpikevaeConfigError, SpikevaeError
from ...objects import Embedding, Spikes
from ..base import FeatureExtractor
from .config import VaDEConfig

log = logging.getLogger(__name__)


def _as_config(config) -> VaDEConfig:
    if config is None:
        return VaDEConfig()
    if isinstance(config, VaDEConfig):
        return config
    if isinstance(config, dict):
        from ...config import apply_dict

        cfg = VaDEConfig()
        apply_dict(cfg, config)
        return cfg
    raise TypeError(f"config must be a VaDEConfig or a dict, not {type(config).__name__}")


class VaDEFeatures(FeatureExtractor):
    """Clustering-aware latent features: a VAE with per-electrode Gaussian-mixture priors.

    Parameters
    ----------
    config : VaDEConfig or dict, optional
        Mixture and joint-training settings; ``config.net`` is the network (a VAEConfig).

    Attributes
    ----------
    vae_ : VAEFeatures
        The shared network after pretraining and joint training (its ``model_`` in eval mode).
    prior_ : MixturePrior
        Per-electrode mixtures (``prior_.n_components``: components per electrode).
    history_ : dict
        ``pretrain``: the VAE's per-epoch losses; ``joint``: the joint training's.
    seconds_ : dict
        Wall time of ``pretrain``, ``mixtures`` and ``joint`` (s).
    n_electrodes_ : int
    """

    method = "vade"

    def __init__(self, config: VaDEConfig | dict | None = None):
        self.config = config
        self._run = {"checkpoint_dir": None, "device": None, "progress": False}

    def configure_run(self, out_dir=None, device: str | None = None, progress: bool = False,
                      checkpoint_dir=None) -> "VaDEFeatures":
        """Run-time options that do not change what is learned (as :meth:`VAEFeatures.configure_run`).

        ``out_dir`` puts the pretraining's checkpoints in ``out_dir/vade_checkpoints``.
        """
        from pathlib import Path

        if checkpoint_dir is None and out_dir is not None:
            checkpoint_dir = Path(out_dir) / "vade_checkpoints"
        self._run = {"checkpoint_dir": checkpoint_dir, "device": device, "progress": progress}
        return self

    def get_params(self) -> dict:
        """The configuration as a plain dict."""
        return dataclasses.asdict(_as_config(self.config))

    def fit(self, spikes: Spikes, progress: bool | None = None) -> "VaDEFeatures":
        """Pretrain the network, size the mixtures, train both together on all electrodes of ``spikes``.

        Parameters
        ----------
        spikes : Spikes
            Aligned waveforms (n, L) µV with per-electrode noise σ (and ``noise_snippets``
            for the default ``background`` corruption).
        progress : bool, optional
            Progress bars (on a terminal only); default from :meth:`configure_run`.

        Returns
        -------
        self
        """
        import torch

        from ..vae import VAEFeatures
        from ..vae.train import noise_bank, split_indices
        from .prior import MixturePrior
        from .train import init_prior, posterior, train_joint

        cfg = _as_config(self.config)
        if cfg.net.kind == "ae":
            raise SpikevaeConfigError("features.vade.net.kind = ae has no posterior variance for the mixture prior; "
                                      "use vae or beta_vae")
        progress = self._run["progress"] if progress is None else progress
        t0 = time.perf_counter()
        vae = VAEFeatures(cfg.net).configure_run(device=self._run["device"], progress=progress,
                                                 checkpoint_dir=self._run["checkpoint_dir"])
        vae.fit(spikes)
        t1 = time.perf_counter()
        train_idx, _ = split_indices(spikes.n_spikes, cfg.net.val_fraction, cfg.net.max_train_spikes, cfg.net.seed)
        x = vae.normalisation_.apply(spikes.scaled_waveforms(train_idx))  # only the training rows are read
        electrode = spikes.electrode[train_idx]
        n_el = int(spikes.noise_uv.shape[0])
        z, var = posterior(vae.model_, x, cfg.net.embed_batch_size, vae.device_, cfg.net.num_threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.net.seed)
            prior = MixturePrior(n_el, cfg.max_components, cfg.net.latent_dim, cfg.covariance == "diag")
        prior = prior.to(vae.device_)
        init_prior(prior, z, var, electrode, cfg, cfg.net.seed, progress)
        t2 = time.perf_counter()
        log.info("VaDE mixtures: %d components over %d electrodes (%.1f s)", int(prior.n_components.sum()), n_el, t2 - t1)
        joint = train_joint(vae.model_, prior, x, electrode, noise_bank(spikes, vae.normalisation_),
                            vae.normalisation_.noise_std, cfg, vae.device_, progress)
        self.vae_, self.prior_, self.n_electrodes_ = vae, prior, n_el
        self.history_ = {"pretrain": vae.history_, "joint": joint}
        self.seconds_ = {"pretrain": t1 - t0, "mixtures": t2 - t1, "joint": time.perf_counter() - t2}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "prior_"):
            raise SpikevaeError("this VaDEFeatures is not trained; call fit(spikes) first")

    def transform(self, spikes: Spikes, batch_size: int | None = None) -> Embedding:
        """Posterior means of every spike.

        Returns
        -------
        Embedding
            ``features`` (n_spikes, latent_dim) float32, method "vade", params = the config.
        """
        self._check_fitted()
        emb = self.vae_.transform(spikes, batch_size)
        return Embedding(emb.features, self.method, {**self.get_params(), "n_samples": self.vae_.n_samples_})

    def stream_block(self) -> int:
        return self.vae_.stream_block()

    def responsibilities(self, spikes: Spikes) -> np.ndarray:
        """Probability of each component of its electrode's mixture, at the posterior mean.

        Returns
        -------
        ndarray of shape (n_spikes, max_components), float32
            Rows sum to 1; columns past an electrode's component count are 0.
        """
        import torch

        self._check_fitted()
        if spikes.n_spikes and int(spikes.electrode.max()) >= self.n_electrodes_:
            raise SpikevaeError(f"spikes on electrode index {int(spikes.electrode.max())}, but this model has "
                                f"mixtures for {self.n_electrodes_} electrodes; train it on this recording")
        z = torch.from_numpy(self.transform(spikes).features).to(self.vae_.device_)
        e = torch.from_numpy(np.asarray(spikes.electrode, dtype=np.int64)).to(self.vae_.device_)
        with torch.no_grad():
            return self.prior_.responsibilities(z, e).float().cpu().numpy()

    def predict(self, spikes: Spikes) -> np.ndarray:
        """Most probable mixture component of each spike on its electrode, shape (n_spikes,), int64."""
        return self.responsibilities(spikes).argmax(axis=1).astype(np.int64)

    def save(self, folder):
        """Write the trained model as a folder (vade.json, prior.pt, net/; see :mod:`.io`)."""
        from .io import save_vade_folder

        self._check_fitted()
        return save_vade_folder(folder, _as_config(self.config), self.vae_, self.prior_, self.n_electrodes_,
                                self.history_, self.seconds_)

    @classmethod
    def load(cls, folder, device: str | None = None) -> "VaDEFeatures":
        """A trained model from a folder written by :meth:`save`.

        Parameters
        ----------
        folder : path
        device : str, optional
            Overrides the saved network ``device`` setting ("auto", "cpu", "cuda", ...).
        """
        from pathlib import Path

        from ..vae import VAEFeatures
        from .io import read_vade_folder
        from .prior import MixturePrior

        config, meta, state, history = read_vade_folder(folder)
        vae = VAEFeatures.load(Path(folder) / "net", device=device)
        prior = MixturePrior(meta["n_electrodes"], meta["max_components"], meta["latent_dim"], meta["diagonal"])
        try:
            prior.load_state_dict(state)
        except RuntimeError as exc:
            raise SpikevaeError(f"{folder}: prior.pt does not match vade.json ({exc})") from None
        config.net = vae.config
        self = cls(config)
        self.vae_, self.prior_, self.n_electrodes_ = vae, prior.to(vae.device_).eval(), int(meta["n_electrodes"])
        self.history_, self.seconds_ = history, dict(meta.get("seconds", {}))
        return self
