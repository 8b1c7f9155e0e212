"""Images in and out: loading any picture safely, and the book's ``preprocess``/``postprocess``.

The network's input space (the "book's space") is RGB in [0, 1], normalised per channel with the
ImageNet mean and standard deviation, shape (n, 3, h, w) (D2L section 14.12).
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .download import fetch, is_url
from .errors import ImageLoadError
from .vgg import IMAGENET_MEAN, IMAGENET_STD

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]

D2L_IMG_URL = "https://raw.githubusercontent.com/d2l-ai/d2l-en/master/img/"
DEMO_URLS = (D2L_IMG_URL + "rainier.jpg", D2L_IMG_URL + "autumn-oak.jpg")
# Offline stand-ins: a photograph that ships inside scikit-image's wheel (public domain, see
# README; 300x451, the 'd2l' preset's 2:3 shape, so nothing is stretched) and a painterly style
# drawn by code (d2lstyle.patterns, CC0).
OFFLINE_DEMO = ("chelsea.png", "swirls")
# Formats Pillow decodes in-process (JPEG includes cameras' MPO files). Not EPS, which Pillow hands
# to Ghostscript, nor the rarer formats, whose decoders have seen less use.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency composited onto white, 16-bit scaled, not clipped."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        if img.mode == "F" and values.max() <= 1.0:
            top = 1.0
        img = Image.fromarray((np.clip(values / top, 0, 1) * 255 + 0.5).astype(np.uint8), "L")
    if img.mode == "La":  # premultiplied; Pillow converts it to LA only
        img = img.convert("LA")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # CMYK, YCbCr, LAB and HSV by Pillow's own conversions


def load_image(source: ImageSource, *, timeout: float | None = None) -> Image.Image:
    """Open a PIL image, a file path or an http(s) URL as an RGB PIL image.

    EXIF orientation is applied and every mode becomes RGB. Only regular files in :data:`FORMATS`
    are decoded; anything else, truncated files and decompression bombs (more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS``) raise :class:`ImageLoadError` naming the source. URLs are
    fetched by :func:`d2lstyle.download.fetch` (``timeout`` in seconds for the whole download)
    and cached.
    """
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, np.ndarray):
        return from_array(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageLoadError(f"an image must be a path, an http(s) URL, a PIL image or a numpy "
                             f"array, not a {type(source).__name__}")
    if not is_url(source):
        return open_image(Path(source), str(source))
    path = fetch(source, timeout=timeout)
    try:
        return open_image(path, source)
    except ImageLoadError:
        path.unlink(missing_ok=True)  # not an image (a proxy's page?): fetch afresh next time
        raise


def from_array(array: np.ndarray) -> Image.Image:
    """A numpy image as RGB: (h, w) grey or (h, w, 3 or 4) colour, uint8 in 0..255 or float in
    0..1 (clipped); anything else raises :class:`ImageLoadError` in one line."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or not array.size:
        raise ImageLoadError(f"a numpy image must be (h, w), (h, w, 3) or (h, w, 4), not {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all():
        array = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    if array.dtype != np.uint8:
        raise ImageLoadError(f"a numpy image must be uint8 (0..255) or finite floats (0..1), "
                             f"not {array.dtype}" + (" with nan or inf" if array.dtype.kind == "f" else ""))
    return _to_rgb(Image.fromarray(np.ascontiguousarray(array)))


def open_image(path: Path, label: str) -> Image.Image:
    """Decode the image file ``path`` as RGB (EXIF orientation applied); errors name ``label``.

    Only a regular file is opened: a folder, FIFO, device or socket is refused from its ``stat``,
    before anything could block on it or read from it forever.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageLoadError(f"{label}: no such file") from None
    except OSError as error:
        raise ImageLoadError(f"{label}: cannot open ({error.strerror or error})") from error
    if stat.S_ISDIR(mode):
        raise ImageLoadError(f"{label}: is a folder, not an image")
    if not stat.S_ISREG(mode):
        raise ImageLoadError(f"{label}: not a regular file (a FIFO, device or socket), refused")
    try:
        # O_NONBLOCK: should a FIFO have replaced the file since the stat, opening it cannot hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise ImageLoadError(f"{label}: cannot open ({error.strerror or error})") from error
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ImageLoadError(f"{label}: not a regular file (a FIFO, device or socket), refused")
        return _decode(file, label)


def _decode(file, label: str) -> Image.Image:
    """The image in the binary ``file``, as RGB; any decoder error is one line naming ``label``."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; we refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=FORMATS) as img:
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageLoadError(f"{label}: too many pixels, refused as a possible decompression bomb "
                             f"({error})") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(f"{label}: not an image file in a format d2lstyle reads "
                             f"({', '.join(FORMATS)})") from error
    except Exception as error:  # on corrupt files some decoders raise IndexError, struct.error...
        reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        raise ImageLoadError(f"{label}: cannot read image ({reason})") from error


def demo_images(timeout: float = 10.0, verbose: bool = True) -> tuple[Image.Image, Image.Image]:
    """The book's pair, ``(content, style)``: rainier.jpg and autumn-oak.jpg, fetched and cached.

    Offline, falls back to :func:`offline_demo_images` and says so.
    """
    try:
        return tuple(load_image(url, timeout=timeout) for url in DEMO_URLS)
    except ImageLoadError as error:
        content, style = offline_demo_images()
        if verbose:
            print(f"d2lstyle: offline ({error}); using scikit-image's {OFFLINE_DEMO[0]} and "
                  f"d2lstyle.patterns.{OFFLINE_DEMO[1]}() instead of the book's pair")
        return content, style


def offline_demo_images() -> tuple[Image.Image, Image.Image]:
    """``(content, style)`` without a network: scikit-image's chelsea.png (the cat Chelsea, 451x300)
    and :func:`d2lstyle.patterns.swirls` (blue and yellow brush strokes, 512x384)."""
    from . import patterns

    return load_image(package_image(OFFLINE_DEMO[0])), getattr(patterns, OFFLINE_DEMO[1])()


def package_image(name: str) -> Path:
    """Path of an image that ships in scikit-image's wheel (``skimage/data/NAME``)."""
    from importlib import resources

    path = resources.files("skimage") / "data" / name
    if not path.is_file():
        raise ImageLoadError(f"scikit-image ships no image named {name!r}")
    return Path(str(path))


def fit_longest_side(width: int, height: int, size: int) -> tuple[int, int]:
    """``(h, w)`` with the longest side ``size`` and the aspect ratio of ``width`` × ``height``."""
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, not {size}")
    scale = size / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def crop_to_aspect(img: Image.Image, aspect: float) -> Image.Image:
    """The largest centred crop of ``img`` whose width / height is ``aspect`` (a new PIL image).

    For a fixed ``image_shape`` (h, w), such as the 'd2l' preset's (300, 450), crop first with
    ``aspect = w / h`` so that resizing does not stretch the picture (the book resizes without
    cropping, which distorts any image of another shape). Sides are rounded to whole pixels; an
    image already within one pixel of ``aspect`` is returned uncropped (as a copy).
    """
    if not (isinstance(aspect, (int, float)) and math.isfinite(aspect) and aspect > 0):
        raise ValueError(f"aspect (width / height) must be a finite number > 0, not {aspect!r}")
    width, height = img.size
    new_width = min(width, max(1, round(height * aspect)))
    new_height = min(height, max(1, round(new_width / aspect)))
    if abs(new_width - width) <= 1 and abs(new_height - height) <= 1:
        return img.copy()
    left, top = (width - new_width) // 2, (height - new_height) // 2
    return img.crop((left, top, left + new_width, top + new_height))


def _stats(device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).view(3, 1, 1)
    return mean, std


def preprocess(img: ImageSource, image_shape) -> torch.Tensor:
    """PIL image (or path/URL) -> (1, 3, h, w) float32 tensor in the book's normalised space.

    ``image_shape`` is ``(h, w)`` as in the book, or an int for the shorter side (torchvision's
    ``Resize`` convention). Resizing is antialiased bilinear, as torchvision's on PIL images.
    """
    from torchvision.transforms import functional as TF

    img = load_image(img)
    size = image_shape if isinstance(image_shape, int) else list(image_shape)
    X = TF.to_tensor(TF.resize(img, size))  # (3, h, w), values in [0, 1]
    mean, std = _stats(X.device, X.dtype)
    return ((X - mean) / std).unsqueeze(0)  # (1, 3, h, w)


def postprocess(X: torch.Tensor):
    """(3, h, w) or (1, 3, h, w) tensor in the book's space -> PIL RGB image, clamped to [0, 1].

    A batch (n, 3, h, w) with n > 1 gives a list of n images. ``X`` is not modified.
    """
    from torchvision.transforms import functional as TF

    X = X.detach()
    if X.dim() == 3:
        X = X.unsqueeze(0)
    if X.dim() != 4 or X.shape[1] != 3:
        raise ValueError(f"postprocess expects (3, h, w) or (n, 3, h, w), got {tuple(X.shape)}")
    X = X.float().cpu()
    mean, std = _stats(X.device, X.dtype)
    # Round rather than truncate (ToPILImage truncates), so postprocess(preprocess(img)) == img.
    pixels = (torch.clamp(X * std + mean, 0, 1) * 255).round().to(torch.uint8)  # (n, 3, h, w)
    images = [TF.to_pil_image(x) for x in pixels]
    return images[0] if len(images) == 1 else images
