"""The feature-extractor contract shared by PCA and the VAE (scikit-learn's estimator contract).

``__init__`` only stores its configuration; ``fit(spikes)`` learns and sets attributes
ending in ``_``; ``transform(spikes)`` returns an :class:`~spikevae.objects.Embedding`
and mutates nothing; ``get_params()`` returns the configuration as a dict. Both see
waveforms scaled by their electrode's noise σ (never per spike, so amplitude stays
information), optionally noise-whitened.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..objects import Embedding, Spikes


class FeatureExtractor:
    """Base class: fit on Spikes, transform Spikes to an Embedding."""

    method: str = ""

    def fit(self, spikes: Spikes) -> "FeatureExtractor":
        raise NotImplementedError

    def transform(self, spikes: Spikes) -> Embedding:
        raise NotImplementedError

    def fit_transform(self, spikes: Spikes) -> Embedding:
        return self.fit(spikes).transform(spikes)

    def get_params(self) -> dict:
        cfg = getattr(self, "config", None)
        return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg or {}))

    def stream_block(self) -> int:
        """Spikes transformed at a time by :func:`transform_to_file`: a multiple of the blocks
        ``transform`` itself works in, so the streamed features are those of one ``transform``
        of all spikes, bit for bit."""
        return STREAM_BLOCK


#: Spikes embedded at a time: features are computed block by block, so a run's waveforms (kept on
#: disk) are never all in memory; a fixed size keeps the result the same whatever the machine.
TRANSFORM_BLOCK = 1 << 16


def model_input(spikes: Spikes, whiten: bool = False, rows=None) -> np.ndarray:
    """The waveforms a feature extractor sees: noise-scaled, optionally noise-whitened.

    Parameters
    ----------
    rows : slice, index array or mask, optional
        Only these spikes (default: all).

    Returns
    -------
    ndarray of shape (n_rows, n_samples), float32, in units of noise σ
    """
    if whiten:
        from ..whiten import whiten_waveforms

        return np.asarray(whiten_waveforms(spikes if rows is None else spikes.subset(rows)), dtype=np.float32)
    return spikes.scaled_waveforms(rows)


#: Spikes transformed at a time by :func:`transform_to_file` (a multiple of :data:`TRANSFORM_BLOCK`).
STREAM_BLOCK = 1 << 18


def transform_to_file(extractor: FeatureExtractor, spikes: Spikes, path, attrs: dict | None = None) -> Embedding:
    """``extractor.transform(spikes)`` written to a feature file block by block, never held whole.

    The features go to ``path`` laid out like the waveform file (one dataset per electrode,
    :mod:`spikevae.waveform_store`); the returned Embedding reads them from there. Each block
    of :meth:`FeatureExtractor.stream_block` spikes is transformed on its own, so memory holds
    one block's features, not every spike's (20 bytes a spike for 5 PCA components), and the
    values equal those of one in-memory ``transform``.

    Parameters
    ----------
    attrs : dict, optional
        Attributes of the file (the run store sets ``hash``).
    """
    from ..waveform_store import DiskWaveforms, WaveformWriter, is_lazy

    n = spikes.n_spikes
    step = int(extractor.stream_block())
    if n == 0:
        return extractor.transform(spikes)
    n_el = int(spikes.electrode.max()) + 1
    # each spike's row in its electrode's dataset: with the waveforms on disk, their own rows (after artefact
    # rejection, a subset's rows, with the rows between left zero), so both share one row map
    same = spikes.waveforms.row if is_lazy(spikes.waveforms) else None
    if same is None:
        from ..execution.spill import disk_empty

        rows = disk_empty(n, np.int32)  # in the run's spill folder, if any
    else:
        rows = None
    writer, params, method = None, {}, extractor.method
    try:
        for a in range(0, n, step):
            b = min(a + step, n)
            part = extractor.transform(spikes.subset(slice(a, b)))
            if writer is None:
                writer = WaveformWriter(path, n_el, part.features.shape[1], attrs)
                params, method = part.params, part.method
            got = writer.append(spikes.electrode[a:b], part.features, None if same is None else same[a:b])
            if rows is not None:
                rows[a:b] = got
            del part
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return Embedding(DiskWaveforms(path, spikes.electrode, same if rows is None else rows, writer.n_samples),
                     method, params)


#: From this many spikes on, :func:`sample_rows` draws without an index of every spike.
SAMPLE_INDEX_SPIKES = 1 << 20


def sample_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` distinct rows of ``range(n)``, uniformly at random, ascending.

    Below :data:`SAMPLE_INDEX_SPIKES` spikes this is ``np.sort(rng.choice(n, k, replace=False))``, as
    before. numpy draws such a sample by shuffling an int64 index of all ``n`` rows whenever ``k`` is
    over ``n / 50`` (42 MB at 60 minutes of 96 electrodes); past that size the rows are drawn with
    replacement and repeats dropped, until ``k`` distinct ones remain, of which ``k`` are kept at
    random: every ``k``-subset is as likely, and memory is about ``k`` rows.
    """
    if n < SAMPLE_INDEX_SPIKES or k > n // 2:
        return np.sort(rng.choice(n, k, replace=False))
    got = np.unique(rng.integers(0, n, size=k + k // 4 + 16))
    while got.size < k:
        got = np.union1d(got, rng.integers(0, n, size=k - got.size + k // 8 + 16))
    return np.sort(rng.choice(got, k, replace=False))


def blocks(n: int, size: int | None = None):
    """Consecutive ``slice``s of at most ``size`` rows (default :data:`TRANSFORM_BLOCK`) covering ``range(n)``."""
    size = size or TRANSFORM_BLOCK
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def embed_noise_class(extractor: FeatureExtractor, spikes: Spikes, embedding: Embedding, n_per_electrode: int,
                      threshold: float, polarity: str = "neg", dead_time_ms: float = 0.5, seed: int = 0) -> Embedding:
    """``embedding`` with the features of synthetic pure-noise threshold crossings attached.

    The crossings (:func:`spikevae.noise_model.noise_crossings`) are embedded by the same
    fitted ``extractor``; the clustering uses them as its noise class, with each
    electrode's expected crossing rate as its prior. Returns the embedding unchanged
    when ``n_per_electrode`` is 0 or there are no noise snippets.
    """
    from ..noise_model import noise_crossings

    if n_per_electrode <= 0:
        return embedding
    noise, rate = noise_crossings(spikes, threshold, polarity, n_per_electrode, dead_time_ms, seed)
    if noise.n_spikes == 0:
        return embedding
    return dataclasses.replace(embedding, noise_features=extractor.transform(noise).features,
                               noise_electrode=noise.electrode, noise_rate_hz=rate)
