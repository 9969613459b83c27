"""One sorted session as tracking sees it: its spikes, each spike's unit, and where it came from."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting, Spikes


@dataclass
class Session:
    """The detected spikes of one session and the unit of each.

    Parameters
    ----------
    name : str
        How reports name the session (the run folder).
    spikes : Spikes
        Detected, aligned spikes (waveforms in µV).
    unit : ndarray of shape (spikes.n_spikes,), int64
        Unit of each spike as in the session's ``sorting.npz`` (-1 = unsorted).
    vae_model : Path, optional
        The run's trained VAE model folder, when it has one.
    config : dict
        The run's resolved configuration (empty for in-memory sessions).
    vade_model : Path, optional
        The run's trained VaDE model folder (``features.method = vade``), when it has one.
    """

    name: str
    spikes: Spikes
    unit: np.ndarray
    vae_model: Path | None = None
    config: dict | None = None
    vade_model: Path | None = None

    def __post_init__(self) -> None:
        self.unit = np.asarray(self.unit, dtype=np.int64)
        if self.unit.shape != (self.spikes.n_spikes,):
            raise ValueError(f"unit has {self.unit.shape[0]} labels but there are {self.spikes.n_spikes} spikes")

    def unit_ids(self) -> np.ndarray:
        """Sorted unit ids of the session (without -1)."""
        u = np.unique(self.unit)
        return u[u >= 0]

    def unit_electrode(self, unit: int) -> int:
        """Electrode of ``unit`` (that of most of its spikes)."""
        return int(np.bincount(self.spikes.electrode[self.unit == unit]).argmax())


def labels_of_spikes(spikes: Spikes, sorting: Sorting) -> np.ndarray:
    """The unit of every detected spike, from a sorting of those spikes.

    The sorting's first ``spikes.n_spikes`` entries are the detected spikes in their order
    (:func:`spikevae.cluster.cluster_spikes`); when they are not, spikes are matched by
    (sample, electrode), and spikes that the sorting does not hold are unsorted.

    Returns
    -------
    ndarray of shape (spikes.n_spikes,), int64
    """
    n = spikes.n_spikes
    if sorting.sample_index.shape[0] >= n and np.array_equal(sorting.sample_index[:n], spikes.sample_index) \
            and np.array_equal(sorting.electrode[:n], spikes.electrode):
        return sorting.unit[:n].copy()
    key = {(int(t), int(e)): u for t, e, u in zip(sorting.sample_index, sorting.electrode, sorting.unit)}
    return np.array([key.get((int(t), int(e)), -1) for t, e in zip(spikes.sample_index, spikes.electrode)],
                    dtype=np.int64)


def load_session(run_dir, method: str | None = None) -> Session:
    """The spikes and main sorting of a finished run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by ``spikevae run`` (holds ``run.h5``).
    method : str, optional
        Which sorting (``pca``, ``vae``, ``curated``); default: the run's ``features.method``.

    Raises
    ------
    SpikevaeError
        When the folder holds no run store or not the sorting asked for.
    """
    from ..store import RunStore

    run = Path(run_dir)
    store = RunStore(run)
    if not store.path.exists():
        raise SpikevaeError(f"{run}: not a run folder (no run.h5); sort the session first with "
                            f"`spikevae run REC -o {run}`")
    info = store.root_attrs()
    cfg = info.get("config", {})
    method = method or cfg.get("features", {}).get("method", "pca")
    if method not in store.groups("sorting"):
        raise SpikevaeError(f"{run}: the run has no '{method}' sorting (it has: "
                            f"{', '.join(store.groups('sorting')) or 'none'}); choose one with --sorting")
    spikes = store.load_spikes()
    unit = labels_of_spikes(spikes, store.load_sorting(method))
    vae, vade = run / "vae_model", run / "vade_model"
    return Session(run.name or str(run), spikes, unit, vae if (vae / "config.json").is_file() else None, cfg,
                   vade if (vade / "vade.json").is_file() else None)
