"""Machine-readable twins of the quality metrics: ``units.csv`` and ``metrics.json``."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .compute import METRIC_COLUMNS


def _clean(v):
    """JSON-safe scalar: NaN/inf become None, numpy scalars become Python ones."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_metrics(out_dir, metrics: list[dict], preset: str | None = None) -> tuple[Path, Path]:
    """Write ``units.csv`` and ``metrics.json`` into ``out_dir``, each atomically.

    Parameters
    ----------
    out_dir : path
        Output folder (created if needed).
    metrics : list of dict
        As returned by :func:`compute_metrics`.
    preset : str, optional
        Name of the good-label preset, recorded in ``metrics.json`` with its rules.

    Returns
    -------
    (csv_path, json_path)

    Notes
    -----
    In the CSV an undefined metric is an empty cell; in the JSON it is ``null``.
    """
    from ..store import write_text
    from .labels import PRESETS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns = list(METRIC_COLUMNS) + [k for r in metrics[:1] for k in r if k not in METRIC_COLUMNS]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in metrics:
        w.writerow({k: ("" if _clean(r.get(k)) is None else _clean(r.get(k))) for k in columns})
    csv_path, json_path = out / "units.csv", out / "metrics.json"
    write_text(csv_path, buf.getvalue())
    doc = {"columns": columns, "units": [{k: _clean(r.get(k)) for k in columns} for r in metrics]}
    if preset is not None:
        doc["preset"] = {"name": preset, "rules": [list(rule) for rule in PRESETS.get(preset, [])]}
    write_text(json_path, json.dumps(doc, indent=1))
    return csv_path, json_path
