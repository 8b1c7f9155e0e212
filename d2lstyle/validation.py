"""Checks at the edge: every setting of a run, checked once, the same way for the library and the
command line, before any image is read or any network built.

Each failure raises :class:`d2lstyle.errors.SettingError` whose one-line message names the setting
both ways, as ``transfer``'s argument and as the command line's option
(``style_weight (--style-weight) must be a finite number >= 0, not -1.0``).
"""

from __future__ import annotations

import math
import numbers
import os

import torch
from PIL import Image

from .errors import SettingError
from .presets import Preset, get_preset
from .vgg import layer_index, layer_name, min_side

# transfer()'s arguments that the command line has, and its option for each.
OPTIONS = {"num_steps": "--steps", "size": "--size", "content_weight": "--content-weight",
           "style_weight": "--style-weight", "tv_weight": "--tv-weight", "seed": "--seed",
           "device": "--device", "preset": "--preset", "weights": "--weights",
           "style_blend": "--style-blend", "style_scale": "--style-scale",
           "preserve_colors": "--original-colors", "style_layer_weights": "--style-layer-weights",
           "normalize_style_layers": "--normalize-style-layers"}


def named(name: str) -> str:
    """``name`` with its command-line option, where it has one: ``num_steps (--steps)``."""
    return f"{name} ({OPTIONS[name]})" if name in OPTIONS else name


def whole_number(name: str, value, low: int, high: float = math.inf) -> int:
    """``value`` as an int in ``low..high``, not a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        bound = f"at least {low}" if high == math.inf else f"between {low} and {high}"
        raise SettingError(f"{named(name)} must be a whole number {bound}, not {value!r}")
    return int(value)


def finite_real(value) -> bool:
    """Whether ``value`` is a finite real number (not a bool, which Python counts as one)."""
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value))


def non_negative(name: str, value) -> float:
    """``value`` as a finite float >= 0."""
    if not finite_real(value) or value < 0:
        raise SettingError(f"{named(name)} must be a finite number >= 0, not {value!r}")
    return float(value)


def positive(name: str, value) -> float:
    """``value`` as a finite float > 0."""
    if not finite_real(value) or value <= 0:
        raise SettingError(f"{named(name)} must be a finite number > 0, not {value!r}")
    return float(value)


def checked_settings(preset="gatys", **overrides) -> Preset:
    """The preset (a name or a :class:`Preset`) with the non-None ``overrides``, checked."""
    settings = get_preset(preset).with_overrides(**overrides)
    check_settings(settings)
    return settings


def check_settings(settings: Preset) -> None:
    """Every field of a preset (with the caller's overrides) in its range."""
    whole_number("num_steps", settings.num_steps, 1)
    if settings.image_shape is None:
        whole_number("size", settings.size, 1)
    elif len(settings.image_shape) != 2:
        raise SettingError(f"image_shape must be (height, width), not {settings.image_shape!r}")
    else:
        for side in settings.image_shape:
            whole_number("image_shape", side, 1)
    for name in ("content_weight", "style_weight", "tv_weight", "lr_decay"):
        non_negative(name, getattr(settings, name))
    if non_negative("lr", settings.lr) == 0:
        raise SettingError("lr must be a finite number > 0, not 0.0")
    positive("style_scale", settings.style_scale)
    if settings.lr_decay_step is not None:
        whole_number("lr_decay_step", settings.lr_decay_step, 1)
    check_style_layer_weights(settings.style_layer_weights, settings.style_layers)
    if not isinstance(settings.normalize_style_layers, bool):
        raise SettingError(f"{named('normalize_style_layers')} must be True or False, "
                           f"not {settings.normalize_style_layers!r}")
    if not settings.content_layers and not settings.style_layers:
        raise SettingError("content_layers and style_layers are both empty: give at least one layer")
    for name, value, choices in (("optimizer", settings.optimizer, ("adam", "lbfgs")),
                                 ("gram_normalize", settings.gram_normalize, ("chw", "hw")),
                                 ("pooling", settings.pooling, ("max", "avg"))):
        if value not in choices:
            raise SettingError(f"{name} must be {' or '.join(map(repr, choices))}, not {value!r}")


def check_style_layer_weights(weights, style_layers) -> None:
    """None, or one finite weight >= 0 for each of ``style_layers`` (a tuple, as
    :meth:`Preset.with_overrides` makes a list)."""
    if weights is None:
        return
    name = named("style_layer_weights")
    if not isinstance(weights, tuple):
        raise SettingError(f"{name} must be a list of numbers, one per style layer, not {weights!r}")
    if len(weights) != len(style_layers):
        raise SettingError(f"{name} has {len(weights)} weight(s) for {len(style_layers)} style "
                           f"layer(s) ({', '.join(style_layers)}): give one per style layer")
    for weight in weights:
        if not finite_real(weight) or weight < 0:
            raise SettingError(f"{name} must be finite numbers >= 0, not {weight!r}")


def check_seed(seed) -> int:
    """A seed that ``torch.manual_seed`` and ``torch.Generator`` both accept."""
    return whole_number("seed", seed, 0, 2**63 - 1)


def check_init(init) -> None:
    """``"content"``, ``"noise"``, a PIL image, or a finite tensor (3, h, w) or (1, 3, h, w)."""
    if isinstance(init, str) and init in ("content", "noise"):
        return
    if isinstance(init, Image.Image):
        return
    if not isinstance(init, torch.Tensor):
        what = repr(init) if isinstance(init, str) else f"a {type(init).__name__}"
        raise SettingError(f"init must be 'content', 'noise', a PIL image or a tensor, not {what}")
    if not (init.dim() in (3, 4) and init.shape[-3] == 3 and (init.dim() == 3 or init.shape[0] == 1)):
        raise SettingError(f"init tensor must be (3, h, w) or (1, 3, h, w), not {tuple(init.shape)}")
    if not torch.isfinite(init).all():
        raise SettingError("init tensor has non-finite values (nan or inf)")


def check_sizes(shapes, layers) -> None:
    """Each ``(source, (h, w))`` of the content, then the style(s), at least ``min_side(layers)``."""
    for number, (source, (h, w)) in enumerate(shapes):
        label = "content" if number == 0 else "style"
        if min(h, w) < min_side(layers):
            name = str(source) if isinstance(source, (str, os.PathLike)) else f"the {label} image"
            raise SettingError(
                f"{name}, resized to {w}x{h} pixels, is too small for layer "
                f"{layer_name(max(map(layer_index, layers)))}: each side needs at least "
                f"{min_side(layers)} pixels; use a larger size or image_shape")


def check_style_blend(style_blend, num_styles: int) -> tuple[float, ...]:
    """One finite weight >= 0 per style image, not all 0, normalised to sum 1; None gives equal
    weights."""
    if num_styles < 1:
        raise SettingError("style is an empty list: give at least one style image")
    if style_blend is None:
        return (1.0 / num_styles,) * num_styles
    if isinstance(style_blend, numbers.Real):
        style_blend = [style_blend]
    try:
        weights = list(style_blend)
    except TypeError:
        raise SettingError(f"{named('style_blend')} must be a list of weights, one per style "
                           f"image, not {style_blend!r}") from None
    if len(weights) != num_styles:
        raise SettingError(f"{named('style_blend')} has {len(weights)} weight(s) for {num_styles} "
                           f"style image(s): give one weight per style image")
    for weight in weights:
        if not finite_real(weight) or weight < 0:
            raise SettingError(f"{named('style_blend')} weights must be finite numbers >= 0, "
                               f"not {weight!r}")
    total = math.fsum(weights)
    if total == 0:
        raise SettingError(f"{named('style_blend')} weights are all 0: give at least one > 0")
    return tuple(float(weight) / total for weight in weights)


def check_preserve_colors(preserve_colors):
    """None (colours from the style), ``"luminance"`` (True) or ``"histogram"``."""
    if preserve_colors is False or preserve_colors is None:
        return None
    if preserve_colors is True:
        return "luminance"
    if isinstance(preserve_colors, str) and preserve_colors in ("luminance", "histogram"):
        return preserve_colors
    raise SettingError(f"{named('preserve_colors')} must be True, False, 'luminance' or "
                       f"'histogram', not {preserve_colors!r}")
