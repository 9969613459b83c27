"""Threshold detection and sub-sample alignment of spike waveforms."""
from __future__ import annotations

from dataclasses import dataclass

from .config import param


@dataclass
class DetectConfig:
    threshold: float = param(4.0, "detection threshold in noise σ (σ = median|x| / 0.6745)", low=1.0, high=50)
    polarity: str = param("neg", "which extremum is a spike", choices=("neg", "pos", "both"))
    dead_time_ms: float = param(0.5, "after a spike, no other spike on the same electrode for this long", unit="ms", low=0.0, high=10)
    window_ms: float = param(1.6, "waveform length (48 samples at 30 kHz)", unit="ms", low=0.2, high=10)
    pre_ms: float = param(0.5, "waveform samples before the peak", unit="ms", low=0.05, high=5)
    upsample: int = param(8, "upsampling factor for sub-sample peak alignment (1 = none)", low=1, high=64)
    noise_snippets: int = param(300, "spike-free snippets kept per electrode (noise covariance, denoising)", low=0)
    max_noise_chunks: int = param(20, "chunks sampled across the recording to estimate the noise", low=1)
