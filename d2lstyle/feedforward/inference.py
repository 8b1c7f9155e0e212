"""Stylising a photo with a trained network: one forward pass, no optimisation."""

from __future__ import annotations

import torch
from PIL import Image

from ..devices import try_device
from ..images import ImageSource, fit_longest_side, load_image, postprocess, preprocess
from ..style_transfer import on_device
from .models import get_model


def stylize(content: ImageSource, model, *, size: int | None = None, device=None) -> Image.Image:
    """``content`` (a PIL image, numpy array, path or URL, as for :func:`d2lstyle.transfer`)
    rendered by ``model`` (a :class:`TransformNet`, a shipped model's name or a model file),
    as a PIL image.

    ``size``: the longest side of the result in pixels, aspect ratio kept (default: the photo's
    own size). The network runs on ``device`` (default: cuda, then mps, then cpu) without a
    graph; ``model`` is not modified (copied if it lives on another device).
    """
    model = get_model(model)
    img = load_image(content)
    shape = (img.height, img.width) if size is None else fit_longest_side(*img.size, size)
    device = try_device(device)
    net = on_device(model, device)
    with torch.no_grad():
        Y = net(preprocess(img, shape).to(device))  # (1, 3, h, w), normalised
    return postprocess(Y)
