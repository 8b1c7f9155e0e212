"""The objective of style transfer: the book's ``compute_loss`` and the targets it compares with.

:class:`Objective` computes the targets once (the content image's features at the content layers,
the style image's Gram matrices at the style layers) and then, for any image ``X``, its features
and the weighted loss terms, as the book's loop does with ``extract_features`` and
``compute_loss`` (D2L section 14.12).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torch import nn

from .features import extract_features
from .images import preprocess
from .losses import content_loss, gram, relative_style_loss, style_loss, tv_loss
from .presets import Preset
from .vgg import layer_index


def compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings: Preset,
                 gram: Callable = gram):
    """The book's ``compute_loss``: weighted content, style and TV terms and their sum ``l``.

    Returns ``(contents_l, styles_l, tv_l, l)``: lists of per-layer terms, the TV term, the total.
    ``gram`` computes the Gram matrices of ``styles_Y_hat`` (see :func:`d2lstyle.style_loss`).
    Style layer l's term is ``style_weight * w_l * E_l``, as in Gatys et al. (2016, eq. 5), with
    ``w_l`` from ``settings.style_layer_weights`` (1 each by default, as the book) and ``E_l``
    the book's :func:`d2lstyle.style_loss`, or with ``settings.normalize_style_layers`` that loss
    relative to the target's size (:func:`d2lstyle.losses.relative_style_loss`).
    """
    layer_weights = settings.style_layer_weights
    if layer_weights is None:
        layer_weights = (1.0,) * len(styles_Y_gram)
    elif len(layer_weights) != len(styles_Y_gram):
        raise ValueError(f"{len(layer_weights)} style layer weights for {len(styles_Y_gram)} "
                         "style layers")
    layer_loss = relative_style_loss if settings.normalize_style_layers else style_loss
    contents_l = [content_loss(Y_hat, Y) * settings.content_weight
                  for Y_hat, Y in zip(contents_Y_hat, contents_Y)]
    styles_l = [layer_loss(Y_hat, Y, settings.gram_normalize, gram) * (settings.style_weight * w)
                for Y_hat, Y, w in zip(styles_Y_hat, styles_Y_gram, layer_weights)]
    tv_l = tv_loss(X) * settings.tv_weight
    l = sum(styles_l + contents_l + [tv_l])
    return contents_l, styles_l, tv_l, l


def blend_grams(grams: Sequence[Sequence[torch.Tensor]],
                weights: Optional[Sequence[float]] = None) -> list[torch.Tensor]:
    """Style targets for several style images: per style layer, ``sum_k weights[k] * grams[k]``.

    ``grams[k]`` holds image k's Gram matrices, one (1, c, c) per style layer; ``weights`` are
    the blend (default: equal, 1/n each). Blending the Gram targets, weighted, is how
    jcjohnson/neural-style mixes styles (``-style_blend_weights``). A single image's targets are
    returned as they are, so one style with weight 1 gives exactly the single-style objective;
    a weight of 0 adds exact zeros.
    """
    if weights is None:
        weights = [1.0 / len(grams)] * len(grams)
    if len(grams) == 1 and weights[0] == 1:
        return list(grams[0])
    return [sum(weight * G for weight, G in zip(weights, layer)) for layer in zip(*grams)]


class Objective:
    """The loss of ``settings`` at one image size, for the images ``content_img`` and ``style_img``.

    ``content_shape`` and ``style_shape`` are (h, w). Several styles: ``style_img`` a list of
    images, ``style_shape`` a list of (h, w), one per image, and ``style_blend`` their weights
    (default: equal); the style targets are then the weighted sums of their Gram matrices
    (:func:`blend_grams`). The targets are computed once, without a graph: ``content_X``
    (1, 3, h, w, the content in the book's space), ``contents_Y`` and ``styles_Y_gram``.
    ``amp_dtype`` runs the network under autocast in that dtype; its features are cast to
    float32 before the Gram matrices and losses, which run with autocast off.
    ``channels_last`` feeds the network that memory format. ``gram`` is the Gram function used
    throughout. Everything runs on ``device`` in the dtype of ``net``'s parameters.
    """

    def __init__(self, net: nn.Sequential, content_img: Image.Image, style_img: Image.Image,
                 content_shape, style_shape, settings: Preset, device: torch.device, *,
                 amp_dtype: Optional[torch.dtype] = None, channels_last: bool = False,
                 gram: Callable = gram, style_blend: Optional[Sequence[float]] = None):
        self.net, self.settings, self.device, self.gram = net, settings, device, gram
        self.amp_dtype, self.channels_last = amp_dtype, channels_last
        self.content_layers = [layer_index(layer) for layer in settings.content_layers]
        self.style_layers = [layer_index(layer) for layer in settings.style_layers]
        dtype = next(net.parameters()).dtype  # float32, or float64 for exact comparisons
        self.content_X = preprocess(content_img, content_shape).to(device, dtype)  # (1, 3, h, w)
        if isinstance(style_img, Image.Image):
            style_img, style_shape = [style_img], [style_shape]
        with torch.no_grad():  # targets are constants: no graph needed
            self.contents_Y, _ = self._features(self.content_X, self.content_layers, [], amp_dtype)
            grams = []  # per style image: its Gram matrices, one per style layer
            for img, shape in zip(style_img, style_shape):
                style_X = preprocess(img, shape).to(device, dtype)
                _, styles_Y = self._features(style_X, [], self.style_layers, amp_dtype)
                grams.append([gram(Y, settings.gram_normalize) for Y in styles_Y])
            self.styles_Y_gram = blend_grams(grams, style_blend)

    def extract_features(self, X: torch.Tensor):
        """``(contents_Y_hat, styles_Y_hat)`` of the image ``X`` (1, 3, h, w), float32 or the
        network's dtype, whatever the network ran in."""
        return self._features(X, self.content_layers, self.style_layers, self.amp_dtype)

    def compute_loss(self, X, contents_Y_hat, styles_Y_hat):
        """:func:`compute_loss` of ``X`` and its features against this objective's targets."""
        with torch.autocast(self.device.type, enabled=False):  # Grams and losses in float32
            return compute_loss(X, contents_Y_hat, styles_Y_hat, self.contents_Y,
                                self.styles_Y_gram, self.settings, self.gram)

    def float32_loss(self, X: torch.Tensor) -> float:
        """The total loss at ``X`` with the network in float32, without a graph."""
        with torch.no_grad():
            contents_Y_hat, styles_Y_hat = self._features(X, self.content_layers,
                                                          self.style_layers, None)
            return float(self.compute_loss(X, contents_Y_hat, styles_Y_hat)[3])

    def _features(self, X, content_layers, style_layers, amp_dtype):
        if self.channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        if amp_dtype is None:
            return extract_features(X, self.net, content_layers, style_layers)
        with torch.autocast(self.device.type, dtype=amp_dtype):
            contents, styles = extract_features(X, self.net, content_layers, style_layers)
        return [Y.float() for Y in contents], [Y.float() for Y in styles]
