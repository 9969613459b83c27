"""A trained VaDE model as a folder, written atomically, loadable without any training state.

Layout (the shared network is a VAE model folder of :mod:`spikevae.features.vae.io`)::

    vade.json        VaDEConfig (every key, ``net`` included), n_electrodes, the mixtures' shape
    prior.pt         per-electrode mixtures (MixturePrior state dict; loaded with weights_only)
    net/             the network after joint training (config.json, state_dict.pt, normalisation.json, ...)
    history.json     loss terms per epoch: pretraining and joint training
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ...config import apply_dict
from ...errors import SpikevaeError
from .config import VaDEConfig

REQUIRED = ("vade.json", "prior.pt", "net")


def save_vade_folder(folder, config: VaDEConfig, vae, prior, n_electrodes: int, history: dict,
                     seconds: dict) -> Path:
    """Write a VaDE model folder atomically (see the module docstring); returns its path."""
    import torch

    from ...store import atomic_path

    folder = Path(folder)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        meta = {"config": dataclasses.asdict(config), "n_electrodes": int(n_electrodes),
                "max_components": int(prior.means.shape[1]), "latent_dim": int(prior.means.shape[2]),
                "diagonal": bool(prior.diagonal), "seconds": seconds}
        (tmp / "vade.json").write_text(json.dumps(meta, indent=2))
        torch.save({k: v.detach().cpu() for k, v in prior.state_dict().items()}, tmp / "prior.pt")
        vae.save(tmp / "net")
        (tmp / "history.json").write_text(json.dumps(history, indent=1))
    return folder


def read_vade_folder(folder) -> tuple[VaDEConfig, dict, dict, dict]:
    """(config, metadata of vade.json, prior state dict on CPU, history) of a VaDE model folder.

    Raises
    ------
    SpikevaeError
        If the folder or one of its parts is missing or unreadable (the message names it).
    """
    import torch

    folder = Path(folder)
    if not folder.is_dir():
        raise SpikevaeError(f"{folder}: VaDE model folder not found; sort with --set features.method=vade")
    for name in REQUIRED:
        if not (folder / name).exists():
            raise SpikevaeError(f"{folder / name}: missing from the VaDE model folder; rerun the sort")
    try:
        meta = json.loads((folder / "vade.json").read_text())
    except json.JSONDecodeError as exc:
        raise SpikevaeError(f"{folder / 'vade.json'}: not valid JSON ({exc})") from None
    config = VaDEConfig()
    apply_dict(config, meta.pop("config"))
    try:
        state = torch.load(folder / "prior.pt", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable weight file is a user error here
        raise SpikevaeError(f"{folder / 'prior.pt'}: cannot read the mixtures ({exc})") from None
    path = folder / "history.json"
    history = json.loads(path.read_text()) if path.is_file() else {}
    return config, meta, state, history
