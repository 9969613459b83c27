"""Electrode figures drawn on reused canvases: the same bytes as on a new figure, whatever came before."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")
from spikevae.report import correlograms as cg  # noqa: E402
from spikevae.report import figures as fg  # noqa: E402

FS = 30000.0
T_MS = (np.arange(48) - 16) / FS * 1000


def _unit(uid, amp, rng, n=150):
    shape = -np.exp(-0.5 * ((T_MS - 0.1 * uid) / 0.2) ** 2)
    waves = (amp * shape + rng.normal(0, 5, (n, T_MS.size))).astype(np.float32)
    t = np.sort(rng.choice(60 * int(FS), n, replace=False))
    return {"unit": uid, "good": uid % 2 == 0, "waves": waves, "acg": cg.correlogram(t, t, FS, auto=True),
            "amps": np.abs(amp * (1 + 0.1 * rng.normal(size=n))), "amplitude_cutoff": 0.01 * uid, "n_spikes": n}, t


def _electrode_args(amps, n_methods, seed):
    """Arguments of figures.electrode: one unit per amplitude, cross-correlograms of every pair, scatters."""
    rng = np.random.default_rng(seed)
    units, times = zip(*[_unit(k, a, rng) for k, a in enumerate(amps)])
    ccgs = [(a, b, cg.correlogram(times[a], times[b], FS)) for a in range(len(amps)) for b in range(a + 1, len(amps))]
    n = 500
    ci = rng.integers(-1, len(amps), n)
    scatters = [(f"m{m}", rng.normal(size=(n, 3)) + ci[:, None], ci) for m in range(n_methods)]
    amp_time = (np.sort(rng.uniform(0, 60, n)), -np.abs(rng.normal(40, 10, n)), ci)
    return (f"e{seed}", list(units), T_MS, ccgs, cg.bin_edges_ms(), scatters, amp_time, 1.5, 20.0)


def _fresh(args) -> bytes:
    fg._CANVASES.clear()
    return fg.electrode(*args)


def test_electrode_figure_does_not_depend_on_the_figures_drawn_before():
    # Both use the 3-column, 5-row canvas; the second leaves the large first one's third waveform panel hidden
    # (its data must not stretch the y-scale the row shares) and moves the amplitude-over-time panel.
    big = _electrode_args([400.0, 300.0, 350.0], n_methods=1, seed=1)
    small = _electrode_args([30.0, 50.0], n_methods=2, seed=2)
    fresh_small, fresh_big = _fresh(small), _fresh(big)
    assert fg.electrode(*small) == fresh_small  # drawn on the canvas the big one used
    assert fg.electrode(*big) == fresh_big
    assert fg.electrode(*big) == fresh_big  # and on its own canvas twice in a row
    assert len(fg._CANVASES) == 1 and fresh_small != fresh_big


def test_canvases_are_per_layout_and_a_unitless_electrode_after_a_full_one():
    full = _electrode_args([80.0], n_methods=1, seed=3)
    empty = ("e9", [], T_MS, [], cg.bin_edges_ms(), full[5], full[6], 1.5, None)
    fresh_empty = _fresh(empty)
    fg.electrode(*full)
    assert fg.electrode(*empty) == fresh_empty  # the "no units" panel loses the last unit's title and axis
    assert set(fg._CANVASES) == {(2, 4)}


def test_correlogram_patch_draws_what_stairs_draws():
    """The step patch with precomputed limits gives the pixels of ``ax.stairs`` (same limits, same shape)."""
    rng = np.random.default_rng(0)
    edges = cg.bin_edges_ms()
    for counts in (rng.poisson(3, edges.size - 1), np.zeros(edges.size - 1, np.int64)):
        images = []
        for fast in (True, False):
            fig = fg.new_figure(2.0, 1.5)
            ax = fig.add_subplot(1, 1, 1)
            if fast:
                fg._correlogram(ax, counts, edges, "#1f77b4", 1.5)
            else:
                ax.stairs(counts, edges, fill=True, color="#1f77b4", alpha=0.8, linewidth=0)
                ax.axvspan(-1.5, 1.5, color="#d62728", alpha=0.15, linewidth=0)
                ax.set_xlim(edges[0], edges[-1])
            fig.canvas.draw()
            images.append((np.asarray(fig.canvas.buffer_rgba()).copy(), ax.get_ylim()))
        assert images[0][1] == images[1][1]
        assert np.array_equal(images[0][0], images[1][0])
