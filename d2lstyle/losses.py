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
    # One (c, hw) @ (hw, c) product per image, the book's own kernel: a batched matmul rounds
    # differently, and Adam amplifies such last-bit differences within tens of steps.
    if n == 1:  # squeeze is a view: indexing's backward would fill and copy a (1, c, hw) grad
        G = _SelfProduct.apply(F.squeeze(0)).unsqueeze(0)  # (1, c, c)
    else:
        G = torch.stack([_SelfProduct.apply(f) for f in F])  # (n, c, c)
    if normalize == "chw":
        return G / (c * h * w)
    if normalize == "hw":
        return G / (h * w)
    raise ValueError(f"normalize must be 'chw' or 'hw', not {normalize!r}")


class _SelfProduct(torch.autograd.Function):
    """``F @ F.T`` for F (c, hw), with a backward of one matrix product instead of autograd's two.

    Autograd differentiates ``F @ F.T`` as a product of two different matrices: ``dG @ F`` plus
    ``dG.T @ F``. As both factors are ``F``, the gradient is ``(dG + dG.T) @ F``, one product.
    Profiled at 150x225 on the project's 2-core CPU, the 'd2l' preset's step spent 48 ms in
    matrix products with autograd's backward and 25 ms with this one, against about 0.4 s for the
    network's own forward and backward. (``(F.T @ S).T`` multiplies faster still, but its
    transposed layout made the convolutions' backward copy it, which cost more than it saved.)
    The backward is built from differentiable operations, so second derivatives work
    (``gradgradcheck`` in tests/test_losses.py).
    """

    @staticmethod
    def forward(ctx, F):
        ctx.save_for_backward(F)
        return F @ F.T

    @staticmethod
    def backward(ctx, dG):
        (F,) = ctx.saved_tensors
        return (dG + dG.T) @ F


def style_loss(Y_hat: torch.Tensor, gram_Y: torch.Tensor, normalize: str = "chw") -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``Y_hat`` (n, c, h, w) and ``gram_Y``.

    ``gram_Y`` is the style image's Gram matrix, (c, c) or (n, c, c), computed once beforehand
    with the same ``normalize``.
    """
    return torch.square(gram(Y_hat, normalize) - gram_Y.detach()).mean()


def tv_loss(Y_hat: torch.Tensor) -> torch.Tensor:
    """Total variation of images (n, c, h, w): half the mean absolute difference of vertical
    neighbours plus half that of horizontal ones (the book's anisotropic L1 form; Rudin et al. 1992).
    """
    vertical = torch.abs(Y_hat[:, :, 1:, :] - Y_hat[:, :, :-1, :]).mean()
    horizontal = torch.abs(Y_hat[:, :, :, 1:] - Y_hat[:, :, :, :-1]).mean()
    return 0.5 * (vertical + horizontal)
