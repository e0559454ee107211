"""Natives that list files: unquoted globs and the ``find`` commands of test.sh.

Each ``find`` native stands for one find expression, and they differ in what they print
and how they fail, so they stay apart:

- ``find_tests``: ``find FOLDER -name 'test_*.py'``, rewritten as test names (a list);
- ``find_file``: ``find FOLDER -name NAME``, full paths one a line (a string, cached);
- ``find_first_file``: ``find FOLDER -maxdepth 1 -name PATTERN -type f | head -1``;
- ``executables``: ``find FOLDER -maxdepth 1 -executable -name PATTERN`` (a list).
"""

from __future__ import annotations

import fnmatch
import functools
import glob as _glob
import os
from pathlib import Path

from ._common import strerror
from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("glob")
def _glob_words(ctx: NativeContext, pattern: str) -> list[str]:
    """An unquoted glob: the sorted matches, or the pattern itself when none match."""
    matches = sorted(_glob.glob(pattern, root_dir=ctx.cwd))
    return matches or [pattern]


@native("existing_files")
def _existing_files(ctx: NativeContext, pattern: str) -> list[str]:
    """A glob's matches that are regular files (``[ -f "$f" ] || continue``). In a
    condition: true when a regular file matches."""
    return sorted(m for m in _glob.glob(pattern, root_dir=ctx.cwd) if Path(ctx.cwd, m).is_file())


@native("any_match")
def _any_match(ctx: NativeContext, pattern: str) -> str:
    """``ls PATTERN 1>/dev/null 2>&1`` as a test: ``1`` when anything matches the glob."""
    return "1" if _glob.glob(pattern, root_dir=ctx.cwd) else ""


@native("find_tests")
def _find_tests(ctx: NativeContext, folder: str, prefix: str) -> list[str]:
    """``find FOLDER -name 'test_*.py'`` as ``PREFIX<relative path without .py>``, sorted."""
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    found = [
        prefix + str(p.relative_to(base))[: -len(".py")]
        for p in base.rglob("test_*.py")
        if p.is_file()
    ]
    return sorted(found)


@native("executables")
def _executables(
    ctx: NativeContext, folder: str, pattern: str = "*", prefix: str | None = None, test: str = ""
) -> list[str]:
    """``find FOLDER -maxdepth 1 -executable -name PATTERN``: the executable entries
    directly in FOLDER, sorted, each as ``PREFIX<name>`` (PREFIX is ``FOLDER/`` unless
    given). With TEST ``-f`` only regular files (or links to them) count, as with
    ``[ -f ]``. Nothing when FOLDER is not a folder.
    """
    if test not in ("", "-f"):
        raise NativeError(f"executables: test {test!r} is neither empty nor -f")
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    shown = f"{folder.rstrip('/')}/" if prefix is None else prefix
    return sorted(
        shown + p.name
        for p in base.iterdir()
        if fnmatch.fnmatchcase(p.name, pattern)
        and (not test or p.is_file())
        and os.access(p, os.X_OK)
    )


@native("find_file")
def _find_file(ctx: NativeContext, folder: str, name: str) -> str:
    """``find FOLDER -name NAME``: the matches, one a line. A plan reuses what an earlier
    plan of this process found (a folder such as a Python's lib can hold a lot)."""
    base = ctx.path(folder)
    if not base.is_dir():
        return ""
    if ctx.planning:
        return _find_file_cached(str(base.resolve()), name)
    return "\n".join(str(p) for p in sorted(base.rglob(name)))


@functools.lru_cache(maxsize=64)
def _find_file_cached(base: str, name: str) -> str:
    return "\n".join(str(p) for p in sorted(Path(base).rglob(name)))


@native("find_first_file")
def _find_first_file(ctx: NativeContext, folder: str, pattern: str) -> str:
    """``find FOLDER -maxdepth 1 -name PATTERN -type f | head -1`` (in directory order).

    A folder that cannot be listed fails (``pipefail``); when planning, it has no files.
    """
    base = ctx.path(folder)
    try:
        with os.scandir(base) as entries:
            for entry in entries:
                if fnmatch.fnmatchcase(entry.name, pattern) and entry.is_file(
                    follow_symlinks=False
                ):
                    return f"{folder.rstrip('/')}/{entry.name}"
    except OSError as exc:
        if ctx.planning:
            return ""
        raise NativeError(f"find: '{folder}': {strerror(exc)}") from None
    return ""
