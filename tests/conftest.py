"""Fixtures shared by more than one test module."""

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def images():
    """``(content, style)``: a smooth diagonal ramp (60x80, layout and no texture) and uniform noise
    (50x70, texture and no layout), so that a transfer's two terms pull in different directions."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 80, dtype=np.float64)
    content = np.stack([np.add.outer(ramp[:60] * 0.5, ramp * 0.5)] * 3, -1)  # (60, 80, 3)
    style = rng.integers(0, 256, size=(50, 70, 3))
    return Image.fromarray(content.astype(np.uint8)), Image.fromarray(style.astype(np.uint8))


@pytest.fixture(scope="module")
def net():
    """VGG19 with random weights from seed 0 (the caller's RNG untouched): fast, and the same in
    every test module; the loops and shapes are what these tests check, not the picture."""
    from d2lstyle import vgg19

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return vgg19(weights=None)
