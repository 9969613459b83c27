"""Training steps of the VAE replayed as one CUDA graph.

The pipeline's VAE is small (16 channels × 48 samples, 8 latents), so on a GPU a step of 512
waveforms is bound by the host, not the device: on an H200 (torch 2.11, CUDA 13.0) a step took
6.8 ms and launched 303 kernels whose device time was 1.2 ms (``benchmarks/bench_vae_steps.py``).
A CUDA graph captures the whole step once (corruption, forward, loss, backward and the Adam
update) and replays it with one launch per batch. The arithmetic is the eager step's, kernel
for kernel; the random draws come from the training's own generator, registered with the graph.

The graph is used on CUDA when ``features.vae.cuda_graphs`` is on, autocast is off and the loss
does not change with the step (``kind = ae``, or ``vae`` without KL warm-up): a captured step
cannot read a Python number that changes between replays. Otherwise, and for the last, shorter
batch of each epoch, the step runs eagerly. The first ``WARMUP_STEPS`` steps of a training run
eagerly on a side stream, as the capture needs (cuDNN and cuBLAS set themselves up lazily, and
Adam creates its state on its first step); they are real training steps.
"""
from __future__ import annotations

import logging

import torch

from ...errors import SpikevaeError

log = logging.getLogger(__name__)

#: eager steps before the capture (torch's own ``make_graphed_callables`` uses 3)
WARMUP_STEPS = 3


def why_not_graphed(config, device, amp: bool) -> str | None:
    """Why training steps cannot be replayed as a CUDA graph, or None if they can."""
    if device.type != "cuda":
        return "not on CUDA"
    if not config.cuda_graphs:
        return "features.vae.cuda_graphs is off"
    if amp:
        return "autocast (features.vae.amp) is on"
    if config.kind == "beta_vae" or (config.kind == "vae" and config.kl_warmup_steps > 0):
        return f"the loss of kind {config.kind!r} changes with the step (capacity or KL warm-up)"
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return f"torch {torch.__version__} cannot register a generator with a CUDA graph"
    return None


class StepRunner:
    """Runs training steps: eagerly, or by replaying a captured CUDA graph once it is warm.

    Parameters
    ----------
    model, optimizer, corrupt, generator
        As for :func:`train.train_step`; the optimizer must be built with ``capturable=True``
        when ``graphed``.
    batch_size : int
        Size of the batches the graph is captured for (others run eagerly).
    amp : bool
    graphed : bool
        Capture and replay (see :func:`why_not_graphed`).
    """

    def __init__(self, model, optimizer, corrupt, generator, batch_size: int, amp: bool, graphed: bool):
        self.model, self.optimizer, self.corrupt, self.generator = model, optimizer, corrupt, generator
        self.batch_size, self.amp, self.graphed = int(batch_size), bool(amp), bool(graphed)
        self.warm = 0
        self.graph = self.x = self.terms = None
        self.side = torch.cuda.Stream() if graphed else None

    def __call__(self, xb: torch.Tensor, step: int):
        """One optimizer update on the batch ``xb`` at global ``step``; returns its LossTerms, detached.

        Nothing returned keeps a step's autograd graph alive: a graph kept from a step on another
        stream (the warm-up's, the capture's) made torch warn that its gradient accumulators' streams
        did not match (seen on the H200 before the terms were detached).
        """
        return _detached(self._step(xb, step))

    def _step(self, xb: torch.Tensor, step: int):
        from .train import train_step

        full = self.graphed and xb.shape[0] == self.batch_size
        if full and self.graph is None and self.warm >= WARMUP_STEPS:
            try:
                self._capture(xb)
            except RuntimeError as exc:  # a driver or torch build that cannot capture this step
                raise SpikevaeError(
                    f"capturing the VAE training step as a CUDA graph failed ({str(exc).splitlines()[0]}); "
                    "train with --set features.vae.cuda_graphs=false (the same training, slower on a GPU)"
                ) from None
        if full and self.graph is not None:
            self.x.copy_(xb)
            self.graph.replay()
            return self.terms
        if not full or self.warm >= WARMUP_STEPS:
            return train_step(self.model, self.optimizer, xb, self.corrupt(xb, self.generator), step,
                              self.generator, self.amp)
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            terms = train_step(self.model, self.optimizer, xb, self.corrupt(xb, self.generator), step,
                               self.generator, self.amp)
        torch.cuda.current_stream().wait_stream(self.side)
        self.warm += 1
        return terms

    def _capture(self, xb: torch.Tensor) -> None:
        model, optimizer, gen = self.model, self.optimizer, self.generator
        self.x = torch.empty_like(xb)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(gen)
        model.train()
        optimizer.zero_grad(set_to_none=True)  # the captured backward writes the gradients, not adds to them
        with torch.cuda.graph(graph):
            recon, mu, logvar = model(self.corrupt(self.x, gen), gen)
            terms = model.loss(self.x, recon, mu, logvar, 0)  # the loss does not depend on the step here
            terms.total.backward()
            optimizer.step()
        self.graph, self.terms = graph, _detached(terms)
        log.info("VAE training steps of %d waveforms are replayed as a CUDA graph", self.batch_size)


def _detached(terms):
    return type(terms)(*(t.detach() for t in terms))
