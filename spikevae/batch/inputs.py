"""What a batch sorts: recordings from paths, globs or a table, each with its output folder.

A table (CSV, or TSV by extension ``.tsv``/``.tab``) has a ``recording`` column and, optionally,
``output`` (folder, relative to the batch's output folder unless absolute), ``gt`` (ground
truth file) and any dotted configuration key as a column (``detect.threshold``); an empty
cell keeps the batch's value. Other columns (names without a dot: ``subject``, ``date``) are
notes, copied into the batch summary. Relative recording and ground-truth paths in a table are
relative to the table's folder.
"""
from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpikevaeConfigError, SpikevaeError

#: Table columns that are not configuration keys.
TABLE_COLUMNS = ("recording", "output", "gt")


@dataclass
class BatchItem:
    """One recording of a batch.

    Attributes
    ----------
    recording : str
        Path of the recording (any format ``spikevae run`` reads).
    output : str
        Its output folder.
    gt : str or None
        Ground truth to score against.
    overrides : list of (str, str)
        Dotted configuration keys and values for this recording only, applied after the
        batch's ``-c``/``--set``.
    notes : dict
        The table's other columns (no dot in the name), copied into the summary.
    """

    recording: str
    output: str
    gt: str | None = None
    overrides: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The output folder's name (how the summary and messages call this recording)."""
        return Path(self.output).name


def expand_inputs(inputs) -> list[str]:
    """Paths and glob patterns, expanded in order (each pattern's matches sorted), duplicates dropped.

    Raises
    ------
    SpikevaeError
        For a pattern that matches nothing or a path that does not exist.
    """
    out: list[str] = []
    for item in inputs:
        item = str(item)
        if glob.has_magic(item):
            found = sorted(glob.glob(os.path.expanduser(item), recursive=True))
            if not found:
                raise SpikevaeError(f"{item}: the pattern matches no file; quote it so that spikevae expands it, "
                                    "and check the folder")
        else:
            if not Path(item).exists():
                raise SpikevaeError(f"{item}: file not found; check the path")
            found = [item]
        out += [f for f in found if f not in out]
    return out


def read_table(path) -> list[dict]:
    """The rows of a CSV/TSV recordings table, as dicts of stripped strings.

    Raises
    ------
    SpikevaeError
        When the file is missing, empty, or has no ``recording`` column.
    """
    p = Path(path)
    if not p.is_file():
        raise SpikevaeError(f"{p}: table not found; give a CSV or TSV file with a 'recording' column")
    delimiter = "\t" if p.suffix.lower() in (".tsv", ".tab") else ","
    with open(p, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh, delimiter=delimiter))
    if not rows or "recording" not in (rows[0].keys()):
        raise SpikevaeError(f"{p}: a batch table needs a header row with a 'recording' column and one row per "
                            "recording (optional columns: output, gt, and dotted config keys such as detect.threshold)")
    clean = []
    for i, row in enumerate(rows, start=2):
        if None in row:
            raise SpikevaeError(f"{p}: line {i} has more cells than the header; check the delimiter "
                                f"({'tab' if delimiter == chr(9) else 'comma'} for {p.suffix or 'this file'})")
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not row.get("recording"):
            raise SpikevaeError(f"{p}: line {i} has an empty 'recording' cell")
        clean.append(row)
    return clean


def unique_names(paths) -> list[str]:
    """Output folder names from the file stems, made unique.

    A stem used by more than one file takes its parent folder's name in front
    (``sess1/recording.ns5`` -> ``sess1_recording``); what still repeats gets ``-2``, ``-3`` ...
    """
    stems = [Path(p).stem for p in paths]
    names = [f"{Path(p).resolve().parent.name}_{s}" if stems.count(s) > 1 else s for p, s in zip(paths, stems)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def gt_from_pattern(pattern: str, recording: str) -> str | None:
    """The ground truth that ``pattern`` names for ``recording``, or None when that file is missing.

    ``pattern`` may use ``{dir}`` (the recording's folder), ``{stem}`` (its name without
    extension) and ``{name}`` (its file name); a relative result is taken from the
    recording's folder. E.g. ``{dir}/ground_truth.npz`` or ``{stem}_gt.npz``.
    """
    rec = Path(recording)
    try:
        text = pattern.format(dir=str(rec.parent), stem=rec.stem, name=rec.name)
    except (KeyError, IndexError, ValueError) as exc:
        raise SpikevaeConfigError(f"--gt-pattern {pattern!r}: unknown placeholder {exc}; use {{dir}}, {{stem}} "
                                  "or {name}") from None
    p = Path(text)
    p = p if p.is_absolute() else rec.parent / p
    return str(p) if p.exists() else None


def collect_items(inputs=(), out_dir=".", table=None, gt_pattern: str | None = None) -> list[BatchItem]:
    """The recordings of a batch, in order, each with its output folder under ``out_dir``.

    Parameters
    ----------
    inputs : sequence of str
        Recording paths and glob patterns (``"data/*.ns6"``).
    out_dir : path
        The batch's output folder; each recording gets ``out_dir/<name>``.
    table : path, optional
        A CSV/TSV table of recordings (module docstring); its rows come after ``inputs``.
    gt_pattern : str, optional
        Ground truth per recording (:func:`gt_from_pattern`), for recordings without a ``gt`` cell.

    Returns
    -------
    list of BatchItem

    Raises
    ------
    SpikevaeError
        For no recordings, a missing file, a table without a ``recording`` column, a
        ``gt`` cell naming a missing file, or two recordings given the same output folder.
    """
    paths = expand_inputs(inputs)
    rows: list[dict] = [{"recording": p} for p in paths]
    if table is not None:
        base = Path(table).parent
        for row in read_table(table):
            for k in ("recording", "gt"):
                if row.get(k) and not Path(row[k]).is_absolute():
                    row[k] = str(base / row[k])
            if not Path(row["recording"]).exists():
                raise SpikevaeError(f"{table}: recording {row['recording']} not found; paths in a table are "
                                    "relative to the table's folder")
            rows.append(row)
    if not rows:
        raise SpikevaeError("no recordings to sort: give paths, a glob such as 'data/*.ns6', or --table FILE.csv")
    names = unique_names([r["recording"] for r in rows])
    items = []
    for row, name in zip(rows, names):
        items.append(_item(row, name, Path(out_dir), gt_pattern, table))
    _check_distinct_outputs(items)
    return items


def _item(row: dict, name: str, out: Path, gt_pattern, table) -> BatchItem:
    """One row as a BatchItem, with absolute paths: workers on other machines have another working folder."""
    output = row.get("output") or name
    output = output if Path(output).is_absolute() else str(out / output)
    gt = row.get("gt") or None
    if gt is not None and not Path(gt).exists():
        raise SpikevaeError(f"{table}: ground truth {gt} of {row['recording']} not found")
    if gt is None and gt_pattern:
        gt = gt_from_pattern(gt_pattern, row["recording"])
    overrides = [(k, v) for k, v in row.items() if k not in TABLE_COLUMNS and "." in k and v != ""]
    notes = {k: v for k, v in row.items() if k not in TABLE_COLUMNS and "." not in k}
    return BatchItem(os.path.abspath(row["recording"]), os.path.abspath(output), gt and os.path.abspath(gt), overrides,
                     notes)


def _check_distinct_outputs(items: list[BatchItem]) -> None:
    seen: dict[str, str] = {}
    for it in items:
        key = str(Path(it.output).resolve())
        if key in seen:
            raise SpikevaeError(f"{seen[key]} and {it.recording} would both write {it.output}; give each its own "
                                "'output' in the table")
        seen[key] = it.recording
