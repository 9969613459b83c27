"""Configuration: one dataclass per stage, composed into one strict pipeline config.

Each field is declared once with :func:`param`, which stores its default, unit,
bounds, choices and a one-line description in the field metadata. The same
metadata validates values, prints ``spikevae config show`` and documents the keys.

Stage configs live next to their stage (``cluster/config.py``, ``features/vae/config.py``
...) and are composed here by nesting. Presets are TOML files in ``pipelines/``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib
from pathlib import Path
from typing import Any

from .errors import SpikevaeConfigError


def param(default: Any, help: str, *, unit: str | None = None, low: float | None = None,
          high: float | None = None, choices: tuple | None = None):
    """A configuration field: default plus metadata (description, unit, bounds, choices)."""
    meta = {"help": help, "unit": unit, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls, help: str):
    """A nested configuration section (another config dataclass)."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "section": True})


def _is_section(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("section"))


def _coerce(key: str, value: Any, f: dataclasses.Field, current: Any) -> Any:
    """Convert ``value`` to the type of the field's current value and check bounds/choices."""
    meta = f.metadata
    target = type(current)
    try:
        if current is None:
            out = value
        elif target is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                out = value.lower() in ("true", "1", "yes")
            else:
                out = bool(value)
        elif target in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            if target is int and float(value) != int(float(value)):
                raise SpikevaeConfigError(f"{key}={value!r}: expected a whole number ({meta.get('help', '')})")
            out = target(float(value)) if target is int else target(value)
            if not math.isfinite(out):
                raise SpikevaeConfigError(f"{key}={value!r}: expected a finite number ({meta.get('help', '')})")
        elif target is list:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            out = list(value)
        elif target is str:
            out = str(value)
        else:
            out = value
    except SpikevaeConfigError:
        raise
    except (TypeError, ValueError):
        raise SpikevaeConfigError(
            f"{key}={value!r}: expected a {target.__name__} ({meta.get('help', '')})"
        ) from None
    if meta.get("choices") is not None:
        items = out if isinstance(out, list) else [out]
        bad = [v for v in items if v not in meta["choices"]]
        if bad:
            raise SpikevaeConfigError(
                f"{key}={value!r}: not one of {', '.join(map(str, meta['choices']))}"
            )
    for bound, ok in (("low", lambda v, b: v >= b), ("high", lambda v, b: v <= b)):
        b = meta.get(bound)
        if b is not None and isinstance(out, (int, float)) and not ok(out, b):
            lo, hi = meta.get("low"), meta.get("high")
            raise SpikevaeConfigError(
                f"{key}={value!r}: out of range [{'' if lo is None else lo}, {'' if hi is None else hi}]"
                + (f" {meta['unit']}" if meta.get("unit") else "")
            )
    return out


def field_names(cfg) -> list[str]:
    """Every dotted key of a config, sections expanded."""
    names = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if _is_section(f):
            names += [f"{f.name}.{n}" for n in field_names(v)]
        else:
            names.append(f.name)
    return names


def _unknown(key: str, cfg, prefix: str) -> SpikevaeConfigError:
    valid = [prefix + n for n in field_names(cfg)]
    near = difflib.get_close_matches(prefix + key, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(near)}?" if near else f"; valid keys start with {', '.join(sorted({v.split('.')[0] for v in valid}))}"
    return SpikevaeConfigError(f"unknown configuration key '{prefix}{key}'{hint}")


def set_value(cfg, dotted: str, value: Any, _prefix: str = "") -> None:
    """Set one value by dotted key (``cluster.refine.n_rounds``), validating it."""
    head, _, rest = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    if head not in fields:
        raise _unknown(dotted, cfg, _prefix)
    f = fields[head]
    if _is_section(f):
        if not rest:
            if isinstance(value, dict):
                apply_dict(getattr(cfg, head), value, _prefix + head + ".")
                return
            raise SpikevaeConfigError(f"'{_prefix}{head}' is a section; set one of its keys, e.g. {_prefix}{head}.{field_names(getattr(cfg, head))[0]}")
        set_value(getattr(cfg, head), rest, value, _prefix + head + ".")
        return
    if rest:
        raise _unknown(dotted, cfg, _prefix)
    setattr(cfg, head, _coerce(_prefix + head, value, f, getattr(cfg, head)))


def check_sections(cfg, _prefix: str = "") -> None:
    """Run each section's cross-field ``check()`` (rules that involve two keys, such as a band's
    low cutoff below its high cutoff); single values are checked as they are set."""
    if hasattr(cfg, "check"):
        cfg.check(_prefix)
    for f in dataclasses.fields(cfg):
        if _is_section(f):
            check_sections(getattr(cfg, f.name), _prefix + f.name + ".")


def apply_dict(cfg, values: dict, _prefix: str = "") -> None:
    """Apply a nested dict (as read from TOML) onto a config, strictly."""
    for k, v in values.items():
        fields = {f.name: f for f in dataclasses.fields(cfg)}
        if k in fields and _is_section(fields[k]) and isinstance(v, dict):
            apply_dict(getattr(cfg, k), v, _prefix + k + ".")
        else:
            set_value(cfg, k, v, _prefix)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value`` from ``--set``; the value is parsed as TOML when it can be."""
    if "=" not in text:
        raise SpikevaeConfigError(f"--set {text!r}: expected key=value, e.g. --set detect.threshold=5")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def load_toml(path) -> dict:
    """Read a TOML configuration file, with an error that names the file."""
    p = Path(path)
    if not p.exists():
        raise SpikevaeConfigError(f"{p}: configuration file not found; see pipelines/ for examples")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpikevaeConfigError(f"{p}: not valid TOML ({exc})") from None


def to_dict(cfg) -> dict:
    """The config as a plain nested dict."""
    return dataclasses.asdict(cfg)


def config_hash(d: Any) -> str:
    """A short stable hash of a config (or any JSON-able value)."""
    text = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(cfg, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, value, description with unit and bounds) for every field."""
    rows = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if _is_section(f):
            rows += describe(v, prefix + f.name + ".")
            continue
        m = f.metadata
        extra = []
        if m.get("unit"):
            extra.append(m["unit"])
        if m.get("low") is not None or m.get("high") is not None:
            extra.append(f"range [{'' if m.get('low') is None else m['low']}, {'' if m.get('high') is None else m['high']}]")
        if m.get("choices"):
            extra.append("one of " + "|".join(map(str, m["choices"])))
        rows.append((prefix + f.name, v, m.get("help", "") + (f" ({'; '.join(extra)})" if extra else "")))
    return rows
