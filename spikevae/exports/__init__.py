"""Conversions out of spikevae and back into it, one module per tool (as SpikeInterface's ``exporters/``).

- :mod:`.phy`: a phy template-GUI folder, and the curated sorting back from it;
- :mod:`.nwb`: an NWB file (pynwb) with the electrodes and Units tables;
- :mod:`.spikeinterface`: SpikeInterface sortings and recordings, both ways.

Each tool's package is imported only when its export is asked for.
"""


def resolve_method(run_dir, info: dict, method: str | None, hint: str = "--method") -> tuple[str, str]:
    """(method to export, the run's main method) for the run whose store info is ``info``.

    Raises
    ------
    SpikevaeError
        When the run has no sorting ``method`` (the message lists those it has and ``hint``).
    """
    from ..errors import SpikevaeError

    main = info.get("config", {}).get("features", {}).get("method", "pca")
    method = method or main
    if method not in info["sortings"]:
        have = ", ".join(info["sortings"]) or "none"
        raise SpikevaeError(f"{run_dir}: the run has no '{method}' sorting (it has: {have}); pass {hint}")
    return method, main
