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
  to start the next (at 150x225: 38x56, 75x112; at 300x450 also 150x225). A step at half the
  size costs about a quarter of a full one, at a quarter of the size about an eighth (small maps
  use the CPU less well: 59 ms at 38x56 against 480 ms at 150x225, 2 threads).
  The upsampled image starts far from the full-size minimum: upsampling blurs, and the relu4_1
  term reacts to blur more than any other (the style image itself, halved and doubled, has a
  'd2l' loss of 4e9; its own is 0). Yet the better the coarse levels are solved, the fewer
  full-size evaluations remain, and the coarsest levels are the cheapest. Measured at 150x225
  (evaluations at 38x56 + 75x112, then full-size evaluations to the book's loss; one process,
  2 threads, one after the other):

  ==========================  ==================  ================================
  coarse evaluations          full-size           seconds
  ==========================  ==================  ================================
  none (L-BFGS at full size)  122                 78 (an earlier run, shared cores)
  50 + 50                     63                  46.1
  100 + 50                    31                  32.4
  200 + 50                    21                  34.6
  ==========================  ==================  ================================

  Hence the budgets of :func:`schedule`: half of ``num_steps`` for every level at a quarter of
  the size or less, a quarter for the half-size level. At 300x450 (500 steps: 250 + 250 + 125
  coarse) this reached the book's loss with 26 full-size evaluations in 179 s, against 36 in
  200 s with 125 per level. Coarse levels whose shape is not a power-of-two fraction (0.6, 0.7,
  0.8 of the size, one level) did no better than none at 150x225 (108 to 125 full-size-equivalent
  evaluations).
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

# Budgets, as fractions of the preset's num_steps (measured at 150x225 and 300x450 on the 'd2l'
# objective, see the module docstring): the half-size level gets HALF_SIZE_STEP_FRACTION of them
# as evaluations, each smaller level SMALLER_STEP_FRACTION (they are cheap, and the better they
# are solved the fewer full-size evaluations remain), the full size FAST_STEP_FRACTION. The
# levels halve the sides down to a shorter side of MIN_COARSE_SIDE pixels: below that the
# features say too little about the full-size picture. Without stop_at_loss the whole budget is
# spent.
FAST_STEP_FRACTION = 0.5
HALF_SIZE_STEP_FRACTION = 0.25
SMALLER_STEP_FRACTION = 0.5
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
    the layers used). The half-size level gets ``HALF_SIZE_STEP_FRACTION * num_steps``
    evaluations, each smaller one ``SMALLER_STEP_FRACTION * num_steps``, and the full size
    ``FAST_STEP_FRACTION * num_steps``.
    """
    h, w = shape
    stages = [(tuple(shape), fast_steps(num_steps))]
    k = 1
    while min(h, w) / 2**k >= max(MIN_COARSE_SIDE, min_side):
        fraction = HALF_SIZE_STEP_FRACTION if k == 1 else SMALLER_STEP_FRACTION
        stages.insert(0, ((round(h / 2**k), round(w / 2**k)), max(1, math.ceil(num_steps * fraction))))
        k += 1
    return stages


def fast_steps(num_steps: int) -> int:
    """Full-size evaluations that ``fast=True`` allows itself in place of the preset's ``num_steps``."""
    return max(1, math.ceil(num_steps * FAST_STEP_FRACTION))
