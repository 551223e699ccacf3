"""Making files durable: directory fsyncs, and write-behind so that a final fsync is short.

Every actor that keeps what it acknowledged (the repository's documents, the imaging source's
instances) writes a file, fsyncs it, renames it and fsyncs the directory. Two helpers serve them:

* :func:`fsync_dir`: a new or renamed directory entry is durable only once its directory is
  fsynced (POSIX says nothing else makes it so).
* :class:`WriteBehind`: while a file is being written, hand the bytes written so far to the disk
  (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``: start write-out, do not wait). The fsync at
  the end then finds most of the data on its way or written, and returns sooner; the disk works
  while the network is still delivering the rest. It changes no guarantee: durability still
  comes only from the fsync. Where the call is missing (not Linux) it does nothing.

Public API::

    fsync_dir(directory, *, ignore_errors=False)
    WriteBehind(fd, *, every=WRITE_BEHIND_EVERY)    # .wrote(n)
    start_writeback(fd, offset, length) -> bool
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["WRITE_BEHIND_EVERY", "WriteBehind", "fsync_dir", "start_writeback"]

#: Start write-out each time this many bytes were written since the last start (256 KiB: a few
#: calls per megabyte, each a few microseconds).
WRITE_BEHIND_EVERY: Final = 256 << 10
#: linux/fs.h: SYNC_FILE_RANGE_WRITE, "initiate write-out of all dirty pages in the range".
_SYNC_FILE_RANGE_WRITE: Final = 2


def fsync_dir(directory: Path | str, *, ignore_errors: bool = False) -> None:
    """fsync a directory, so that the entries created or renamed in it survive a power cut."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        if ignore_errors:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not ignore_errors:
            raise
    finally:
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


#: The C function, looked up once (immutable after import).
_SYNC_FILE_RANGE: Final = _load_sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` of ``fd`` to disk, without
    waiting; False when the platform cannot (nothing happened, nothing is wrong)."""
    if _SYNC_FILE_RANGE is None or length <= 0:
        return False
    # A failure (a file system that does not support it) only means no head start.
    return _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


class WriteBehind:
    """Starts write-out of a file's data as it is written sequentially (see the module docs).

    Call :meth:`wrote` after each write with the number of bytes written; every ``every`` bytes
    the range written since the last call goes to the disk.
    """

    __slots__ = ("_fd", "_every", "_written", "_started")

    def __init__(self, fd: int, *, every: int = WRITE_BEHIND_EVERY) -> None:
        self._fd = fd
        self._every = every
        self._written = 0
        self._started = 0

    def wrote(self, length: int) -> None:
        self._written += length
        pending = self._written - self._started
        if pending >= self._every:
            start_writeback(self._fd, self._started, pending)
            self._started = self._written
