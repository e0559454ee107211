"""Helpers the operation modules share (no natives here): reading a file as the shell's
redirections do, bash's integers, and an OSError's message as the tools print it."""

from __future__ import annotations

import errno
import os

from .registry import NativeContext, NativeError

__all__ = ["bash_int", "read_lines", "read_text", "strerror"]


def read_text(ctx: NativeContext, path: str) -> str | None:
    """The text of ``path`` (undecodable bytes replaced), or None when it cannot be read."""
    try:
        return ctx.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_lines(text: str) -> list[str]:
    """The lines ``while IFS= read -r line`` reads: a last line without newline is left out."""
    return text.split("\n")[:-1]


def bash_int(value: str, what: str) -> int:
    """``value`` in an arithmetic expansion: empty is 0, anything else must be an integer."""
    raw = value.strip()
    if raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        raise NativeError(f"{what}={raw!r}: not an integer in an arithmetic expansion") from None


def strerror(exc: OSError) -> str:
    """The message a tool prints for ``exc`` ("No such file or directory")."""
    return exc.strerror or os.strerror(exc.errno or errno.EIO)
