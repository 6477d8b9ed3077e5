"""Reading files ci-nix did not write (a restored cache, the store, a bundle) without trusting
their kind, and files the operator names on the command line (a key passed as `<(…)`)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import select
import stat
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, BinaryIO, cast

from ci_nix.errors import Cancelled
from ci_nix.tools import proc

_CHUNK = 1 << 16
PIPE_TIMEOUT = 30.0  # seconds a pipe the operator named may take to be written and closed
_CANCEL_POLL = 0.2  # how often a wait on such a pipe looks whether the run was cancelled


def open_regular(path: str | Path) -> BinaryIO:
    """A regular file opened for reading without following a symlink: OSError when it cannot
    be opened, ValueError for anything else (a pipe or device would block or never end)."""
    # O_NONBLOCK: opening a FIFO where a file should be must not hang the run
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise ValueError("not a regular file")
    return file


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """A regular file's bytes, opened without following a symlink: OSError when it cannot be
    opened, ValueError for anything else (a pipe or device would block or never end) or a file
    larger than limit bytes (MiB in the message)."""
    with open_regular(path) as file:
        data = file.read() if limit is None else file.read(limit + 1)
    return _bounded(data, limit)


def read_linked(path: str | Path, limit: int) -> bytes:
    """A regular file's bytes through any symlinks on the way (a repo's flake.lock or config may
    link to another file of it): OSError when it cannot be opened, ValueError where the link
    ends on anything but a regular file (a pull request's link to /dev/zero never ends, to a
    FIFO blocks) or the file has more than limit bytes."""
    return read_regular(os.path.realpath(path), limit)


def read_given(path: str | Path, limit: int, timeout: float | None = None) -> bytes:
    """A file the operator named on the command line: a symlink is followed (theirs to choose,
    and `<(…)` is /dev/fd/N); a pipe (process substitution, a FIFO) is read to its end, for at
    most `timeout` seconds (default PIPE_TIMEOUT: one nobody writes to or closes does not hang
    the run, nor a cancelled one: Cancelled); a regular file as it is. OSError when it cannot be
    opened, ValueError for another kind of file, a pipe not closed in time, or more than limit
    bytes."""
    return b"".join(given_chunks(path, limit, timeout))


def given_chunks(path: str | Path, limit: int, timeout: float | None = None
                 ) -> Iterator[bytes]:
    """read_given's bytes in pieces as they are read (the file opened at the first): a huge
    file or pipe is never held whole by the read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            size = 0
            while data := file.read(min(_CHUNK, limit + 1 - size)):
                size += len(data)
                if size > limit:
                    raise ValueError(_past(limit))
                yield data
            return
        if not stat.S_ISFIFO(mode):
            raise ValueError("not a file or a pipe")
        timeout = PIPE_TIMEOUT if timeout is None else timeout
        size, deadline = 0, time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ValueError(f"a pipe not written and closed within {timeout:g}s")
            signum = proc.cancelled()
            if signum is not None:  # SIGTERM: select() alone would resume its wait
                raise Cancelled(signum)
            # a read before select says so would take a FIFO no writer has opened yet for
            # its end
            if not select.select([fd], [], [], min(left, _CANCEL_POLL))[0]:
                continue
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            if not data:
                return
            size += len(data)
            if size > limit:
                raise ValueError(f"larger than {limit} bytes")
            yield data


class PastBound(ValueError):
    """A file ci-nix reads within a bound went past it (the message names the bound)."""


# the compressions `tarfile.open(mode="r:*")` reads, by their magic bytes
_UNPACKERS: tuple[tuple[bytes, Callable[[BinaryIO], io.BufferedIOBase]], ...] = (
    (b"\x1f\x8b", lambda file: gzip.GzipFile(fileobj=file)), (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile))


class _Unpacked:
    """A decompressing reader that stops past `limit` bytes (a compression bomb)."""

    def __init__(self, file: io.BufferedIOBase, limit: int) -> None:
        self.file, self.limit, self.done = file, limit, 0

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size if 0 <= size <= self.limit - self.done
                              else self.limit - self.done + 1)
        self.done += len(data)
        if self.done > self.limit:
            raise PastBound(f"unpacks to more than {self.limit // (1024 * 1024)} MiB")
        return data


def tar_names(path: str | Path, members: int, ratio: int) -> Iterator[str]:
    """The member names of a tar archive (plain, gzip, bzip2 or xz) a build wrote, in order:
    PastBound past `members` members (each one is kept in memory) or, compressed, past `ratio`
    times its own size unpacked; tarfile.TarError, OSError, EOFError, zlib.error or
    lzma.LZMAError for what is no such archive."""
    with open(path, "rb") as raw:
        magic = raw.read(6)
        raw.seek(0)
        unpack = next((opener for start, opener in _UNPACKERS if magic.startswith(start)), None)
        # compressed, it is read as a stream (a skip unpacks what it skips): bounded; plain,
        # a skip is a seek, and nothing is read past the file's end
        source = raw if unpack is None else cast(IO[bytes], _Unpacked(
            unpack(raw), ratio * max(os.fstat(raw.fileno()).st_size, _CHUNK)))
        with tarfile.open(fileobj=source, mode="r:" if unpack is None else "r|") as archive:
            for count, member in enumerate(archive, 1):
                if count > members:
                    raise PastBound(f"more than {members} members")
                yield member.name


def symlink_under(path: str | Path, roots: Sequence[str | Path]) -> Path | None:
    """The first symlink among path's components below any of `roots` (a checkout whose files
    a pull request decides), None when there is none; components above a root are not looked
    at (a machine's own /run/secrets may well be a link). Where a component lies is judged by
    where its directory really is: a path that reaches a checkout through a link above it
    (/tmp -> /private/tmp, a runner's work directory) is looked at all the same, and so is a
    link a `..` later climbs out of (`keys/../k.sec` opens what `keys` points to's parent)."""
    tops = [os.path.realpath(root) for root in roots]
    # not abspath: it drops `link/..` by the letters, while the system (and Nix, which opens
    # the path as it is given) goes up from where the link points; and cut at a NUL, as a C
    # program (Nix, given `secret-key=/w/r%00x`) opens the path (Python refuses it instead)
    target = Path(os.getcwd()) / str(path).split("\0", 1)[0]
    directory = Path(target.anchor)
    for part in target.parts[1:]:
        real = os.path.realpath(directory)
        directory = directory / part
        if not any(real == top or real.startswith(top.rstrip("/") + "/") for top in tops):
            continue
        try:
            if stat.S_ISLNK(os.lstat(directory).st_mode):
                return directory
        except OSError:
            return None  # not there: opening it fails and says so
    return None


def _bounded(data: bytes, limit: int | None) -> bytes:
    if limit is not None and len(data) > limit:
        raise ValueError(_past(limit))
    return data


def _past(limit: int) -> str:
    return f"larger than {limit // (1024 * 1024)} MiB" if limit >= 1 << 20 \
        else f"larger than {limit} bytes"
