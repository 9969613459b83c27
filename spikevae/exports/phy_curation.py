"""The sorting back from phy after a person curated it (merges, splits, labels).

phy saves a curation by rewriting ``spike_clusters.npy`` (one cluster id per spike, in the
export's spike order) and ``cluster_group.tsv`` (``cluster_id``, ``group``); it keeps the
export's other files. The curated sorting takes phy's cluster ids as unit ids; clusters
labelled ``noise`` become unsorted (-1). It is written as ``sorting_curated.npz`` (the
public contract of ``sorting.npz``) and into the run store as the sorting ``curated``, so
``spikevae report OUT`` shows it and ``spikevae compare OUT --method curated --gt GT``
scores it.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np

from ..errors import SpikevaeError
from ..objects import Sorting

log = logging.getLogger(__name__)

CURATED = "curated"


def read_cluster_groups(phy_dir: Path) -> dict[int, str]:
    """Label of each cluster from ``cluster_group.tsv`` (phy's own) or ``cluster_info.tsv``."""
    for name, column in (("cluster_group.tsv", "group"), ("cluster_info.tsv", "group")):
        p = phy_dir / name
        if not p.exists():
            continue
        with open(p, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows and "cluster_id" in rows[0] and column in rows[0]:
            return {int(r["cluster_id"]): (r[column] or "unsorted").strip() for r in rows}
    return {}


def _load(phy_dir: Path, name: str) -> np.ndarray:
    p = phy_dir / name
    if not p.exists():
        raise SpikevaeError(f"{p}: missing; pass the folder that `spikevae export --phy` wrote and phy saved into")
    return np.load(p, allow_pickle=False)


def _check_same_spikes(phy_dir: Path, run_dir: Path, marker: dict, times: np.ndarray) -> Sorting:
    """The run's sorting that was exported, after checking the phy folder still holds its spikes."""
    from .. import store

    method = marker.get("method", "pca")
    exported = store.load_sorting(run_dir, method)
    order = np.lexsort((exported.electrode, exported.sample_index))
    if times.size != order.size or not np.array_equal(times.astype(np.int64), exported.sample_index[order]):
        raise SpikevaeError(
            f"{phy_dir}: its {times.size} spikes are not the {order.size} spikes of the '{method}' sorting in "
            f"{run_dir}; import a phy folder into the run it was exported from (spikevae export {run_dir} --phy ...)")
    run_id = store.RunStore(run_dir).root_attrs().get("run_id")
    if marker.get("run_id") and run_id and marker["run_id"] != run_id:
        raise SpikevaeError(f"{phy_dir}: exported from another run of {run_dir} (run {marker['run_id']}, the folder "
                            f"now holds run {run_id}); export the current run again and curate that")
    return exported


def import_curation(phy_dir, run_dir) -> Sorting:
    """Curated sorting from a phy folder, written into the run folder it was exported from.

    Parameters
    ----------
    phy_dir : path
        The folder ``spikevae export --phy`` wrote, after curation in phy.
    run_dir : path
        The run folder it was exported from.

    Returns
    -------
    Sorting
        Unit = phy cluster id; spikes of ``noise`` clusters are unsorted (-1).

    Raises
    ------
    SpikevaeError
        When ``phy_dir`` is not a spikevae export, its files are missing, or its spikes are
        not those of the run's sorting.
    """
    from .. import store
    from ..config import config_hash
    from ..store import record_outputs, write_text
    from .phy import MARKER, SPIKE_ELECTRODE

    phy_dir, run_dir = Path(phy_dir), Path(run_dir)
    if not (phy_dir / MARKER).exists():
        raise SpikevaeError(f"{phy_dir}: not a phy folder written by `spikevae export --phy` ({MARKER} missing)")
    marker = json.loads((phy_dir / MARKER).read_text())
    times, clusters = _load(phy_dir, "spike_times.npy"), _load(phy_dir, "spike_clusters.npy").astype(np.int64)
    if clusters.shape != times.shape:
        raise SpikevaeError(f"{phy_dir}: spike_clusters.npy has {clusters.size} entries for {times.size} spikes")
    exported = _check_same_spikes(phy_dir, run_dir, marker, times)
    electrode = _load(phy_dir, SPIKE_ELECTRODE).astype(np.int64)
    groups = read_cluster_groups(phy_dir)
    noise = np.array(sorted(c for c, g in groups.items() if g == "noise"), dtype=np.int64)
    unit = np.where(np.isin(clusters, noise), -1, clusters)
    curated = Sorting(times.astype(np.int64), electrode, unit, exported.fs,
                      params={"phy_dir": str(phy_dir.resolve()), "from_method": marker.get("method")})
    labels = {str(c): groups.get(int(c), "unsorted") for c in np.unique(clusters)}
    key = config_hash({"clusters": config_hash(clusters.tolist()), "labels": labels})
    store.RunStore(run_dir).save_sorting(curated, CURATED, {"phy_dir": str(phy_dir.resolve()), "labels": labels}, key)
    curated.save_npz(run_dir / "sorting_curated.npz")
    write_text(run_dir / "curated_labels.json", json.dumps({"phy_dir": str(phy_dir.resolve()), "labels": labels},
                                                           indent=1))
    run_id = store.RunStore(run_dir).root_attrs().get("run_id")
    if run_id:
        record_outputs(run_dir, run_id, ["sorting_curated.npz", "curated_labels.json"])
    n_noise = int((unit < 0).sum() - (exported.unit < 0).sum())
    log.info("curated sorting: %d units (%+d), %d spikes moved to unsorted by noise labels",
             len(curated.unit_ids), len(curated.unit_ids) - len(exported.unit_ids), n_noise)
    return curated
