"""The C library, loaded once, for the few Linux calls the ``os`` module lacks: ``prctl``
(the subreaper), ``inotify`` (the XML window) and ``fallocate`` (a log's old text)."""

from __future__ import annotations

import ctypes
import functools

__all__ = ["libc"]


@functools.cache
def libc() -> ctypes.CDLL:
    """This process's C library, with ``errno`` kept for ``ctypes.get_errno``
    (``OSError`` where it cannot be loaded)."""
    return ctypes.CDLL(None, use_errno=True)
