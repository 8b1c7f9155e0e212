"""Saving, loading and naming trained networks: ``save``, ``load``, ``pretrained``.

A model file is a ``torch.save`` of a plain dict: the format's name, the network's
:class:`~d2lstyle.feedforward.network.Architecture`, its weights (float16 by default: half the
size, and a picture that differs by at most a level or two of 255 from the float32 network's) and
a ``record`` of how it was made (command, seed, steps, data, licence, final loss). It is read with
``torch.load(weights_only=True)``, which unpickles tensors and plain containers only, never code,
so a model file from elsewhere cannot run anything.

The shipped models live in this package's ``models/`` folder, ``NAME.pt`` with ``NAME.json`` (the
same record, readable without torch) next to it.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import ModelError
from .network import Architecture, TransformNet

FORMAT = "d2lstyle.feedforward.model"


def save(model: TransformNet, path: str | os.PathLike, *, half: bool = True, **record) -> Path:
    """Write ``model`` to ``path`` (atomically: a temporary file, then a rename) with ``record``,
    keyword values that JSON can hold. ``half``: store the weights as float16. Returns the path."""
    # Plain JSON types only (a TypeError here, rather than a file torch.load(weights_only)
    # refuses: torch.__version__, for one, is a str subclass that would be pickled as a class).
    record = json.loads(json.dumps(record))
    state = {key: value.detach().cpu().half() if half and value.is_floating_point()
             else value.detach().cpu() for key, value in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as partial:
        torch.save({"format": FORMAT, "architecture": model.architecture.as_dict(),
                    "state_dict": state, "record": record}, partial)
    return path


def load(path: str | os.PathLike) -> TransformNet:
    """The network saved at ``path``: float32, on the CPU, eval mode, frozen; its ``record``
    attribute holds what was saved with it. Anything else raises
    :class:`d2lstyle.errors.ModelError` in one line naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one holding more than tensors and containers
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a d2lstyle model file ({reason[:200]})") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: not a d2lstyle model file (no {FORMAT!r} format mark)")
    try:
        architecture = Architecture(**{key: tuple(value) if isinstance(value, list) else value
                                       for key, value in data["architecture"].items()})
        model = TransformNet(architecture)
        model.load_state_dict({key: value.float() if value.is_floating_point() else value
                               for key, value in data["state_dict"].items()})
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        raise ModelError(f"{path}: a d2lstyle model file that does not fit the network "
                         f"({reason[:200]})") from error
    model.record = dict(data.get("record", {}))
    model.requires_grad_(False)
    return model.eval()


def models_folder() -> Path:
    """The folder of the shipped models, inside the installed package."""
    return Path(str(resources.files(__package__) / "models"))


def available() -> list[str]:
    """The names of the shipped models, sorted: what :func:`pretrained` accepts."""
    folder = models_folder()
    return sorted(path.stem for path in folder.glob("*.pt")) if folder.is_dir() else []


def pretrained(name: str) -> TransformNet:
    """A shipped model by name (``"swirls"``, ``"mosaic"``), offline. An unknown name raises
    :class:`d2lstyle.errors.ModelError`, one line listing the names there are."""
    names = available()
    if name not in names:
        there = ", ".join(names) if names else "none has been trained and shipped yet"
        raise ModelError(f"no shipped model named {name!r} (--model); available: {there}")
    return load(models_folder() / f"{name}.pt")


def get_model(model) -> TransformNet:
    """``model`` itself if it is a network; else a shipped model's name, or a model file's path
    (anything with a folder or the ``.pt`` suffix, or an existing file)."""
    if isinstance(model, torch.nn.Module):
        return model
    text = str(model)
    if isinstance(model, os.PathLike) or text.endswith(".pt") or os.sep in text or Path(text).is_file():
        return load(model)
    return pretrained(text)
