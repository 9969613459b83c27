"""The pipeline configuration: every stage's config, composed by nesting.

``PipelineConfig()`` holds all defaults; :func:`load_config` applies a TOML file and
``--set key=value`` overrides, strictly (unknown keys name the nearest valid key).
"""
from __future__ import annotations

from dataclasses import dataclass

from .artefacts.config import ArtefactConfig
from .cluster.config import ClusterConfig
from .config import apply_dict, check_sections, load_toml, param, parse_override, section, set_value
from .detect import DetectConfig
from .features.config import FeaturesConfig
from .preprocess import PreprocessConfig
from .quality_config import QualityConfig


@dataclass
class InputConfig:
    format: str = param("auto", "reader: auto (by extension), neo, blackrock, nev, raw, hdf5, or any neo IO name")
    fs: float = param(0.0, "sampling rate of a raw binary file", unit="Hz", low=0)
    n_channels: int = param(0, "channel count of a raw binary file", low=0)
    dtype: str = param("int16", "sample type of a raw binary file")
    gain_uv: float = param(1.0, "µV per raw unit (raw binary)", unit="µV")
    offset_uv: float = param(0.0, "µV added after scaling (raw binary)", unit="µV")
    header_bytes: int = param(0, "bytes to skip at the start of a raw binary file", low=0)
    stream: str = param("", "neo stream to read (default: the one with the highest sampling rate)")
    channels: list = param([], "channel ids to keep (default: all)")
    groups: list = param([], "channel groups sorted as one (tetrodes, shanks): lists of channel ids or '1+2+3+4' "
                             "strings, 'all' (one group) or 'probe' (the electrode map's groups); empty = each channel alone")
    segment: int = param(0, "segment (block between recording pauses) of a multi-segment file", low=0)
    gap_tolerance_ms: float = param(0.0, "Blackrock: split at timestamp gaps longer than this (0 = gaps are an error)", unit="ms", low=0)
    allow_truncated: bool = param(False, "Blackrock NSx: sort the readable part of a file cut short (else an error says how much is readable)")
    map: str = param("", "electrode map: Blackrock .cmp or probeinterface .json; positions and labels of the electrodes")


@dataclass
class RunConfig:
    chunk_s: float = param(1.0, "chunk length for streaming work", unit="s", low=0.05, high=60)
    n_jobs: int = param(2, "worker processes for detection chunks (1 = serial; results are identical)", low=1, high=256)
    device: str = param("auto", "torch device: auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    seed: int = param(0, "base random seed", low=0)


@dataclass
class PipelineConfig:
    input: InputConfig = section(InputConfig, "how to read the recording")
    preprocess: PreprocessConfig = section(PreprocessConfig, "bandpass and referencing")
    detect: DetectConfig = section(DetectConfig, "threshold detection and alignment")
    artefact: ArtefactConfig = section(ArtefactConfig, "artefacts (events on many electrodes, or too large for a "
                                                       "neuron) removed before clustering")
    features: FeaturesConfig = section(FeaturesConfig, "feature extraction (PCA, VAE)")
    cluster: ClusterConfig = section(ClusterConfig, "per-electrode clustering and refinement")
    quality: QualityConfig = section(QualityConfig, "quality metrics and the good label")
    run: RunConfig = section(RunConfig, "execution")


def load_config(path=None, overrides=(), base: dict | None = None) -> PipelineConfig:
    """Build a PipelineConfig from defaults, an optional TOML file and ``key=value`` overrides.

    Raises
    ------
    SpikevaeConfigError
        For an unknown key (naming the nearest valid key) or a value of the wrong type or range.
    """
    cfg = PipelineConfig()
    if base:
        apply_dict(cfg, base)
    if path is not None:
        apply_dict(cfg, load_toml(path))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        set_value(cfg, key, value)
    check_sections(cfg)
    return cfg
