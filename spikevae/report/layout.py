"""Where each electrode's overview panel goes: its place on the array, else the channel order."""
from __future__ import annotations

import numpy as np

#: Largest grid drawn in the physical layout (rows or columns); larger maps fall back to channel order.
MAX_SIDE = 32


def _axis_index(v: np.ndarray) -> np.ndarray | None:
    """Index of each coordinate on an evenly spaced axis, or None when the values are not on one."""
    u = np.unique(v)
    if u.size == 1:
        return np.zeros(v.size, dtype=np.int64)
    pitch = np.min(np.diff(u))
    k = (v - u[0]) / pitch
    if not np.allclose(k, np.round(k), atol=1e-3) or np.round(k).max() >= MAX_SIDE:
        return None
    return np.round(k).astype(np.int64)


def grid_cells(positions_um, n_electrodes: int, n_cols: int = 10) -> tuple[np.ndarray, bool]:
    """Row and column of each electrode's panel.

    Parameters
    ----------
    positions_um : array-like of shape (n_electrodes, 2), µm, or None
        ``recording_info["positions_um"]``: x, y of each electrode.
    n_electrodes : int
    n_cols : int
        Columns of the fallback grid.

    Returns
    -------
    cells : ndarray of shape (n_electrodes, 2), int
        (row, column), row 0 at the top. In the physical layout the top row holds the largest y
        (as on a plot of the array) and column 0 the smallest x.
    physical : bool
        True when the positions lie on a grid with one electrode per site and were used; False
        for the channel-order fallback (positions absent, with NaN, duplicated or off-grid).
    """
    from ..recording import electrode_positions

    pos = electrode_positions(positions_um, n_electrodes)
    if n_electrodes and np.isfinite(pos).all():
        col, row = _axis_index(pos[:, 0]), _axis_index(pos[:, 1])
        if col is not None and row is not None:
            cells = np.stack([row.max() - row, col], axis=1)
            if np.unique(cells, axis=0).shape[0] == n_electrodes:
                return cells, True
    i = np.arange(n_electrodes)
    return np.stack([i // n_cols, i % n_cols], axis=1), False
