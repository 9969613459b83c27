"""The plain data objects passed between stages: Spikes, Embedding, Sorting.

Each is a dataclass of numpy arrays with unit-bearing names. ``__post_init__``
checks lengths, dtypes and shapes and raises ``ValueError`` naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _check_len(name: str, arr: np.ndarray, n: int) -> None:
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but there are {n} spikes")


def _on_disk(waveforms) -> bool:
    from .waveform_store import is_lazy

    return is_lazy(waveforms)


def label_dtype(labels: np.ndarray) -> type:
    """int32 when every value of ``labels`` fits (half the memory per spike), else int64."""
    fits = labels.size == 0 or (int(labels.min()) >= -(2**31) and int(labels.max()) < 2**31)
    return np.int32 if fits else np.int64


def _narrow_ints(values, name: str) -> np.ndarray:
    """``values`` as int32 when every value fits (not copied when they already are), else int64."""
    a = np.asarray(values)
    if a.dtype == np.int32:
        return a
    if a.dtype.kind not in "iub" and a.size and not np.array_equal(a, np.round(a)):
        raise ValueError(f"{name} must hold integers")
    return a.astype(label_dtype(a) if a.size else np.int32)


def _npz_ints(z, name: str, path, block: int = 1 << 20) -> np.ndarray:
    """Integer array ``name`` of the open .npz ``z``, as :func:`_narrow_ints` gives it, read a block at a
    time: an int64 file (numpy's default) is not first held whole as int64 (8 bytes a spike; a ground
    truth of hours has millions). Anything but a 1-D integer array is read whole and checked as before."""
    from .errors import SpikevaeError

    with z.zip.open(f"{name}.npy") as f:
        shape, dtype = _npz_header(f)
        if len(shape) != 1 or dtype.kind not in "iu":
            return _narrow_ints(z[name], name)
        out = np.empty(shape[0], np.int32)
        for i in range(0, shape[0], block):
            m = min(block, shape[0] - i)
            buf = f.read(m * dtype.itemsize)
            if len(buf) != m * dtype.itemsize:
                raise SpikevaeError(f"{path}: array {name!r} is shorter than its header says; the file may be damaged")
            part = np.frombuffer(buf, dtype=dtype)
            if out.dtype == np.int32 and (part.min() < -2**31 or part.max() >= 2**31):
                out = out.astype(np.int64)  # a value past int32: the whole array is int64
            out[i:i + m] = part
    return out


def group_indices(values: np.ndarray) -> dict[int, np.ndarray]:
    """Indices of each distinct value of an integer array (ascending values; indices ascending within one).

    The indices are int32 while they fit (half the memory of int64: on hours of recording these
    index every spike). Small-range values (electrodes, units) are grouped by a counting sort
    over blocks of the array, so nothing but the int32 result is the length of the array (a
    whole-array ``argsort`` would make an int64 index of every spike first).
    """
    values = np.asarray(values)
    if values.size == 0:
        return {}
    lo, hi = int(values.min()), int(values.max())
    idx_dtype = np.int32 if values.size < 2**31 else np.int64
    if hi - lo < 2**15:
        order, counts = _counting_order(values, lo, hi - lo + 1, idx_dtype)
        uniq = np.flatnonzero(counts)
        bounds = np.cumsum(counts[uniq])[:-1]
        return {int(u) + lo: idx for u, idx in zip(uniq, np.split(order, bounds))}
    order = np.argsort(values, kind="stable").astype(idx_dtype, copy=False)
    uniq, starts = np.unique(values[order], return_index=True)
    return {int(u): idx for u, idx in zip(uniq, np.split(order, starts[1:]))}


def equal_in_blocks(a: np.ndarray, b: np.ndarray, block: int = 1 << 20) -> bool:
    """``np.array_equal(a, b)`` a block at a time (no boolean array the length of the recording)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and all(np.array_equal(a[i:i + block], b[i:i + block]) for i in range(0, a.shape[0], block))


def in_time_order(t: np.ndarray, e: np.ndarray | None, block: int = 1 << 20) -> bool:
    """Whether spikes (``t``, ``e``) are strictly increasing by time, then electrode (detection's order);
    with ``e`` None, whether ``t`` never decreases. Checked a block at a time (no boolean array the length
    of the recording)."""
    for a in range(0, max(t.size - 1, 0), block):
        b = min(a + block, t.size - 1)
        t0, t1 = t[a:b], t[a + 1:b + 1]
        back = t1 < t0 if e is None else (t1 < t0) | ((t1 == t0) & (e[a + 1:b + 1] <= e[a:b]))
        if np.any(back):
            return False
    return True


#: Elements grouped at a time by :func:`_counting_order` (its temporaries are this long, not the array).
GROUP_BLOCK = 1 << 18


def count_values(values: np.ndarray, minlength: int = 0, lo: int = 0) -> np.ndarray:
    """``np.bincount(values - lo, minlength=minlength)`` a block of :data:`GROUP_BLOCK` at a time:
    ``np.bincount`` of a whole per-spike column first copies it to int64 (8 bytes a spike)."""
    counts = np.zeros(minlength, np.int64)
    for i in range(0, values.size, GROUP_BLOCK):
        c = np.bincount(values[i:i + GROUP_BLOCK] - lo if lo else values[i:i + GROUP_BLOCK], minlength=minlength)
        if c.size > counts.size:
            c[:counts.size] += counts
            counts = c
        else:
            counts[:c.size] += c
    return counts


def unique_values(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` a block of :data:`GROUP_BLOCK` at a time (``np.unique`` sorts a copy of them all)."""
    values = np.asarray(values)
    if values.size <= GROUP_BLOCK:
        return np.unique(values)
    seen = np.unique(values[:GROUP_BLOCK])
    for i in range(GROUP_BLOCK, values.size, GROUP_BLOCK):
        block = values[i:i + GROUP_BLOCK]
        new = np.setdiff1d(np.unique(block), seen, assume_unique=True)
        if new.size:
            seen = np.union1d(seen, new)
    return seen


def _counting_order(values: np.ndarray, lo: int, n_keys: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The stable sorting order of ``values`` (all within ``[lo, lo + n_keys)``, ``n_keys <= 2**15``) and
    each key's count.

    Each key's slots are placed by a count over the whole array; then each block of
    :data:`GROUP_BLOCK` elements is sorted on its own and written into the slots its keys have
    reached, so the order equals ``np.argsort(values, kind="stable")``.
    """
    from .execution.spill import disk_empty

    counts = count_values(values, n_keys, lo)
    filled = np.cumsum(counts) - counts  # next free slot of each key
    order = disk_empty(values.size, dtype)  # in the run's spill folder, if any (spikevae.execution.spill)
    for i in range(0, values.size, GROUP_BLOCK):
        key = (values[i:i + GROUP_BLOCK] - lo).astype(np.int16)  # n_keys <= 2**15: a radix sort
        o = np.argsort(key, kind="stable")
        k = key[o]
        c = np.bincount(k, minlength=n_keys)
        first = np.cumsum(c) - c  # where each key's run starts in the sorted block
        order[filled[k] + (np.arange(k.size) - first[k])] = o + i
        filled += c
    return order, counts


@dataclass
class Spikes:
    """Detected, aligned spikes of a recording.

    Parameters
    ----------
    sample_index : ndarray of shape (n_spikes,), int64
        Sample of the aligned peak, from the start of the recording.
    electrode : ndarray of shape (n_spikes,), int32 (int64 past 2**31 electrodes)
        Index of the electrode (into ``channel_ids``).
    waveforms : ndarray of shape (n_spikes, n_samples), float32, µV, or DiskWaveforms
        Aligned waveforms; the peak sits at ``peak_index``. A run's spikes keep them on disk
        (:class:`spikevae.waveform_store.DiskWaveforms`, same shape and indexing): read them
        per electrode or in blocks (:meth:`scaled_waveforms` with ``rows``), not all at once.
    amplitude_uv : ndarray of shape (n_spikes,), float32, µV
        Signed value at the peak.
    noise_uv : ndarray of shape (n_electrodes,), float32, µV
        Noise standard deviation of each electrode (MAD estimate).
    fs : float
        Sampling rate in Hz.
    peak_index : int
        Index of the aligned extremum inside each waveform.
    channel_ids : ndarray of shape (n_electrodes,), str
        Name of each electrode.
    noise_snippets : ndarray of shape (n_snippets, n_samples), float32, µV, optional
        Spike-free stretches of the filtered recording (for noise covariance and
        denoising corruption).
    noise_electrode : ndarray of shape (n_snippets,), int64, optional
        Electrode of each noise snippet.
    group_channels : ndarray of shape (n_electrodes, k), int64, optional
        Channel groups (:mod:`spikevae.groups`): each "electrode" is a group of up to ``k``
        recording channels (indices, -1 padded) and each waveform is their ``k`` segments of
        ``n_samples / k`` samples, concatenated; ``peak_index`` is then the peak's index
        inside each segment. None (default): one channel per electrode.
    segment_noise_uv : ndarray of shape (n_electrodes, k), float32, µV, optional
        With ``group_channels``: the noise σ of each segment's channel (0 for padding);
        :meth:`scaled_waveforms` divides each segment by it.
    """

    sample_index: np.ndarray
    electrode: np.ndarray
    waveforms: np.ndarray
    amplitude_uv: np.ndarray
    noise_uv: np.ndarray
    fs: float
    peak_index: int
    channel_ids: np.ndarray
    noise_snippets: np.ndarray | None = None
    noise_electrode: np.ndarray | None = None
    group_channels: np.ndarray | None = None
    segment_noise_uv: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.sample_index = np.asarray(self.sample_index, dtype=np.int64)
        n = self.sample_index.shape[0]
        self.electrode = _narrow_ints(self.electrode, "electrode")  # int32: half the memory per spike
        if not _on_disk(self.waveforms):  # waveforms on disk (spikevae.waveform_store) are read where used
            self.waveforms = np.asarray(self.waveforms, dtype=np.float32)
        if self.waveforms.ndim != 2:
            raise ValueError(f"waveforms must be 2-D (n_spikes, n_samples), got shape {self.waveforms.shape}")
        self.amplitude_uv = np.asarray(self.amplitude_uv, dtype=np.float32)
        self.noise_uv = np.asarray(self.noise_uv, dtype=np.float32)
        self.channel_ids = np.asarray(self.channel_ids).astype(str)
        for name in ("electrode", "waveforms", "amplitude_uv"):
            _check_len(name, getattr(self, name), n)
        if self.noise_uv.shape != self.channel_ids.shape:
            raise ValueError(
                f"noise_uv has {self.noise_uv.shape[0]} values but there are {self.channel_ids.shape[0]} electrodes"
            )
        if n and (self.electrode.min() < 0 or self.electrode.max() >= len(self.channel_ids)):
            raise ValueError("electrode holds indices outside channel_ids")
        if not 0 <= self.peak_index < max(self.waveforms.shape[1], 1):
            raise ValueError(f"peak_index {self.peak_index} is outside the waveform length {self.waveforms.shape[1]}")
        if self.noise_snippets is not None:
            self.noise_snippets = np.asarray(self.noise_snippets, dtype=np.float32)
            self.noise_electrode = np.asarray(self.noise_electrode, dtype=np.int64)
            if self.noise_snippets.shape[0] != self.noise_electrode.shape[0]:
                raise ValueError("noise_snippets and noise_electrode differ in length")
        if (self.group_channels is None) != (self.segment_noise_uv is None):
            raise ValueError("group_channels and segment_noise_uv come together")
        if self.group_channels is not None:
            self._check_groups()

    def _check_groups(self) -> None:
        self.group_channels = np.asarray(self.group_channels, dtype=np.int64)
        self.segment_noise_uv = np.asarray(self.segment_noise_uv, dtype=np.float32)
        shape = (self.n_electrodes, self.group_channels.shape[-1] if self.group_channels.ndim == 2 else -1)
        if self.group_channels.shape != shape or self.segment_noise_uv.shape != shape:
            raise ValueError(f"group_channels {self.group_channels.shape} and segment_noise_uv "
                             f"{self.segment_noise_uv.shape} must both be (n_electrodes={self.n_electrodes}, k)")
        if self.waveforms.shape[1] % shape[1]:
            raise ValueError(f"waveforms have {self.waveforms.shape[1]} samples, not a multiple of the "
                             f"{shape[1]} channels per group")
        if not 0 <= self.peak_index < self.segment_length:
            raise ValueError(f"peak_index {self.peak_index} is outside the segment length {self.segment_length}")

    @property
    def segment_length(self) -> int:
        """Samples per channel in each waveform (``n_samples`` without channel groups)."""
        k = 1 if self.group_channels is None else self.group_channels.shape[1]
        return self.n_samples // k

    @property
    def n_spikes(self) -> int:
        return int(self.sample_index.shape[0])

    @property
    def n_electrodes(self) -> int:
        return int(self.channel_ids.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.waveforms.shape[1])

    def scaled_waveforms(self, rows=None) -> np.ndarray:
        """Waveforms divided by their electrode's noise σ (dimensionless, float32).

        With channel groups, each channel segment is divided by its own channel's σ
        (padded or flat segments give 0).

        Parameters
        ----------
        rows : slice, index array or boolean mask, optional
            Only these spikes (default: all of them, which reads every waveform into memory).
        """
        sel = slice(None) if rows is None else rows
        wf = np.asarray(self.waveforms) if rows is None else self.waveforms[sel]
        if self.group_channels is None:
            sigma = np.maximum(self.noise_uv, 1e-6)[self.electrode[sel]]
            return wf / sigma[:, None]
        seg = np.repeat(self.segment_noise_uv, self.segment_length, axis=1)[self.electrode[sel]]
        return np.where(seg > 0, wf / np.maximum(seg, 1e-6), 0).astype(np.float32)

    def peak_scaled(self) -> np.ndarray:
        """Signed value at the aligned peak in noise σ, shape (n_spikes,); with channel groups, that
        of the segment with the largest one."""
        if self.group_channels is None:  # one column: read without holding every waveform
            return self.waveforms[:, self.peak_index] / np.maximum(self.noise_uv, 1e-6)[self.electrode]
        wf = self.scaled_waveforms()
        peaks = wf.reshape(self.n_spikes, -1, self.segment_length)[:, :, self.peak_index]
        return peaks[np.arange(self.n_spikes), np.argmax(np.abs(peaks), axis=1)] if self.n_spikes else peaks[:, 0]

    def in_memory(self) -> "Spikes":
        """These spikes with their waveforms read into memory (self when they already are): for use
        after the run folder holding their waveform file is gone."""
        if not _on_disk(self.waveforms):
            return self
        import dataclasses

        return dataclasses.replace(self, waveforms=np.asarray(self.waveforms))

    def subset(self, mask_or_index) -> "Spikes":
        """The spikes selected by a boolean mask, an index array or a slice (noise snippets kept)."""
        from .execution.spill import take  # the copies go to the run's spill folder, if any

        sel = mask_or_index if isinstance(mask_or_index, slice) else np.asarray(mask_or_index)
        electrode = take(self.electrode, sel)
        if _on_disk(self.waveforms):  # the row map keeps sharing the electrode array, as detection made it
            shared = self.waveforms.electrode is self.electrode
            waveforms = self.waveforms.take(sel, electrode if shared else None)
        else:
            waveforms = take(self.waveforms, sel)
        return Spikes(
            sample_index=take(self.sample_index, sel), electrode=electrode,
            waveforms=waveforms,
            amplitude_uv=take(self.amplitude_uv, sel),
            noise_uv=self.noise_uv, fs=self.fs, peak_index=self.peak_index,
            channel_ids=self.channel_ids, noise_snippets=self.noise_snippets,
            noise_electrode=self.noise_electrode, group_channels=self.group_channels,
            segment_noise_uv=self.segment_noise_uv,
        )

    def __repr__(self) -> str:
        return (
            f"Spikes({self.n_spikes} spikes on {self.n_electrodes} electrodes, "
            f"waveforms {self.n_samples} samples at {self.fs:g} Hz, µV)"
        )


@dataclass
class Embedding:
    """Features of every spike, in the same order as the Spikes they came from.

    Parameters
    ----------
    features : ndarray of shape (n_spikes, n_features), float32, or DiskWaveforms
        A run's features stay on disk (``OUT/features_<method>.h5``, one dataset per electrode,
        read like :class:`~spikevae.waveform_store.DiskWaveforms` waveforms: per electrode or by
        rows); ``np.asarray`` or :meth:`in_memory` reads them all.
    method : str
        Name of the feature extractor (``"pca"``, ``"vae"``).
    params : dict
        The resolved parameters that made it.
    noise_features : ndarray of shape (n_noise, n_features), float32, optional
        Features of synthetic pure-noise threshold crossings
        (:mod:`spikevae.noise_model`): the clustering's noise class.
    noise_electrode : ndarray of shape (n_noise,), int64, optional
        Electrode of each noise crossing.
    noise_rate_hz : ndarray of shape (n_electrodes,), float64, optional
        Expected rate of noise threshold crossings on each electrode.
    """

    features: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    noise_features: np.ndarray | None = None
    noise_electrode: np.ndarray | None = None
    noise_rate_hz: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not _on_disk(self.features):  # features on disk are read where they are used
            self.features = np.asarray(self.features, dtype=np.float32)
        if self.features.ndim != 2:
            raise ValueError(f"features must be 2-D (n_spikes, n_features), got shape {self.features.shape}")
        if (self.noise_features is None) != (self.noise_electrode is None):
            raise ValueError("noise_features and noise_electrode come together")
        if self.noise_features is not None:
            self.noise_features = np.asarray(self.noise_features, dtype=np.float32).reshape(-1, self.features.shape[1])
            self.noise_electrode = np.asarray(self.noise_electrode, dtype=np.int64)
            _check_len("noise_electrode", self.noise_electrode, self.noise_features.shape[0])
        if self.noise_rate_hz is not None:
            self.noise_rate_hz = np.asarray(self.noise_rate_hz, dtype=np.float64)

    @property
    def n_spikes(self) -> int:
        return int(self.features.shape[0])

    def in_memory(self) -> "Embedding":
        """This embedding with its features read into memory (self when they already are)."""
        if not _on_disk(self.features):
            return self
        import dataclasses

        return dataclasses.replace(self, features=np.asarray(self.features))

    def __repr__(self) -> str:
        return f"Embedding({self.method}: {self.features.shape[0]} spikes x {self.features.shape[1]} features)"


@dataclass
class Sorting:
    """A unit label for every spike.

    Parameters
    ----------
    sample_index : ndarray of shape (n_spikes,), int64
    electrode : ndarray of shape (n_spikes,), int32 (int64 for values past 2**31)
    unit : ndarray of shape (n_spikes,), int32 (int64 for ids past 2**31)
        Unit id, unique across the array; -1 means unsorted. Electrode and unit are held as
        int32 when they fit: half the memory per spike over hours of recording.
    fs : float
        Sampling rate in Hz.
    params : dict
        The resolved parameters that made it.
    """

    sample_index: np.ndarray
    electrode: np.ndarray
    unit: np.ndarray
    fs: float
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sample_index = np.asarray(self.sample_index, dtype=np.int64)
        n = self.sample_index.shape[0]
        self.electrode = _narrow_ints(self.electrode, "electrode")
        self.unit = _narrow_ints(self.unit, "unit")
        _check_len("electrode", self.electrode, n)
        _check_len("unit", self.unit, n)
        self.fs = float(self.fs)

    @property
    def unit_ids(self) -> np.ndarray:
        """Sorted unit ids, without -1."""
        u = unique_values(self.unit)
        return u[u >= 0]

    def starts_with(self, spikes: "Spikes") -> bool:
        """Whether this sorting's first entries are ``spikes`` (time and electrode), in their order: a
        run's own sorting, whose overlap extras follow the detected spikes. Compared a block at a time."""
        n = spikes.n_spikes
        return self.sample_index.size >= n and equal_in_blocks(self.sample_index[:n], spikes.sample_index) \
            and equal_in_blocks(self.electrode[:n], spikes.electrode)

    def unit_electrode(self) -> dict[int, int]:
        """Electrode of each unit (the most common electrode of its spikes)."""
        # one sort, not a pass over every spike per unit
        return {u: int(np.bincount(self.electrode[sel]).argmax()) for u, sel in group_indices(self.unit).items() if u >= 0}

    def save_npz(self, path) -> None:
        """Write the public ``sorting.npz`` layout atomically (see README)."""
        from .store import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, sample_index=self.sample_index, electrode=self.electrode,
                         unit=self.unit, fs=np.float64(self.fs))

    @classmethod
    def load_npz(cls, path) -> "Sorting":
        """Read a ``sorting.npz`` (or a ground truth in the same layout)."""
        z = _open_sorting_npz(path)
        t = z["sample_index"]
        electrode = _npz_ints(z, "electrode", path) if "electrode" in z.files else np.zeros(t.shape[0], np.int32)
        return cls(t, electrode, _npz_ints(z, "unit", path), float(z["fs"]))

    def __repr__(self) -> str:
        n_sorted = int((self.unit >= 0).sum())
        return (
            f"Sorting({len(self.unit_ids)} units, {self.unit.shape[0]} spikes "
            f"({n_sorted} sorted) at {self.fs:g} Hz)"
        )


def _open_sorting_npz(path):
    """The open .npz of a sorting (or ground truth) file, checked: it exists, is an .npz, and holds
    ``sample_index``, ``unit`` and ``fs``; each problem is one clear error."""
    import zipfile
    from pathlib import Path

    from .errors import SpikevaeError
    from .store import check_output

    check_output(path)  # a run folder's sorting must be the one its run wrote
    if not Path(path).is_file():
        raise SpikevaeError(f"{path}: file not found; pass a sorting.npz or ground-truth .npz file")
    if not zipfile.is_zipfile(path):  # numpy's own message would suggest allow_pickle, an unsafe fix
        raise SpikevaeError(f"{path}: not an .npz file (an .npz is a zip archive of named arrays); pass a "
                            "sorting.npz with sample_index, unit, fs and optionally electrode")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise SpikevaeError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); "
                            "the file may be damaged") from None
    missing = [k for k in ("sample_index", "unit", "fs") if k not in z.files]
    if missing:
        raise SpikevaeError(
            f"{path}: missing array(s) {', '.join(missing)}; a sorting file needs sample_index, unit, fs "
            "(and optionally electrode); `spikevae compare` also reads other names (spike_times, "
            "spike_clusters ...), phy/Kilosort and SpikeInterface sortings"
        )
    return z


def _npz_header(f):
    """Shape and dtype of the .npy stream ``f`` (left at the start of its data)."""
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    shape, _, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(f)
    return shape, dtype


class SortingFile:
    """A sorting (or ground truth) in the ``sorting.npz`` layout, read from its file a block at a time on
    each pass, never held whole: what scoring a sorting of hours against it needs (:mod:`spikevae.compare`).

    :meth:`open` gives one for a file whose ``sample_index``, ``unit`` (and ``electrode``) are 1-D integer
    arrays of one length, and the file read whole as a :class:`Sorting` otherwise.
    """

    def __init__(self, path, fs: float, n_spikes: int, has_electrode: bool):
        self.path, self.fs, self.n_spikes, self.has_electrode = path, float(fs), int(n_spikes), has_electrode

    @classmethod
    def open(cls, path) -> "SortingFile | Sorting":
        z = _open_sorting_npz(path)
        names = ["sample_index", "unit"] + (["electrode"] if "electrode" in z.files else [])
        lengths = set()
        for name in names:
            with z.zip.open(f"{name}.npy") as f:
                shape, dtype = _npz_header(f)
            if len(shape) != 1 or dtype.kind not in "iu":
                return Sorting.load_npz(path)  # Sorting's own checks and conversions, on the whole file
            lengths.add(shape[0])
        if len(lengths) != 1:
            return Sorting.load_npz(path)  # which names its mismatched lengths
        return cls(path, float(z["fs"]), lengths.pop(), "electrode" in z.files)

    def blocks(self, block: int = 1 << 20):
        """``(sample_index int64, electrode, unit)`` of consecutive spikes, ``block`` at a time (electrode 0
        for a file without electrodes)."""
        import zipfile

        from .errors import SpikevaeError

        names = ["sample_index", "unit"] + (["electrode"] if self.has_electrode else [])
        with zipfile.ZipFile(self.path) as zf:
            streams = [zf.open(f"{name}.npy") for name in names]
            try:
                dtypes = [_npz_header(f)[1] for f in streams]
                for i in range(0, self.n_spikes, block):
                    m = min(block, self.n_spikes - i)
                    parts = []
                    for name, f, dt in zip(names, streams, dtypes):
                        buf = f.read(m * dt.itemsize)
                        if len(buf) != m * dt.itemsize:
                            raise SpikevaeError(f"{self.path}: array {name!r} is shorter than its header says; "
                                                "the file may be damaged")
                        parts.append(np.frombuffer(buf, dtype=dt))
                    e = parts[2] if self.has_electrode else np.zeros(m, np.int32)
                    yield parts[0].astype(np.int64, copy=False), e, parts[1]
            finally:
                for f in streams:
                    f.close()

    def __repr__(self) -> str:
        return f"SortingFile({self.path}, {self.n_spikes} spikes at {self.fs:g} Hz)"

