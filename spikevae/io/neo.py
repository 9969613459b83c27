"""Recordings read through neo's rawio layer (Blackrock NSx first, any neo format after).

:class:`NeoRecording` wraps one signal stream of one segment of a ``neo.rawio`` reader.
Nothing is read at construction beyond the header; :meth:`NeoRecording._read_raw` calls
``get_analogsignal_chunk`` for the requested samples and channels, and the base class
applies the gain. Gains come from neo's signal channels and are converted to µV from
the channel units (V, mV, µV). Files without a voltage scale (Blackrock NSx 2.1
``NEURALSG`` headers carry none) are read in raw counts with a warning.

Blackrock files are opened with ``load_nev=False`` (the traces do not need the spikes,
and a ``.nev`` beside the ``.nsX`` with other segments makes neo refuse the pair) and
with neo's strict ``gap_tolerance_ms=None``: a file with timestamp gaps is an error that
quotes neo's gap report, unless the user sets ``input.gap_tolerance_ms``.
"""
from __future__ import annotations

import inspect
import logging
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..recording import Recording

log = logging.getLogger(__name__)

#: µV per unit of each voltage unit string neo reports.
UNIT_TO_UV = {"v": 1e6, "mv": 1e3, "uv": 1.0, "µv": 1.0, "μv": 1.0}


def neo_rawio_classes() -> dict[str, type]:
    """neo's rawio classes by lower-case short name (``"blackrock"``, ``"intan"`` ...)."""
    import neo.rawio

    return {c.__name__.lower().removesuffix("rawio"): c for c in neo.rawio.rawiolist}


def find_rawio_class(name: str) -> type | None:
    """The neo rawio class named ``name`` (``"BlackrockRawIO"``, ``"blackrock"``, ``"BlackrockIO"``), or None."""
    key = name.lower().removesuffix("rawio").removesuffix("io")
    return neo_rawio_classes().get(key)


def rawio_class_for_path(path: Path) -> type | None:
    """The neo rawio class that reads ``path``, guessed from its extension (None if neo has none)."""
    import neo.rawio

    found = neo.rawio.get_rawio(path, exclusive_rawio=False)
    return found[0] if found else None


def folder_extensions(folder: Path, max_files: int = 5000, max_depth: int = 5) -> set[str]:
    """Lower-case extensions (no dot) of the files in ``folder`` and its subfolders (bounded walk)."""
    import os

    found, n, base = set(), 0, len(Path(folder).parts)
    for root, dirs, files in os.walk(folder):
        if len(Path(root).parts) - base >= max_depth:
            dirs[:] = []
        found.update(Path(f).suffix[1:].lower() for f in files if Path(f).suffix)
        n += len(files)
        if n >= max_files:
            break
    return found


def folder_rawio_candidates(folder: Path) -> list[type]:
    """neo's folder readers (``rawmode`` one-dir or multi-file) that claim files found in ``folder``,
    those matching the most distinct extensions first (Open Ephys binary: oebin, dat, npy)."""
    import neo.rawio

    exts = folder_extensions(folder)
    scored = [(len(exts & {e.lower() for e in c.extensions}), i, c) for i, c in enumerate(neo.rawio.rawiolist)
              if getattr(c, "rawmode", "") in ("one-dir", "multi-file")]
    return [c for k, _, c in sorted(scored, key=lambda s: (-s[0], s[1])) if k > 0]


def open_neo_folder(folder, stream: str = "", segment: int = 0) -> "NeoRecording":
    """A folder recording (Open Ephys, SpikeGLX, Neuralynx, TDT ...) with the first neo reader that opens it.

    Raises
    ------
    RecordingError
        One line naming the readers tried (with each one's reason) or, when no file in the
        folder has an extension a neo folder reader knows, the folder readers to choose from.
    """
    import neo.rawio

    folder = Path(folder)
    tried = []
    for cls in folder_rawio_candidates(folder):
        try:
            rec = NeoRecording(folder, cls, stream=stream, segment=segment)
        except RecordingError as exc:
            reason = str(exc).split(": ", 1)[-1].splitlines()[0].split("; check that")[0]
            tried.append(f"{cls.__name__} ({reason[:160]})")
            continue
        log.info("%s: read as %s", folder, cls.__name__)
        return rec
    names = sorted(c.__name__.removesuffix("RawIO") for c in neo.rawio.rawiolist
                   if getattr(c, "rawmode", "") in ("one-dir", "multi-file"))
    if tried:
        raise RecordingError(f"{folder}: no neo folder reader opens this folder; tried {'; '.join(tried)}. "
                             "Pass --format NAME, or point at the recording's file")
    raise RecordingError(f"{folder}: no file here that a neo folder reader knows (found "
                         f"{', '.join(sorted(folder_extensions(folder))) or 'no files'}); pass a file, or "
                         f"--format with one of {', '.join(names)}, raw or hdf5")


def _uv_factor(units: str) -> float | None:
    """µV per unit of ``units`` (None when the unit is not a voltage)."""
    return UNIT_TO_UV.get(str(units).strip().lower())


class NeoRecording(Recording):
    """One stream and segment of any file neo can read, as a lazy Recording.

    Parameters
    ----------
    path : str or Path
        File (or folder, for folder formats) to read.
    rawio_class : type, optional
        A ``neo.rawio`` class (default: guessed from the extension by neo).
    stream : str, optional
        Stream to read, by neo stream name or id (default: the stream with the highest
        sampling rate).
    segment : int
        Segment (recording block between pauses) to read; default 0, the first.
    rawio_kwargs : dict, optional
        Extra keyword arguments for the rawio constructor (e.g. ``nsx_to_load=5``).

    Raises
    ------
    RecordingError
        When the file is missing, neo cannot parse it, it has timestamp gaps (neo's
        report is quoted), or the stream or segment does not exist.
    """

    def __init__(self, path, rawio_class=None, stream: str = "", segment: int = 0, rawio_kwargs=None):
        self.path = Path(path)
        if not self.path.exists():
            raise RecordingError(f"{self.path}: file not found; check the path")
        self.rawio_class = rawio_class or rawio_class_for_path(self.path)
        if self.rawio_class is None:
            raise RecordingError(f"{self.path}: neo has no reader for '{self.path.suffix}' files; "
                                 "pass --format with a neo reader name (e.g. intan) or a raw/hdf5 format")
        self.rawio_kwargs = dict(rawio_kwargs or {})
        self._rawio = None
        self.neo_warnings: list[str] = []
        header = self._open().header
        self.stream_index = self._pick_stream(header, stream)
        self.segment = self._pick_segment(int(segment))
        self._init_from_header(header)

    # ---- opening ------------------------------------------------------------------
    def _open(self):
        """Parse the header (once per process); neo warnings are kept for :meth:`describe`."""
        if self._rawio is None:
            params = inspect.signature(self.rawio_class.__init__).parameters
            key = "filename" if "filename" in params else "dirname"
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    rawio = self.rawio_class(**{key: str(self.path)}, **self.rawio_kwargs)
                    rawio.parse_header()
            except Exception as exc:  # noqa: BLE001 - any parse failure is a bad input file
                raise RecordingError(self._explain_parse_error(exc)) from None
            self.neo_warnings = sorted({str(w.message) for w in caught})
            for msg in self.neo_warnings:
                log.debug("neo: %s", msg)
            self._rawio = rawio
        return self._rawio

    def _explain_parse_error(self, exc: Exception) -> str:
        text = str(exc)
        name = self.rawio_class.__name__
        if "gap" in text.lower():
            return (f"{self.path}: neo ({name}) found timestamp gaps, so the samples are not one continuous "
                    f"recording. neo's report:\n{text}\nTo read it anyway, set input.gap_tolerance_ms "
                    "(e.g. --set input.gap_tolerance_ms=1.0) to split the file into segments at gaps longer "
                    "than that, then choose a segment with input.segment (spikevae info lists them).")
        return (f"{self.path}: neo's {name} could not read this file ({type(exc).__name__}: {text}); "
                "check that the file is complete and of this format, or pass another --format")

    def __getstate__(self):
        # The rawio holds open memmaps; a worker process re-parses the header instead.
        state = self.__dict__.copy()
        state["_rawio"] = None
        return state

    # ---- choosing stream and segment ------------------------------------------------
    def _stream_rates(self, header) -> list[float]:
        chans = header["signal_channels"]
        return [float(chans["sampling_rate"][chans["stream_id"] == sid].max(initial=0.0))
                for sid in header["signal_streams"]["id"]]

    def _pick_stream(self, header, stream: str) -> int:
        streams = header["signal_streams"]
        if len(streams) == 0:
            raise RecordingError(f"{self.path}: neo found no continuous signals in this file "
                                 "(a .nev file holds spikes: use read_nev or `spikevae run file.nev`)")
        if not stream:
            return int(np.argmax(self._stream_rates(header)))
        for i, (name, sid) in enumerate(zip(streams["name"], streams["id"])):
            if stream in (str(name), str(sid)):
                return i
        listing = ", ".join(f"'{n}' (id {s})" for n, s in zip(streams["name"], streams["id"]))
        raise RecordingError(f"{self.path}: no stream {stream!r}; set input.stream to one of {listing}")

    def _pick_segment(self, segment: int) -> int:
        n_seg = self._rawio.segment_count(0)
        if not 0 <= segment < n_seg:
            raise RecordingError(f"{self.path}: segment {segment} does not exist; the file has {n_seg} "
                                 f"segment(s), set input.segment to 0..{n_seg - 1}")
        return segment

    def _init_from_header(self, header) -> None:
        sid = header["signal_streams"]["id"][self.stream_index]
        chans = header["signal_channels"][header["signal_channels"]["stream_id"] == sid]
        self.units = sorted({str(u) for u in chans["units"]})
        factors = [_uv_factor(u) for u in chans["units"]]
        self.voltage_scale = all(f is not None for f in factors)
        if not self.voltage_scale:
            log.warning("%s: cannot rescale to µV: the file gives no voltage unit (units %s); values keep neo's "
                        "own scale (raw counts for Blackrock NSx 2.1, whose headers carry no scale). Thresholds in "
                        "σ still work, amplitudes in µV do not.", self.path, self.units)
        factors = np.asarray([1.0 if f is None else f for f in factors])
        gain, offset = chans["gain"] * factors, chans["offset"] * factors
        rawio = self._rawio
        n = rawio.get_signal_size(0, self.segment, self.stream_index)
        self.t_start_s = float(rawio.get_signal_t_start(0, self.segment, self.stream_index))
        self.channel_names = np.asarray(chans["name"]).astype(str)
        self._init_meta(chans["sampling_rate"][0], np.asarray(chans["id"]).astype(str), n, gain, offset,
                        source=str(self.path))

    # ---- reading ------------------------------------------------------------------
    def _read_raw(self, start, stop, channels):
        idx = None if np.array_equal(channels, np.arange(self.n_channels)) else channels
        return self._open().get_analogsignal_chunk(
            block_index=0, seg_index=self.segment, i_start=int(start), i_stop=int(stop),
            stream_index=self.stream_index, channel_indexes=idx)

    # ---- reporting ----------------------------------------------------------------
    def segments(self) -> list[dict]:
        """Every segment of the selected stream: index, samples, start time and duration."""
        rawio = self._open()
        out = []
        for s in range(rawio.segment_count(0)):
            n = int(rawio.get_signal_size(0, s, self.stream_index))
            out.append({"index": s, "n_samples": n, "duration_s": round(n / self.fs, 6),
                        "t_start_s": float(rawio.get_signal_t_start(0, s, self.stream_index))})
        return out

    def streams(self) -> list[dict]:
        """Every signal stream neo found: id, name, sampling rate, channel count."""
        header = self._open().header
        chans = header["signal_channels"]
        rates = self._stream_rates(header)
        return [{"id": str(sid), "name": str(name), "fs": rate, "n_channels": int((chans["stream_id"] == sid).sum())}
                for sid, name, rate in zip(header["signal_streams"]["id"], header["signal_streams"]["name"], rates)]

    def describe(self) -> dict:
        info = super().describe()
        header = self._open().header
        info.update({
            "reader": f"neo {self.rawio_class.__name__}", "channel_names": self.channel_names.tolist(),
            "units": self.units, "voltage_scale": self.voltage_scale,
            "streams": self.streams(), "stream": self.streams()[self.stream_index]["name"],
            "segments": self.segments(), "segment": self.segment, "t_start_s": self.t_start_s,
            "n_spike_channels": int(len(header["spike_channels"])),
            "n_event_channels": int(len(header["event_channels"])),
            "neo_warnings": self.neo_warnings,
        })
        if self.rawio_class.__name__ == "BlackrockRawIO":
            # A Blackrock NSP numbers its front-end (electrode) channels 1-128 and its analog inputs 129-144.
            info["analog_input_ids"] = [c for c in self.channel_ids.tolist() if c.isdigit() and int(c) > 128]
        return info


def check_lowercase_extension(path: Path) -> None:
    """neo's Blackrock reader only finds lower-case ``.nsX``/``.nev`` names; say so instead of 'no files found'."""
    if path.suffix != path.suffix.lower():
        fixed = path.with_suffix(path.suffix.lower()).name
        raise RecordingError(f"{path}: neo's Blackrock reader only opens lower-case extensions; rename the file to "
                             f"{fixed} (or link it: ln -s {path.name} {fixed})")


def _needs_nev(path: Path) -> bool:
    """Whether neo needs the ``.nev`` beside ``path`` to scale it.

    NSx 2.1 (``NEURALSG``) headers hold no voltage scale; neo takes it from the ``.nev``
    digitisation factor when that file is present. Newer files are read without the
    ``.nev`` (it is not needed, and segment mismatches between the two make neo fail).
    """
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError:
        return False
    return magic == b"NEURALSG" and path.with_suffix(".nev").exists()


def _nsx_block(rec: NeoRecording) -> dict | None:
    """neo's description of the NSx data block that ``rec`` reads (offset, dtype, samples), if it gives one."""
    blocks = getattr(rec._open(), "_nsx_data_header", {}) or {}
    nsx = [b for b in blocks.values() if b]
    if len(nsx) != 1 or len(nsx[0]) <= rec.segment:
        return None
    kw = nsx[0][rec.segment].get("memmap_kwargs") or {}
    return kw if {"offset", "dtype", "num_samples"} <= set(kw) else None


def check_complete(rec: NeoRecording, allow_truncated: bool = False):
    """Check that the samples the NSx header promises are on disk.

    A recording cut short (the acquisition PC crashed, a copy stopped) otherwise ends in
    neo's ``mmap length is greater than file size`` at the first read.

    Returns
    -------
    Recording
        ``rec`` when complete; with ``allow_truncated``, a reader of the samples that are there.

    Raises
    ------
    RecordingError
        Saying how much of the recording is readable and how to sort that part.
    """
    block = _nsx_block(rec)
    if block is None:
        return rec
    frame = rec.n_channels * np.dtype(block["dtype"]).itemsize
    size = rec.path.stat().st_size
    readable = max(0, (size - int(block["offset"])) // frame)
    if readable >= int(block["num_samples"]):
        return rec
    have, want = readable / rec.fs, int(block["num_samples"]) / rec.fs
    if not allow_truncated or readable == 0:
        raise RecordingError(
            f"{rec.path}: the file is cut short: its header promises {want:.2f} s ({int(block['num_samples'])} samples) "
            f"but only {have:.2f} s ({readable} samples, {100 * readable / int(block['num_samples']):.0f} %) are on disk"
            + ("; to sort the readable part, add --set input.allow_truncated=true" if readable else ""))
    from .binary import BinaryRecording

    log.warning("%s is cut short: sorting the first %.2f s of the %.2f s its header promises", rec.path, have, want)
    part = BinaryRecording(rec.path, rec.fs, rec.n_channels, block["dtype"], rec.gain_uv, rec.offset_uv,
                           header_bytes=int(block["offset"]), channel_ids=rec.channel_ids, n_samples=readable)
    part.source = f"{rec.path} (first {have:.2f} s of {want:.2f} s: the file is cut short)"
    return part


def blackrock_recording(path, stream: str = "", segment: int = 0, gap_tolerance_ms: float = 0.0,
                        allow_truncated: bool = False):
    """A Blackrock ``.ns1``-``.ns6`` file through neo's ``BlackrockRawIO``.

    Parameters
    ----------
    path : str or Path
        The ``.nsX`` file; its number picks ``nsx_to_load`` (a name without extension
        loads the highest-rate NSx file present).
    stream, segment
        See :class:`NeoRecording`.
    gap_tolerance_ms : float
        0 (default) keeps neo's strict behaviour: timestamp gaps are an error. A
        positive value splits the recording into segments at longer gaps.
    allow_truncated : bool
        Sort the readable part of a file that ends before its header says (see :func:`check_complete`).
    """
    from neo.rawio import BlackrockRawIO

    check_lowercase_extension(Path(path))
    m = re.search(r"\.ns([1-6])$", str(path).lower())
    kwargs = {"nsx_to_load": int(m.group(1)) if m else "max", "load_nev": _needs_nev(Path(path)),
              "gap_tolerance_ms": gap_tolerance_ms if gap_tolerance_ms > 0 else None}
    rec = NeoRecording(path, BlackrockRawIO, stream=stream, segment=segment, rawio_kwargs=kwargs)
    return check_complete(rec, allow_truncated)
