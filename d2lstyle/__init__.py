"""d2lstyle: neural style transfer (Gatys et al.), as in "Dive into Deep Learning" section 14.12.

The book's building blocks keep the book's names (``preprocess``, ``postprocess``,
``extract_features``, ``content_loss``, ``gram``, ``style_loss``, ``tv_loss``, ``compute_loss``,
``train``); :func:`transfer` runs the whole thing; :func:`vgg19` builds the frozen network with
named layers. The module map, downhill from images to the command line, is in the README's
"Architecture" section; :mod:`d2lstyle.book` is the chapter's own code, for comparison.
"""

from .devices import try_device
from .errors import DeviceMemoryError, ImageLoadError, SettingError, WeightsUnavailableError
from .features import extract_features
from .images import demo_images, load_image, postprocess, preprocess
from .loop import Monitor, make_trainer, train
from .losses import content_loss, gram, style_loss, tv_loss
from .objective import Objective, compute_loss
from .presets import PRESETS, Preset, get_preset
from .style_transfer import Result, transfer
from .vgg import LAYER_NAMES, book_layers, layer_index, layer_name, vgg19

__version__ = "0.2.0"

__all__ = [
    "DeviceMemoryError", "ImageLoadError", "LAYER_NAMES", "Monitor", "Objective", "PRESETS",
    "Preset", "Result", "SettingError", "WeightsUnavailableError", "book_layers", "compute_loss",
    "content_loss", "demo_images", "extract_features", "get_preset", "gram", "layer_index",
    "layer_name", "load_image", "make_trainer", "postprocess", "preprocess", "style_loss", "train",
    "transfer", "try_device", "tv_loss", "vgg19",
]
