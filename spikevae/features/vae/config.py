"""Configuration of the convolutional (β-)VAE feature extractor.

One model, the variants as settings (Burgess et al. 2018 for the capacity form):

- ``kind = "ae"``: deterministic z = μ, loss = reconstruction only;
- ``kind = "vae"``: loss = reconstruction + β · w(step) · KL;
- ``kind = "beta_vae"``: loss = reconstruction + γ · w(step) · |KL − C(step)|, C raised
  linearly from 0 to ``capacity_max`` nats over ``capacity_ramp_steps`` training steps.

w(step) is the KL warm-up weight (1 unless ``kl_warmup_steps`` > 0). ``arch = "dual"``
adds a dense branch beside the convolutional one (concatenated before μ and log σ²;
the decoder sums a conv and a dense reconstruction).

Defaults were chosen for speed and by the feature comparison in ``benchmarks/compare_features.py``
(same detection, clustering and scoring for every feature space; simulated 16-electrode
Utah recordings of 60 s, the sample data and Quiroga's Easy1). Mean accuracy over nine
simulations with SNR 3-20: VAE 0.559, PCA(5) 0.539, VAE + background-noise denoising 0.535;
over six with SNR 3-8: VAE 0.363, PCA 0.354, VAE + background 0.359. Plain and denoising
AEs were within seed noise of PCA, and the β-VAE (γ 20, C_max 5 nats) below it.

Remeasured after detection moved to a 3.5 σ threshold with smoothed alignment (simulations
seeds 0-1, the sample data and Easy1 pooled, 70 units): PCA 0.519, AE + background 0.518,
VAE + background 0.507, β-VAE 0.488, VAE 0.485. Background-noise denoising raised the VAE on
every one of the four sets (0.441 -> 0.477, 0.483 -> 0.520, 0.463 -> 0.469, 0.939 -> 0.947),
so the default is ``kind = "vae"`` with ``corruption = "background"``. No learned space beat
PCA on this (simulated) ground truth; the pipeline's default feature method stays PCA.

Speed (issue 14; ``benchmarks/bench_vae_speed.py``, 200k waveforms of a simulated
96-electrode recording, 2 shared CPU cores). A training step costs the same per waveform
at any batch size (the convolutions dominate; larger batches do not help on the CPU), so
training time is the number of waveforms seen. ``max_train_spikes`` went from 200000 to
50000 (and validation to ``val_fraction`` of it): 200k waveforms then train in 980 steps,
21-53 s on one thread (load 3-10), instead of 4224 steps, 99 s on one thread (load 4-7) and
865 s on two (load 5, under a profiler). Sets below 50k spikes (the sample data,
16-electrode simulations) train exactly as before; on 96-electrode
simulations of 60 s (87k spikes; ``benchmarks/bench_vae_large.py``, seeds 0-1) mean
accuracy went from 0.579 to 0.575 and the supervised probe stayed at 0.681.
``num_threads`` went from 0 (torch's default: 2 threads on 2 cores) to 1: on the shared
2-core machine a training step of 512 waveforms took 20-30 ms on one thread and 41-338 ms
on two (load 3), and the 200k training 21-30 s on one thread against 274 s on two.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...config import param


@dataclass
class VAEConfig:
    latent_dim: int = param(8, "size of the latent space", low=1, high=256)
    kind: str = param("vae", "model variant: plain autoencoder, VAE (β), or β-VAE with capacity annealing",
                      choices=("ae", "vae", "beta_vae"))
    arch: str = param("conv", "encoder/decoder: 1-D convolutional, or conv + dense branches",
                      choices=("conv", "dual"))
    channels: int = param(16, "convolution channels in every block", low=1, high=512)
    n_blocks: int = param(2, "strided conv blocks (each halves the length; the decoder upsamples back)", low=1, high=6)
    kernel_size: int = param(5, "convolution kernel length (odd)", unit="samples", low=1, high=31)
    hidden: int = param(64, "width of the dense layer before μ / log σ² (and of the dense branch)", low=1, high=4096)
    activation: str = param("elu", "non-linearity ('linear' makes the whole network linear)",
                            choices=("elu", "relu", "linear"))
    beta: float = param(1.0, "KL weight β (kind = vae)", low=0.0)
    gamma: float = param(20.0, "weight γ of |KL − C| (kind = beta_vae)", low=0.0)
    capacity_max: float = param(5.0, "final KL capacity C_max (kind = beta_vae)", unit="nats", low=0.0)
    capacity_ramp_steps: int = param(2000, "training steps over which C rises from 0 to C_max", unit="steps", low=1)
    kl_warmup_start: int = param(0, "step at which the KL warm-up begins", unit="steps", low=0)
    kl_warmup_steps: int = param(0, "steps over which the KL weight rises from 0 to 1 (0 = no warm-up)", unit="steps", low=0)
    corruption: str = param("background", "denoising corruption of the encoder input (the decoder returns the clean waveform)",
                            choices=("background", "gaussian", "dropout", "none"))
    noise_scale: float = param(1.0, "multiplier of the added noise (background, gaussian: σ in electrode-noise units)", low=0.0)
    dropout_p: float = param(0.1, "fraction of samples set to zero (corruption = dropout)", low=0.0, high=0.95)
    epochs: int = param(20, "maximum training epochs", low=1, high=10000)
    batch_size: int = param(512, "training batch size", unit="waveforms", low=1)
    lr: float = param(3e-3, "Adam learning rate", low=0.0)
    val_fraction: float = param(0.1, "fraction of waveforms held out for validation and early stopping", low=0.0, high=0.5)
    patience: int = param(3, "stop after this many epochs without a lower validation loss", unit="epochs", low=1)
    max_train_spikes: int = param(50000, "train on a random subset of at most this many waveforms (validation: "
                                  "val_fraction of this many); training time stops growing with the spike count past it",
                                  low=10)
    embed_batch_size: int = param(8192, "batch size when embedding", unit="waveforms", low=1)
    amp: bool = param(False, "mixed precision (bfloat16 autocast) on CUDA; ignored on the CPU. Off by default: "
                      "this small network's steps are bound by kernel launches, and autocast made them slower "
                      "(6.8 against 5.4 ms per step of 512 on an H200)")
    cuda_graphs: bool = param(True, "on CUDA, replay each training step as one captured CUDA graph (the same "
                              "arithmetic, one launch instead of ~300); used when amp is off and the loss does "
                              "not change with the step (kind ae, or vae without KL warm-up)")
    num_threads: int = param(1, "torch CPU threads while training and embedding (0 = torch's default, one per "
                             "core); the network's small convolutions gain little from more, and lose much on a "
                             "machine shared with other busy processes", low=0, high=1024)
    device: str = param("auto", "torch device: auto (CUDA if present, else CPU), cpu, cuda, cuda:N")
    seed: int = param(0, "random seed (weights, batches, corruption)", low=0)
