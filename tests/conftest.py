"""Shared test helpers: the real data in ``../shared/data`` (skip when absent, fail in CI)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``../shared/data`` relative to the repository root.
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def require_data(path: Path) -> Path:
    """``path`` if it exists; else skip the test, or fail when ``SPIKEVAE_REQUIRE_DATA`` is set (CI)."""
    if path.exists():
        return path
    msg = f"test data not found: {path}"
    if os.environ.get("SPIKEVAE_REQUIRE_DATA"):
        pytest.fail(msg + " (SPIKEVAE_REQUIRE_DATA is set)")
    pytest.skip(msg)


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (skips, or fails under ``SPIKEVAE_REQUIRE_DATA``, when absent)."""
    return require_data(SHARED_DATA)


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run the ``spikevae`` command line in this process: (exit code, stdout, stderr)."""
    from spikevae.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err
