"""Keeping the photograph's colours: the two methods of Gatys et al. (2017), "Controlling
Perceptual Factors in Neural Style Transfer" (CVPR), section 5.

- Luminance-only transfer: stylise the luminance of the content with the luminance of the style
  (its mean and standard deviation matched to the content's first), then put the content's
  chrominance back (:func:`luminance`, :func:`match_luminance`, :func:`keep_colors`).
- Colour histogram matching: give the style image the content's colour mean and covariance before
  an ordinary transfer (:func:`match_colors`).

Colours are YCbCr as in JPEG (ITU-R BT.601, full range), the conversion Pillow uses; tensors are
(n, 3, h, w) RGB in [0, 1] unless a docstring says otherwise (:func:`keep_colors` works in the
book's normalised space, like the rest of the package).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .vgg import IMAGENET_MEAN, IMAGENET_STD

# BT.601 full range: Y, Cb, Cr from R, G, B in [0, 1]; Cb and Cr are centred on 0.5.
RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                             [-0.168736, -0.331264, 0.5],
                             [0.5, -0.418688, -0.081312]], dtype=torch.float64)
YCBCR_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def rgb_to_ycbcr(X: torch.Tensor) -> torch.Tensor:
    """(n, 3, h, w) RGB in [0, 1] -> YCbCr, Y in [0, 1], Cb and Cr in [0, 1] centred on 0.5."""
    M, offset = RGB_TO_YCBCR.to(X), YCBCR_OFFSET.to(X)
    return torch.einsum("ij,njhw->nihw", M, X) + offset[:, None, None]


def ycbcr_to_rgb(X: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    M, offset = RGB_TO_YCBCR.to(X), YCBCR_OFFSET.to(X)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(M), X - offset[:, None, None])


def pixels(img: Image.Image) -> np.ndarray:
    """An RGB PIL image as float64 (h, w, 3) in [0, 1]."""
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255


def to_image(values: np.ndarray) -> Image.Image:
    """float (h, w, 3) in [0, 1] (clipped) as an 8-bit RGB PIL image."""
    return Image.fromarray((np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def luma(values: np.ndarray) -> np.ndarray:
    """Y of BT.601 for (h, w, 3) RGB in [0, 1]: (h, w)."""
    return values @ RGB_TO_YCBCR[0].numpy()


def luminance(img: Image.Image) -> Image.Image:
    """The luminance Y of ``img`` as a grey RGB image (Y in all three channels): the network's
    three input channels see the same values, as in Gatys et al. (2017)."""
    return to_image(np.repeat(luma(pixels(img))[..., None], 3, axis=2))


def match_luminance(style: Image.Image, content: Image.Image) -> Image.Image:
    """The luminance of ``style`` as a grey RGB image, shifted and scaled to the mean and standard
    deviation of the content's luminance (Gatys et al. 2017, eq. 5): the two luminances then
    differ in texture, not in brightness or contrast."""
    Y_s, Y_c = luma(pixels(style)), luma(pixels(content))
    Y = (Y_s - Y_s.mean()) * (Y_c.std() / max(Y_s.std(), 1e-8)) + Y_c.mean()
    return to_image(np.repeat(Y[..., None], 3, axis=2))


def keep_colors(X: torch.Tensor, content_X: torch.Tensor) -> torch.Tensor:
    """The luminance of ``X`` with the chrominance (Cb, Cr) of ``content_X``: both (n, 3, h, w)
    in the book's normalised space, as is the result (its RGB clipped to [0, 1] first)."""
    mean = torch.tensor(IMAGENET_MEAN).to(X).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).to(X).view(1, 3, 1, 1)
    ours, theirs = rgb_to_ycbcr(X * std + mean), rgb_to_ycbcr(content_X.to(X) * std + mean)
    combined = torch.cat([ours[:, :1], theirs[:, 1:]], dim=1)  # (n, 3, h, w): our Y, their CbCr
    return (ycbcr_to_rgb(combined).clamp(0, 1) - mean) / std


def match_colors(style: Image.Image, content: Image.Image) -> Image.Image:
    """``style`` with its colours moved to the mean and covariance of ``content``'s (colour
    histogram matching, Gatys et al. 2017, section 5.2): ``x' = A (x - mu_s) + mu_c`` for each
    RGB pixel, with ``A = Sigma_c^(1/2) Sigma_s^(-1/2)`` (symmetric square roots, the "image
    analogies" choice), clipped to [0, 1]."""
    S, C = pixels(style).reshape(-1, 3), pixels(content).reshape(-1, 3)  # (pixels, 3)
    A = sqrtm(np.cov(C.T), 0.5) @ sqrtm(np.cov(S.T), -0.5)  # (3, 3)
    matched = (S - S.mean(0)) @ A.T + C.mean(0)
    return to_image(matched.reshape(style.height, style.width, 3))


def sqrtm(sigma: np.ndarray, power: float, eps: float = 1e-6) -> np.ndarray:
    """``sigma ** power`` of a symmetric positive semi-definite (3, 3) matrix, through its
    eigenvalues (floored at ``eps`` so that a grey image, whose covariance is singular, works)."""
    values, vectors = np.linalg.eigh(sigma)
    return (vectors * np.maximum(values, eps) ** power) @ vectors.T
