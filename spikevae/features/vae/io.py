"""A trained VAE as a folder, written atomically, loadable without any training state.

Layout of a model folder::

    config.json          VAEConfig (every key) + n_samples (waveform length L)
    state_dict.pt        model weights (torch.save of the state dict; loaded with weights_only)
    normalisation.json   mean waveform and global scale of the σ-scaled waveforms
    environment.json     torch/numpy/python versions, training device, time, spikevae version
    history.json         loss terms per epoch (train and validation)
    loss_curves.png      the same, plotted

The folder is written into a temporary sibling and renamed into place
(``spikevae.store.atomic_path``), so an interrupted save never leaves a folder that
looks complete.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

from ...config import apply_dict
from ...errors import SpikevaeError
from .config import VAEConfig

REQUIRED = ("config.json", "state_dict.pt", "normalisation.json")


def environment_info(device) -> dict:
    import numpy
    import torch

    from ... import __version__

    return {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "spikevae": __version__, "device": str(device),
            "cuda": torch.version.cuda, "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def plot_history(history: list[dict], path) -> None:
    """Plot reconstruction, KL and total loss (train and validation) per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    epochs = [h["epoch"] for h in history]
    for ax, term in zip(axes, ("recon", "kl", "total")):
        for split, style in (("train", "-"), ("val", "--")):
            ax.plot(epochs, [h[f"{split}_{term}"] for h in history], style, marker=".", label=split)
        ax.set_title(term)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("loss per waveform (nats)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_model_folder(folder, config: VAEConfig, n_samples: int, state_dict: dict, normalisation: dict,
                      history: list[dict], device) -> Path:
    """Write a model folder atomically (see the module docstring); returns its path."""
    import torch

    from ...store import atomic_path

    folder = Path(folder)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text(json.dumps({**dataclasses.asdict(config), "n_samples": n_samples}, indent=2))
        torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, tmp / "state_dict.pt")
        (tmp / "normalisation.json").write_text(json.dumps(normalisation, indent=2))
        (tmp / "environment.json").write_text(json.dumps(environment_info(device), indent=2))
        (tmp / "history.json").write_text(json.dumps(history, indent=1))
        if history:
            plot_history(history, tmp / "loss_curves.png")
    return folder


def read_model_folder(folder) -> tuple[VAEConfig, int, dict, dict, list]:
    """(config, n_samples, state_dict on CPU, normalisation dict, history) of a model folder.

    Raises
    ------
    SpikevaeError
        If the folder or one of its required files is missing or unreadable (the message names it).
    """
    import torch

    folder = Path(folder)
    if not folder.is_dir():
        raise SpikevaeError(f"{folder}: model folder not found; train one with `spikevae train OUT_DIR`")
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise SpikevaeError(f"{folder / name}: missing from the model folder; re-save or re-train the model")
    try:
        raw = json.loads((folder / "config.json").read_text())
        norm = json.loads((folder / "normalisation.json").read_text())
    except json.JSONDecodeError as exc:
        raise SpikevaeError(f"{folder}: config.json or normalisation.json is not valid JSON ({exc})") from None
    n_samples = int(raw.pop("n_samples"))
    config = VAEConfig()
    apply_dict(config, raw)
    try:
        state = torch.load(folder / "state_dict.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable weight file is a user error here
        raise SpikevaeError(f"{folder / 'state_dict.pt'}: cannot read the weights ({exc})") from None
    history_path = folder / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    return config, n_samples, state, norm, history
