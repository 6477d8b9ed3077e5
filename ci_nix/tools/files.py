"""Reading files ci-nix did not write (a restored cache, the store) without trusting their kind."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """A regular file's bytes, opened without following a symlink: OSError when it cannot be
    opened, ValueError for anything else (a pipe or device would block or never end) or a file
    larger than limit bytes (MiB in the message)."""
    # O_NONBLOCK: opening a FIFO where a file should be must not hang the run
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = file.read() if limit is None else file.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ValueError(f"larger than {limit // (1024 * 1024)} MiB")
    return data
