"""The Gram matrix with a cheaper backward: the same values as :func:`d2lstyle.losses.gram`.

Autograd differentiates ``F @ F.T`` as a product of two different matrices, ``dG @ F`` plus
``dG.T @ F``. Both factors are ``F``, so the gradient is ``(dG + dG.T) @ F``: one matrix product
instead of two. :func:`fast_gram` uses it, one (c, hw) @ (hw, c) product per image.
tests/test_losses.py checks it against :func:`d2lstyle.losses.gram` and autograd, first and second
derivatives; docs/performance.md has what it saves.
"""

from __future__ import annotations

import torch

from ..losses import gram_divisor


class SelfProduct(torch.autograd.Function):
    """``F @ F.T`` for F (c, hw), whose backward is one product, ``(dG + dG.T) @ F``; built from
    differentiable operations, so second derivatives work too."""

    @staticmethod
    def forward(ctx, F):
        ctx.save_for_backward(F)
        return F @ F.T

    @staticmethod
    def backward(ctx, dG):
        (F,) = ctx.saved_tensors
        return (dG + dG.T) @ F


def fast_gram(X: torch.Tensor, normalize: str = "chw") -> torch.Tensor:
    """:func:`d2lstyle.losses.gram` (same shapes, normalisation and values) through
    :class:`SelfProduct`: (n, c, h, w) -> (n, c, c); a single (c, h, w) gives (c, c)."""
    if X.dim() == 3:
        return fast_gram(X.unsqueeze(0), normalize)[0]
    n, c, h, w = X.shape
    F = X.reshape(n, c, h * w)  # (n, c, hw)
    if n == 1:  # squeeze is a view; indexing's backward would fill and copy a (1, c, hw) gradient
        G = SelfProduct.apply(F.squeeze(0)).unsqueeze(0)  # (1, c, c)
    else:
        G = torch.stack([SelfProduct.apply(f) for f in F])  # (n, c, c)
    return G / gram_divisor(c, h, w, normalize)
