"""A feed-forward stylizer (Johnson, Alahi & Fei-Fei 2016): train a network once per style, then
stylise any photo in one forward pass.

- :mod:`.network`: :class:`TransformNet`, the image transformation network;
- :mod:`.photos`: the training photos (offline, redistributable) and their random crops;
- :mod:`.training`: :func:`train`, with the package's own perceptual loss, resumable;
- :mod:`.models`: :func:`save`, :func:`load`, :func:`pretrained` (the shipped models by name);
- :mod:`.inference`: :func:`stylize`;
- ``python -m d2lstyle.feedforward train STYLE PHOTOS -o MODEL``: the training command.

Notebook 07 shows it working and compares it with :func:`d2lstyle.transfer`.
"""

from .inference import stylize
from .models import available, get_model, load, pretrained, save
from .network import Architecture, TransformNet
from .photos import HELD_OUT
from .training import train

__all__ = ["Architecture", "HELD_OUT", "TransformNet", "available", "get_model", "load",
           "pretrained", "save", "stylize", "train"]
