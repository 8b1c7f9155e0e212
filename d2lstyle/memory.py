"""How much memory a style-transfer step needs, and what to say when a device runs out.

A step keeps every feature map of the truncated VGG19 for the backward pass, so its memory grows
with the number of pixels: :func:`bytes_per_pixel` counts those maps (per input pixel, from the
layer widths and the pooling) and :func:`fitting_size` turns a memory budget into the longest side
that fits, keeping the aspect ratio.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from .errors import DeviceMemoryError
from .vgg import LAYER_NAMES, Layer, layer_index

_WIDTH = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}

# A step's peak memory over the feature maps its forward pass stores: the backward adds gradients
# of a map and its input and the convolution's workspace, and CUDA's caching allocator rounds
# blocks up (the ratio's measurement: docs/performance.md).
PEAK_OVER_STORED = 1.5



def stored_values_per_pixel(layers: Sequence[Layer]) -> float:
    """Feature-map values a forward pass to the deepest of ``layers`` keeps, per input pixel.

    Every module's output up to that layer, each (c, h / 2**k, w / 2**k) after k poolings; the
    input image's three channels included.
    """
    deepest = max(layer_index(layer) for layer in layers)
    values, pooled = 3.0, 0
    for name in LAYER_NAMES[: deepest + 1]:
        block = int(name[4])  # conv1_1, relu1_1, pool1: the block's number
        if name.startswith("pool"):
            pooled += 1
        values += _WIDTH[block] / 4**pooled
    return values


def bytes_per_pixel(layers: Sequence[Layer], element_size: int = 4) -> float:
    """Estimated peak bytes of one optimisation step, per pixel of the image."""
    return stored_values_per_pixel(layers) * element_size * PEAK_OVER_STORED


def fitting_size(shape: tuple[int, int], budget_bytes: float, layers: Sequence[Layer],
                 element_size: int = 4) -> int:
    """Longest side, in pixels, of an image of ``shape``'s aspect whose step fits in ``budget_bytes``."""
    h, w = shape
    pixels = budget_bytes / bytes_per_pixel(layers, element_size)
    scale = math.sqrt(pixels / (h * w))
    return max(1, int(max(h, w) * scale) // 8 * 8)


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes a run may still use on ``device``: on CUDA what is free plus what our caching
    allocator holds; on the CPU the kernel's ``MemAvailable`` (Linux); else None (unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024  # the kernel counts in KiB
        except (OSError, ValueError, IndexError):
            pass
    return None


def check_fits(device: torch.device, shape: tuple[int, int], layers: Sequence[Layer],
               element_size: int = 4, free_bytes: Optional[int] = None) -> None:
    """Refuse, before any work, a step at ``shape`` (h, w) that needs more than 90% of the memory
    ``device`` has free (``free_bytes``, default :func:`free_memory`; unknown: no check)."""
    free_bytes = free_memory(device) if free_bytes is None else free_bytes
    h, w = shape
    if free_bytes is not None and bytes_per_pixel(layers, element_size) * h * w > 0.9 * free_bytes:
        raise DeviceMemoryError(memory_message("not enough memory", device, shape, layers,
                                               free_bytes, element_size))


def out_of_memory_message(device: torch.device, shape: tuple[int, int], layers: Sequence[Layer],
                          free_bytes: Optional[int], element_size: int = 4) -> str:
    """One line: the size that did not fit on ``device`` and one that would."""
    return memory_message("out of memory", device, shape, layers, free_bytes, element_size)


def memory_message(what: str, device: torch.device, shape: tuple[int, int],
                   layers: Sequence[Layer], free_bytes: Optional[int], element_size: int = 4) -> str:
    """``what`` on ``device`` at ``shape``, the memory a step needs and a size that would fit."""
    h, w = shape
    need = bytes_per_pixel(layers, element_size) * h * w
    elsewhere = ", or --device cpu" if device.type != "cpu" else ""
    message = f"{what} on {device} at {w}x{h} pixels (a step needs about {need / 2**30:.1f} GiB"
    if free_bytes is None:
        return message + f"); try a smaller size{elsewhere}"
    fit = fitting_size(shape, 0.9 * free_bytes, layers, element_size)
    return (message + f", {free_bytes / 2**30:.1f} GiB is free); try size={fit} "
            f"(--size {fit}){elsewhere}")
