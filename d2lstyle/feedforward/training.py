"""Training a :class:`TransformNet` for one style with the package's own perceptual loss.

Johnson et al. (2016) train the network so that its output, for any photo, has a low style
transfer loss: the content term against *that photo's* features, the style term against *one*
style image's Gram matrices, and total variation. The loss is exactly the one
:func:`d2lstyle.transfer` minimises (:func:`d2lstyle.compute_loss` on the frozen VGG19, the
'gatys' preset's layers), averaged over a batch of random crops; only what is optimised changes:
the network's weights, once, instead of one image's pixels, every time.

``train`` can stop and carry on: with ``checkpoint=PATH`` it writes the network, the optimiser,
the step, the random generator's state and the history there every ``checkpoint_every`` steps
(atomically: a temporary file, then a rename) and, with ``resume=True``, starts from that file if
it exists. An interrupted and resumed run gives the same network, bit for bit on the CPU, as one
that ran straight through.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from PIL import Image
from torch import nn

from ..atomic import atomic_path
from ..devices import try_device
from ..errors import SettingError
from ..features import extract_features
from ..images import fit_longest_side, load_image, preprocess
from ..losses import gram
from ..objective import compute_loss
from ..style_transfer import on_device
from ..validation import check_seed, check_sizes, checked_settings, positive, whole_number
from ..vgg import IMAGENET_MEAN, IMAGENET_STD, layer_index, min_side, truncate, vgg19
from .network import Architecture, TransformNet
from .photos import RandomCrops, get_photos

CHECKPOINT_FORMAT = "d2lstyle.feedforward.checkpoint"


def style_targets(net: nn.Module, style_img: Image.Image, style_shape, settings, device):
    """The style image's Gram matrices at the preset's style layers, one (1, c, c) each."""
    style_X = preprocess(style_img, style_shape).to(device)  # (1, 3, h, w)
    with torch.no_grad():
        _, styles_Y = extract_features(style_X, net, [], settings.style_layers)
    return [gram(Y, settings.gram_normalize) for Y in styles_Y]


def train(style, photos="builtin", *, size: int = 256, steps: int = 1000, batch_size: int = 4,
          lr: float = 1e-3, content_weight: Optional[float] = None,
          style_weight: Optional[float] = None, tv_weight: Optional[float] = None,
          style_size: Optional[int] = None, architecture: Architecture = Architecture(),
          preset="gatys", net: Optional[nn.Module] = None, weights="original", seed: int = 0,
          device=None, callback: Optional[Callable] = None, progress: bool = True,
          checkpoint: Optional[str | os.PathLike] = None, checkpoint_every: int = 50,
          resume: bool = True):
    """Train a :class:`TransformNet` to render photos in the style of ``style``.

    ``style``: a PIL image, path or URL. ``photos``: ``"builtin"`` (the photos that ship with
    scikit-image, :mod:`d2lstyle.feedforward.photos`), a folder, or a list of images. Each of the
    ``steps`` Adam steps (learning rate ``lr``) draws ``batch_size`` random ``size`` x ``size``
    crops and minimises the mean over them of :func:`d2lstyle.compute_loss` for the preset's
    layers and weights ('gatys': content relu4_2, style relu1_1..relu5_1; ``content_weight``,
    ``style_weight``, ``tv_weight`` override its weights), the content target being each crop's
    own features and the style target the Gram matrices of ``style`` resized to longest side
    ``style_size`` (default: ``size``). ``net`` is the frozen VGG19 (default ``vgg19(weights)``).

    ``callback(step, model, record)`` is called after each step; return True to stop.
    ``checkpoint``, ``checkpoint_every``, ``resume``: see the module's docstring.

    Returns ``(model, history)``: the network on the CPU, and one dict per step with the
    weighted terms ``content``, ``style``, ``tv``, ``total`` (means over the batch), ``step``
    and ``time`` (seconds of training so far).
    """
    settings = checked_settings(preset, content_weight=content_weight, style_weight=style_weight,
                                tv_weight=tv_weight)
    layers = settings.content_layers + settings.style_layers
    size = whole_number("size", size, min_side(layers))
    steps = whole_number("steps", steps, 1)
    batch_size = whole_number("batch_size", batch_size, 1)
    checkpoint_every = whole_number("checkpoint_every", checkpoint_every, 1)
    positive("lr", lr)
    seed = check_seed(seed)
    style_size = size if style_size is None else whole_number("style_size", style_size,
                                                              min_side(layers))
    device = try_device(device)
    style_img = load_image(style)
    photo_imgs = get_photos(photos)
    config = {"size": size, "batch_size": batch_size, "lr": lr, "seed": seed,
              "style_size": style_size, "preset": settings.name,
              "content_weight": settings.content_weight, "style_weight": settings.style_weight,
              "tv_weight": settings.tv_weight, "architecture": architecture.as_dict(),
              "style_sha256": image_digest(style_img),
              "photos_sha256": [image_digest(img) for img in photo_imgs]}

    generator = torch.Generator().manual_seed(seed)  # every random crop comes from here
    with torch.random.fork_rng(devices=[]):  # the caller's RNG state is left as it was
        torch.manual_seed(seed)
        model = TransformNet(architecture).to(device)
        if net is None:
            net = vgg19(weights)  # (random weights, for tests, come from the seed too)
    net = on_device(truncate(net, layers), device)  # a copy if it lives elsewhere
    content_idx = [layer_index(layer) for layer in settings.content_layers]
    style_idx = [layer_index(layer) for layer in settings.style_layers]
    style_shape = fit_longest_side(*style_img.size, style_size)
    check_sizes([(style, style_shape)], layers)
    styles_Y_gram = style_targets(net, style_img, style_shape, settings, device)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    crops = RandomCrops(photo_imgs, size, generator)
    history, done = [], 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        done, history = load_checkpoint(checkpoint, config, model, optimizer, generator)

    bar = None
    if progress and done < steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=done, unit="step", leave=False)
    start = time.perf_counter() - (history[-1]["time"] if history else 0.0)
    model.train()
    try:
        for step in range(done, steps):
            X = (crops.batch(batch_size).to(device) - mean) / std  # (n, 3, size, size), normalised
            with torch.no_grad():
                contents_Y, _ = extract_features(X, net, content_idx, [])
            Y_hat = model(X)                                       # (n, 3, size, size)
            contents_Y_hat, styles_Y_hat = extract_features(Y_hat, net, content_idx, style_idx)
            contents_l, styles_l, tv_l, l = compute_loss(Y_hat, contents_Y_hat, styles_Y_hat,
                                                         contents_Y, styles_Y_gram, settings)
            optimizer.zero_grad(set_to_none=True)
            l.backward()
            optimizer.step()
            record = {"step": step + 1, "content": float(sum(contents_l).detach()),
                      "style": float(sum(styles_l).detach()), "tv": float(tv_l.detach()),
                      "total": float(l.detach()),
                      "time": time.perf_counter() - start}
            if not math.isfinite(record["total"]):
                raise FloatingPointError(f"the loss became {record['total']} at step {step + 1}; "
                                         "try a smaller lr")
            history.append(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{record['total']:.4g}")
            if checkpoint is not None and (step + 1) % checkpoint_every == 0:
                save_checkpoint(checkpoint, config, step + 1, model, optimizer, generator, history)
            if callback is not None and callback(step + 1, model, record):
                break
    except KeyboardInterrupt:
        if checkpoint is not None and history and history[-1]["step"] > done:
            save_checkpoint(checkpoint, config, history[-1]["step"], model, optimizer, generator,
                            history)
        raise
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None and history and history[-1]["step"] > done:
        save_checkpoint(checkpoint, config, history[-1]["step"], model, optimizer, generator,
                        history)
    model = model.cpu().eval()
    model.requires_grad_(False)
    return model, history


def image_digest(img: Image.Image) -> str:
    """SHA-256 of an image's size and RGB pixels: a checkpoint is resumed only for the same data."""
    import hashlib

    digest = hashlib.sha256(f"{img.size}".encode())
    digest.update(img.tobytes())
    return digest.hexdigest()


def save_checkpoint(path, config: dict, step: int, model: nn.Module, optimizer, generator,
                    history: list) -> None:
    """Everything needed to carry on at ``step``, written atomically to ``path``."""
    state = {"format": CHECKPOINT_FORMAT, "config": config, "step": step,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "generator": generator.get_state(), "history": history}
    with atomic_path(path) as partial:
        torch.save(state, partial)


def load_checkpoint(path, config: dict, model: nn.Module, optimizer, generator):
    """Restore ``model``, ``optimizer`` and ``generator`` from ``path``; returns
    ``(step, history)``. A checkpoint of another run (other settings, style or photos) raises
    :class:`d2lstyle.errors.SettingError` naming the first difference."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise SettingError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SettingError(f"{path}: not a d2lstyle.feedforward checkpoint")
    for key, value in config.items():
        if state["config"].get(key) != value:
            what = "the style image" if key == "style_sha256" else (
                "the photos" if key == "photos_sha256" else f"{key}={state['config'].get(key)!r}")
            raise SettingError(f"{path}: a checkpoint of another run ({what}, not this run's); "
                               "delete it or give another checkpoint to start afresh")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return int(state["step"]), list(state["history"])
