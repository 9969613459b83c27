"""The device policy: decided once, at the edge, and passed explicitly everywhere else.

``resolve_device("auto")`` gives CUDA when torch sees a GPU, else the CPU. Every
torch-using function in the package takes the resulting ``torch.device`` as an
argument, never a default (Kilosort's scattered ``device=cuda`` defaults are the
counter-example).
"""
from __future__ import annotations

import logging

from .errors import SpikevaeError

log = logging.getLogger(__name__)
_logged: set[str] = set()


def resolve_device(requested: str = "auto"):
    """The torch device to use.

    Parameters
    ----------
    requested : str, default "auto"
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    torch.device

    Raises
    ------
    SpikevaeError
        If the name is not a device, or CUDA is asked for but torch sees no GPU.
    """
    import torch

    text = (requested or "auto").strip().lower()
    if text == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(text)
        except (RuntimeError, ValueError):
            raise SpikevaeError(f"device {requested!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
        if device.type not in ("cpu", "cuda"):
            raise SpikevaeError(f"device {requested!r}: only cpu and cuda are supported; use auto, cpu, cuda or cuda:N")
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise SpikevaeError(f"device {requested!r}: torch sees no CUDA GPU; use --device cpu (or auto)")
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise SpikevaeError(
                    f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0 .. "
                    f"cuda:{torch.cuda.device_count() - 1}"
                )
    key = f"{text}->{device}"
    if key not in _logged:
        _logged.add(key)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        log.info("torch device: %s (%s; requested %s)", device, name, text)
    return device
