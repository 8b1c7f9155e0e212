"""What ``transfer(fast=True)`` does differently, and what it measured before choosing.

``fast=True`` minimises the *same* objective as the chosen preset (same layers, loss weights, Gram
normalisation and image size), only sooner. Each lever was measured on the project's machine, a
2-core AMD EPYC (AVX2, no AVX-512), with the original weights on the offline demo pair, at
150x225 on the 'd2l' objective, where the book's 200 Adam steps end at a loss of 1.147e8. These
exploratory runs shared the machine, so their seconds are only comparable within a line; the
README's "Performance" table comes from one run of ``python -m d2lstyle.benchmark``.

Kept:

- **L-BFGS with a strong-Wolfe line search** instead of Adam: 122 loss evaluations to the book's
  200-step loss (119 without a line search, but without one L-BFGS stalled for 200 evaluations
  after a coarse stage: its first step is scaled by 1 / |gradient|_1, ~1e-10 at a loss of 1e10).
  Every evaluation, line-search trials included, is one record of the history and counts
  against the budget; the best image evaluated is returned.
- **An image pyramid**: the preset's objective with both sides halved, again and again down to a
  shorter side of :data:`MIN_COARSE_SIDE`, solved coarsest first, each result upsampled bilinearly
  to start the next (at 150x225: 38x56, 75x112; at 300x450 also 150x225). The benchmark's run:
  5.8 times the book's speed at 300x450 (36 full-size evaluations after the pyramid), 2.1 times
  at 150x225.
  A step at half the size costs a quarter. Measured: 60 evaluations at 38x56, 40 at 75x112, then
  57 at 150x225 reached the book's loss in 45 s, against 78 s for L-BFGS at the full size alone
  (122 evaluations, an earlier run). One half-size stage of 100 Adam steps paid little (90 full-size
  evaluations after it, 68 s): upsampling blurs the single-pixel stars of the style, so the
  full-size loss starts again near 1e10.
- **Targets under no_grad, frozen weights, the network cut after the deepest layer used**: the
  package does all three with or without ``fast`` (the book's code computes weight gradients it
  never uses).
- **channels_last**: one VGG19 forward and backward at 150x225 on one thread took 0.711 s against
  0.764 s contiguous (7%, within this shared machine's noise, never slower); it costs a copy of
  the truncated network (:func:`prepare_network`).

Measured and dropped where it does not pay:

- **bfloat16 autocast on this CPU**: the same forward and backward took 39 s under bfloat16
  autocast against 0.76 s in float32 (forward alone: 28 s against 0.6 s). Without AVX-512-BF16 or
  AMX, oneDNN has no bfloat16 convolution kernels. :func:`autocast_dtype` therefore asks for
  bfloat16 on the CPU only where oneDNN reports bfloat16 support, and on CUDA where the GPU
  supports it. float16 is not used: with the original weights the losses reach 1e10 and their
  gradients would overflow float16 without loss scaling.

Whatever the network's precision, Gram matrices and losses are computed in float32 (the features
are cast up, and autocast is off around :func:`d2lstyle.compute_loss`). With a reduced-precision
network, ``stop_at_loss`` is confirmed by a float32 evaluation before the loop stops, and only once
the cheap loss is within ``STOP_CHECK_MARGIN`` of the target (see :mod:`d2lstyle.transfer`); in
float32 each evaluation's own loss is the one compared, at no extra cost.
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch
from torch import nn

# Budgets, as fractions of the preset's num_steps (measured at 150x225 on the 'd2l' objective,
# see the module docstring): each coarse level gets COARSE_STEP_FRACTION of them as evaluations,
# the full size FAST_STEP_FRACTION. The levels halve the sides down to a shorter side of
# MIN_COARSE_SIDE pixels: below that the features say too little about the full-size picture.
# The benchmark's run needed 65 of its 100 full-size evaluations at 150x225 (200 steps) and 36 of
# 250 at 300x450 (500 steps) to reach the book's loss; without stop_at_loss the whole budget is
# spent, which costs about 60% of the book's evaluations.
FAST_STEP_FRACTION = 0.5
COARSE_STEP_FRACTION = 0.25
MIN_COARSE_SIDE = 32


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """The reduced precision worth running the network in on ``device``, or None for float32.

    CUDA: bfloat16 where the GPU supports it (Ampere and later), else None. CPU: bfloat16 only
    where oneDNN has bfloat16 kernels (AVX-512-BF16 or AMX); on plain AVX2 it was 50 times slower.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        try:
            supported = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        except (AttributeError, RuntimeError):
            supported = False
        return torch.bfloat16 if supported else None
    return None


def prepare_network(net: nn.Module) -> nn.Module:
    """A copy of ``net`` in channels_last memory format (``Module.to`` would change the caller's)."""
    return copy.deepcopy(net).to(memory_format=torch.channels_last)


def schedule(shape: tuple[int, int], num_steps: int, min_side: int) -> list[tuple[tuple[int, int], int]]:
    """The stages of a fast run: ``[(shape, evaluations), ...]``, coarsest first, ``shape`` last.

    ``num_steps`` is the preset's number of steps. Coarse levels halve both sides as long as the
    shorter side stays at least ``MIN_COARSE_SIDE`` and ``min_side`` (the network's minimum for
    the layers used); each gets ``COARSE_STEP_FRACTION * num_steps`` evaluations, and the full
    size ``FAST_STEP_FRACTION * num_steps``.
    """
    h, w = shape
    coarse_steps = max(1, math.ceil(num_steps * COARSE_STEP_FRACTION))
    stages = [(tuple(shape), fast_steps(num_steps))]
    k = 1
    while min(h, w) / 2**k >= max(MIN_COARSE_SIDE, min_side):
        stages.insert(0, ((round(h / 2**k), round(w / 2**k)), coarse_steps))
        k += 1
    return stages


def fast_steps(num_steps: int) -> int:
    """Full-size evaluations that ``fast=True`` allows itself in place of the preset's ``num_steps``."""
    return max(1, math.ceil(num_steps * FAST_STEP_FRACTION))
