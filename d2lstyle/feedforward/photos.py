"""Training photographs: offline, redistributable, served as random crops.

A feed-forward stylizer learns from many photos (Johnson et al. 2016 used the 80,000 of COCO). We
have no download, so by default it learns from the colour photographs that ship inside
scikit-image's wheel, under the licences stated in ``skimage/data/_fetchers.py`` (version 0.26),
seen through random crops, scales and flips. Two photos are kept out of training, so that a model
can be shown on photos it never saw: :data:`HELD_OUT`, the ones the README's gallery uses.
A folder of your own photos can replace them (on a GPU, many more give a better network).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch.nn import functional as F

from ..errors import ImageLoadError
from ..images import load_image, package_image

# name in skimage/data -> what it is, and its licence (from scikit-image's _fetchers.py docstrings)
BUILTIN = {
    "coffee.png": "a cup of coffee, photograph by Rachel Michetti (CC0)",
    "rocket.jpg": "Falcon 9 launch with DSCOVR, SpaceX (public domain)",
    "camera.png": "a man with a camera, photograph by Lav Varshney (CC0; greyscale)",
    "hubble_deep_field.jpg": "the Hubble eXtreme Deep Field, NASA/ESA (public domain)",
    "brick.png": "a brick wall, CC0Textures Bricks25 (CC0; greyscale)",
    "grass.png": "grass, by linolafett on DeviantArt (CC0; greyscale)",
    "gravel.png": "gravel, CC0Textures Gravel04 (CC0; greyscale)",
}
HELD_OUT = ("chelsea.png", "astronaut.png")  # never trained on: the photos to show results on
SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm"}


def builtin_photos() -> list[Image.Image]:
    """The training photos of :data:`BUILTIN`, as RGB PIL images."""
    return [load_image(package_image(name)) for name in BUILTIN]


def folder_photos(folder: str | os.PathLike) -> list[Image.Image]:
    """Every image file in ``folder`` (not its subfolders), sorted by name, as RGB PIL images.

    A folder that does not exist or holds no image, and a file that does not decode, raise
    :class:`d2lstyle.errors.ImageLoadError` in one line naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(f"{folder}: no such folder of training photos")
    files = sorted(path for path in folder.iterdir()
                   if path.suffix.lower() in SUFFIXES and path.is_file())
    if not files:
        raise ImageLoadError(f"{folder}: no photos in it (looked for {', '.join(sorted(SUFFIXES))})")
    return [load_image(path) for path in files]


def get_photos(photos) -> list[Image.Image]:
    """``"builtin"`` (:func:`builtin_photos`), a folder (:func:`folder_photos`), or a list of
    images (PIL, paths, URLs), as a list of RGB PIL images."""
    if isinstance(photos, str) and photos == "builtin":
        return builtin_photos()
    if isinstance(photos, (str, os.PathLike)):
        return folder_photos(photos)
    photos = [load_image(photo) for photo in photos]
    if not photos:
        raise ImageLoadError("photos: an empty list; give at least one photo, a folder or 'builtin'")
    return photos


class RandomCrops:
    """Batches of random square crops of ``photos``, (n, 3, size, size) with pixels in [0, 1].

    Each crop: a photo chosen uniformly, a scale such that its shorter side becomes a uniform
    number of pixels between ``size`` and ``max_scale * size`` (never more than the photo has,
    so photos are shrunk, not blown up, where they can be), a uniform position, and a horizontal
    flip with probability 1/2. All randomness comes from ``generator``, so a seed gives the same
    batches (and a checkpoint can save the generator's state).
    """

    def __init__(self, photos: Sequence[Image.Image], size: int, generator: torch.Generator,
                 max_scale: float = 2.0):
        from torchvision.transforms import functional as TF

        self.photos = [TF.to_tensor(photo) for photo in photos]  # each (3, h, w) in [0, 1]
        self.size, self.generator, self.max_scale = size, generator, max_scale

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def crop(self) -> torch.Tensor:
        """One random crop, (3, size, size)."""
        index = int(torch.randint(len(self.photos), (), generator=self.generator))
        photo = self.photos[index]
        h, w = photo.shape[-2:]
        shorter = min(h, w)
        target = self.uniform(self.size, max(self.size, min(shorter, self.max_scale * self.size)))
        side = min(shorter, max(1, round(shorter * self.size / target)))  # crop side in the photo
        top = int(torch.randint(h - side + 1, (), generator=self.generator))
        left = int(torch.randint(w - side + 1, (), generator=self.generator))
        patch = photo[:, top:top + side, left:left + side].unsqueeze(0)  # (1, 3, side, side)
        patch = F.interpolate(patch, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=side > self.size)[0]
        if float(torch.rand((), generator=self.generator)) < 0.5:
            patch = patch.flip(-1)
        return patch.clamp(0, 1)  # (3, size, size)

    def batch(self, batch_size: int) -> torch.Tensor:
        """(batch_size, 3, size, size) in [0, 1]."""
        return torch.stack([self.crop() for _ in range(batch_size)])


def describe_builtin() -> str:
    """One line per built-in photo: its file and licence (for model records and docs)."""
    return "\n".join(f"skimage/data/{name}: {text}" for name, text in BUILTIN.items())

