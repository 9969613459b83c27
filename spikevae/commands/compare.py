"""``spikevae compare``: score a sorting against ground truth, or measure how two sortings agree.

``compare SORTING --gt GT`` scores SORTING (any format of :mod:`spikevae.io.sortings`) against
the ground truth GT (same formats, or a ``.mat`` benchmark file). ``compare A B`` matches the
units of two sortings of one recording (two sorters, or two runs) and prints their agreement.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import SpikevaeError


@click.command("compare")
@click.argument("sorting", type=click.Path())
@click.argument("other", required=False, type=click.Path())
@click.option("--gt", default=None, type=click.Path(),
              help="ground truth: .npz (sample_index, unit, [electrode], fs), a .mat of the public benchmarks, "
                   "or any sorting format")
@click.option("--method", default=None, help="which sorting of a run folder (default: sorting.npz)")
@click.option("--tol-ms", default=0.4, show_default=True, help="matching tolerance")
@click.option("--offset", "offset", default="0", show_default=True,
              help="samples added to ground-truth times, or 'auto' to estimate a constant offset")
@click.option("--json", "json_path", type=click.Path(), default=None, help="write the scores as JSON")
@click.option("--diagnose", "do_diagnose", is_flag=True,
              help="also report the detection ceiling and the supervised probe (needs a run folder)")
@click.option("--gt-fs", type=float, default=0.0, help="sampling rate of a .mat ground truth that does not store it")
@click.option("--fs", type=float, default=None,
              help="sampling rate (Hz) of sorting files that do not store it (default: the ground truth's)")
@click.option("--time-unit", type=click.Choice(["samples", "s", "ms"]), default=None,
              help="unit of the spike times in the files (needed for fractional times)")
@click.option("--recording", "recording", type=click.Path(), default=None,
              help="the recording sorted: infers each unit's electrode from its waveforms when a sorting has none")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None,
              help="a spikevae run folder of the same recording: infers electrodes from its detections")
@click.option("--ignore-electrodes", is_flag=True,
              help="match units by spike times only (units on different electrodes may then match)")
def compare(sorting, other, gt, method, tol_ms, offset, json_path, do_diagnose, gt_fs, fs, time_unit,
            recording, run_dir, ignore_electrodes):
    """Score SORTING against ground truth --gt GT, or measure the agreement of SORTING and OTHER.

    SORTING and OTHER: a run folder, a sorting .npz (spikevae's, SpikeInterface's, or times and
    labels under common names), a phy/Kilosort folder, a SpikeInterface-saved folder, or an
    .npy of (sample, label) rows.
    """
    if (other is None) == (gt is None):
        raise SpikevaeError("compare needs either --gt GT (score against ground truth) or a second sorting "
                            "(agreement of two sortings), not " + ("both" if other else "neither"))
    read = dict(time_unit=time_unit, recording=recording, run_dir=run_dir)
    if gt is not None:
        _score(sorting, gt, method, tol_ms, offset, json_path, do_diagnose, gt_fs, fs, ignore_electrodes, read)
    else:
        _agree(sorting, other, method, tol_ms, json_path, fs, ignore_electrodes, read)


def _score(sorting, gt, method, tol_ms, offset, json_path, do_diagnose, gt_fs, fs, ignore, read):
    from ..compare import compare_sortings, electrode_policy, estimate_offset, format_scores
    from ..io.sortings import read_sorting

    g = read_sorting(gt, fs=gt_fs or fs, time_unit=read["time_unit"])
    s = read_sorting(sorting, fs=fs or g.fs, method=method, **read)
    use = electrode_policy(g, s, ignore=ignore, names=(str(gt), str(sorting)))
    off = _offset(offset, g, s, estimate_offset)
    scores = compare_sortings(g, s, tol_ms=tol_ms, offset_samples=off, use_electrodes=use)
    click.echo(format_scores(scores))
    if do_diagnose:
        if not Path(sorting).is_dir():
            raise SpikevaeError("--diagnose needs a run folder (it reads the spikes and features of run.h5)")
        from ..diagnose import diagnose_run

        scores["diagnosis"] = diagnose_run(Path(sorting), gt, method=method, echo=click.echo)
    _write_json(json_path, scores)


def _offset(offset: str, g, s, estimate) -> int:
    if offset == "auto":
        off = estimate(g, s)
        click.echo(f"estimated ground-truth offset: {off} samples ({off / g.fs * 1e3:.2f} ms)")
        return off
    try:
        return int(offset)
    except ValueError:
        raise SpikevaeError(f"--offset {offset!r}: give a whole number of samples or 'auto'") from None


def _agree(path_a, path_b, method, tol_ms, json_path, fs, ignore, read):
    from ..compare import agreement, electrode_policy, format_agreement
    from ..io.sortings import read_sorting

    a = read_sorting(path_a, fs=fs, method=method, **read)
    b = read_sorting(path_b, fs=fs or a.fs, method=method, **read)
    use = electrode_policy(a, b, ignore=ignore, ground_truth=False, names=(str(path_a), str(path_b)))
    d = agreement(a, b, tol_ms=tol_ms, use_electrodes=bool(use))
    d["sorting_a"], d["sorting_b"] = str(path_a), str(path_b)
    click.echo(format_agreement(d))
    _write_json(json_path, d)


def _write_json(json_path, obj) -> None:
    if json_path:
        from ..store import write_text

        write_text(json_path, json.dumps(obj, indent=2, default=str))


commands = [compare]
