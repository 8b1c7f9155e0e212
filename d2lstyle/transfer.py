"""One call to stylise: :func:`transfer`, the training loop of D2L section 14.12 with the book's names."""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from PIL import Image
from torch import nn

from .features import extract_features
from .images import ImageSource, fit_longest_side, load_image, postprocess, preprocess
from .losses import content_loss, gram, style_loss, tv_loss
from .presets import Preset, get_preset
from .vgg import layer_index, layer_name, min_side, truncate, vgg19


@dataclass
class Result:
    """What :func:`transfer` returns.

    ``image``: the stylised PIL image. ``tensor``: the synthesised image in the book's normalised
    space, (1, 3, h, w), on the CPU. ``history``: one dict per optimiser step with the weighted
    loss terms at that step, before its update (``content``, ``style``, ``tv``, ``total``), ``step``
    and ``time`` (seconds since the call began). ``stopped``: why the loop ended early, or None.
    """

    image: Image.Image
    tensor: torch.Tensor
    history: list[dict] = field(default_factory=list)
    settings: Optional[Preset] = None
    stopped: Optional[str] = None


def try_device(device=None) -> torch.device:
    """``device`` as a torch.device; None picks cuda, then mps, then cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def image_shapes(content: Image.Image, style: Image.Image, settings: Preset):
    """``(content_shape, style_shape)`` as (h, w): the preset's ``image_shape`` for both (the book
    distorts the style image's aspect), else each image's aspect kept with longest side ``size``."""
    if settings.image_shape is not None:
        return tuple(settings.image_shape), tuple(settings.image_shape)
    return fit_longest_side(*content.size, settings.size), fit_longest_side(*style.size, settings.size)


def compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings: Preset):
    """The book's ``compute_loss``: weighted content, style and TV terms and their sum ``l``.

    Returns ``(contents_l, styles_l, tv_l, l)``: lists of per-layer terms, the TV term, the total.
    """
    contents_l = [content_loss(Y_hat, Y) * settings.content_weight
                  for Y_hat, Y in zip(contents_Y_hat, contents_Y)]
    styles_l = [style_loss(Y_hat, Y, settings.gram_normalize) * settings.style_weight
                for Y_hat, Y in zip(styles_Y_hat, styles_Y_gram)]
    tv_l = tv_loss(X) * settings.tv_weight
    l = sum(styles_l + contents_l + [tv_l])
    return contents_l, styles_l, tv_l, l


def make_optimizer(X: torch.Tensor, settings: Preset):
    """Optimiser and learning-rate scheduler for the image ``X`` (the only parameter)."""
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam([X], lr=settings.lr)
    elif settings.optimizer == "lbfgs":
        # One iteration per step() so that every step is one loss evaluation, like Adam's, and no
        # line search: each step's record is then the loss at the image before that step's update.
        optimizer = torch.optim.LBFGS([X], lr=settings.lr, max_iter=1, history_size=100)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', not {settings.optimizer!r}")
    scheduler = None
    if settings.lr_decay_step:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, settings.lr_decay_step, settings.lr_decay)
    return optimizer, scheduler


def transfer(content: ImageSource, style: ImageSource, *, preset="gatys", net: nn.Module | None = None,
             weights="original", image_shape=None, size: int | None = None,
             num_steps: int | None = None, optimizer: str | None = None, lr: float | None = None,
             content_layers=None, style_layers=None, content_weight: float | None = None,
             style_weight: float | None = None, tv_weight: float | None = None, init: str = "content",
             device=None, seed: int = 0, fast: bool = False, stop_at_loss: float | None = None,
             callback: Callable | None = None, progress: bool = True) -> Result:
    """Render ``content`` in the style of ``style`` by optimising the image's pixels.

    ``content`` and ``style`` are PIL images, paths or URLs. ``None`` for a setting means the
    preset's value (``"gatys"``: relu4_2 / relu1_1..relu5_1, L-BFGS, longest side 384;
    ``"d2l"``: the book's chapter exactly, see :mod:`d2lstyle.presets`). ``net`` is any network
    with ``vgg19().features``' layout (default: ``vgg19(weights)``); it is not modified.
    ``init`` is ``"content"`` (as the book) or ``"noise"``. ``callback(step, X, record)`` is called
    each step with the current image (1, 3, h, w) and the step's record; return True to stop.

    ``fast=True`` asks for the same objective reached as fast as the package can on the device;
    it is accepted now and does not yet change anything (the loop is already frozen-network and
    truncated after the deepest layer used). ``stop_at_loss`` ends the loop as soon as the total
    loss is at or below it.

    The same seed gives the same result on the CPU. A non-finite loss stops the loop with a
    warning and keeps the last image whose loss was finite; Ctrl-C returns the result so far.
    """
    start = time.perf_counter()
    settings = get_preset(preset).with_overrides(
        image_shape=image_shape, size=size, num_steps=num_steps, optimizer=optimizer, lr=lr,
        content_layers=content_layers, style_layers=style_layers, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight)
    if settings.num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, not {settings.num_steps}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', not {init!r}")
    device = try_device(device)
    content_img, style_img = load_image(content), load_image(style)
    content_shape, style_shape = image_shapes(content_img, style_img, settings)
    layers = settings.content_layers + settings.style_layers
    for source, label, (h, w) in ((content, "content", content_shape), (style, "style", style_shape)):
        if min(h, w) < min_side(layers):
            name = f"the {label} image" if isinstance(source, Image.Image) else str(source)
            raise ValueError(
                f"{name}, resized to {w}x{h} pixels, is too small for layer "
                f"{layer_name(max(map(layer_index, layers)))}: each side needs at least "
                f"{min_side(layers)} pixels; use a larger size or image_shape")

    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        if net is None:
            net = vgg19(weights, pooling=settings.pooling)
        net = _on_device(truncate(net, layers), device)
        content_X = preprocess(content_img, content_shape).to(device)  # (1, 3, h, w)
        style_X = preprocess(style_img, style_shape).to(device)
        with torch.no_grad():  # targets are constants: no graph needed
            contents_Y, _ = extract_features(content_X, net, settings.content_layers, [])
            _, styles_Y = extract_features(style_X, net, [], settings.style_layers)
            styles_Y_gram = [gram(Y, settings.gram_normalize) for Y in styles_Y]
        if init == "content":
            X = content_X.clone()
        else:
            X = torch.randn(content_X.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        X.requires_grad_(True)
        trainer, scheduler = make_optimizer(X, settings)

        def loss_terms():
            contents_Y_hat, styles_Y_hat = extract_features(
                X, net, settings.content_layers, settings.style_layers)
            return compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings)

        history, stopped = [], None
        last_finite = X.detach().clone()
        bar = _progress_bar(settings.num_steps, progress)
        try:
            for step in range(settings.num_steps):
                trainer.zero_grad()
                contents_l, styles_l, tv_l, l = loss_terms()
                l.backward()
                record = {"step": step, "content": sum((float(t.detach()) for t in contents_l), 0.0),
                          "style": sum((float(t.detach()) for t in styles_l), 0.0),
                          "tv": float(tv_l.detach()), "total": float(l.detach()),
                          "time": time.perf_counter() - start}
                history.append(record)
                if not math.isfinite(record["total"]):
                    stopped = f"loss became non-finite at step {step}; kept the last finite image"
                    warnings.warn(f"d2lstyle: {stopped} (try a smaller lr or loss weights)",
                                  RuntimeWarning, stacklevel=2)
                    X.data.copy_(last_finite)
                    break
                last_finite = X.detach().clone()
                if bar is not None:
                    bar.set_postfix({k: f"{record[k]:.3g}" for k in ("content", "style", "tv")},
                                    refresh=False)
                    bar.update()
                if stop_at_loss is not None and record["total"] <= stop_at_loss:
                    stopped = f"reached loss {record['total']:.6g} <= {stop_at_loss:g} at step {step}"
                    break
                if callback is not None and callback(step, X.detach(), record):
                    stopped = f"stopped by callback at step {step}"
                    break
                trainer.step(lambda: l)  # L-BFGS reuses this step's loss and gradient
                if scheduler is not None:
                    scheduler.step()
        except KeyboardInterrupt:
            stopped = f"interrupted after {len(history)} steps"
            if not torch.isfinite(X.detach()).all():
                X.data.copy_(last_finite)
        finally:
            if bar is not None:
                bar.close()

    final = X.detach().cpu()
    return Result(image=postprocess(final), tensor=final, history=history, settings=settings,
                  stopped=stopped)


def _on_device(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` on ``device``, copied rather than moved when it lives elsewhere (never mutate input)."""
    param = next(net.parameters(), None)
    if param is None or param.device == device:
        return net
    return copy.deepcopy(net).to(device)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", leave=False)
