"""Electrode maps: where each channel's electrode sits on the array.

Two formats, chosen by extension in :func:`read_map` (``input.map``, ``--map FILE``):

- **Blackrock** ``.cmp`` (Central's map files, :func:`read_cmp`). Lines starting with ``//``
  are comments (also after a row) and blank lines are skipped; the first other line is the
  map's description; every later line is ``col row bank pin [label]`` separated by tabs or
  spaces: 0-based column from the left, 0-based row from the bottom, bank ``A``-``D``,
  1-based pin within the bank (1-32), and the label Central gives the channel (``elec12``).
  The electrode id is ``bank index * 32 + pin`` (A1 = 1, B1 = 33, C32 = 96, D32 = 128): the
  front-end channel id that Blackrock ``.nsX``/``.nev`` files carry. Positions are
  ``(col, row) * pitch`` in µm (400 µm on Utah arrays).
- **probeinterface** ``.json`` (:func:`read_probeinterface`): contact positions, contact ids
  and, when wired, ``device_channel_indices``.

:func:`apply_map` gives a Recording the map's positions and labels. Channels are matched
to map rows by wiring (probeinterface ``device_channel_indices``: the index of the channel
in the file), else by numeric channel id = electrode id, else by channel id or channel
name (neo's names, e.g. ``elec12`` when Central renamed the channels) = map label.
Channels the map does not place keep NaN positions; that is an error unless the channel
is a Blackrock analog input (numeric id above 128, with a ``.cmp`` map) or is not among the
channels that will be sorted (``require``).
"""
from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..recording import Recording

log = logging.getLogger(__name__)

#: Bank letters of a Blackrock front end, in electrode-id order (32 pins each).
BANKS = "ABCD"
PINS_PER_BANK = 32
#: Electrode pitch of Utah arrays (µm).
UTAH_PITCH_UM = 400.0
#: Blackrock NSP channel ids above this are analog inputs, not electrodes.
MAX_FRONT_END_ID = 128
_ROW_HELP = "expected 'col row bank pin [label]', e.g. '0 8 C 1 elec96'"


@dataclass
class ElectrodeMap:
    """The electrodes of an array map, one entry per map row.

    Attributes
    ----------
    electrode_id : ndarray of shape (n,), int64
        Channel id of each electrode (``.cmp``: bank index * 32 + pin; probeinterface: the
        contact id when it is a number, else -1).
    label : ndarray of shape (n,), str
        ``.cmp`` label (``elec12``; "" when absent) or probeinterface contact id.
    bank : ndarray of shape (n,), str
        Bank letter ``A``-``D`` ("" for probeinterface).
    pin : ndarray of shape (n,), int64
        Pin within the bank, 1-32 (0 for probeinterface).
    col, row : ndarray of shape (n,), int64
        Grid column (from the left) and row (from the bottom); -1 for probeinterface.
    positions_um : ndarray of shape (n, 2), float64, µm
        x (to the right), y (upwards).
    source : str
        The file read.
    description : str
        The ``.cmp`` description line, or the probe's name.
    channel_index : ndarray of shape (n,), int64, or None
        probeinterface ``device_channel_indices`` (index of the file channel; -1 = not
        wired); None when the map does not wire contacts to channels.
    """

    electrode_id: np.ndarray
    label: np.ndarray
    bank: np.ndarray
    pin: np.ndarray
    col: np.ndarray
    row: np.ndarray
    positions_um: np.ndarray
    source: str = ""
    description: str = ""
    channel_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.electrode_id)
        for name in ("electrode_id", "pin", "col", "row"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        self.label, self.bank = np.asarray(self.label).astype(str), np.asarray(self.bank).astype(str)
        self.positions_um = np.asarray(self.positions_um, dtype=np.float64).reshape(n, 2)
        if self.channel_index is not None:
            self.channel_index = np.asarray(self.channel_index, dtype=np.int64)
        for name in ("label", "bank", "pin", "col", "row", "channel_index"):
            val = getattr(self, name)
            if val is not None and len(val) != n:
                raise ValueError(f"{name} has {len(val)} entries but the map has {n} electrodes")

    @property
    def n_electrodes(self) -> int:
        return int(len(self.electrode_id))

    def entry(self, i: int) -> dict:
        """Row ``i`` as a plain dict: electrode id, bank, pin, label (for ``describe()``)."""
        eid = int(self.electrode_id[i])
        return {"electrode": eid if eid >= 0 else None, "bank": str(self.bank[i]),
                "pin": int(self.pin[i]) or None, "label": str(self.label[i])}

    def __repr__(self) -> str:
        lo, hi = np.nanmin(self.positions_um, axis=0), np.nanmax(self.positions_um, axis=0)
        return (f"ElectrodeMap({self.n_electrodes} electrodes, x {lo[0]:g}-{hi[0]:g} µm, "
                f"y {lo[1]:g}-{hi[1]:g} µm, {self.source})")


# -- Blackrock .cmp ----------------------------------------------------------------------
def _strip_comment(line: str) -> str:
    return line.split("//", 1)[0].strip()


def _parse_row(fields: list[str], where: str) -> tuple[int, int, str, int, str]:
    """``col, row, bank, pin, label`` of one ``.cmp`` row; RecordingError naming ``where``."""
    if len(fields) not in (4, 5):
        raise RecordingError(f"{where}: {len(fields)} fields {' '.join(fields)!r}; {_ROW_HELP}")
    col, row, bank, pin = fields[:4]
    if not (col.isdigit() and row.isdigit()):
        raise RecordingError(f"{where}: column {col!r} and row {row!r} must be whole numbers >= 0; {_ROW_HELP}")
    if len(bank) != 1 or bank.upper() not in BANKS:
        raise RecordingError(f"{where}: bank {bank!r} is not one of A, B, C, D; {_ROW_HELP}")
    if not pin.isdigit() or not 1 <= int(pin) <= PINS_PER_BANK:
        raise RecordingError(f"{where}: pin {pin!r} is not a number from 1 to {PINS_PER_BANK}; {_ROW_HELP}")
    return int(col), int(row), bank.upper(), int(pin), fields[4] if len(fields) == 5 else ""


def _looks_like_row(fields: list[str]) -> bool:
    try:
        _parse_row(fields, "")
    except RecordingError:
        return False
    return True


def _check_unique(values: list, lines: list[int], what: str, path: Path) -> None:
    seen: dict = {}
    for v, ln in zip(values, lines):
        if v in seen:
            raise RecordingError(f"{path}: lines {seen[v]} and {ln} give the same {what} {v}; "
                                 "each electrode must appear once in the map")
        seen[v] = ln


def read_cmp(path, pitch_um: float = UTAH_PITCH_UM) -> ElectrodeMap:
    """Read a Blackrock ``.cmp`` electrode map (format in the module docstring).

    Parameters
    ----------
    path : str or Path
    pitch_um : float
        Distance between neighbouring electrodes in µm (400 on Utah arrays).

    Returns
    -------
    ElectrodeMap
        One entry per row, in file order; ``positions_um = (col, row) * pitch_um``.

    Raises
    ------
    RecordingError
        Missing file, a malformed row (naming the file and line), a bank/pin, label or
        grid position given twice, or no electrode rows.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: electrode map not found; check the path given to --map / input.map")
    text = path.read_bytes().decode("utf-8", errors="replace")
    description, rows, lines = None, [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        fields = _strip_comment(raw).split()
        if not fields:
            continue
        if description is None and not _looks_like_row(fields):
            description = " ".join(fields)  # the first non-comment line names the map
            continue
        rows.append(_parse_row(fields, f"{path}, line {n}"))
        lines.append(n)
    if not rows:
        raise RecordingError(f"{path}: no electrode rows found; is this a Blackrock .cmp map? ({_ROW_HELP})")
    col, row, bank, pin, label = (list(v) for v in zip(*rows))
    _check_unique([f"{b}{p}" for b, p in zip(bank, pin)], lines, "bank and pin", path)
    _check_unique([f"({c}, {r})" for c, r in zip(col, row)], lines, "grid position (col, row)", path)
    _check_unique([lab.lower() for lab in label if lab], [ln for ln, lab in zip(lines, label) if lab], "label", path)
    ids = [BANKS.index(b) * PINS_PER_BANK + p for b, p in zip(bank, pin)]
    pos = np.stack([np.asarray(col, float), np.asarray(row, float)], axis=1) * float(pitch_um)
    emap = ElectrodeMap(ids, label, bank, pin, col, row, pos, str(path), description or "")
    log.info("read %r", emap)
    return emap


# -- probeinterface JSON -------------------------------------------------------------------
def read_probeinterface(path) -> ElectrodeMap:
    """Read a probeinterface JSON file (every probe of its probe group).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ElectrodeMap
        Contact positions (x, y in µm; 3-D probes keep x and y), contact ids as labels
        (and as electrode ids when numeric), and ``device_channel_indices`` as
        ``channel_index`` when any probe is wired.

    Raises
    ------
    SpikevaeError
        When probeinterface is missing, the file is not probeinterface JSON, or two
        contacts are wired to the same channel.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: electrode map not found; check the path given to --map / input.map")
    try:
        import probeinterface
    except ImportError:
        raise RecordingError(f"{path}: reading probeinterface maps needs probeinterface; "
                             "pip install 'spikevae[si]'") from None
    try:
        group = probeinterface.read_probeinterface(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad map file
        raise RecordingError(f"{path}: not a probeinterface JSON file ({type(exc).__name__}: {exc}); "
                             "write it with probeinterface.write_probeinterface") from None
    probes = group.probes
    if not probes or sum(p.get_contact_count() for p in probes) == 0:
        raise RecordingError(f"{path}: the probe group has no contacts")
    ids = np.concatenate([np.asarray(p.contact_ids).astype(str) for p in probes])
    pos = np.concatenate([np.asarray(p.contact_positions, float)[:, :2] for p in probes])
    wired = any(p.device_channel_indices is not None for p in probes)
    dci = np.concatenate([np.full(p.get_contact_count(), -1) if p.device_channel_indices is None
                          else np.asarray(p.device_channel_indices) for p in probes]) if wired else None
    if dci is not None:
        used, counts = np.unique(dci[dci >= 0], return_counts=True)
        if (counts > 1).any():
            raise RecordingError(f"{path}: device channel(s) {used[counts > 1].tolist()} are wired to more than "
                                 "one contact; fix device_channel_indices")
    eid = [int(c) if c.isdigit() else -1 for c in ids]
    n = len(ids)
    name = "; ".join(str(p.name or p.model_name or "") for p in probes).strip("; ")
    return ElectrodeMap(eid, ids, [""] * n, [0] * n, [-1] * n, [-1] * n, pos, str(path), name, dci)


#: Map readers by file extension.
MAP_READERS = {".cmp": read_cmp, ".json": read_probeinterface}


def read_map(path) -> ElectrodeMap:
    """Read an electrode map, choosing the reader by extension (``.cmp`` or ``.json``).

    Raises
    ------
    RecordingError
        For another extension (listing the supported ones) or any reader error.
    """
    path = Path(path)
    reader = MAP_READERS.get(path.suffix.lower())
    if reader is None:
        raise RecordingError(f"{path}: unknown electrode map type {path.suffix!r}; give a Blackrock .cmp "
                             "or a probeinterface .json file")
    return reader(path)


# -- matching channels to map rows ----------------------------------------------------------
def _is_analog_input(cid: str, emap: ElectrodeMap) -> bool:
    """A Blackrock NSP analog input (id above 128) beside a ``.cmp`` map (which sets banks)."""
    return bool(emap.bank.size and emap.bank[0]) and cid.isdigit() and int(cid) > MAX_FRONT_END_ID


def _match_one(cid: str, name: str, by_id: dict, by_label: dict) -> int:
    m = re.fullmatch(r"0*(\d+)", cid.strip())
    if m and int(m.group(1)) in by_id:
        return by_id[int(m.group(1))]
    for key in (cid.strip().lower(), name.strip().lower()):
        if key and key in by_label:
            return by_label[key]
    return -1


def match_channels(channel_ids, emap: ElectrodeMap, channel_names=None) -> np.ndarray:
    """Map row of each channel (-1 where the map does not place it).

    Parameters
    ----------
    channel_ids : array-like of str, shape (n_channels,)
        The file's channel ids, in file order.
    emap : ElectrodeMap
    channel_names : array-like of str, shape (n_channels,), optional
        The file's channel names (neo), matched against the map's labels.

    Returns
    -------
    ndarray of shape (n_channels,), int64

    Raises
    ------
    RecordingError
        When two channels match the same map row.
    """
    ids = np.asarray(channel_ids).astype(str)
    if emap.channel_index is not None:  # probeinterface wiring: contact k -> file channel index
        rows = np.full(ids.size, -1, dtype=np.int64)
        ok = (emap.channel_index >= 0) & (emap.channel_index < ids.size)
        rows[emap.channel_index[ok]] = np.flatnonzero(ok)
        return rows
    names = np.asarray(channel_names).astype(str) if channel_names is not None else np.full(ids.size, "")
    by_id = {int(e): i for i, e in enumerate(emap.electrode_id) if e >= 0}
    by_label = {lab.lower(): i for i, lab in enumerate(emap.label) if lab}
    rows = np.array([_match_one(c, n, by_id, by_label) for c, n in zip(ids, names)], dtype=np.int64)
    used, counts = np.unique(rows[rows >= 0], return_counts=True)
    if (counts > 1).any():
        dup = ids[np.isin(rows, used[counts > 1])]
        raise RecordingError(f"{emap.source}: channels {', '.join(dup)} all match one map electrode; "
                             "give the channels unique ids or drop some with input.channels")
    return rows


def _short(ids, n: int = 8) -> str:
    ids = [str(i) for i in ids]
    return ", ".join(ids) if len(ids) <= n else f"{', '.join(ids[:n // 2])} ... {', '.join(ids[-n // 2:])}"


def _ranges(ids) -> str:
    """Sorted ids as runs: ``1-16, 33, 40-41``."""
    ids = sorted({int(i) for i in ids if int(i) >= 0})
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs) or "none"


def check_matched(channel_ids, rows: np.ndarray, emap: ElectrodeMap, source: str, require=None) -> None:
    """Raise when a channel that will be sorted has no place in the map.

    Parameters
    ----------
    channel_ids : array-like of str, shape (n_channels,)
    rows : ndarray of shape (n_channels,), int
        From :func:`match_channels`.
    emap : ElectrodeMap
    source : str
        The recording (for the message).
    require : sequence of str, optional
        Channel ids that must be placed (default: every channel except Blackrock analog
        inputs, ids above 128, with a ``.cmp`` map).

    Raises
    ------
    RecordingError
        Naming the unplaced channels, the map's electrode ids and the fix.
    """
    ids = np.asarray(channel_ids).astype(str)
    if not (rows >= 0).any():
        raise RecordingError(f"{source}: none of its channels ({_short(ids)}) is in the electrode map {emap.source} "
                             f"(electrode ids {_ranges(emap.electrode_id)}); is it the map of this array?")
    wanted = {str(c) for c in require} if require else {c for c in ids if not _is_analog_input(c, emap)}
    missing = [c for c, r in zip(ids, rows) if r < 0 and c in wanted]
    if missing:
        raise RecordingError(
            f"{source}: channel(s) {_short(missing)} are not in the electrode map {emap.source} (electrode ids "
            f"{_ranges(emap.electrode_id)}); use the array's own map, or keep the mapped channels with "
            "input.channels")


def map_channels(channel_ids, emap: ElectrodeMap, source: str, channel_names=None, require=None) -> dict:
    """Positions and labels of channels from a map, as ``describe()`` keys.

    Parameters
    ----------
    channel_ids : array-like of str, shape (n_channels,)
    emap : ElectrodeMap
    source : str
        The recording or spike file (for messages).
    channel_names, require
        As in :func:`match_channels` and :func:`check_matched`.

    Returns
    -------
    dict
        ``positions_um`` (n_channels lists [x, y] in µm; NaN where unplaced),
        ``electrode_labels`` (per channel: dict of electrode, bank, pin, label, or None),
        ``electrode_map`` (the map's path).
    """
    rows = match_channels(channel_ids, emap, channel_names)
    check_matched(channel_ids, rows, emap, source, require)
    pos = np.full((rows.size, 2), np.nan)
    pos[rows >= 0] = emap.positions_um[rows[rows >= 0]]
    unplaced = np.asarray(channel_ids).astype(str)[rows < 0]
    if unplaced.size:
        log.info("%s: channel(s) %s are not in the map (analog inputs or not sorted): NaN positions",
                 source, _short(unplaced))
    return {"positions_um": pos.tolist(), "electrode_map": emap.source,
            "electrode_labels": [emap.entry(r) if r >= 0 else None for r in rows]}


def apply_map(rec: Recording, emap: ElectrodeMap, require=None) -> Recording:
    """``rec`` with the map's electrode positions and labels.

    Parameters
    ----------
    rec : Recording
        As opened from the file (before channel selection, so probeinterface wiring
        indices refer to the file's channels).
    emap : ElectrodeMap
    require : sequence of str, optional
        Channel ids that must be in the map (``input.channels``); default: every
        channel except Blackrock analog inputs (see :func:`check_matched`).

    Returns
    -------
    Recording
        A shallow copy of ``rec`` (same reader, same traces) whose ``positions_um``
        (n_channels, 2) µm follow the map (NaN for unplaced channels), with
        ``electrode_labels`` and ``electrode_map`` set, both reported by ``describe()``.

    Raises
    ------
    RecordingError
        When a required channel is not in the map, no channel is, or two channels
        match one electrode.
    """
    info = map_channels(rec.channel_ids, emap, rec.source, getattr(rec, "channel_names", None), require)
    out = copy.copy(rec)
    out.positions_um = np.asarray(info["positions_um"], dtype=np.float64).reshape(-1, 2)
    out.electrode_labels = info["electrode_labels"]
    out.electrode_map = info["electrode_map"]
    log.info("%s: electrode positions from %s", rec.source, emap.source)
    return out
