"""Property-based tests (hypothesis): any configuration value and any recording shape either
works or stops with a clear :class:`SpikevaeError`, never a traceback or a silent wrong result."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spikevae.config import _is_section  # noqa: E402
from spikevae.errors import SpikevaeConfigError, SpikevaeError  # noqa: E402
from spikevae.params import PipelineConfig, load_config  # noqa: E402


def _numeric_keys(cfg=None, prefix="") -> list[tuple[str, dataclasses.Field, object]]:
    cfg = cfg if cfg is not None else PipelineConfig()
    out = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if _is_section(f):
            out += _numeric_keys(v, prefix + f.name + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((prefix + f.name, f, v))
    return out


NUMERIC = _numeric_keys()
values = st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e7, max_value=1e7),
                   st.integers(-10**6, 10**6), st.sampled_from(["abc", "", "1e3", "true", "nan"]))


@settings(max_examples=300, deadline=None)
@given(item=st.sampled_from(NUMERIC), value=values)
@example(item=next(k for k in NUMERIC if k[0] == "input.offset_uv"), value="nan")
@example(item=next(k for k in NUMERIC if k[0] == "features.n_components"), value=2.5)
def test_any_numeric_value_is_accepted_within_bounds_or_refused_naming_the_key(item, value):
    key, f, default = item
    try:
        cfg = load_config(overrides=[(key, value)])
    except SpikevaeConfigError as exc:
        assert key.split(".")[-1] in str(exc) and "\n" not in str(exc)
        return
    got = cfg
    for part in key.split("."):
        got = getattr(got, part)
    assert type(got) is type(default)
    assert np.isfinite(got), f"{key} accepted {value!r}"
    lo, hi = f.metadata.get("low"), f.metadata.get("high")
    assert (lo is None or got >= lo) and (hi is None or got <= hi)
    if isinstance(default, int):
        assert float(value) == got  # an integer key never silently rounds


recordings = st.fixed_dictionaries({
    "n_channels": st.integers(1, 6),
    "duration_s": st.floats(0.005, 1.5),
    "fs": st.sampled_from([1000.0, 8000.0, 20000.0, 30000.0]),
    "flat": st.integers(0, 6),
    "nan_at": st.one_of(st.none(), st.floats(0.0, 1.0)),
    "scale_uv": st.sampled_from([0.0, 1e-3, 10.0, 1e4]),
    "seed": st.integers(0, 3),
})


def _recording(p):
    from spikevae.recording import ArrayRecording

    rng = np.random.default_rng(p["seed"])
    n = max(1, int(p["duration_s"] * p["fs"]))
    x = rng.normal(0, 1, (n, p["n_channels"])).astype(np.float32) * p["scale_uv"]
    t = rng.integers(0, n, size=max(1, n // 300))
    x[t] -= 8 * p["scale_uv"]  # a few spike-like dips
    x[:, : min(p["flat"], p["n_channels"])] = 0.0
    if p["nan_at"] is not None:
        x[int(p["nan_at"] * (n - 1)), 0] = np.nan
    return ArrayRecording(x, p["fs"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=recordings)
def test_any_recording_shape_sorts_or_stops_clearly(p, tmp_path_factory):
    from spikevae.pipeline import run_pipeline

    rec = _recording(p)
    out = tmp_path_factory.mktemp("prop")
    try:
        result = run_pipeline(rec, load_config(overrides=["run.n_jobs=1"]), out, report=False)
    except SpikevaeError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.strip() or "neo's report" in msg
        return
    s = result.sorting
    assert s.sample_index.size == s.unit.size == s.electrode.size
    assert np.all((s.sample_index >= 0) & (s.sample_index < rec.n_samples))
    assert np.all((s.electrode >= 0) & (s.electrode < rec.n_channels))
    assert p["nan_at"] is None, "a recording with a NaN sample was sorted without a word"
    for u, e in s.unit_electrode().items():  # a unit lives on one electrode
        assert np.all(s.electrode[s.unit == u] == e)
