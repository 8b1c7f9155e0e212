"""Writing a file atomically: the reader sees the old file or the complete new one, never a part.

:func:`atomic_path` gives a temporary name in the same folder (so that the rename stays on one
file system); the caller writes there, and on success it is renamed onto the target; on any error
it is removed, and the target is left as it was.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield ``.NAME.PID.part`` beside ``path`` (its folder created if missing) to write to; then
    ``os.replace`` it onto ``path``. The temporary file never outlives the block."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
