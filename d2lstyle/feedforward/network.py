"""The image transformation network of Johnson, Alahi & Fei-Fei (2016), sized for a CPU.

Johnson et al. ("Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016,
supplementary table 1) stylise a photo in one forward pass: two strided convolutions down, five
residual blocks, two upsampling convolutions back up. We follow them, with the changes that later
work found to matter, each said where it is made:

- instance normalisation instead of batch normalisation (Ulyanov, Vedaldi & Lempitsky 2016,
  "Instance Normalization: The Missing Ingredient for Fast Stylization");
- nearest-neighbour upsampling followed by a convolution instead of a transposed convolution, which
  leaves checkerboard artefacts (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard
  Artifacts", distill.pub);
- reflection padding instead of zero padding, so that the borders are not darkened;
- half the widths (16, 32, 64 channels instead of 32, 64, 128), so that a 512-pixel photo takes a
  fraction of a second on two CPU cores (docs/feedforward.md has the measurements);
- a sigmoid at the end, so that every output pixel is in [0, 1] (Johnson et al. use a scaled tanh).

Input and output are (n, 3, h, w) images in the book's normalised space (RGB in [0, 1], then
ImageNet mean and std, see :func:`d2lstyle.preprocess`), of any h, w >= 1: the image is padded to
a multiple of 4 internally and the output cropped back, so the output has the input's size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..vgg import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class Architecture:
    """The sizes of a :class:`TransformNet`; saved with its weights so a file rebuilds it."""

    widths: tuple[int, int, int] = (16, 32, 64)  # channels at full, 1/2 and 1/4 resolution
    blocks: int = 5                              # residual blocks at 1/4 resolution
    outer_kernel: int = 9                        # the first and last convolutions' kernel (Johnson: 9)

    def as_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding, then a convolution: the output is ``ceil(input / stride)`` pixels."""
    return nn.Sequential(nn.ReflectionPad2d(kernel_size // 2),
                         nn.Conv2d(in_channels, out_channels, kernel_size, stride))


def conv_norm_relu(in_channels: int, out_channels: int, kernel_size: int,
                   stride: int = 1) -> nn.Sequential:
    return nn.Sequential(conv(in_channels, out_channels, kernel_size, stride),
                         nn.InstanceNorm2d(out_channels, affine=True), nn.ReLU())


class ResidualBlock(nn.Module):
    """``x + norm(conv(relu(norm(conv(x)))))``, as in Johnson et al. (after He et al. 2016)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_norm_relu(channels, channels, 3),
                                  conv(channels, channels, 3),
                                  nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by 2, then a convolution, norm and ReLU (no transposed
    convolution: no checkerboard artefacts, Odena et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.layers = conv_norm_relu(in_channels, out_channels, 3)

    def forward(self, x):
        return self.layers(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformNet(nn.Module):
    """Photo in, stylised photo out, in one pass: see the module's docstring.

    ``TransformNet()`` has 424,899 weights (0.81 MiB as float16);
    ``Architecture((32, 64, 128), 5)`` is Johnson et al.'s, with four times as many.
    """

    def __init__(self, architecture: Architecture = Architecture()):
        super().__init__()
        self.architecture = architecture
        c1, c2, c3 = architecture.widths
        k = architecture.outer_kernel
        self.down = nn.Sequential(conv_norm_relu(3, c1, k), conv_norm_relu(c1, c2, 3, stride=2),
                                  conv_norm_relu(c2, c3, 3, stride=2))
        self.residual = nn.Sequential(*(ResidualBlock(c3) for _ in range(architecture.blocks)))
        self.up = nn.Sequential(Upsample(c3, c2), Upsample(c2, c1), conv(c1, 3, k))
        # Constants, not weights: not saved in the state dict.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) normalised -> (n, 3, h, w) normalised, pixels in [0, 1] before normalising."""
        h, w = X.shape[-2:]
        # Two stride-2 convolutions: pad to a multiple of 4 (and at least 8, so that the
        # reflection padding of the smallest maps has pixels to reflect), crop back at the end.
        H, W = max(8, -(-h // 4) * 4), max(8, -(-w // 4) * 4)
        X = F.pad(X, (0, W - w, 0, H - h), mode="replicate")  # (n, 3, H, W)
        Y = self.up(self.residual(self.down(X)))              # (n, 3, H, W)
        return ((torch.sigmoid(Y) - self.mean) / self.std)[..., :h, :w]  # (n, 3, h, w)
