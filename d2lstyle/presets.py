"""Named settings for :func:`d2lstyle.transfer`: the book's chapter, and Gatys et al. done well."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

from .errors import SettingError
from .vgg import book_layers, layer_name


@dataclass(frozen=True)
class Preset:
    """Every setting of a style-transfer run. Layer names are those of :data:`d2lstyle.LAYER_NAMES`."""

    name: str
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    optimizer: str                      # "adam" or "lbfgs"
    lr: float
    num_steps: int                      # optimiser steps (one loss evaluation each)
    image_shape: Optional[tuple[int, int]] = None  # (h, w) for both images, as the book does
    size: Optional[int] = None          # else: longest side of the output, aspect ratio kept
    lr_decay_step: Optional[int] = None  # StepLR(step_size, gamma) for Adam, as the book does
    lr_decay: float = 1.0
    gram_normalize: str = "chw"         # see d2lstyle.gram
    pooling: str = "max"
    style_scale: float = 1.0            # the style image's size relative to the output's
    # w_l of Gatys et al. (2016, eq. 5): one weight per style layer, times style_weight; None: 1 each
    style_layer_weights: Optional[tuple[float, ...]] = None
    # each layer's style term divided by its target Gram matrix's mean square (relative_style_loss)
    normalize_style_layers: bool = False

    def with_overrides(self, **overrides) -> "Preset":
        """A copy with every non-None keyword replaced; layers become names."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        for key in ("content_layers", "style_layers"):
            if key in changes:
                layers = changes[key]
                layers = [layers] if isinstance(layers, (str, int)) else layers
                changes[key] = tuple(layer_name(layer) for layer in layers)
        weights = changes.get("style_layer_weights")
        if isinstance(weights, (list, tuple)):  # anything else is left for validation to refuse
            changes["style_layer_weights"] = tuple(weights)
        if "image_shape" in changes:
            changes["image_shape"] = tuple(changes["image_shape"])
        elif "size" in changes:
            changes["image_shape"] = None  # an explicit size keeps the content's aspect ratio
        return replace(self, **changes)


# The chapter exactly (D2L 14.12): the book's layer indices as its code really computes them.
# torchvision's in-place ReLUs turn the stored outputs at 0, 5, 10, 19, 25 into post-ReLU values;
# 28 stays pre-ReLU because it is the last module run (see d2lstyle.vgg.book_layers). The weights
# are the book's, chosen for torchvision's network; the original network's features are about
# 255 times larger, so with weights="original" the README's weights table gives the values to pass
# (style_weight=0.1, tv_weight=1e4) and docs/performance.md how they were found.
D2L = Preset(
    name="d2l",
    content_layers=tuple(book_layers([25], last=28)),                   # ("relu4_4",)
    style_layers=tuple(book_layers([0, 5, 10, 19, 28], last=28)),       # relu1_1 ... conv5_1
    content_weight=1.0, style_weight=1e4, tv_weight=10.0,
    optimizer="adam", lr=0.3, num_steps=500, image_shape=(300, 450),
    lr_decay_step=50, lr_decay=0.8,
)

# Gatys, Ecker & Bethge (2016): content relu4_2, style relu1_1 ... relu5_1 weighted equally,
# L-BFGS, the content's aspect ratio kept. The Gram matrix is the book's (divided by c*h*w), so the
# loss scale does not depend on the image size. Each style layer's term is relative to its
# target's size: with the book's terms relu4_1's is thousands of times the others' on the
# original network and the transfer matches that layer alone (docs/layer-weights.md). The
# weights are for weights="original", measured there; the README's table of weights has them all.
GATYS = Preset(
    name="gatys",
    content_layers=("relu4_2",),
    style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    content_weight=1.0, style_weight=1e7, tv_weight=1e6,
    optimizer="lbfgs", lr=1.0, num_steps=200, size=320,
    gram_normalize="chw", normalize_style_layers=True,
)

PRESETS = {preset.name: preset for preset in (D2L, GATYS)}


def get_preset(preset) -> Preset:
    """A :class:`Preset` by name (``"gatys"``, ``"d2l"``), or the preset itself."""
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise SettingError(f"unknown preset {preset!r} (--preset): choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]
