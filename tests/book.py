"""Our re-statement of D2L 14.12's network and feature loop, as a reference for the tests.

The book reads torchvision's ``vgg19().features``, whose ReLUs are in-place, by bare indices; the
tests compare d2lstyle against this to show the 'd2l' preset and ``book_layers`` reproduce it.
"""

from torch import nn

CONTENT_LAYERS, STYLE_LAYERS = [25], [0, 5, 10, 19, 28]


def book_net(net: nn.Sequential) -> nn.Sequential:
    """``net``'s modules (weights shared) with in-place ReLUs, cut after index 28 as the book does."""
    modules = [nn.ReLU(inplace=True) if isinstance(m, nn.ReLU) else m for m in net]
    return nn.Sequential(*modules[: max(CONTENT_LAYERS + STYLE_LAYERS) + 1])


def book_extract_features(net, X, content_layers, style_layers):
    """The book's loop over every module, keeping outputs at the given indices."""
    contents, styles = [], []
    for i in range(len(net)):
        X = net[i](X)
        if i in style_layers:
            styles.append(X)
        if i in content_layers:
            contents.append(X)
    return contents, styles
