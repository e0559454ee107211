"""Natives that test, read or write one named file: ``[ -f ]``, ``[ -s ]``, ``[ -d ]``,
``< FILE``, ``$(cat FILE)``, ``echo ... > FILE``.

Those that write do so only when a job runs (``ctx.planning`` false): planning a job
changes nothing on disk. Lists of files (globs, ``find``) are :mod:`.finds`.
"""

from __future__ import annotations

from ._common import strerror
from .registry import NativeContext, NativeError, native

__all__: list[str] = []


def _file_test(ctx: NativeContext, value: str, test: str, native_name: str) -> str:
    """``[ TEST PATH ]`` for TEST ``-f`` (a regular file) or ``-s`` (a non-empty one)."""
    if test not in ("-f", "-s"):
        raise NativeError(f"{native_name}: test {test!r} is neither -f nor -s")
    p = ctx.path(value)
    if not p.is_file():
        return ""
    return "1" if test == "-f" or p.stat().st_size > 0 else ""


@native("is_file")
def _is_file(ctx: NativeContext, value: str, test: str = "-f") -> str:
    """``[ -f PATH ]`` (a regular file), or with TEST ``-s`` a non-empty regular file:
    ``1`` when true, else empty."""
    return _file_test(ctx, value, test, "is_file")


@native("is_file_at_run")
def _is_file_at_run(ctx: NativeContext, value: str, test: str = "-f") -> str:
    """``@is_file(PATH, TEST)`` for a file that is there only when the suite runs: one
    the CI machine provides (``$ROCM_HOME/...``), or one an earlier command of the suite
    writes (the planner records that command without running it, as one that succeeds).

    True while planning (a plan may be made on a machine without it); the test is made for
    real when the suite runs.
    """
    if ctx.planning and test in ("-f", "-s"):
        return "1"
    return _file_test(ctx, value, test, "is_file_at_run")


@native("is_dir")
def _is_dir(ctx: NativeContext, value: str) -> str:
    """``[ -d PATH ]``: ``1`` when PATH is a folder, else empty (also for an empty PATH)."""
    return "1" if value and ctx.path(value).is_dir() else ""


@native("read_file")
def _read_file(ctx: NativeContext, path: str) -> str:
    """``< FILE``: a file's text (empty when planning and the file is not there)."""
    try:
        return ctx.path(path).read_text(encoding="utf-8")
    except OSError:
        if ctx.planning:
            return ""
        raise NativeError(f"cannot read {path}") from None


@native("cat_file")
def _cat_file(ctx: NativeContext, path: str) -> str:
    """``"$(cat PATH)"`` as a command's argument: the text less its trailing newlines, or
    empty when PATH cannot be read (cat's failure does not stop the command)."""
    try:
        return ctx.path(path).read_text(encoding="utf-8").rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return ""


def _echo_to(ctx: NativeContext, path: str, text: str, mode: str) -> str:
    if ctx.planning:
        return ""
    try:
        with open(ctx.path(path), mode, encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise NativeError(f"{path}: {strerror(exc)}") from None
    return ""


@native("echo_append")
def _echo_append(ctx: NativeContext, path: str, text: str) -> str:
    """``echo "TEXT" >> PATH``; nothing when planning."""
    return _echo_to(ctx, path, text, "a")


@native("echo_write")
def _echo_write(ctx: NativeContext, path: str, text: str) -> str:
    """``echo "TEXT" > PATH``; nothing when planning."""
    return _echo_to(ctx, path, text, "w")
