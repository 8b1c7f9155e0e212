"""Where a run computes: the book's ``try_gpu`` idea for CUDA, Apple's MPS and the CPU."""

from __future__ import annotations

import torch

from .errors import SettingError


def try_device(device=None) -> torch.device:
    """``device`` as an available torch.device; None picks cuda, then mps, then cpu.

    A name torch does not know, a device this machine does not have, or a kind d2lstyle does not
    run on raises :class:`d2lstyle.errors.SettingError` in one line naming ``device`` (the command
    line's ``--device``) and what is available.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise SettingError(f"device (--device) {device!r} is not a device name; "
                           f"available here: {', '.join(available())}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) < count:
            return device
        reason = f"no such CUDA device here ({count} found)"
    elif device.type == "mps":
        if mps_available():
            return device
        reason = "MPS is not available here"
    else:
        reason = f"d2lstyle runs on cpu, cuda and mps, not {device.type}"
    raise SettingError(f"device (--device) {str(device)!r}: {reason}; "
                       f"available here: {', '.join(available())}")


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available() -> list[str]:
    """The device names this machine can run on, best first."""
    names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return names + (["mps"] if mps_available() else []) + ["cpu"]
