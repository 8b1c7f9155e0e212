"""d2lstyle: neural style transfer (Gatys et al.), as in "Dive into Deep Learning" section 14.12.

The book's building blocks keep the book's names (``preprocess``, ``postprocess``,
``extract_features``, ``content_loss``, ``gram``, ``style_loss``, ``tv_loss``, ``compute_loss``,
``train``); :func:`transfer` runs the whole thing; :func:`vgg19` builds the frozen network with
named layers. The module map, downhill from images to the command line, is in the README's
"Architecture" section; :mod:`d2lstyle.book` is the chapter's own code, for comparison.

Each name below is imported from its module when first used, so that ``import d2lstyle`` (and the
command line's start, which Ctrl-C may interrupt) does not wait for torch until it is needed.
"""

import importlib

__version__ = "0.2.0"

# name -> the module that defines it
_MODULE_OF = {
    "try_device": "devices",
    "DeviceMemoryError": "errors", "ImageLoadError": "errors", "ModelError": "errors",
    "SettingError": "errors",
    "WeightsUnavailableError": "errors",
    "extract_features": "features",
    "demo_images": "images", "load_image": "images", "postprocess": "images", "preprocess": "images",
    "Monitor": "loop", "make_trainer": "loop", "train": "loop",
    "content_loss": "losses", "gram": "losses", "relative_style_loss": "losses",
    "style_loss": "losses", "tv_loss": "losses",
    "Objective": "objective", "compute_loss": "objective",
    "PRESETS": "presets", "Preset": "presets", "get_preset": "presets",
    "Result": "style_transfer", "transfer": "style_transfer",
    "LAYER_NAMES": "vgg", "book_layers": "vgg", "layer_index": "vgg", "layer_name": "vgg",
    "vgg19": "vgg",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'd2lstyle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
