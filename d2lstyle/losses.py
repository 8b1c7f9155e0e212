"""The three losses of neural style transfer (D2L section 14.12; Gatys et al. 2016).

Feature maps are (n, c, h, w). Every loss is a mean, so it does not grow with the image size, and
every function works on a batch (the book's ``gram`` is only right for a batch of one).
"""

from __future__ import annotations

import torch


def content_loss(Y_hat: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between features ``Y_hat`` and the fixed target ``Y``.

    The target is detached: it is a constant of the optimisation, never something to update.
    """
    return torch.square(Y_hat - Y.detach()).mean()


def gram(X: torch.Tensor, normalize: str = "chw") -> torch.Tensor:
    """Gram matrix of feature maps: (n, c, h, w) -> (n, c, c); a single (c, h, w) gives (c, c).

    Entry (i, j) is the inner product of channels i and j over all positions, divided by
    ``c * h * w`` as in the book (``normalize="chw"``) or by ``h * w`` (``"hw"``: the mean over
    positions of the product, so its scale is that of the features squared). Either way it does
    not depend on the image size.
    """
    if X.dim() == 3:
        return gram(X.unsqueeze(0), normalize)[0]
    n, c, h, w = X.shape
    F = X.reshape(n, c, h * w)  # (n, c, hw)
    return F @ F.transpose(1, 2) / gram_divisor(c, h, w, normalize)  # (n, c, c)


def gram_divisor(c: int, h: int, w: int, normalize: str = "chw") -> int:
    """What :func:`gram` divides by: ``c * h * w`` (``"chw"``, the book) or ``h * w`` (``"hw"``)."""
    if normalize not in ("chw", "hw"):
        raise ValueError(f"normalize must be 'chw' or 'hw', not {normalize!r}")
    return c * h * w if normalize == "chw" else h * w


def style_loss(Y_hat: torch.Tensor, gram_Y: torch.Tensor, normalize: str = "chw",
               gram=gram) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``Y_hat`` (n, c, h, w) and ``gram_Y``.

    ``gram_Y`` is the style image's Gram matrix, (c, c) or (n, c, c), computed once beforehand
    with the same ``normalize``. ``gram`` computes the Gram matrix (:func:`gram` by default;
    :func:`d2lstyle.speed.gram.fast_gram` gives the same values with a cheaper backward).
    """
    return torch.square(gram(Y_hat, normalize) - gram_Y.detach()).mean()


def gram_size(gram_Y: torch.Tensor) -> torch.Tensor:
    """How large a target Gram matrix is: the mean of its squared entries, ``||A||_F^2 / c^2``
    for a (c, c) target (the mean over all entries of a batch (n, c, c)). A target whose entries
    are all 0 (a layer that never fires on the style image) has no size to divide by: 1 then.
    """
    size = torch.square(gram_Y.detach()).mean()
    return torch.where(size > 0, size, torch.ones_like(size))


def relative_style_loss(Y_hat: torch.Tensor, gram_Y: torch.Tensor, normalize: str = "chw",
                        gram=gram) -> torch.Tensor:
    """:func:`style_loss` divided by :func:`gram_size` of the target: the relative squared error
    ``||G - A||_F^2 / ||A||_F^2`` of the Gram matrix ``G`` of ``Y_hat`` (n, c, h, w) against the
    target ``A``.

    It is 1 at ``Y_hat = 0`` and does not change when both images' features are multiplied by the
    same constant (a network on another scale) or with ``normalize``, so every layer's term starts
    on the same footing. This departs from Gatys et al. (2016, eq. 4), whose ``E_l`` grows with
    the fourth power of the layer's feature scale; notebook 03 and docs/layer-weights.md measure
    why that matters.
    """
    return style_loss(Y_hat, gram_Y, normalize, gram) / gram_size(gram_Y)


def tv_loss(Y_hat: torch.Tensor) -> torch.Tensor:
    """Total variation of images (n, c, h, w): half the mean absolute difference of vertical
    neighbours plus half that of horizontal ones (the book's anisotropic L1 form; Rudin et al. 1992).
    """
    vertical = torch.abs(Y_hat[:, :, 1:, :] - Y_hat[:, :, :-1, :]).mean()
    horizontal = torch.abs(Y_hat[:, :, :, 1:] - Y_hat[:, :, :, :-1]).mean()
    return 0.5 * (vertical + horizontal)
