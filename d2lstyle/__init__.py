"""d2lstyle: neural style transfer (Gatys et al.), as in "Dive into Deep Learning" section 14.12.

The book's building blocks keep the book's names (``preprocess``, ``postprocess``,
``extract_features``, ``content_loss``, ``gram``, ``style_loss``, ``tv_loss``); :func:`transfer`
runs the whole loop; :func:`vgg19` builds the frozen network with named layers.
"""

from .features import extract_features
from .images import ImageLoadError, demo_images, load_image, postprocess, preprocess
from .losses import content_loss, gram, style_loss, tv_loss
from .presets import PRESETS, Preset, get_preset
from .transfer import Result, compute_loss, transfer, try_device
from .vgg import (LAYER_NAMES, WeightsUnavailableError, book_layers, layer_index, layer_name,
                  vgg19)

__version__ = "0.1.0"

__all__ = [
    "LAYER_NAMES", "ImageLoadError", "PRESETS", "Preset", "Result", "WeightsUnavailableError",
    "book_layers", "compute_loss", "content_loss", "demo_images", "extract_features", "get_preset",
    "gram", "layer_index", "layer_name", "load_image", "postprocess", "preprocess", "style_loss",
    "transfer", "try_device", "tv_loss", "vgg19",
]
