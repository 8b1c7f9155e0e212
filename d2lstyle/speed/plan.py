"""The plan of a run: every decision ``fast=True`` changes, made once, in one place.

A :class:`Plan` says which stages run (image sizes, coarsest first, and how many loss evaluations
each may take), with which optimiser, in which precision and memory format. Without ``fast`` it
is one stage at the full size with the preset's own optimiser. With ``fast`` the objective stays
the preset's (layers, loss weights, Gram normalisation, image size); only the way to its minimum
changes: L-BFGS with a strong-Wolfe line search (:mod:`d2lstyle.speed.lbfgs`) on an image pyramid
(the preset's objective with both sides halved, again and again, down to a shorter side of
:data:`MIN_COARSE_SIDE`), the network in bfloat16 where the device has fast bfloat16 kernels
(Gram matrices and losses stay float32), in channels_last. Each coarse level ends when its loss
has nearly stopped falling (a relative-change rule, :data:`COARSE_TOLERANCE`, see
:func:`d2lstyle.speed.lbfgs.converged`), so its budget is only a cap; the full size runs until its
budget or ``stop_at_loss``. Why each lever, and what
it measured: docs/performance.md and docs/good-by-default.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch

from ..presets import Preset

# Budgets (caps) as fractions of the preset's num_steps: the full size gets FAST_STEP_FRACTION of
# them as loss evaluations, the half-size level HALF_SIZE_STEP_FRACTION, each smaller level
# SMALLER_STEP_FRACTION (the cheap levels get the most); coarse levels may end sooner, when
# converged. Levels stop halving at MIN_COARSE_SIDE: below it the features say too little about
# the full-size picture.
FAST_STEP_FRACTION = 0.5
HALF_SIZE_STEP_FRACTION = 0.25
SMALLER_STEP_FRACTION = 0.5
MIN_COARSE_SIDE = 32
# A coarse level ends once its last WINDOW (10) evaluations lowered its best loss by less than
# this fraction: past that point each further evaluation gains under about 2%, too little to
# shorten the full size's run, and a generous num_steps would otherwise set the time. Measured on
# the loss curves of the levels, docs/good-by-default.md.
COARSE_TOLERANCE = 0.2

Stage = tuple[tuple[int, int], int]  # ((h, w), optimiser steps or loss evaluations)


@dataclass(frozen=True)
class Plan:
    """How a run minimises its preset's objective.

    ``settings``: the preset as it runs (with ``fast``: L-BFGS, lr 1, no schedule, the full-size
    budget as ``num_steps``). ``stages``: ``((h, w), steps)`` coarsest first, the full size last.
    ``line_search``: L-BFGS with a strong-Wolfe line search, one loss evaluation per step, the
    best image kept. ``amp_dtype``: the network's autocast dtype, None for float32.
    ``channels_last``: the network's memory format. ``coarse_tolerance``: every stage but the
    last ends once converged at this relative tolerance (None: each runs its whole budget).
    """

    settings: Preset
    stages: tuple[Stage, ...]
    line_search: bool = False
    amp_dtype: Optional[torch.dtype] = None
    channels_last: bool = False
    coarse_tolerance: Optional[float] = None


def make_plan(settings: Preset, content_shape: tuple[int, int], device: torch.device, fast: bool,
              min_side: int) -> Plan:
    """The :class:`Plan` for ``settings`` at ``content_shape`` (h, w) on ``device``; ``min_side``
    is the smallest side the network's deepest layer allows."""
    if not fast:
        return Plan(settings, ((tuple(content_shape), settings.num_steps),))
    stages = schedule(content_shape, settings.num_steps, min_side)
    settings = replace(settings, optimizer="lbfgs", lr=1.0, lr_decay_step=None,
                       num_steps=fast_steps(settings.num_steps))
    return Plan(settings, tuple(stages), line_search=True, amp_dtype=autocast_dtype(device),
                channels_last=True, coarse_tolerance=COARSE_TOLERANCE)


def schedule(shape: tuple[int, int], num_steps: int, min_side: int) -> list[Stage]:
    """The stages of a fast run, coarsest first, ``shape`` last: the sides halved while the shorter
    one stays at least ``MIN_COARSE_SIDE`` and ``min_side``; budgets as the fractions above."""
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


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """The reduced precision worth running the network in on ``device``, or None for float32.

    CUDA: bfloat16 where the GPU supports it. CPU: bfloat16 only where oneDNN has bfloat16
    kernels (AVX-512-BF16 or AMX); without them bfloat16 convolutions are far slower than float32.
    float16 is never chosen: with the original weights the losses reach 1e10 and their gradients
    would overflow it without loss scaling.
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
