"""Make the sample data: ``sample.ns5`` (16 Utah electrodes, 8 s, 30 kHz) and ``sample_gt.npz``.

Run from the repository root::

    python sample_data/make_sample_data.py

The output is fully determined by SEED and CONFIG below (the same files, byte for byte,
on every run with the same numpy/scipy). See sample_data/README.md for what it holds.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from spikevae.io.nsx_write import write_nsx
from spikevae.synth import SimConfig, simulate_recording, write_ground_truth

SEED = 20240514  # chosen among 40 seeds: 4 look-alike electrodes, 9 units below SNR 5
HERE = Path(__file__).resolve().parent

#: Defaults are the Utah-array simulation (units 0-3 per electrode, SNR 3-20, 2-20 Hz,
#: bursts, 5-10 % amplitude jitter, look-alike units on 40 % of multi-unit electrodes,
#: background units below SNR 2); the sample keeps them and adds a mild amplitude drift. It is
#: 8 s long, so that the file stays under 8 MB (16 x 8 s x 30 kHz x int16 = 7.7 MB), and its
#: units fire at 5-20 Hz (not 2-20) so that each has 30 or more spikes in those 8 s.
CONFIG = SimConfig(duration_s=8.0, n_electrodes=16, rate_min_hz=5.0, drift_frac=0.05, drift_period_s=30.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rec, gt = simulate_recording(CONFIG, seed=SEED)
    write_nsx(HERE / "sample.ns5", rec, comment=f"spikevae sample data, seed {SEED}",
              time_origin=datetime(2024, 5, 1, tzinfo=timezone.utc))
    write_ground_truth(HERE / "sample_gt.npz", gt, rec.unit_info)
    info = rec.unit_info
    print(f"{rec!r}\n{gt!r}")
    for u in info.unit_ids:
        print(f"unit {u:2d}  electrode {info.channel_ids[info.unit_electrode[u]]:>2s}  "
              f"SNR {info.unit_snr[u]:5.2f}  rate {info.unit_rate_hz[u]:5.2f} Hz"
              + ("  look-alike" if info.unit_hard[u] else ""))


if __name__ == "__main__":
    main()
