"""The errors d2lstyle raises on purpose: each message is one line that names the culprit.

The command line prints that line and exits non-zero (see :mod:`d2lstyle.cli`); the library raises
the same errors, so a notebook gets the same words.
"""


class ImageLoadError(ValueError):
    """A file or URL that is not a usable image; the message names it."""


class WeightsUnavailableError(RuntimeError):
    """The requested pretrained weights could not be obtained (for example: no network)."""


class DeviceMemoryError(RuntimeError):
    """A run that does not fit in the device's memory; the message says what would."""


class SettingError(ValueError):
    """A setting out of its range (a negative loss weight, no layers, an unknown device, ...);
    the message names it as the library's argument and as the command line's option."""


class ModelError(ValueError):
    """A feed-forward model that cannot be had: an unknown name, a missing file, a file that is
    not a d2lstyle model; the message names it (and, for a name, the names there are)."""
