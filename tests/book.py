"""The book's network, feature loop, loss and training loop (D2L 14.12), as a reference for the tests.

The book reads torchvision's ``vgg19().features``, whose ReLUs are in-place, by bare indices; the
tests compare d2lstyle against this to show the 'd2l' preset and ``book_layers`` reproduce it. The
re-statement lives in :mod:`d2lstyle.benchmark`, whose baseline is the same loop; it shares no
code with :func:`d2lstyle.transfer` or :func:`d2lstyle.extract_features`.
"""

from d2lstyle.benchmark import BOOK_CONTENT_LAYERS as CONTENT_LAYERS  # noqa: F401
from d2lstyle.benchmark import BOOK_STYLE_LAYERS as STYLE_LAYERS  # noqa: F401
from d2lstyle.benchmark import (book_compute_loss, book_extract_features, book_gram,  # noqa: F401
                                book_loop, book_net)
