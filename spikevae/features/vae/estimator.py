"""``VAEFeatures``: the VAE behind the same fit/transform contract as PCA.

scikit-learn's estimator contract: ``__init__`` only stores; ``fit`` sets attributes
ending in ``_``; ``transform`` changes nothing and returns posterior means;
``get_params`` returns the config as a dict.
"""
from __future__ import annotations

import dataclasses
import logging

from ...errors import SpikevaeError
from ...objects import Embedding, Spikes
from ..base import FeatureExtractor
from .config import VAEConfig

log = logging.getLogger(__name__)


def _as_config(config) -> VAEConfig:
    if config is None:
        return VAEConfig()
    if isinstance(config, VAEConfig):
        return config
    if isinstance(config, dict):
        from ...config import apply_dict

        cfg = VAEConfig()
        apply_dict(cfg, config)
        return cfg
    raise TypeError(f"config must be a VAEConfig or a dict, not {type(config).__name__}")


def _refuse_groups(spikes: Spikes) -> None:
    if spikes.group_channels is not None:
        raise SpikevaeError("VAE features do not support channel groups (concatenated waveforms); "
                            "use features.method = pca")


class VAEFeatures(FeatureExtractor):
    """Convolutional (β-)VAE features of spike waveforms.

    Parameters
    ----------
    config : VAEConfig or dict, optional
        Model, loss and training settings (defaults: ``VAEConfig()``).

    Attributes
    ----------
    model_ : SpikeVAE
        The trained network (eval mode) on ``device_``.
    normalisation_ : Normalisation
    history_ : list of dict
        Loss terms per epoch.
    step_ : int
        Training steps taken.
    device_ : torch.device
    n_samples_ : int
        Waveform length the model takes.
    """

    method = "vae"

    def __init__(self, config: VAEConfig | dict | None = None):
        self.config = config
        self._run = {"checkpoint_dir": None, "device": None, "progress": False}

    def configure_run(self, out_dir=None, device: str | None = None, progress: bool = False,
                      checkpoint_dir=None) -> "VAEFeatures":
        """Run-time options that do not change what is learned (kept out of ``get_params``).

        Parameters
        ----------
        out_dir : path, optional
            Run folder; checkpoints go to ``out_dir/vae_checkpoints`` unless ``checkpoint_dir`` is given.
        device : str, optional
            Overrides ``config.device`` ("auto", "cpu", "cuda", "cuda:N").
        progress : bool, default False
            Progress bar while training.
        checkpoint_dir : path, optional
            Folder for per-epoch checkpoints (an interrupted training resumes from it).
        """
        from pathlib import Path

        if checkpoint_dir is None and out_dir is not None:
            checkpoint_dir = Path(out_dir) / "vae_checkpoints"
        self._run = {"checkpoint_dir": checkpoint_dir, "device": device, "progress": progress}
        return self

    def get_params(self) -> dict:
        """The configuration as a plain dict."""
        return dataclasses.asdict(_as_config(self.config))

    def fit(self, spikes: Spikes, checkpoint_dir=None, progress: bool | None = None) -> "VAEFeatures":
        """Train on the waveforms of all electrodes of ``spikes``.

        Parameters
        ----------
        spikes : Spikes
            Aligned waveforms (n, L) µV with per-electrode noise σ; ``noise_snippets``
            are needed for the default ``background`` corruption.
        checkpoint_dir : path, optional
            Folder for a checkpoint after every epoch; an interrupted training with the
            same folder, settings and data resumes from it.
        progress : bool, optional
            Show a progress bar with the loss terms (on a terminal only); default from
            :meth:`configure_run` (off).

        Returns
        -------
        self
        """
        from ...device import resolve_device
        from .train import Normalisation, build_model, noise_bank, scaled_rows, split_indices, train_model

        cfg = _as_config(self.config)
        if spikes.n_spikes < 2:
            raise SpikevaeError(f"the VAE needs at least 2 waveforms to train, got {spikes.n_spikes}")
        _refuse_groups(spikes)
        checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else self._run["checkpoint_dir"]
        progress = self._run["progress"] if progress is None else progress
        device = resolve_device(self._run["device"] or cfg.device)
        train_idx, val_idx = split_indices(spikes.n_spikes, cfg.val_fraction, cfg.max_train_spikes, cfg.seed)
        # only the training subsample and the validation set are read (both bounded by max_train_spikes)
        train = scaled_rows(spikes, train_idx)
        norm = Normalisation.fit(train)
        x_train, x_val = norm.apply(train), norm.apply(scaled_rows(spikes, val_idx))
        del train
        bank = noise_bank(spikes, norm)
        model = build_model(cfg, spikes.n_samples, norm.noise_std ** 2, device)
        log.info("training VAE (%s, %s, latent %d) on %d waveforms (%d validation) on %s",
                 cfg.kind, cfg.arch, cfg.latent_dim, len(train_idx), len(val_idx), device)
        state = train_model(model, x_train, x_val, bank, norm, cfg, device, checkpoint_dir=checkpoint_dir,
                            progress=progress)
        self.model_, self.normalisation_, self.device_ = model, norm, device
        self.history_, self.step_, self.n_samples_ = state.history, state.step, spikes.n_samples
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise SpikevaeError("this VAEFeatures is not trained; call fit(spikes) or VAEFeatures.load(folder) first")

    def transform(self, spikes: Spikes, batch_size: int | None = None) -> Embedding:
        """Posterior means of every spike.

        Parameters
        ----------
        spikes : Spikes
            Waveforms of the length the model was trained on (any recording).
        batch_size : int, optional
            Waveforms per forward pass (default ``config.embed_batch_size``).

        Returns
        -------
        Embedding
            ``features`` (n_spikes, latent_dim) float32, method "vae", params = the config.
        """
        from .train import embed_spikes

        self._check_fitted()
        cfg = _as_config(self.config)
        if spikes.n_samples != self.n_samples_:
            raise SpikevaeError(
                f"waveforms have {spikes.n_samples} samples but this model was trained on {self.n_samples_}; "
                "detect with the same window, or train a model on these spikes"
            )
        _refuse_groups(spikes)
        feats = embed_spikes(self.model_, self.normalisation_, spikes, batch_size or cfg.embed_batch_size,
                             self.device_, cfg.num_threads)
        return Embedding(feats, self.method, {**self.get_params(), "n_samples": self.n_samples_})

    def fit_transform(self, spikes: Spikes, **fit_kwargs) -> Embedding:
        return self.fit(spikes, **fit_kwargs).transform(spikes)

    def stream_block(self) -> int:
        """A multiple of the rows :func:`~.train.embed_spikes` reads at a time, so streamed blocks
        are embedded in the very batches of one ``transform`` of all spikes."""
        from ..base import STREAM_BLOCK
        from .train import READ_ROWS

        step = max(READ_ROWS, int(_as_config(self.config).embed_batch_size))
        return step * max(1, STREAM_BLOCK // step)

    def save(self, folder):
        """Write the trained model as a folder (config.json, state_dict.pt, normalisation.json, ...)."""
        from .io import save_model_folder

        self._check_fitted()
        return save_model_folder(folder, _as_config(self.config), self.n_samples_, self.model_.state_dict(),
                                 self.normalisation_.to_dict(), self.history_, self.device_)

    @classmethod
    def load(cls, folder, device: str | None = None) -> "VAEFeatures":
        """A trained model from a folder written by :meth:`save`.

        Parameters
        ----------
        folder : path
        device : str, optional
            Overrides the saved ``device`` setting ("auto", "cpu", "cuda", ...).
        """
        from ...device import resolve_device
        from .io import read_model_folder
        from .model import SpikeVAE
        from .train import Normalisation

        config, n_samples, state, norm, history = read_model_folder(folder)
        if device is not None:
            config.device = device
        dev = resolve_device(config.device)
        model = SpikeVAE(config, n_samples)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise SpikevaeError(f"{folder}: state_dict.pt does not match config.json ({exc})") from None
        self = cls(config)
        self.model_ = model.to(dev).eval()
        self.normalisation_ = Normalisation.from_dict(norm)
        self.device_, self.history_, self.n_samples_ = dev, history, n_samples
        self.step_ = int(history[-1]["step"]) if history else 0
        return self
