"""One call to stylise: :func:`transfer`, the training loop of D2L section 14.12 with the book's names."""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import torch
from PIL import Image
from torch import nn

from .fast import autocast_dtype, fast_steps, prepare_network, schedule
from .features import extract_features
from .images import ImageSource, fit_longest_side, load_image, postprocess, preprocess
from .losses import content_loss, gram, style_loss, tv_loss
from .memory import DeviceMemoryError, free_memory, out_of_memory_message
from .presets import Preset, get_preset
from .vgg import layer_index, layer_name, min_side, truncate, vgg19


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
             style_weight: float | None = None, tv_weight: float | None = None,
             init: str | Image.Image | torch.Tensor = "content", device=None, seed: int = 0,
             fast: bool = False, stop_at_loss: float | None = None,
             callback: Callable | None = None, progress: bool = True) -> Result:
    """Render ``content`` in the style of ``style`` by optimising the image's pixels.

    ``content`` and ``style`` are PIL images, paths or URLs. ``None`` for a setting means the
    preset's value (``"gatys"``: relu4_2 / relu1_1..relu5_1, L-BFGS, longest side 384;
    ``"d2l"``: the book's chapter exactly, see :mod:`d2lstyle.presets`). ``net`` is any network
    with ``vgg19().features``' layout (default: ``vgg19(weights)``); it is not modified.
    ``init`` is ``"content"`` (as the book), ``"noise"``, or a starting image: a PIL image or a
    tensor (3, h, w) or (1, 3, h, w) in the book's normalised space, resized to the content's
    shape if it differs. ``callback(step, X, record)`` is called each step with the current image
    (1, 3, h, w) and the step's record; return True to stop.

    ``fast=True`` minimises the same objective (layers, loss weights, image size) sooner: L-BFGS
    with a line search on an image pyramid (the preset's objective with the sides halved down to
    about 32 pixels first, coarsest first, each result upsampled to start the next), the network in bfloat16 where the device
    has fast bfloat16 kernels (Gram matrices and losses stay float32), channels_last; see
    :mod:`d2lstyle.fast` for what each lever measured and :func:`d2lstyle.fast.schedule` for the
    budgets, which are fractions of ``num_steps``. Each record is one loss evaluation; those of
    the coarse levels have a smaller ``shape`` and their own loss values.

    ``stop_at_loss`` ends the loop as soon as the total loss at the full size is at or below it;
    the loss compared is float32 by the preset's definition (with a reduced-precision network it
    is re-evaluated in float32 before stopping), so the returned image's loss is at most
    ``stop_at_loss``.

    The same seed gives the same result on the CPU. A non-finite loss stops the loop with a
    warning and keeps the last image whose loss was finite; Ctrl-C returns the result so far. On
    a GPU, running out of memory raises :class:`d2lstyle.memory.DeviceMemoryError` whose one-line
    message names a size that would fit.
    """
    start = time.perf_counter()
    settings = get_preset(preset).with_overrides(
        image_shape=image_shape, size=size, num_steps=num_steps, optimizer=optimizer, lr=lr,
        content_layers=content_layers, style_layers=style_layers, content_weight=content_weight,
        style_weight=style_weight, tv_weight=tv_weight)
    if settings.num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, not {settings.num_steps}")
    if isinstance(init, str) and init not in ("content", "noise"):
        raise ValueError(f"init must be 'content', 'noise', a PIL image or a tensor, not {init!r}")
    if not isinstance(init, (str, Image.Image, torch.Tensor)):
        raise ValueError(f"init must be 'content', 'noise', a PIL image or a tensor, "
                         f"not a {type(init).__name__}")
    if isinstance(init, torch.Tensor) and not (init.dim() in (3, 4) and init.shape[-3] == 3
                                               and (init.dim() == 3 or init.shape[0] == 1)):
        raise ValueError(f"init tensor must be (3, h, w) or (1, 3, h, w), not {tuple(init.shape)}")
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

    amp_dtype = autocast_dtype(device) if fast else None
    if fast:
        # The objective is the preset's; only the way to its minimum changes (see d2lstyle.fast).
        stages = schedule(content_shape, settings.num_steps, min_side(layers))
        settings = replace(settings, optimizer="lbfgs", lr=1.0, lr_decay_step=None,
                           num_steps=fast_steps(settings.num_steps))
    else:
        stages = [(content_shape, settings.num_steps)]

    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        if net is None:
            net = vgg19(weights, pooling=settings.pooling)
        net = _on_device(truncate(net, layers), device)
        if fast:
            net = prepare_network(net)
        try:
            X, history, stopped = _stages(stages, content_img, style_img, content_shape, style_shape,
                                          net, settings, device, amp_dtype, fast, init, seed,
                                          stop_at_loss, callback, progress, start)
        except torch.OutOfMemoryError:  # torch.cuda.OutOfMemoryError is this class
            # Raised outside the handler so that the failed step's tensors are freed first.
            oom = True
        else:
            oom = False
        if oom:
            raise DeviceMemoryError(out_of_memory_message(
                device, content_shape, layers, free_memory(device),
                element_size=2 if amp_dtype is not None else 4)) from None

    final = X.detach().cpu()
    return Result(image=postprocess(final), tensor=final, history=history, settings=settings,
                  stopped=stopped)


class Objective:
    """The preset's loss for one image size: targets computed once, then ``terms(X)``.

    ``amp_dtype`` runs the network under autocast in that dtype; its features are cast to float32
    before the Gram matrices and losses, which are computed with autocast off. ``channels_last``
    feeds the network that memory format (the image ``X`` itself stays contiguous).
    """

    def __init__(self, net, content_img, style_img, content_shape, style_shape, settings: Preset,
                 device, amp_dtype=None, channels_last=False):
        self.net, self.settings, self.device = net, settings, device
        self.amp_dtype, self.channels_last = amp_dtype, channels_last
        dtype = next(net.parameters()).dtype  # float32, or float64 for exact comparisons
        self.content_X = preprocess(content_img, content_shape).to(device, dtype)  # (1, 3, h, w)
        style_X = preprocess(style_img, style_shape).to(device, dtype)
        with torch.no_grad():  # targets are constants: no graph needed
            self.contents_Y, _ = self.features(self.content_X, settings.content_layers, [])
            _, styles_Y = self.features(style_X, [], settings.style_layers)
            self.styles_Y_gram = [gram(Y, settings.gram_normalize) for Y in styles_Y]

    def features(self, X, content_layers, style_layers, amp_dtype="default"):
        """:func:`extract_features` of ``X`` (1, 3, h, w), float32 whatever the network ran in;
        ``amp_dtype`` overrides the objective's (None: float32 throughout)."""
        amp_dtype = self.amp_dtype if amp_dtype == "default" else amp_dtype
        if self.channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        if amp_dtype is None:
            return extract_features(X, self.net, content_layers, style_layers)
        with torch.autocast(self.device.type, dtype=amp_dtype):
            contents, styles = extract_features(X, self.net, content_layers, style_layers)
        return [Y.float() for Y in contents], [Y.float() for Y in styles]

    def terms(self, X, amp_dtype="default"):
        """``(contents_l, styles_l, tv_l, l)`` of :func:`compute_loss` at the image ``X``."""
        contents_Y_hat, styles_Y_hat = self.features(
            X, self.settings.content_layers, self.settings.style_layers, amp_dtype)
        with torch.autocast(self.device.type, enabled=False):  # Grams and losses in float32
            return compute_loss(X, contents_Y_hat, styles_Y_hat, self.contents_Y,
                                self.styles_Y_gram, self.settings)

    def float32_loss(self, X) -> float:
        """The total loss at ``X`` with the network in float32 (no graph)."""
        with torch.no_grad():
            return float(self.terms(X, amp_dtype=None)[3])


def initial_image(init, objective: Objective, seed: int) -> torch.Tensor:
    """The starting image for ``objective``'s shape: its content, noise, or ``init`` resized."""
    content_X = objective.content_X
    if isinstance(init, str) and init == "content":
        return content_X.clone()
    if isinstance(init, str):  # "noise"
        return torch.randn(content_X.shape, generator=torch.Generator().manual_seed(seed)).to(
            content_X)
    if isinstance(init, Image.Image):
        return preprocess(init, tuple(content_X.shape[-2:])).to(content_X)
    return resize_image(init.detach().to(content_X).reshape(1, 3, *init.shape[-2:]),
                        tuple(content_X.shape[-2:]))


def resize_image(X: torch.Tensor, shape) -> torch.Tensor:
    """(1, 3, h, w) resized to ``shape`` bilinearly (a copy even when the shape is the same)."""
    if tuple(X.shape[-2:]) == tuple(shape):
        return X.clone()
    return nn.functional.interpolate(X, size=tuple(shape), mode="bilinear", align_corners=False)


# With a reduced-precision network, the float32 loss is evaluated (one extra forward pass) only
# once the cheap loss is within this fraction of stop_at_loss.
STOP_CHECK_MARGIN = 0.05


def _stages(stages, content_img, style_img, content_shape, style_shape, net, settings, device,
            amp_dtype, fast, init, seed, stop_at_loss, callback, progress, start):
    """Run each ``(shape, steps)`` stage, the last at the full size; returns ``(X, history, stopped)``."""
    history, stopped, X = [], None, None
    bar = _progress_bar(sum(steps for _, steps in stages), progress)
    try:
        for number, (shape, steps) in enumerate(stages):
            last_stage = number == len(stages) - 1
            scale = (shape[0] / content_shape[0], shape[1] / content_shape[1])
            objective = Objective(net, content_img, style_img, shape,
                                  (round(style_shape[0] * scale[0]), round(style_shape[1] * scale[1])),
                                  settings, device, amp_dtype, channels_last=fast)
            X = initial_image(init, objective, seed) if X is None else resize_image(X.detach(), shape)
            X.requires_grad_(True)
            optimise = _optimise_fast if fast else _optimise
            stopped = optimise(X, objective, settings, steps, stop_at_loss if last_stage else None,
                               callback, bar, history, start)
            if stopped is not None:
                break
    finally:
        if bar is not None:
            bar.close()
    if tuple(X.shape[-2:]) != tuple(content_shape):  # stopped during a coarse stage
        X = resize_image(X.detach(), content_shape)
    return X, history, stopped


def _optimise(X, objective: Objective, settings: Preset, num_steps: int, stop_at_loss, callback,
              bar, history: list, start: float):
    """The book's training loop on the image ``X`` (modified in place); returns why it stopped
    early, or None. Appends one record per step to ``history``."""
    trainer, scheduler = make_optimizer(X, settings)
    step0 = len(history)
    shape = tuple(X.shape[-2:])
    last_finite = X.detach().clone()
    try:
        for step in range(step0, step0 + num_steps):
            trainer.zero_grad()
            contents_l, styles_l, tv_l, l = objective.terms(X)
            l.backward()
            record = _record(step, contents_l, styles_l, tv_l, l, time.perf_counter() - start, shape)
            history.append(record)
            if not math.isfinite(record["total"]):
                stopped = f"loss became non-finite at step {step}; kept the last finite image"
                warnings.warn(f"d2lstyle: {stopped} (try a smaller lr or loss weights)",
                              RuntimeWarning, stacklevel=4)
                X.data.copy_(last_finite)
                return stopped
            last_finite = X.detach().clone()
            _show(bar, record)
            if stop_at_loss is not None and _reached(X, objective, record, stop_at_loss):
                return (f"reached loss {record.get('total_float32', record['total']):.6g} "
                        f"<= {stop_at_loss:g} at step {step}")
            if callback is not None and callback(step, X.detach(), record):
                return f"stopped by callback at step {step}"
            trainer.step(lambda: l)  # L-BFGS reuses this step's loss and gradient
            if scheduler is not None:
                scheduler.step()
    except KeyboardInterrupt:
        if not torch.isfinite(X.detach()).all():
            X.data.copy_(last_finite)
        return f"interrupted after {len(history)} steps"
    return None


class _Stop(Exception):
    """Ends :func:`_optimise_fast` from inside the optimiser's closure; ``reason`` as ``stopped``."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _optimise_fast(X, objective: Objective, settings: Preset, num_evaluations: int, stop_at_loss,
                   callback, bar, history: list, start: float):
    """L-BFGS with a strong-Wolfe line search on the image ``X``, one record per loss evaluation.

    Without a line search, L-BFGS stalled on the 'd2l' objective after a coarse stage (its first
    step is scaled by 1 / |gradient|_1, which is ~1e-10 at losses of 1e10, and it never recovered),
    so each iteration searches; every evaluation counts against ``num_evaluations``. A line search
    tries points that can be worse than the current one, so ``X`` ends as the best image evaluated.
    Returns why the loop stopped early, or None.
    """
    # One step() call for the whole stage: with max_iter=1 per call, every call re-evaluates the
    # point the previous line search ended on, doubling the evaluations.
    trainer = torch.optim.LBFGS([X], lr=settings.lr, max_iter=num_evaluations + 1,
                                max_eval=2 * num_evaluations + 2, history_size=100,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                tolerance_change=0.0)
    shape = tuple(X.shape[-2:])
    end = len(history) + num_evaluations
    best = {"loss": math.inf, "X": X.detach().clone()}

    def closure():
        trainer.zero_grad()
        contents_l, styles_l, tv_l, l = objective.terms(X)
        l.backward()
        step = len(history)
        record = _record(step, contents_l, styles_l, tv_l, l, time.perf_counter() - start, shape)
        history.append(record)
        if not math.isfinite(record["total"]):
            raise _Stop(f"loss became non-finite at step {step}; kept the best finite image")
        if record["total"] < best["loss"]:
            best["loss"], best["X"] = record["total"], X.detach().clone()
        _show(bar, record)
        if stop_at_loss is not None and _reached(X, objective, record, stop_at_loss):
            raise _Stop(f"reached loss {record.get('total_float32', record['total']):.6g} "
                        f"<= {stop_at_loss:g} at step {step}")
        if callback is not None and callback(step, X.detach(), record):
            raise _Stop(f"stopped by callback at step {step}")
        if len(history) >= end:
            raise _Stop(None)
        return l

    reason = None
    try:
        trainer.step(closure)  # ends with _Stop at the latest after num_evaluations evaluations
    except _Stop as stop:
        reason = stop.reason
    except KeyboardInterrupt:
        reason = f"interrupted after {len(history)} steps"
    if reason is not None and reason.startswith("loss became non-finite"):
        warnings.warn(f"d2lstyle: {reason}", RuntimeWarning, stacklevel=4)
    if reason is None or not reason.startswith("reached loss"):
        X.data.copy_(best["X"])  # the best image seen, not the line search's last trial
    return reason


def _record(step: int, contents_l, styles_l, tv_l, l, seconds: float, shape) -> dict:
    """One entry of ``Result.history``: the weighted terms of :func:`compute_loss` as Python floats
    (each summed over its layers), the step, ``seconds`` since the call began and the image's (h, w)."""
    return {"step": step, "content": sum((float(t.detach()) for t in contents_l), 0.0),
            "style": sum((float(t.detach()) for t in styles_l), 0.0),
            "tv": float(tv_l.detach()), "total": float(l.detach()), "time": seconds, "shape": shape}


def _show(bar, record: dict) -> None:
    """Advance the progress bar (None when off) by one step, showing the three terms."""
    if bar is not None:
        bar.set_postfix({k: f"{record[k]:.3g}" for k in ("content", "style", "tv")}, refresh=False)
        bar.update()


def _reached(X, objective: Objective, record: dict, stop_at_loss: float) -> bool:
    """Whether the image ``X`` has a float32 loss at most ``stop_at_loss``. In float32 the step's
    own loss is that loss (free); otherwise it is re-evaluated once the cheap one is close."""
    if objective.amp_dtype is None:
        return record["total"] <= stop_at_loss
    if record["total"] > stop_at_loss * (1 + STOP_CHECK_MARGIN):
        return False
    record["total_float32"] = objective.float32_loss(X)
    return record["total_float32"] <= stop_at_loss


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
