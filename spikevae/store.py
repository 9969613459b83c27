"""The run store: one HDF5 file per run holding each stage's output with its config and hash.

Layout of ``OUT/run.h5``::

    /spikes                      sample_index, electrode, waveform_row, amplitude_uv, noise_uv,
                                 channel_ids, [noise_snippets, noise_electrode]; attrs fs, peak_index,
                                 n_samples (the waveforms are in OUT/waveforms.h5, one dataset per
                                 electrode, attr ``hash`` = the spikes' hash: spikevae.waveform_store;
                                 stores written before it hold ``waveforms`` here)
    /embedding/<method>          feature_row, [noise_features, noise_electrode, noise_rate_hz]; attrs params
                                 (JSON), n_features (the features are in OUT/features_<method>.h5, one
                                 dataset per electrode, attr ``hash`` = the embedding's hash; stores
                                 written before it hold ``features`` here)
    /sorting/<method>            sample_index, electrode, unit; attrs fs, params (JSON)
    /extra/<name>                free-form arrays (training history, ...)
    each stage group: attrs ``config`` (JSON), ``hash`` (the stage's cache key), ``done`` (True)
    root attrs: ``recording`` (JSON of Recording.describe()), ``config`` (resolved pipeline config JSON),
                ``timings`` (JSON: seconds per stage)

Every write goes to a temporary copy of the file that replaces the original with
``os.replace`` only when the data are in, so an interrupted run never leaves a
half-written store; a stage is present only when complete.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from .errors import SpikevaeError
from .objects import Embedding, Sorting, Spikes

log = logging.getLogger(__name__)

STORE_NAME = "run.h5"


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Works for files and folders. On an exception the temporary is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if path.is_dir() and tmp.is_dir():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def check_writable(out_dir) -> Path:
    """Create ``out_dir`` if needed and check that files can be written in it."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe"):
            pass
    except OSError as exc:
        raise SpikevaeError(f"{out}: output folder is not writable ({exc.strerror}); choose another with -o") from None
    return out


#: Names of the files a run writes into its output folder (an input may never be one of them).
RUN_OUTPUT_PATTERNS = (STORE_NAME, "sorting*.npz", "units.csv", "metrics.json", "summary.json", "scores.json",
                       "config.json", "config.toml", "report.html", "artefacts.csv")


def refuse_input_as_output(input_path, out_path, *, out_is_dir: bool = False) -> None:
    """Raise if writing ``out_path`` (a file, or a run folder with ``out_is_dir``) would replace ``input_path``.

    Raises
    ------
    SpikevaeError
        Naming the input and the output that would overwrite it: inputs are only ever read.
    """
    src = Path(input_path).resolve()
    dst = Path(out_path).resolve()
    if not out_is_dir:
        clash = src == dst
    else:
        clash = src.parent == dst and any(src.match(p) for p in RUN_OUTPUT_PATTERNS)
    if clash:
        raise SpikevaeError(f"{input_path}: the output would overwrite this input ({out_path}); "
                            "inputs are only ever read: write the output elsewhere (-o) or rename the input")


def refuse_foreign_outputs(out_dir) -> None:
    """Raise if a run in ``out_dir`` would overwrite files that spikevae did not write.

    A folder is spikevae's when it holds a run store or a manifest; in any other folder, a
    file with the name of a run output (``units.csv``, ``report.html``, ``sorting.npz`` ...)
    is someone's own work, and the run stops before touching anything.

    Raises
    ------
    SpikevaeError
        Naming the files, with the fix (another -o, or moving them).
    """
    out = Path(out_dir)
    if not out.is_dir() or (out / STORE_NAME).exists() or (out / MANIFEST).exists():
        return
    foreign = sorted({p.name for pat in RUN_OUTPUT_PATTERNS for p in out.glob(pat) if p.is_file()})
    if foreign:
        raise SpikevaeError(f"{out}: holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, not written "
                            "by spikevae (no run store or manifest here); a run would overwrite them: choose another "
                            "output folder with -o, or move those files")


def refuse_foreign_file(path) -> None:
    """Raise if ``path`` exists and is not an HDF5 file that spikevae wrote (``spikevae filter``'s output).

    Raises
    ------
    SpikevaeError
        Naming the file: it is left untouched.
    """
    p = Path(path)
    if not p.exists():
        return
    ours = False
    if p.is_file():
        try:
            with h5py.File(p, "r") as f:
                ours = f.attrs.get("written_by", "") == "spikevae"
        except OSError:
            ours = False
    if not ours:
        raise SpikevaeError(f"{path}: exists and was not written by spikevae; it is left untouched: choose another "
                            "output path with -o (or remove the file yourself)")


#: The run folder's list of its outputs: ``{"run_id": ..., "files": {name: sha256}}``.
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(out_dir) -> dict | None:
    """The run folder's manifest, or None for a folder written before manifests (or not a run folder)."""
    p = Path(out_dir) / MANIFEST
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text())
        return doc if isinstance(doc, dict) and "files" in doc else None
    except (OSError, json.JSONDecodeError):
        return None


def clear_outputs(out_dir) -> list[str]:
    """Remove the outputs of the previous run in ``out_dir`` before a run writes its own.

    A rerun then never leaves an old file (a report, scores without ``--gt``, a summary of
    another sorting) beside new ones, and an interrupted rerun leaves fewer files, never
    stale ones. Folders from before manifests lose the files that runs write by name; a
    curated sorting (``sorting_curated.npz``), the work of a person, is never removed.

    Returns
    -------
    list of str
        Names of the removed files.
    """
    out = Path(out_dir)
    doc = read_manifest(out)
    if doc is not None:
        names = list(doc["files"])
    else:
        names = sorted({p.name for pat in RUN_OUTPUT_PATTERNS if pat != STORE_NAME for p in out.glob(pat)})
    names = [n for n in names if n != STORE_NAME and not n.startswith(("sorting_curated", "curated_"))]
    (out / MANIFEST).unlink(missing_ok=True)
    removed = []
    for n in names:
        if (out / n).is_file():
            (out / n).unlink()
            removed.append(n)
    return removed


def record_outputs(out_dir, run_id: str, names) -> None:
    """Add ``names`` (files in ``out_dir``), with their SHA-256, to the manifest of run ``run_id``.

    A manifest of another run is replaced, not merged: its files are not this run's.
    """
    out = Path(out_dir)
    doc = read_manifest(out) or {}
    files = doc.get("files", {}) if doc.get("run_id") == run_id else {}
    files.update({n: _sha256(out / n) for n in names if (out / n).is_file()})
    write_text(out / MANIFEST, json.dumps({"run_id": run_id, "files": dict(sorted(files.items()))}, indent=1))


def check_output(path) -> None:
    """Refuse a run-folder output that is not the one its run wrote.

    Raises
    ------
    SpikevaeError
        When the folder's manifest does not list the file, or lists other content for it
        (written by another run, or edited since).
    """
    path = Path(path)
    doc = read_manifest(path.parent)
    if doc is None or not path.is_file():
        return
    want = doc["files"].get(path.name)
    if want is None or want != _sha256(path):
        raise SpikevaeError(
            f"{path}: this file is not the one the run in {path.parent} wrote ("
            + ("not in its manifest" if want is None else "its content changed since") + "), so it may belong to "
            f"another run; rerun `spikevae run ... -o {path.parent}` to rewrite the folder's outputs together")


def store_path(out_dir) -> Path:
    return Path(out_dir) / STORE_NAME


def _copy_except(src: h5py.Group, dst: h5py.Group, skip: str | None) -> None:
    """Copy every attribute and member of ``src`` into ``dst`` except the path ``skip``.

    Writing into a fresh file (rather than deleting in place) keeps the store compact:
    HDF5 does not reclaim the space of deleted datasets.
    """
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    head, _, rest = (skip or "").partition("/")
    for name in src:
        if name == head and not rest:
            continue
        if name == head and isinstance(src[name], h5py.Group):
            _copy_except(src[name], dst.create_group(name), rest)
        else:
            src.copy(src[name], dst, name=name)


def _store_is_readable(path: Path) -> str:
    """"" when the HDF5 file at ``path`` opens and every dataset's last element reads; else the reason."""
    def visit(_name, obj):
        if isinstance(obj, h5py.Dataset) and obj.size:
            obj[(slice(-1, None),) * obj.ndim] if obj.ndim else obj[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
            dict(f.attrs)
    except Exception as exc:  # noqa: BLE001 - any failure to read means the store is damaged
        return str(exc).split("\n")[0] or type(exc).__name__
    return ""


@contextlib.contextmanager
def _writing(path: Path):
    """Turn a failed write of the store (full disk, file-size limit, I/O error) into one clear line."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).split("\n")[0]
        raise SpikevaeError(f"{path}: could not write the run store ({reason}); free disk space or choose "
                            "another output folder with -o; the store as it was before this stage is unchanged") from None


class RunStore:
    """Read and write stage results in ``OUT/run.h5``."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.path = store_path(out_dir)

    def recover(self) -> "RunStore":
        """Make the folder safe to run in: remove temporary files that killed runs left behind, and
        set a damaged store aside (renamed ``run.h5.damaged-N``, never deleted) so the run rebuilds it.

        Returns
        -------
        RunStore
            ``self``, for chaining.
        """
        for tmp in self.out_dir.glob(".*.tmp"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted run", tmp)
        if self.path.exists():
            reason = _store_is_readable(self.path)
            if reason:
                n = 1
                while self.path.with_name(f"{STORE_NAME}.damaged-{n}").exists():
                    n += 1
                aside = self.path.with_name(f"{STORE_NAME}.damaged-{n}")
                os.replace(self.path, aside)
                log.warning("%s is damaged (%s): set aside as %s; every stage is recomputed", self.path, reason, aside.name)
        return self

    # -- generic -----------------------------------------------------------------
    def _open_read(self) -> h5py.File:
        if not self.path.exists():
            raise SpikevaeError(f"{self.path}: no run store; run `spikevae run` with -o {self.out_dir} first")
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise SpikevaeError(f"{self.path}: the run store is damaged ({str(exc).split(chr(10))[0]}); rerun "
                                "`spikevae run` with the same -o: it sets the damaged file aside and rebuilds it") from None

    def has(self, group: str, hash_: str | None = None) -> bool:
        """True when ``group`` is complete (and made with ``hash_``, if given)."""
        if not self.path.exists():
            return False
        with self._open_read() as f:
            if group not in f or not f[group].attrs.get("done", False):
                return False
            if hash_ is not None and f[group].attrs.get("hash", "") != hash_:
                return False
            stored = str(f[group].attrs.get("hash", ""))
            on_disk = group == "spikes" and "waveform_row" in f[group]
            features_on_disk = group.startswith("embedding/") and "feature_row" in f[group]
        if features_on_disk:  # the feature file must belong to this embedding
            return self._features_present(group.split("/", 1)[1], stored)
        return not on_disk or self._waveforms_present(stored)  # the waveform file must belong to these spikes

    def hash_of(self, group: str) -> str:
        """The cache key ``group`` was stored with ("" when absent)."""
        if not self.path.exists():
            return ""
        with h5py.File(self.path, "r") as f:
            return str(f[group].attrs.get("hash", "")) if group in f else ""

    def write_group(self, group: str, arrays: dict, attrs: dict | None = None, hash_: str = "") -> None:
        """Replace ``group`` with ``arrays`` and ``attrs``, atomically for the whole file."""
        with _writing(self.path), atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                if self.path.exists():
                    with h5py.File(self.path, "r") as old:
                        _copy_except(old, f, group)
                g = f.create_group(group)
                for k, v in arrays.items():
                    if v is None:
                        continue
                    v = np.asarray(v)
                    if v.dtype.kind == "U":
                        v = v.astype(h5py.string_dtype())
                    g.create_dataset(k, data=v)
                for k, v in (attrs or {}).items():
                    g.attrs[k] = v if isinstance(v, (int, float, str, bool, np.number)) else json.dumps(v, default=str)
                g.attrs["hash"] = hash_
                g.attrs["done"] = True

    def drop_group(self, group: str) -> None:
        """Remove ``group`` (if present), atomically for the whole file."""
        prefix, _, name = group.rpartition("/")
        if name not in self.groups(prefix):
            return
        with _writing(self.path), atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f, h5py.File(self.path, "r") as old:
                _copy_except(old, f, group)

    def set_root_attrs(self, **attrs) -> None:
        with _writing(self.path), atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                if self.path.exists():
                    with h5py.File(self.path, "r") as old:
                        _copy_except(old, f, None)
                for k, v in attrs.items():
                    f.attrs[k] = json.dumps(v, default=str)

    def root_attrs(self) -> dict:
        with self._open_read() as f:
            return {k: json.loads(v) for k, v in f.attrs.items()}

    def read_group(self, group: str, skip: tuple = ()) -> tuple[dict, dict]:
        """A group's arrays (all but those named in ``skip``) and attributes."""
        with self._open_read() as f:
            if group not in f or not f[group].attrs.get("done", False):
                raise SpikevaeError(f"{self.path}: stage '{group}' has not been run; run `spikevae run` to compute it")
            g = f[group]
            arrays = {}
            for k in g.keys():
                if k in skip:
                    continue
                v = read_dataset(g[k])
                if g[k].dtype.kind == "O":
                    v = np.asarray([x.decode() if isinstance(x, bytes) else x for x in v])
                arrays[k] = v
            attrs = {}
            for k, v in g.attrs.items():
                if isinstance(v, str) and v[:1] in "[{":
                    try:
                        v = json.loads(v)
                    except json.JSONDecodeError:
                        pass
                attrs[k] = v
            return arrays, attrs

    def stage_config(self, group: str) -> dict:
        """The configuration a stage was run with (its ``config`` attribute), without reading its arrays."""
        with self._open_read() as f:
            if group not in f:
                raise SpikevaeError(f"{self.path}: stage '{group}' has not been run; run `spikevae run` to compute it")
            v = f[group].attrs.get("config", "{}")
            return json.loads(v) if isinstance(v, str) else dict(v)

    def groups(self, prefix: str) -> list[str]:
        if not self.path.exists():
            return []
        with h5py.File(self.path, "r") as f:
            return sorted(f[prefix].keys()) if prefix in f else []

    # -- typed stage I/O -----------------------------------------------------------
    @property
    def waveform_path(self) -> Path:
        """The run's waveform file (:mod:`spikevae.waveform_store`), beside ``run.h5``."""
        from .waveform_store import WAVEFORM_FILE

        return self.out_dir / WAVEFORM_FILE

    def save_spikes(self, spikes: Spikes, config: dict, hash_: str) -> None:
        """Store ``spikes``: their waveforms in the waveform file (written here unless detection streamed
        them there already), everything else in ``/spikes``, with the row of each waveform."""
        from .waveform_store import file_attrs, is_lazy, write_waveforms

        wf = spikes.waveforms
        streamed = (is_lazy(wf) and wf.path.resolve() == self.waveform_path.resolve()
                    and file_attrs(wf.path).get("hash") == hash_)
        if not streamed:
            with _writing(self.waveform_path):
                wf = write_waveforms(self.waveform_path, spikes.electrode, wf, spikes.n_electrodes, {"hash": hash_})
        arrays = {k: getattr(spikes, k) for k in ("sample_index", "electrode", "amplitude_uv",
                                                  "noise_uv", "channel_ids", "noise_snippets", "noise_electrode",
                                                  "group_channels", "segment_noise_uv")}
        arrays["waveform_row"] = wf.row
        self.write_group("spikes", arrays, {"fs": spikes.fs, "peak_index": spikes.peak_index, "config": config,
                                            "n_samples": spikes.n_samples}, hash_)

    def _waveforms_present(self, hash_: str) -> bool:
        from .waveform_store import file_attrs

        return file_attrs(self.waveform_path).get("hash") == hash_

    def load_spikes(self) -> Spikes:
        """The stored spikes; their waveforms stay on disk (:class:`~spikevae.waveform_store.DiskWaveforms`)."""
        from .waveform_store import DiskWaveforms

        a, attrs = self.read_group("spikes")
        if "waveform_row" in a:
            if not self._waveforms_present(str(attrs.get("hash", ""))):
                raise SpikevaeError(f"{self.waveform_path}: the spikes' waveform file is missing or belongs to "
                                    f"another detection; rerun `spikevae run` with -o {self.out_dir} to rebuild it")
            a["waveforms"] = DiskWaveforms(self.waveform_path, a["electrode"], a.pop("waveform_row"),
                                           int(attrs["n_samples"]))
        return Spikes(fs=float(attrs["fs"]), peak_index=int(attrs["peak_index"]), **a)

    def save_artefacts(self, artefacts, hash_: str) -> None:
        """The artefact events found when the stored spikes were made (:mod:`spikevae.artefacts`)."""
        self.write_group("artefacts", artefacts.to_arrays(), {}, hash_)

    def load_artefacts(self):
        """The stored :class:`~spikevae.artefacts.Artefacts`, or None (a store written before artefacts existed)."""
        from .artefacts import Artefacts

        if not self.has("artefacts"):
            return None
        a, _ = self.read_group("artefacts")
        return Artefacts.from_arrays(a)

    def feature_path(self, method: str) -> Path:
        """The file of feature method ``method``'s features (:func:`spikevae.waveform_store.feature_file`)."""
        from .waveform_store import feature_file

        return self.out_dir / feature_file(method)

    def _features_present(self, method: str, hash_: str) -> bool:
        from .waveform_store import file_attrs

        return file_attrs(self.feature_path(method)).get("hash") == hash_

    def save_embedding(self, emb: Embedding, config: dict, hash_: str, electrode=None) -> Embedding:
        """Store ``emb``; returns it as stored.

        With ``electrode`` (the spikes' electrode of each row), the features go to
        ``features_<method>.h5``, one dataset per electrode, and the returned Embedding reads them
        from there (its rows share ``electrode``): the caller can drop the in-memory features.
        Without it they are stored in ``run.h5`` and ``emb`` is returned.
        """
        import dataclasses

        from .waveform_store import file_attrs, is_lazy, write_waveforms

        arrays = {}
        if emb.noise_features is not None:
            arrays.update(noise_features=emb.noise_features, noise_electrode=emb.noise_electrode,
                          noise_rate_hz=emb.noise_rate_hz)
        attrs = {"params": emb.params, "config": config, "n_features": int(emb.features.shape[1])}
        if electrode is None:
            self.write_group(f"embedding/{emb.method}", {"features": emb.features} | arrays, attrs, hash_)
            return emb
        electrode = np.asarray(electrode)
        path = self.feature_path(emb.method)
        on_disk = emb.features
        if not (is_lazy(on_disk) and on_disk.path == path and file_attrs(path).get("hash") == hash_):
            with _writing(path):  # not already streamed into its file (transform_to_file)
                n_el = int(electrode.max()) + 1 if electrode.size else 1
                on_disk = write_waveforms(path, electrode, emb.features, n_el, {"hash": hash_})
        self.write_group(f"embedding/{emb.method}", {"feature_row": on_disk.row} | arrays, attrs, hash_)
        return dataclasses.replace(emb, features=on_disk)

    def load_embedding(self, method: str, electrode=None, waveform_row=None) -> Embedding:
        """The stored embedding ``method``; features kept in their file are read from there when used.

        Parameters
        ----------
        electrode : ndarray of shape (n_spikes,), optional
            The stored spikes' electrode array, to share (else read from the store).
        waveform_row : ndarray of shape (n_spikes,), optional
            The stored spikes' waveform row map (``spikes.waveforms.row``): shared when the features'
            rows are the same (the features of every stored waveform), not read and held again.
        """
        from .waveform_store import DiskWaveforms

        group = f"embedding/{method}"
        a, attrs = self.read_group(group, skip=("feature_row",))
        with self._open_read() as f:
            rows = f[group]["feature_row"] if "feature_row" in f[group] else None
            if rows is not None:
                shared = waveform_row is not None and _equal_to_dataset(waveform_row, rows)
                rows = waveform_row if shared else read_dataset(rows)
        if rows is not None:
            if not self._features_present(method, str(attrs.get("hash", ""))):
                raise SpikevaeError(f"{self.feature_path(method)}: the '{method}' features file is missing or "
                                    f"belongs to another run; rerun `spikevae run` with -o {self.out_dir} to rebuild it")
            if electrode is None:
                with self._open_read() as f:
                    electrode = read_dataset(f["spikes/electrode"])
            a["features"] = DiskWaveforms(self.feature_path(method), electrode, rows, int(attrs["n_features"]))
        return Embedding(a["features"], method, attrs.get("params", {}),
                         a.get("noise_features"), a.get("noise_electrode"), a.get("noise_rate_hz"))

    def save_sorting(self, sorting: Sorting, method: str, config: dict, hash_: str) -> None:
        arrays = {"sample_index": sorting.sample_index, "electrode": sorting.electrode, "unit": sorting.unit}
        self.write_group(f"sorting/{method}", arrays, {"fs": sorting.fs, "params": sorting.params, "config": config}, hash_)

    def load_sorting(self, method: str) -> Sorting:
        a, attrs = self.read_group(f"sorting/{method}")
        return Sorting(a["sample_index"], a["electrode"], a["unit"], float(attrs["fs"]), attrs.get("params", {}))


def read_dataset(ds) -> np.ndarray:
    """An HDF5 dataset's values; a large numeric one (a per-spike column) into the run's spill folder,
    when there is one (:mod:`spikevae.execution.spill`), not the heap."""
    from .execution.spill import SPILL_BYTES, disk_empty, spill_folder

    if spill_folder() is None or ds.dtype.kind not in "iuf" or ds.size * ds.dtype.itemsize < SPILL_BYTES:
        return ds[()]
    out = disk_empty(ds.shape, ds.dtype)
    ds.read_direct(out)
    return out


# Module-level conveniences used by the CLI commands of each stage.
def _equal_to_dataset(values: np.ndarray, ds, block: int = 1 << 20) -> bool:
    """Whether the 1-D HDF5 dataset ``ds`` holds ``values``, read a block at a time (no copy of it all)."""
    if ds.shape != values.shape:
        return False
    return all(np.array_equal(ds[a:a + block], values[a:a + block]) for a in range(0, values.size, block))


def load_spikes(out_dir) -> Spikes:
    """Spikes of the run in ``out_dir``."""
    return RunStore(out_dir).load_spikes()


def load_embedding(out_dir, method: str) -> Embedding:
    """Embedding ``method`` ("pca", "vae") of the run in ``out_dir``."""
    return RunStore(out_dir).load_embedding(method)


def load_sorting(out_dir, method: str) -> Sorting:
    """Sorting made from the ``method`` features of the run in ``out_dir``."""
    return RunStore(out_dir).load_sorting(method)


def load_run_info(out_dir) -> dict:
    """Root facts of a run: ``recording``, ``config``, ``timings`` (dicts), and what stages exist."""
    store = RunStore(out_dir)
    info = store.root_attrs()
    info["embeddings"] = store.groups("embedding")
    info["sortings"] = store.groups("sorting")
    return info
