"""Configuration of the clustering stage: initial clusterer, refinement, overlaps.

Defaults come from ``benchmarks/bench_cluster.py`` on ``spikevae.synth`` Utah-like
ground truth (16 electrodes, 2-3 scored units each, PCA 5). Mean accuracy (fraction
of the supervised probe) before -> after refinement, 60 s, seeds 0-2: mixture 0.510
(81 %) -> 0.528 (84 %), isosplit 0.476 (75 %) -> 0.539 (85 %), hdbscan 0.330 (52 %)
-> 0.449 (71 %); 300 s, seeds 0-1: mixture 0.505 -> 0.527 (84 %), isosplit 0.503 ->
0.518 (82 %). So ``method = "mixture"`` (equal at 60 s within seed noise, better on
the longer recordings that matter). Merge and split tests on 1000 points scored
best of 200/400/800/1000/2000; QDA instead of LDA, other gate and posterior
thresholds, AIC, 3 or 4 features, a principal-axis split test and noise-whitened
PCA were within ±0.01 (seed noise) or worse.

After detection moved to 3.5 σ with smoothed alignment, the split margin was lowered from 25
to 15 (BIC units): mixture + refinement 0.580 -> 0.591 on seeds 0-2 and 0.552 -> 0.574 on
held-out seeds 3-4 (cluster seed 0), 0.576 -> 0.579 over seeds 0-4 with cluster seed 1;
margins 10 and 5 gave 0.587 and 0.583; more mixture components (12), more refinement rounds
(6) or a 2000-spike fit sample did not help.

Hartigan's dip test as the merge test (``refine.merge_test = "dip"``) scored 0.515-0.554 at
p = 0.01-0.9 against 0.583 for the BIC test (seeds 0-4): look-alike units form one mode, so
the dip test merges them. The synthetic noise class (``refine.noise_class``) left accuracy
unchanged (0.584 -> 0.583) and took the noise detections out of units (100 % -> 9 % sorted).

Long recordings with slow amplitude drift (issue 13; ``benchmarks/bench_duration.py``, then
with ``--pass-times``; 16 electrodes, ``sim.drift_frac=0.2``, mean of seeds 0-1, 5 / 30 / 60 min):
0.468 / 0.327 / 0.370 before, 0.522 / 0.469 / 0.438 with the drift-aware refinement
(``split_min_time_overlap = 0.7``: a split whose parts fire at different times is refused;
``relabel_window_s = 60``: the units' means follow them window by window). Without drift
(seed 0): 0.491 / 0.458 / 0.455 before, 0.489 / 0.478 / 0.452 after. At 30 min, overlap 0.5
or 0.8 and windows of 30 or 120 s scored lower, and testing splits or merges on features
less their window means did not help. What is left at 60 min is mostly under-splitting:
drift smears units of one electrode into one cloud. Both settings need spike times, which
``run.py`` must pass (``refine(..., times=sample_index / fs)``); without them refinement is
as before. Recordings of 60 s or less are unchanged (``bench_gt_diagnosis.py``).

Then electrodes spanning two windows or more were clustered in linked time windows
(``windows``, :mod:`spikevae.cluster.windows`), the linked labels refined once more with
merges tested locally (``refine.merge_window_s``, the window length there). Same benchmark,
5 / 30 / 60 min, mean of seeds 0-1; 5 min is not windowed. Drift 0.2: one piece 0.522 / 0.462 /
0.439; windows of 300 s 0.522 / 0.469 / 0.430 with whole-recording merges, 0.522 / 0.480 / 0.426
with local ones; 600 s (the default) 0.522 / 0.477 / 0.464; 600 s with 300-s merge windows
0.522 / 0.466 / 0.466; 450 s 0.522 / 0.454 / 0.447; 900 s 0.522 / 0.462 / 0.428; 600 s with
``link_threshold`` 0.5 or 0.7 (0.3 is the default) 0.475 / 0.470 and 0.463 / 0.472. Without
drift: one piece 0.495 / 0.488 / 0.473, windows of 600 s 0.495 / 0.496 / 0.494. Without the linked refinement (each window
refined and its overlaps resolved alone, 300 s, seed 0) the pieces of units that one window
cut apart stayed apart: 120-254 units for 23, 0.457 / 0.412 with drift. With drift the aim
(within 0.02 of 5 min) is not met yet: units whose amplitudes cross during the drift are
mixed up in the windows where they cross, and a window that merges two units breaks a chain.
Also tried since (same benchmark, 30 / 60 min, seeds 0-1, drift 0.2 and 0; 0.477 / 0.464 and 0.497 / 0.494
before): each window started from the units of the one before (``warm start``, the shared spikes keep their
labels) 0.468 / 0.460 and 0.472 / 0.455, and no faster; overlap 0.25 0.473 / 0.469 and 0.496 / 0.490, overlap
0.34 0.478 / 0.457 and 0.478 / 0.484, both hardly faster; one or two refinement rounds per window (three is
the default) 0.438 / 0.447 and 0.468 / 0.499, 0.479 / 0.461 and 0.482 / 0.481; ``link_threshold`` 0.15
0.480 / 0.458 and 0.493 / 0.484. None kept. Fitting the split test's mixture on 2000 spikes instead of
``split_fit_sample`` = 4000 was 9 % faster on these electrodes and equal on them on average, but the 96-electrode
10-min simulation went 0.556 -> 0.546 (``benchmarks/bench_throughput.py``), so 4000 stays.
What the features allow under that drift (``benchmarks/bench_drift_ceiling.py``, same runs): a supervised
probe per 600-s window scores 0.586 / 0.540 / 0.542 at 5 / 30 / 60 min, so most of the sorting's drop
(0.522 / 0.477 / 0.464) is in the data; the sorting holds 0.89 / 0.88 / 0.86 of that probe, and scoring it
window by window changes it by 0.002 at most (the links lose nothing measurable). A probe per 300-s window
scores 0.570 / 0.568: shorter windows would allow more, if their smaller clusterings did not lose it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param, section


@dataclass
class HDBSCANConfig:
    min_cluster_size: int = param(25, "smallest cluster HDBSCAN reports", low=2)
    min_samples: int = param(10, "HDBSCAN density smoothing (neighbours)", low=1)
    selection: str = param("eom", "HDBSCAN cluster selection", choices=("eom", "leaf"))


@dataclass
class IsosplitConfig:
    min_cluster_size: int = param(10, "clusters smaller than this are left unsorted", low=1)


@dataclass
class MixtureConfig:
    max_components: int = param(8, "largest number of Gaussian components tried (chosen by BIC)", low=1, high=40)
    covariance: str = param("full", "covariance type of each component", choices=("full", "diag", "tied"))
    criterion: str = param("bic", "model-size criterion", choices=("bic", "aic"))
    bic_fit_spikes: int = param(1000, "spikes the mixture is sized and fitted on (fixed-size subsample, so that longer recordings do not grow the number of components)", low=50)
    n_init: int = param(1, "EM restarts per candidate size", low=1, high=20)
    reg_covar: float = param(1e-3, "added to covariance diagonals (feature units squared)", low=0)


@dataclass
class RefineConfig:
    enabled: bool = param(True, "run merge/split/relabel refinement after the initial clusterer")
    n_rounds: int = param(3, "merge/split/relabel rounds (stops early when labels settle)", low=0, high=50)
    merge: bool = param(True, "merge unit pairs that one Gaussian explains as well as two on their discriminant axis")
    merge_sample: int = param(1000, "points per merge test (fixed-size subsample; fewer points merge more)", low=20)
    merge_test: str = param("bic", "unimodality test of a pair on its discriminant axis: BIC of one vs two Gaussians, or Hartigan's dip test (needs the diptest package)", choices=("bic", "dip"))
    merge_bic_margin: float = param(0.0, "merge when BIC(2) - BIC(1) > -margin (merge_test = bic)", low=-1e6)
    merge_dip_p: float = param(0.05, "merge when the dip test's p-value exceeds this (merge_test = dip)", low=1e-12, high=1)
    merge_window_s: float = param(0.0, "test each pair for a merge on its spikes in the two consecutive time windows of this length where both fire most (drift cannot stretch them into each other there; used when refine is given spike times; 0 = whole recording; the linked refinement of time windows uses cluster.windows.window_s)", unit="s", low=0)
    split: bool = param(True, "split units whose discriminant projection is clearly bimodal")
    split_sample: int = param(1000, "points per split test", low=20)
    split_fit_sample: int = param(4000, "points the two-component mixture of a split test is fitted on (a fixed-size subsample of the unit)", low=20)
    split_bic_margin: float = param(15.0, "split only when BIC(1) - BIC(2) exceeds this", low=0)
    split_min_time_overlap: float = param(0.7, "refuse a split whose two parts' firing-time histograms overlap less than this (a drifting unit cut in two; used when refine is given spike times; 0 = off)", low=0, high=1)
    split_window_s: float = param(60.0, "time window of the split's firing-time overlap", unit="s", low=1)
    relabel_window_s: float = param(60.0, "relabel each time window with the units' means in that window (follows slow drift; used when refine is given spike times; 0 = one mean per unit)", unit="s", low=0)
    classifier: str = param("lda", "relabelling discriminant", choices=("lda", "qda"))
    min_posterior: float = param(0.5, "spikes whose best class posterior is below this stay unsorted", low=0, high=1)
    gate_p: float = param(1e-4, "chi-square gate: spikes farther from their unit than this tail probability stay unsorted (0 = no gate)", low=0, high=0.5)
    min_unit_snr: float = param(3.0, "units whose mean waveform peak is below this many noise σ are dissolved", low=0)
    noise_class: bool = param(True, "relabel with a class of synthetic noise threshold crossings (from the embedding) too; spikes it takes stay unsorted")
    min_unit_spikes: int = param(20, "units with fewer spikes are dissolved, unless isolated", low=1)
    min_isolated_spikes: int = param(8, "a smaller unit is kept when this many spikes or more lie far (4 SD on the discriminant axis) from every other spike of the electrode", low=2)
    tol: float = param(0.002, "stop when fewer than this fraction of labels change in a round", low=0, high=1)


@dataclass
class OverlapConfig:
    enabled: bool = param(True, "resolve overlapping spikes of two units on one electrode")
    max_shift_ms: float = param(1.0, "largest offset of the second spike", unit="ms", low=0.05, high=3)
    min_gain: float = param(50.0, "minimum drop of the residual energy (noise σ² summed over samples) for a second spike", low=0)
    max_residual_fraction: float = param(0.5, "the pair must leave at most this fraction of the single-template residual", low=0, high=1)
    min_pair_shift_ms: float = param(0.2, "two spikes of a pair are at least this far apart (closer pairs look like one larger spike)", unit="ms", low=0)
    whiten: bool = param(True, "measure residuals after noise whitening (needs noise snippets)")
    min_excess: float = param(3.0, "only spikes whose single-template residual exceeds L + this × sqrt(2L) are examined", low=0)
    min_separation_ms: float = param(0.3, "no extra spike within this of an existing detection on the electrode", unit="ms", low=0)


@dataclass
class WindowConfig:
    window_s: float = param(600.0, "long recordings are clustered per electrode in time windows this long, linked into units across windows (follows slow drift; 0 = one piece)", unit="s", low=0)
    overlap: float = param(0.5, "fraction of a window shared with the next one (the shared spikes link the units of the two windows)", low=0.05, high=0.9)
    min_windows: float = param(2.0, "an electrode whose spikes span less than this many windows is clustered in one piece, as without windows", low=1)
    refine_linked: bool = param(True, "refine the linked labels once more over the whole electrode (merges the pieces of a unit that a window cut apart; relabels following drift) and resolve overlaps then, instead of in each window")
    link_threshold: float = param(0.3, "smallest share of spikes (Jaccard index over the overlap) for which units of consecutive windows are linked as one unit", low=0.01, high=1)


@dataclass
class ClusterConfig:
    method: str = param("mixture", "initial clusterer, per electrode",
                        choices=("hdbscan", "isosplit", "mixture"))
    n_features: int = param(0, "leading features used for clustering (0 = all)", low=0)
    min_spikes: int = param(30, "electrodes with fewer spikes are left unsorted", low=1)
    max_fit_spikes: int = param(20000, "electrodes with more spikes are fit on a random subsample, the rest assigned", low=100)
    seed: int = param(0, "random seed for subsampling and initialisation", low=0)
    n_jobs: int = param(2, "parallel workers over electrodes (1 = serial; results are identical)", low=1, high=256)
    hdbscan: HDBSCANConfig = section(HDBSCANConfig, "HDBSCAN initial clusterer")
    isosplit: IsosplitConfig = section(IsosplitConfig, "isosplit6 initial clusterer")
    mixture: MixtureConfig = section(MixtureConfig, "Gaussian mixture initial clusterer")
    refine: RefineConfig = section(RefineConfig, "merge, split and discriminant relabelling")
    overlap: OverlapConfig = section(OverlapConfig, "overlapping-spike resolution")
    windows: WindowConfig = section(WindowConfig, "time windows for long recordings, linked into units")
