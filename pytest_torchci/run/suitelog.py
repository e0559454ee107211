"""A unit's log file: what its commands printed, with a header line per command.

The log is written through its descriptor, with no buffer of its own: the lines this
process writes and what a child writes straight into the same open file (its stdout and
stderr) share one file offset, so they land in the order they happen.

An earlier run's log at the same path is written over in place, not removed or truncated
to nothing. On ext4, a file made right after another was removed, or truncated to nothing
and written again, costs 0.2 to 0.5 ms (the freed inode and blocks wait for the journal;
a file truncated to nothing is written out when it is closed); overwriting in place costs
under 0.03 ms. The earlier text is blanked (a short log written over with zeros by the
first write, in the same system call; a long one's blocks freed with ``fallocate`` when it
is opened), so a run killed mid-suite leaves its own output followed by zero bytes, never
the earlier run's lines; the log is cut to its length when it is closed. Where the path
holds anything but a regular file of this user's with one name (a link planted there),
or a long log's blocks cannot be freed, or another process holds the log (a second run of
the same suite on the same checkout, or a process an earlier run left writing into it:
each holds a lock on it while it has it open), the earlier file is removed and a new one
made.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import cast

from .libc import libc

__all__ = ["SuiteLog"]

_EUID = os.geteuid()
_ZEROED = 1 << 16  # an earlier log up to this long is zeroed by writing, a longer one freed
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


class SuiteLog:
    """The log file at ``path``, empty and open for writing and reading back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd, self._earlier = _open_log(path)  # the earlier log's length (0: none)
        # A short earlier log's text, zeroed by the first write (in the same system call).
        self._pad = self._earlier if self._earlier <= _ZEROED else 0

    def write(self, text: str, /) -> int:
        data = text.encode("utf-8", "replace")
        if self._pad > len(data):
            _write_all(self._fd, data + bytes(self._pad - len(data)))
            os.lseek(self._fd, len(data), os.SEEK_SET)
        else:
            _write_all(self._fd, data)
        self._pad = 0
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: every write goes straight to the file."""

    def fileno(self) -> int:
        """The descriptor, for a child to write into (the earlier text zeroed first)."""
        if self._pad:
            os.pwrite(self._fd, bytes(self._pad), 0)
            self._pad = 0
        return self._fd

    def readable(self) -> bool:
        return self._fd >= 0

    def __enter__(self) -> SuiteLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the log, cut to what this run wrote (what is left of an earlier, longer
        log, zeros by now, goes)."""
        if self._fd < 0:
            return
        try:
            if self._earlier:
                with contextlib.suppress(OSError):
                    end = os.lseek(self._fd, 0, os.SEEK_CUR)
                    if end < self._earlier:
                        os.ftruncate(self._fd, end)
        finally:
            os.close(self._fd)
            self._fd = -1


def _open_log(path: Path) -> tuple[int, int]:
    """A log at ``path`` open for reading and writing at offset 0, and the length of the
    earlier log it writes over (a long one's text freed already; see the module's
    docstring)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _new_log(path), 0
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # a symbolic link: replaced below
            raise
        return _new_log(path), 0
    try:
        st = os.fstat(fd)
        ours = stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == _EUID
        if ours and _hold(fd) and (st.st_size <= _ZEROED or _punch(fd, st.st_size)):
            return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return _new_log(path), 0


def _new_log(path: Path) -> int:
    """A new, empty file at ``path`` (whatever was there is removed first; never written
    through), its folder made if need be."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:  # the first log, or a suite removed test-reports/
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
    _hold(fd)
    return fd


def _hold(fd: int) -> bool:
    """Hold the log (an advisory lock, kept while this run or a process it started has
    the file open). False: someone else holds it, such as another run of the same suite
    on the same checkout, or a process an earlier run left writing into it; that log is
    left to its writer and this run gets a new file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held elsewhere, or a file system without locks: a new file is safe
        return False
    return True


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """The C library's ``fallocate``, or None without one."""
    try:
        function = libc().fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _punch(fd: int, size: int) -> bool:
    """Free the first ``size`` bytes of the file (they read back as zeros). False where
    the file system or the C library cannot."""
    fallocate = _fallocate()
    mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
    return fallocate is not None and fallocate(fd, mode, 0, size) == 0
