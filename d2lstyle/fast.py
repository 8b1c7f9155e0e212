"""What ``transfer(fast=True)`` does differently, and what it measured before choosing.

``fast=True`` minimises the *same* objective as the chosen preset (same layers, weights, Gram
normalisation and image size), only sooner. Each lever below was measured on the project's
machine, a 2-core AMD EPYC (AVX2, no AVX-512), with the original weights at 150x225 unless
said otherwise; the numbers are in the README's "Performance" section and come from
``python -m d2lstyle.benchmark``.

Kept:

- **L-BFGS** instead of Adam, with a strong-Wolfe line search (without one it stalled after a
  coarse stage). Every loss evaluation, line-search trials included, is one step of the history
  and counts against the budget. On the 'd2l' objective at 150x225 it reached the loss of the
  book's 200 Adam steps in 122 evaluations (119 without a line search, when it did not stall).
- **Coarse to fine**: most of the work is done at half the size (a quarter of the pixels, so a
  quarter of the cost of a step), the result is upsampled bilinearly and the optimisation goes on
  at the full size. The coarse objective is the same preset at the smaller size; only the
  full-size steps count for ``stop_at_loss``. See :func:`schedule`.
- **Targets under no_grad, frozen weights, the network cut after the deepest layer used**: the
  package does all three with or without ``fast`` (the book's code computes weight gradients it
  never uses and runs to the last layer asked for, as we do).

Measured and dropped on this CPU:

- **bfloat16 autocast**: one VGG19 forward and backward at 150x225 on one thread takes 0.76 s in
  float32 and 39 s under bfloat16 autocast (forward alone: 0.6 s against 28 s). Without
  AVX-512-BF16 or AMX, oneDNN has no bfloat16 convolution kernels and falls back to reference
  code. :func:`autocast_dtype` therefore uses bfloat16 on the CPU only where oneDNN reports
  bfloat16 support, and float32 otherwise. On CUDA it uses bfloat16 where the GPU supports it.
  float16 is not used: with the original weights the losses reach 1e10 and their gradients
  overflow float16's range without loss scaling.
- **channels_last**: 0.711 s against 0.764 s for a forward and backward at 150x225 on one thread,
  a 7% gain that is within the noise of this shared machine and costs a copy of the network; it
  is applied (see :func:`prepare_network`) because it never measured slower.

Whatever the precision of the network, Gram matrices and losses are computed in float32 (the
features are cast up before :func:`d2lstyle.gram`, outside autocast), so a reported loss is the
book's float32 definition up to the network's rounding. When the network runs in reduced
precision, ``stop_at_loss`` is confirmed by a float32 evaluation at the full size before the loop
stops (see :func:`d2lstyle.transfer.transfer`).
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
