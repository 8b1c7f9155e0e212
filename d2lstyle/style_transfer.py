"""One call to stylise: :func:`transfer` checks its inputs, makes a plan, and runs the loop.

The steps, in order: the settings (a preset with the caller's overrides) are checked; the images
are read and their sizes checked against the deepest layer; the plan says which stages run, with
which optimiser (:mod:`d2lstyle.speed.plan`); then, for each stage, an :class:`Objective` at that
size and the loop (:func:`d2lstyle.loop.train`, or the line-search L-BFGS of
:mod:`d2lstyle.speed.lbfgs` with ``fast=True``), the image carried from stage to stage.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from PIL import Image
from torch import nn

from .colors import keep_colors, luminance, match_colors, match_luminance
from .devices import try_device
from .errors import DeviceMemoryError
from .images import ImageSource, fit_longest_side, load_image, postprocess, preprocess
from .loop import Monitor, make_trainer, non_finite, train
from .memory import check_fits, free_memory, out_of_memory_message
from .objective import Objective
from .presets import Preset
from .speed.gram import fast_gram
from .speed.lbfgs import train_lbfgs
from .speed.plan import Plan, make_plan
from .validation import (check_init, check_preserve_colors, check_seed, check_sizes,
                         check_style_blend, checked_settings)
from .vgg import min_side, truncate, vgg19


@dataclass
class Result:
    """What :func:`transfer` returns.

    ``image``: the stylised PIL image. ``tensor``: the synthesised image in the book's normalised
    space, (1, 3, h, w), on the CPU. ``history``: one dict per optimiser step with the weighted
    loss terms at that step, before its update (``content``, ``style``, ``tv``, ``total``), ``step``,
    ``time`` (seconds since the call began), ``shape`` (h, w) of the image at that step (smaller
    during the coarse stage of ``fast=True``) and, where ``stop_at_loss`` had the loss re-evaluated
    in float32, ``total_float32``. ``settings``: what ran (with ``fast=True``: L-BFGS and the
    full-size steps). ``stopped``: why the loop ended early, or None.
    """

    image: Image.Image
    tensor: torch.Tensor
    history: list[dict] = field(default_factory=list)
    settings: Optional[Preset] = None
    stopped: Optional[str] = None


def transfer(content: ImageSource, style: ImageSource | Sequence[ImageSource], *, preset="gatys",
             net: nn.Module | None = None,
             weights="original", image_shape=None, size: int | None = None,
             num_steps: int | None = None, optimizer: str | None = None, lr: float | None = None,
             content_layers=None, style_layers=None, content_weight: float | None = None,
             style_weight: float | None = None, tv_weight: float | None = None,
             style_layer_weights: Sequence[float] | None = None,
             normalize_style_layers: bool | None = None,
             init: str | Image.Image | torch.Tensor = "content", device=None, seed: int = 0,
             fast: bool = False, stop_at_loss: float | None = None,
             style_blend: Sequence[float] | None = None, style_scale: float | None = None,
             preserve_colors: bool | str = False, callback: Callable | None = None,
             progress: bool = True) -> Result:
    """Render ``content`` in the style of ``style`` by optimising the image's pixels.

    ``content`` and ``style`` are PIL images, numpy arrays (see :func:`d2lstyle.load_image`),
    paths or URLs. ``None`` for a setting means the
    preset's value (``"gatys"``: relu4_2 / relu1_1..relu5_1, relative style terms, L-BFGS,
    longest side 320;
    ``"d2l"``: the book's chapter exactly, see :mod:`d2lstyle.presets`). ``net`` is any network
    with ``vgg19().features``' layout (default: ``vgg19(weights)``); it is not modified.
    ``init`` is ``"content"`` (as the book), ``"noise"``, or a starting image: a PIL image or a
    tensor (3, h, w) or (1, 3, h, w) in the book's normalised space, resized to the content's
    shape if it differs. ``callback(step, X, record)`` is called each step with the current image
    (1, 3, h, w) and the step's record; return True to stop.

    ``fast=True`` minimises the same objective (layers, loss weights, image size) sooner: L-BFGS
    with a line search on an image pyramid, the network in bfloat16 where the device has fast
    bfloat16 kernels; see :mod:`d2lstyle.speed.plan`. Each record is then one loss evaluation;
    those of the coarse levels have a smaller ``shape`` and their own loss values.

    ``stop_at_loss`` ends the loop as soon as the float32 total loss at the full size is at or
    below it, so the returned image's loss is at most ``stop_at_loss``.

    ``style_layer_weights`` gives each style layer its own weight (Gatys et al.'s w_l; one
    number >= 0 per layer of ``style_layers``, default 1 each), multiplied by ``style_weight``;
    ``normalize_style_layers=True`` divides each layer's style term by its target Gram matrix's
    mean square (:func:`d2lstyle.losses.relative_style_loss`), so that every layer counts
    whatever the scale of its features (docs/layer-weights.md).

    Several styles: ``style`` a list of images and ``style_blend`` one weight >= 0 for each
    (default: equal; normalised to sum 1); the style targets are the blend of their Gram matrices
    (:func:`d2lstyle.objective.blend_grams`). ``style_scale`` resizes the style image(s) relative
    to the output, as jcjohnson/neural-style's ``-style_scale``: 0.5 gives finer strokes, 2 coarser
    (default: the preset's, 1). ``preserve_colors`` keeps the content's colours (Gatys et al.
    2017): ``True`` or ``"luminance"`` stylises the luminance alone and puts the content's
    chrominance back (:mod:`d2lstyle.colors`; the history's losses are then those of the luminance
    images), ``"histogram"`` first gives the style image(s) the content's colour mean and
    covariance.

    The same seed gives the same result on the CPU. Settings out of range raise
    :class:`d2lstyle.errors.SettingError` before any work, and so does a size whose step would
    not fit in the device's free memory (:class:`d2lstyle.errors.DeviceMemoryError`). A non-finite loss stops the loop with a
    warning and keeps the last finite image (the best one with ``fast``); Ctrl-C returns the
    result so far. Running out of memory all the same raises
    :class:`d2lstyle.errors.DeviceMemoryError` too; both messages name a size that would fit.
    """
    start = time.perf_counter()
    settings = checked_settings(
        preset, image_shape=image_shape, size=size, num_steps=num_steps, optimizer=optimizer, lr=lr,
        content_layers=content_layers, style_layers=style_layers, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight, style_scale=style_scale,
        style_layer_weights=style_layer_weights, normalize_style_layers=normalize_style_layers)
    check_init(init)
    seed = check_seed(seed)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    style_blend = check_style_blend(style_blend, len(styles))
    preserve_colors = check_preserve_colors(preserve_colors)
    device = try_device(device)
    content_img, style_imgs = load_image(content), [load_image(source) for source in styles]
    layers = settings.content_layers + settings.style_layers
    content_shape, style_shapes = image_shapes(content_img, style_imgs, settings)
    check_sizes([(content, content_shape)] + list(zip(styles, style_shapes)), layers)
    # fast's pyramid shrinks the style images with the content: a level must leave each of them
    # at least min_side(layers) on its shorter side, so a smaller style needs larger levels.
    smallest = min(min(content_shape), *(min(shape) for shape in style_shapes))
    plan = make_plan(settings, content_shape, device, fast,
                     math.ceil(min_side(layers) * min(content_shape) / smallest))
    element_size = 2 if plan.amp_dtype is not None else 4
    check_fits(device, content_shape, layers, element_size)
    photo = content_img
    if preserve_colors == "histogram":
        style_imgs = [match_colors(img, content_img) for img in style_imgs]
    elif preserve_colors == "luminance":
        style_imgs = [match_luminance(img, content_img) for img in style_imgs]
        content_img = luminance(content_img)

    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        if net is None:
            net = vgg19(weights, pooling=settings.pooling)
        net = on_device(truncate(net, layers), device)
        if plan.channels_last:
            net = copy.deepcopy(net).to(memory_format=torch.channels_last)  # not the caller's
        try:
            X, history, stopped = run_plan(plan, content_img, style_imgs, content_shape,
                                           style_shapes, style_blend, net, device, init, seed,
                                           stop_at_loss,
                                           Monitor(sum(steps for _, steps in plan.stages),
                                                   "best" if plan.line_search else "last",
                                                   callback, progress, start))
        except torch.OutOfMemoryError:  # torch.cuda.OutOfMemoryError is this class
            X = None  # raised outside the handler so that the failed step's tensors are freed
        if X is None:
            raise DeviceMemoryError(out_of_memory_message(
                device, content_shape, layers, free_memory(device), element_size)) from None
    if non_finite(stopped):
        warnings.warn(f"d2lstyle: {stopped} (try a smaller lr or loss weights)", RuntimeWarning,
                      stacklevel=2)
    final = X.detach().cpu()
    if preserve_colors == "luminance":
        final = keep_colors(final, preprocess(photo, content_shape).to(final))
    return Result(image=postprocess(final), tensor=final, history=history, settings=plan.settings,
                  stopped=stopped)


def run_plan(plan: Plan, content_img, style_imgs, content_shape, style_shapes, style_blend, net,
             device, init, seed: int, stop_at_loss, monitor: Monitor):
    """Each stage of ``plan`` in turn, the image carried from one to the next; returns
    ``(X, history, stopped)`` with X at ``content_shape``. ``style_imgs`` and ``style_shapes``
    (h, w) are lists, one per style image, blended with the weights ``style_blend``."""
    X, stopped = None, None
    try:
        for number, (shape, steps) in enumerate(plan.stages):
            last_stage = number == len(plan.stages) - 1
            scale = (shape[0] / content_shape[0], shape[1] / content_shape[1])
            scaled = [(round(h * scale[0]), round(w * scale[1])) for h, w in style_shapes]
            objective = Objective(net, content_img, style_imgs, shape, scaled,
                                  plan.settings, device, amp_dtype=plan.amp_dtype,
                                  channels_last=plan.channels_last, gram=fast_gram,
                                  style_blend=style_blend)
            X = initial_image(init, objective.content_X, seed) if X is None else resize_image(X, shape)
            X.requires_grad_(True)
            monitor.begin(X, objective, stop_at_loss if last_stage else None,
                          check_float32=plan.amp_dtype is not None)
            try:
                if plan.line_search:
                    stopped = train_lbfgs(X, objective, steps, monitor,
                                          None if last_stage else plan.coarse_tolerance)
                else:
                    trainer, scheduler = make_trainer(X, plan.settings)
                    stopped = train(X, objective, trainer, scheduler, steps, monitor)
            except KeyboardInterrupt:
                stopped = f"interrupted after {len(monitor.history)} steps"
            monitor.end(X, stopped)
            if not last_stage and plan.line_search and non_finite(stopped):
                # A line search's trial point overflowed at a coarse level: the level ends with
                # its best image (monitor.end put it back), and the finer levels go on from it.
                stopped = None
            if stopped is not None:
                break
    finally:
        monitor.close()
    if tuple(X.shape[-2:]) != tuple(content_shape):  # stopped during a coarse stage
        X = resize_image(X, content_shape)
    return X, monitor.history, stopped


def image_shapes(content: Image.Image, styles: Sequence[Image.Image], settings: Preset):
    """``(content_shape, style_shapes)``, each (h, w): the preset's ``image_shape`` for all (the
    book distorts the style image's aspect), else each image's aspect kept with longest side
    ``size``; the style images' sides times ``style_scale``."""
    scale = settings.style_scale
    if settings.image_shape is not None:
        h, w = settings.image_shape
        style_shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        return tuple(settings.image_shape), [style_shape] * len(styles)
    style_size = max(1, round(settings.size * scale))
    return (fit_longest_side(*content.size, settings.size),
            [fit_longest_side(*style.size, style_size) for style in styles])


def initial_image(init, content_X: torch.Tensor, seed: int) -> torch.Tensor:
    """The starting image, shaped like ``content_X``: the content, noise, or ``init`` resized."""
    if isinstance(init, str) and init == "content":
        return content_X.clone()
    if isinstance(init, str):  # "noise"
        return torch.randn(content_X.shape, generator=torch.Generator().manual_seed(seed)).to(
            content_X)
    if isinstance(init, Image.Image):
        return preprocess(init, tuple(content_X.shape[-2:])).to(content_X)
    return resize_image(init.to(content_X).reshape(1, 3, *init.shape[-2:]),
                        tuple(content_X.shape[-2:]))


def resize_image(X: torch.Tensor, shape) -> torch.Tensor:
    """(1, 3, h, w) resized to ``shape`` bilinearly, detached (a copy even at the same shape)."""
    X = X.detach()
    if tuple(X.shape[-2:]) == tuple(shape):
        return X.clone()
    return nn.functional.interpolate(X, size=tuple(shape), mode="bilinear", align_corners=False)


def on_device(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` on ``device``, copied rather than moved when it lives elsewhere (never mutate input)."""
    param = next(net.parameters(), None)
    if param is None or param.device == device:
        return net
    return copy.deepcopy(net).to(device)
