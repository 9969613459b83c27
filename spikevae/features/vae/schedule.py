"""Pure schedules of the global training step.

The trainer passes the global step (number of optimizer updates so far); validation
never advances it and checkpoints keep it, so a resumed training sees the same
schedule (AntixK's ``num_iter`` counter, advanced by validation and lost in
checkpoints, is the counter-example).

``capacity`` follows Burgess et al. 2018, "Understanding disentangling in β-VAE":
the KL target C rises linearly from 0 to C_max, and the loss is γ·|KL − C|.
"""
from __future__ import annotations


def capacity(step: int, c_max: float, ramp_steps: int) -> float:
    """KL capacity C at a training step, in nats.

    Parameters
    ----------
    step : int
        Global training step (optimizer updates so far), >= 0.
    c_max : float
        Final capacity C_max (nats).
    ramp_steps : int
        Steps over which C rises linearly from 0 to ``c_max``; constant afterwards.

    Returns
    -------
    float
        ``c_max * min(step / ramp_steps, 1)``: 0 at step 0, ``c_max`` from ``ramp_steps`` on.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if ramp_steps <= 0:
        return float(c_max)
    return float(c_max) * min(step / ramp_steps, 1.0)


def kl_weight(step: int, warmup_start: int = 0, warmup_steps: int = 0) -> float:
    """KL warm-up weight w(step) in [0, 1].

    Parameters
    ----------
    step : int
        Global training step, >= 0.
    warmup_start : int, default 0
        Step at which the weight starts to rise (0 before it).
    warmup_steps : int, default 0
        Length of the linear rise; 0 means no warm-up (weight 1 at every step).

    Returns
    -------
    float
        0 before ``warmup_start``, then linear to 1 at ``warmup_start + warmup_steps``.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps <= 0:
        return 1.0
    return min(max((step - warmup_start) / warmup_steps, 0.0), 1.0)
