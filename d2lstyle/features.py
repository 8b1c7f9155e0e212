"""Reading content and style features out of a network (D2L section 14.12)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .vgg import Layer, layer_index


def extract_features(X: torch.Tensor, net: nn.Sequential, content_layers: Sequence[Layer],
                     style_layers: Sequence[Layer]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run ``X`` (n, 3, h, w), in the book's normalised space, through ``net`` and keep the outputs
    of the given layers (names such as ``"relu4_2"`` or book indices).

    Returns ``(contents, styles)``, lists of (n, c, h', w') tensors in the order the layers were
    given. The network stops after the deepest layer asked for. With a network whose ReLUs are
    in-place (torchvision's), a conv layer's stored output is overwritten by its ReLU: see
    :func:`d2lstyle.vgg.book_layers`.
    """
    content_idx = [layer_index(layer) for layer in content_layers]
    style_idx = [layer_index(layer) for layer in style_layers]
    wanted = set(content_idx) | set(style_idx)
    if not wanted:
        return [], []
    if max(wanted) >= len(net):
        raise ValueError(f"layer {max(wanted)} is past the end of a network of {len(net)} modules")
    outputs = {}
    for i in range(max(wanted) + 1):
        X = net[i](X)
        if i in wanted:
            outputs[i] = X
    return [outputs[i] for i in content_idx], [outputs[i] for i in style_idx]
