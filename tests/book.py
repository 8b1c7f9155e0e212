"""The book's network, feature loop, loss and training loop (D2L 14.12), as a reference for the tests.

The book reads torchvision's ``vgg19().features``, whose ReLUs are in-place, by bare indices; the
tests compare d2lstyle against this to show the 'd2l' preset and ``book_layers`` reproduce it. The
re-statement lives in :mod:`d2lstyle.benchmark`, whose baseline is the same loop; it shares no
code with :func:`d2lstyle.transfer` or :func:`d2lstyle.extract_features`.
"""

import torch

from d2lstyle.benchmark import BOOK_CONTENT_LAYERS as CONTENT_LAYERS
from d2lstyle.benchmark import BOOK_STYLE_LAYERS as STYLE_LAYERS
from d2lstyle.benchmark import (book_compute_loss, book_extract_features, book_gram,  # noqa: F401
                                book_loop, book_net)
from d2lstyle.images import preprocess


def book_loss(net, content_img, style_img, X: torch.Tensor) -> torch.Tensor:
    """The book's total loss (D2L 14.12, weights 1 / 1e4 / 10) at the image ``X`` (1, 3, h, w):
    both images resized to X's shape, everything in X's dtype; differentiable in ``X``."""
    net = book_net(net)
    shape = tuple(X.shape[-2:])
    with torch.no_grad():  # the targets, as the book computes them once
        contents_Y, _ = book_extract_features(net, preprocess(content_img, shape).to(X),
                                              CONTENT_LAYERS, [])
        _, styles_Y = book_extract_features(net, preprocess(style_img, shape).to(X), [], STYLE_LAYERS)
    contents_hat, styles_hat = book_extract_features(net, X, CONTENT_LAYERS, STYLE_LAYERS)
    return book_compute_loss(X, contents_hat, styles_hat, contents_Y, [book_gram(Y) for Y in styles_Y])
