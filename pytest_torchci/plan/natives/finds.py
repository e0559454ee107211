"""Natives that list files: unquoted globs and the ``find`` commands of test.sh.

Each expands as bash does on the tree it reads (:mod:`...data.bash`): globs in the C
collation's order and literal when nothing matches, unquoted results split on IFS and
pathname-expanded, ``-x``/``-executable`` by mode bits (``access``), any name (spaces,
newlines, leading dashes, glob characters, bytes that are not UTF-8). Each ``find``
native stands for one find command, and they differ in what they print and how they
fail, so they stay apart:

- ``find_tests``: ``$(find FOLDER -name 'test_*.py' -printf '%P\\n' | sed 's|\\.py$||;
  s|^|PREFIX|' | sort | tr '\\n' ' ')`` unquoted (a list of words);
- ``executables``: ``for f in "FOLDER"/PATTERN; do [[ -x $f ]] ...`` (sorted, a list),
  or with ``find`` as its fourth argument ``$(find FOLDER -maxdepth 1 -executable -name
  PATTERN)`` unquoted, in the order the file system lists the folder (a plan notes it);
- ``find_file``: ``find FOLDER -name NAME``, paths one a line in find's order (a string,
  cached);
- ``find_first_file``: ``find FOLDER -maxdepth 1 -name PATTERN -type f | head -1``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from ...data.bash import (
    c_sorted,
    glob_match,
    glob_names,
    glob_to_regex,
    pathname_expand,
    quoted_glob,
    split_fields,
)
from ._common import strerror
from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("glob")
def _glob_words(ctx: NativeContext, pattern: str) -> list[str]:
    """A glob: the matches in bash's order, or the pattern itself when none match. Parts
    in double quotes are literal, as in bash: ``@glob("$VAR"/lib*)`` takes the variable's
    value as it is, where in ``@glob($VAR/lib*)`` the value is part of the pattern."""
    if '"' in pattern:
        return quoted_glob(pattern, ctx.cwd)
    return pathname_expand(pattern, ctx.cwd)


@native("existing_files")
def _existing_files(ctx: NativeContext, pattern: str) -> list[str]:
    """A glob's words that are regular files (``[ -f "$f" ] || continue``). In a
    condition: true when a regular file matches."""
    return [m for m in pathname_expand(pattern, ctx.cwd) if ctx.path(m).is_file()]


@native("any_match")
def _any_match(ctx: NativeContext, pattern: str) -> str:
    """``ls PATTERN 1>/dev/null 2>&1`` as a test: ``1`` when ls finds every word of the
    glob (a glob that matched; or, matching nothing, a file named as the pattern)."""
    words = pathname_expand(pattern, ctx.cwd)
    return "1" if all(os.path.lexists(ctx.path(w)) for w in words) else ""


def _find_walk(base: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """What ``find BASE`` visits below BASE, in its order: depth first, each folder's
    entries in the order the file system lists them, a folder's own entries right after
    it; symbolic links are not followed (``-P``), and a folder that cannot be read is
    passed over (find says so and goes on). Yields each entry's path relative to BASE
    (``%P``) and the entry. One generator with a stack, not one per level: a Python's lib
    folder holds tens of thousands of entries, many levels deep."""
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = []
    with contextlib.suppress(OSError):
        stack.append(("", iter(list(os.scandir(base)))))
    while stack:
        rel, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        path = rel + entry.name
        yield path, entry
        if entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                stack.append((f"{path}/", iter(list(os.scandir(entry.path)))))


@native("find_tests")
def _find_tests(ctx: NativeContext, folder: str, prefix: str) -> list[str]:
    """``$(find FOLDER -name 'test_*.py' -printf '%P\\n' | sed 's|\\.py$||; s|^|PREFIX|'
    | sort | tr '\\n' ' ')``, unquoted: every entry named ``test_*.py`` below FOLDER
    (folders and links too: find has no ``-type``), one line each (a name holding a
    newline makes two), ``.py`` cut from the lines' ends, PREFIX put before them, the
    lines sorted by their bytes (``LANG=C.UTF-8``), then split on IFS and
    pathname-expanded as words. A FOLDER that is missing gives no word.
    """
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    printed = "".join(f"{rel}\n" for rel, e in _find_walk(base) if glob_match(e.name, "test_*.py"))
    lines = printed.split("\n")[:-1]
    edited = [prefix + (line[: -len(".py")] if line.endswith(".py") else line) for line in lines]
    return split_fields(" ".join(c_sorted(edited)), ctx.cwd)


def _executable(path: str | Path) -> bool:
    """``[[ -x PATH ]]`` and find's ``-executable``: ``access(X_OK)``, so a folder that
    may be searched counts, and a link counts as what it points to."""
    return os.access(path, os.X_OK)


def _find_executables(ctx: NativeContext, folder: str, pattern: str, shown: str) -> list[str]:
    """``$(find FOLDER -maxdepth 1 -executable -name PATTERN)`` unquoted: FOLDER itself
    and its entries whose name matches PATTERN (a leading ``.`` too, as ``-name`` does)
    and that are executable (folders too), as ``SHOWN<name>`` in the order the file
    system lists them, split on IFS and pathname-expanded. That order is the machine's:
    where two or more are found, the plan says so in a note. Nothing when FOLDER cannot
    be listed.
    """
    base = ctx.path(folder)
    try:
        with os.scandir(base) as it:
            entries = [e.name for e in it]
    except OSError:
        return []
    found = [folder] if glob_match(os.path.basename(folder.rstrip("/")), pattern) else []
    found = [f for f in found if _executable(base)]
    found += [
        shown + name
        for name in entries
        if glob_match(name, pattern) and _executable(os.path.join(base, name))
    ]
    if len(found) > 1:
        ctx.note(
            f"find {folder} -maxdepth 1 -executable -name {pattern!r}: {len(found)} found, "
            "in the order this file system lists the folder (unsorted in test.sh too, "
            "so another machine may run them in another order)"
        )
    return split_fields("\n".join(found), ctx.cwd)


@native("executables")
def _executables(
    ctx: NativeContext, folder: str, pattern: str = "*", prefix: str | None = None, test: str = ""
) -> list[str]:
    """The executables directly in FOLDER whose names match PATTERN, each as
    ``PREFIX<name>`` (PREFIX is ``FOLDER/`` unless given), found one of two ways:

    - TEST empty: ``for f in "FOLDER"/PATTERN; do [[ -x $f ]] || continue; ...
      PREFIX$(basename "$f")``: the glob's matches (no hidden names; sorted in the C
      collation), those executable (folders too; ``$(basename)`` drops a name's trailing
      newlines). With TEST ``-f`` only regular files (or links to them) count, as with
      ``[ -f ]``. Nothing when FOLDER is not a folder (the literal pattern is not
      executable).
    - TEST ``find``: ``$(find FOLDER -maxdepth 1 -executable -name PATTERN)`` unquoted,
      in the file system's order (see :func:`_find_executables`).
    """
    if test not in ("", "-f", "find"):
        raise NativeError(f"executables: test {test!r} is neither empty nor -f (nor find)")
    shown = f"{folder.rstrip('/')}/" if prefix is None else prefix
    if test == "find":
        return _find_executables(ctx, folder, pattern, shown)
    base = ctx.path(folder)
    if not base.is_dir():
        return []
    return [
        shown + name.rstrip("\n")
        for name in _glob_names(base, pattern)
        if (not test or (base / name).is_file()) and _executable(base / name)
    ]


def _glob_names(base: Path, pattern: str) -> list[str]:
    """The names ``"BASE"/PATTERN`` gives in BASE, in bash's order; matching nothing, the
    pattern itself (bash's literal word), which a test on it then finds missing."""
    return glob_names(base, pattern) or [pattern]


@native("find_file")
def _find_file(ctx: NativeContext, folder: str, name: str) -> str:
    """``find FOLDER -name NAME``: the matches, one a line, each as find prints it (FOLDER
    as given, then the path below it), in find's order: depth first, each folder's
    entries in the order the file system lists them (where two or more are found, the
    plan says so in a note), links not followed. A plan reuses what an earlier plan of
    this process found (a folder such as a Python's lib can hold a lot)."""
    base = ctx.path(folder)
    if not base.is_dir():
        return ""
    found = (
        _find_named_cached(folder, str(base), name)
        if ctx.planning
        else _find_named(folder, str(base), name)
    )
    if len(found) > 1:
        ctx.note(
            f"find {folder} -name {name!r}: {len(found)} found, in the order this file "
            "system lists its folders (unsorted in test.sh too; another machine may list "
            "them in another order)"
        )
    return "\n".join(found)


def _find_named(shown: str, base: str, name: str) -> tuple[str, ...]:
    """What ``find SHOWN -name NAME`` prints, SHOWN being the folder ``base``."""
    matches = glob_to_regex(name).fullmatch
    found = [shown] if matches(os.path.basename(shown.rstrip("/")) or shown) else []
    joint = shown if shown.endswith("/") else f"{shown}/"
    found += [joint + rel for rel, entry in _find_walk(Path(base)) if matches(entry.name)]
    return tuple(found)


@functools.lru_cache(maxsize=64)
def _find_named_cached(shown: str, base: str, name: str) -> tuple[str, ...]:
    return _find_named(shown, base, name)


@native("find_first_file")
def _find_first_file(ctx: NativeContext, folder: str, pattern: str) -> str:
    """``find FOLDER -maxdepth 1 -name PATTERN -type f | head -1``: the first in the order
    the file system lists the folder (where two or more match, the plan says so in a
    note: another machine may list another first).

    A folder that cannot be listed fails (``pipefail``); when planning, it has no files.
    """
    base = ctx.path(folder)
    try:
        with os.scandir(base) as entries:
            found = [
                e.name
                for e in entries
                if glob_match(e.name, pattern) and e.is_file(follow_symlinks=False)
            ]
    except OSError as exc:
        if ctx.planning:
            return ""
        raise NativeError(f"find: '{folder}': {strerror(exc)}") from None
    if len(found) > 1:
        ctx.note(
            f"find {folder} -maxdepth 1 -name {pattern!r} -type f | head -1: {len(found)} "
            "match; the first in the order this file system lists the folder is taken "
            "(as test.sh takes it; another machine may list another first)"
        )
    return f"{folder.rstrip('/')}/{found[0]}" if found else ""
