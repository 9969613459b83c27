"""Training of :class:`SpikeVAE`: normalisation, split, Adam, early stopping, checkpoints.

Waveforms of all electrodes are pooled, each divided by its electrode's noise σ
(never per spike, so amplitude differences survive), centred by the mean waveform
and divided by one global scale. A random ``val_fraction`` is held out; training
stops after ``patience`` epochs without a lower validation loss and keeps the best
weights.

Reproducibility: one explicit ``torch.Generator`` on the training device draws the
batch order, the corruption and the reparameterisation noise; weights are
initialised under a forked, seeded global RNG; deterministic algorithms are on
while training. Validation uses its own generator and never advances the global
step, which the β-VAE capacity schedule reads. A checkpoint (model, optimizer,
generator, step, epoch, history, best weights) is written atomically after every
epoch, so a training interrupted at any point resumes from its last epoch and ends
with the same weights as an uninterrupted one. Checkpoints of different settings or
data live in different sub-folders (named by a hash of both), so they never mix.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import SpikevaeError
from .config import VAEConfig
from .corrupt import make_corruption
from .cuda_graph import StepRunner, why_not_graphed
from .model import SpikeVAE

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
# Config keys that do not change what is learned; a checkpoint stays valid across them.
_NOT_LEARNED = ("device", "embed_batch_size", "amp", "num_threads", "cuda_graphs")


@dataclass
class Normalisation:
    """Maps σ-scaled waveforms to the model's input units: ``(w / σ_electrode - mean) / scale``.

    Parameters
    ----------
    mean : ndarray of shape (L,), float32
        Mean σ-scaled waveform of the training set.
    scale : float
        Global standard deviation of the centred σ-scaled waveforms.
    """

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, scaled: np.ndarray) -> "Normalisation":
        mean = scaled.mean(axis=0).astype(np.float32)
        scale = float(np.sqrt(((scaled - mean) ** 2).mean()))
        return cls(mean, scale if scale > 0 else 1.0)

    def apply(self, scaled: np.ndarray) -> np.ndarray:
        """(n, L) σ-scaled waveforms -> (n, L) float32 model inputs."""
        return ((scaled - self.mean) / self.scale).astype(np.float32)

    @property
    def noise_std(self) -> float:
        """Standard deviation of one electrode's noise in model units."""
        return 1.0 / self.scale

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "scale": self.scale,
                "waveform_scaling": "divided by the electrode noise sigma (Spikes.noise_uv), then (x - mean) / scale"}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalisation":
        return cls(np.asarray(d["mean"], dtype=np.float32), float(d["scale"]))


def noise_bank(spikes, norm: Normalisation) -> np.ndarray | None:
    """Background-noise snippets of ``spikes`` in model units (n_snippets, L), or None."""
    if spikes.noise_snippets is None or len(spikes.noise_snippets) == 0:
        return None
    if spikes.noise_snippets.shape[1] != spikes.n_samples:
        raise SpikevaeError(
            f"noise snippets have {spikes.noise_snippets.shape[1]} samples but waveforms {spikes.n_samples}; "
            "re-run detection so both use the same window"
        )
    sigma = np.maximum(spikes.noise_uv, 1e-6)[spikes.noise_electrode]
    return (spikes.noise_snippets / sigma[:, None] / norm.scale).astype(np.float32)


def split_indices(n: int, val_fraction: float, max_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sorted (train, validation) index arrays.

    At most ``max_train`` training waveforms, and ``val_fraction`` of ``min(n, max_train)``
    for validation, so neither grows with ``n`` past ``max_train`` (below it, the split is
    ``val_fraction`` of ``n``, as it always was).
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_val = int(round(min(n, max_train) * val_fraction)) if n > 1 else 0
    n_val = min(n_val, n - 1)
    val, train = perm[:n_val], perm[n_val:n_val + max_train]
    return np.sort(train), np.sort(val)


def scaled_rows(spikes, rows) -> np.ndarray:
    """σ-scaled waveforms (as ``Spikes.scaled_waveforms``) of ``rows`` only.

    ``rows`` is a slice or a sorted index array; only ``spikes.waveforms[rows]`` is read, so
    waveforms held in a lazy, on-disk array are never loaded whole.
    """
    sigma = np.maximum(spikes.noise_uv, 1e-6)[spikes.electrode[rows]]
    return spikes.waveforms[rows] / sigma[:, None]


def build_model(config: VAEConfig, n_samples: int, noise_var: float, device) -> SpikeVAE:
    """A freshly initialised model, its weights drawn from ``config.seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SpikeVAE(config, n_samples, noise_var)
    return model.to(device)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Torch uses ``n`` CPU threads inside the block (0 = leave as is); restored after."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def deterministic():
    """Deterministic torch algorithms inside the block (warn where none exists); restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)


def fingerprint(config: VAEConfig, x_train: np.ndarray, x_val: np.ndarray, bank: np.ndarray | None) -> str:
    """Hash of what a training learns from: the config (bar device-like keys) and the data."""
    h = hashlib.sha256()
    cfg = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_LEARNED}
    h.update(json.dumps(cfg, sort_keys=True).encode())
    for arr in (x_train, x_val, bank):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


@dataclass
class TrainState:
    """Everything a checkpoint holds besides the model and optimizer."""

    epoch: int = 0
    step: int = 0
    history: list = dataclasses.field(default_factory=list)
    best_val: float = math.inf
    best_state: dict | None = None
    bad_epochs: int = 0
    finished: bool = False


def _autocast(device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: SpikeVAE, optimizer, x_clean: torch.Tensor, x_input: torch.Tensor, step: int,
               generator: torch.Generator | None, amp: bool = False):
    """One optimizer update on a batch; returns the LossTerms (detached floats are left to the caller)."""
    if not model.training:
        model.train()
    with _autocast(x_clean.device, amp):
        recon, mu, logvar = model(x_input, generator)
    terms = model.loss(x_clean, recon, mu, logvar, step)
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    return terms


@torch.no_grad()
def evaluate(model: SpikeVAE, x: torch.Tensor, corrupt, step: int, batch_size: int, seed: int,
             amp: bool = False) -> dict:
    """Mean loss terms on ``x`` (corrupted as in training, with a fixed generator); changes nothing.

    The step is only read (for the capacity in the β-VAE loss), never advanced.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed + 7919)
    sums = {"recon": 0.0, "kl": 0.0, "total": 0.0}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        with _autocast(x.device, amp):
            recon, mu, logvar = model(corrupt(xb, gen))
        terms = model.loss(xb, recon, mu, logvar, step)
        for k in sums:
            sums[k] += float(getattr(terms, k)) * xb.shape[0]
    model.train(was_training)
    return {k: v / max(x.shape[0], 1) for k, v in sums.items()}


def _save_checkpoint(folder: Path, model, optimizer, generator, state: TrainState, fp: str) -> None:
    from ...store import atomic_path

    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "generator": generator.get_state(), "fingerprint": fp, **dataclasses.asdict(state)}
    with atomic_path(folder / CHECKPOINT_NAME) as tmp:
        torch.save(payload, tmp)


def _load_checkpoint(folder: Path, model, optimizer, generator, device) -> TrainState | None:
    path = folder / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint is a user-visible problem
        raise SpikevaeError(f"{path}: cannot read this checkpoint ({exc}); delete it to start the training afresh") from None
    model.load_state_dict(payload["model"])
    # a checkpoint of an eager training may resume as a captured one (or back): Adam keeps its step count
    # where this run's optimizer needs it (on the device when capturable)
    for group in payload["optimizer"]["param_groups"]:
        group["capturable"] = optimizer.defaults.get("capturable", False)
    optimizer.load_state_dict(payload["optimizer"])
    gen_state = payload["generator"]
    generator.set_state(gen_state.cpu() if hasattr(gen_state, "cpu") else gen_state)
    state = TrainState(**{f.name: payload[f.name] for f in dataclasses.fields(TrainState)})
    log.info("resuming VAE training from %s at epoch %d, step %d", path, state.epoch, state.step)
    return state


def _sanity_forward(model: SpikeVAE, x: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            model.eval()
            model(x[:2])
    except RuntimeError as exc:
        raise SpikevaeError(
            f"the VAE cannot process waveforms of {x.shape[1]} samples with these settings "
            f"(channels={model.config.channels}, n_blocks={model.config.n_blocks}, "
            f"kernel_size={model.config.kernel_size}): {exc}"
        ) from None


def _train_epoch(run_step, xt: torch.Tensor, generator, state: TrainState, config: VAEConfig, show: bool) -> dict:
    """One pass over the training set in a random order; advances ``state.step``; returns mean loss terms."""
    from tqdm.auto import tqdm

    n, bs = xt.shape[0], config.batch_size
    perm = torch.randperm(n, generator=generator, device=xt.device)
    sums = {k: torch.zeros((), device=xt.device) for k in ("recon", "kl", "total")}
    bar = tqdm(range(0, n, bs), desc=f"VAE epoch {state.epoch + 1}/{config.epochs}", disable=not show, leave=False)
    for start in bar:
        xb = xt[perm[start:start + bs]]
        terms = run_step(xb, state.step)
        state.step += 1
        for k in sums:  # accumulated on the device: no host sync per batch
            sums[k] += getattr(terms, k).detach() * xb.shape[0]
        if show:
            bar.set_postfix(recon=f"{float(terms.recon):.2f}", kl=f"{float(terms.kl):.2f}",
                            total=f"{float(terms.total):.2f}")
    return {k: float(v) / n for k, v in sums.items()}


def train_model(model: SpikeVAE, x_train: np.ndarray, x_val: np.ndarray, bank: np.ndarray | None,
                norm: Normalisation, config: VAEConfig, device, checkpoint_dir=None, progress: bool = False,
                on_epoch_end=None) -> TrainState:
    """Train ``model`` in place; return the final state (history, step, best epoch's weights loaded).

    Parameters
    ----------
    model : SpikeVAE
        On ``device``.
    x_train, x_val : ndarray of shape (n, L), float32
        Clean waveforms in model units (``norm.apply`` of σ-scaled waveforms).
    bank : ndarray of shape (n_snippets, L), float32, or None
        Background noise in model units (corruption ``background``).
    norm : Normalisation
    config : VAEConfig
    device : torch.device
    checkpoint_dir : path, optional
        Checkpoints go to ``checkpoint_dir/<fingerprint>/checkpoint.pt``, the fingerprint
        being a hash of the settings and the data; an existing checkpoint of the same
        training is resumed (a finished one returns at once with its best weights).
    progress : bool, default False
        Show a tqdm bar with the loss terms (only on a terminal).
    on_epoch_end : callable(TrainState), optional
        Called after each epoch's checkpoint (used by tests to interrupt a training).
    """
    xt = torch.from_numpy(np.ascontiguousarray(x_train)).to(device)
    xv = torch.from_numpy(np.ascontiguousarray(x_val)).to(device)
    bank_t = None if bank is None else torch.from_numpy(bank).to(device)
    corrupt = make_corruption(config.corruption, config, norm.noise_std, bank_t)
    _sanity_forward(model, xt)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    amp = bool(config.amp) and device.type == "cuda"
    not_graphed = why_not_graphed(config, device, amp)
    if device.type == "cuda" and not_graphed:
        log.info("VAE training steps run eagerly on %s: %s", device, not_graphed)
    # a captured Adam keeps its step count on the device (capturable); the same update otherwise
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, capturable=not not_graphed)
    fp = fingerprint(config, x_train, x_val, bank)
    # one sub-folder per (settings, data): another configuration never clobbers or resumes this one
    folder = Path(checkpoint_dir) / fp if checkpoint_dir else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    state = (_load_checkpoint(folder, model, optimizer, generator, device) if folder else None) or TrainState()
    show = progress and sys.stderr.isatty()
    run_step = StepRunner(model, optimizer, corrupt, generator, config.batch_size, amp, graphed=not not_graphed)
    with deterministic(), cpu_threads(config.num_threads):
        while not state.finished and state.epoch < config.epochs:
            t0 = time.perf_counter()
            train = _train_epoch(run_step, xt, generator, state, config, show)
            if not math.isfinite(train["total"]):
                raise SpikevaeError(
                    f"VAE training diverged at epoch {state.epoch + 1} (loss {train['total']}); "
                    f"lower features.vae.lr (now {config.lr:g}) or use features.vae.kind = ae"
                )
            val = evaluate(model, xv, corrupt, state.step, config.embed_batch_size, config.seed, amp) if len(xv) else train
            state.epoch += 1
            state.history.append({"epoch": state.epoch, "step": state.step, "seconds": time.perf_counter() - t0,
                                  **{f"train_{k}": v for k, v in train.items()},
                                  **{f"val_{k}": v for k, v in val.items()}})
            if val["total"] < state.best_val:
                state.best_val, state.bad_epochs = val["total"], 0
                state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state.bad_epochs += 1
            state.finished = state.bad_epochs >= config.patience or state.epoch >= config.epochs
            log.info("VAE epoch %d: train total %.3f, val total %.3f (recon %.3f, kl %.3f), %.1f s",
                     state.epoch, train["total"], val["total"], val["recon"], val["kl"], state.history[-1]["seconds"])
            if folder is not None:
                _save_checkpoint(folder, model, optimizer, generator, state, fp)
            if on_epoch_end is not None:
                on_epoch_end(state)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    model.eval()
    return state


def _encode_into(model: SpikeVAE, x: np.ndarray, out: np.ndarray, batch_size: int, device) -> None:
    """``out[:] = μ(x)`` for model-unit waveforms ``x``, ``batch_size`` rows per forward pass."""
    for start in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device)
        mu, _ = model.encode(xb)
        out[start:start + xb.shape[0]] = mu.float().cpu().numpy()


@torch.inference_mode()
def embed(model: SpikeVAE, x: np.ndarray, batch_size: int, device, num_threads: int = 0) -> np.ndarray:
    """Posterior means μ of model-unit waveforms ``x`` (n, L) -> (n, latent_dim) float32, in batches."""
    was_training = model.training
    model.eval()
    out = np.empty((x.shape[0], model.config.latent_dim), dtype=np.float32)
    with cpu_threads(num_threads):
        _encode_into(model, x, out, batch_size, device)
    model.train(was_training)
    return out


#: rows of ``Spikes.waveforms`` read at a time when embedding (12 MB of 48-sample float32 waveforms)
READ_ROWS = 65536


@torch.inference_mode()
def embed_spikes(model: SpikeVAE, norm: Normalisation, spikes, batch_size: int, device, num_threads: int = 0,
                 read_rows: int | None = None) -> np.ndarray:
    """Posterior means μ of every spike -> (n_spikes, latent_dim) float32.

    The waveforms are read in blocks of ``read_rows`` contiguous rows (``spikes.waveforms[a:b]``),
    scaled and normalised block by block: memory beyond the output stays bounded however many
    spikes there are, and a lazy on-disk waveform array is never loaded whole.
    """
    was_training = model.training
    model.eval()
    n = spikes.n_spikes
    out = np.empty((n, model.config.latent_dim), dtype=np.float32)
    step = max(int(read_rows or READ_ROWS), int(batch_size))
    with cpu_threads(num_threads):
        for a in range(0, n, step):
            b = min(a + step, n)
            _encode_into(model, norm.apply(scaled_rows(spikes, slice(a, b))), out[a:b], batch_size, device)
    model.train(was_training)
    return out
