"""Native value functions for the misc suites (registered with :func:`natives.native`).

What the python, distributed and inductor suites compute in test.sh with ``awk``,
``sort -V``, ``mktemp``, ``ls`` or parameter expansion, written in Python.
"""

from __future__ import annotations

import functools
import glob as _glob
import os
import re
import tempfile

from . import NativeContext, NativeError, native

__all__: list[str] = []


@native("mktemp_file")
def _mktemp_file(ctx: NativeContext, prefix: str = "tmp.") -> str:
    """``$(mktemp)``: a new empty file in the temporary folder (a placeholder when planning)."""
    if ctx.planning:
        return os.path.join(tempfile.gettempdir(), f"{prefix}XXXXXXXXXX")
    fd, path = tempfile.mkstemp(prefix=prefix)
    os.close(fd)
    return path


@native("sum_first_column")
def _sum_first_column(ctx: NativeContext, path: str) -> str:
    """``awk '{s+=$1} END {print s+0}' FILE``: the sum of each line's first field.

    A field that is not a number counts as its leading numeric part (awk's rule), or 0.
    A file that cannot be read fails as awk does; when planning, it counts as empty.
    """
    try:
        text = ctx.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        if ctx.planning:
            return "0"
        raise NativeError(f"awk: cannot open {path!r}") from None
    total = 0.0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        m = re.match(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", fields[0])
        if m:
            total += float(m.group(0))
    return str(int(total)) if total.is_integer() else f"{total:.6g}"


@native("any_match")
def _any_match(ctx: NativeContext, pattern: str) -> str:
    """``ls PATTERN 1>/dev/null 2>&1`` as a test: ``1`` when anything matches the glob."""
    return "1" if _glob.glob(pattern, root_dir=ctx.cwd) else ""


@native("strip")
def _strip(ctx: NativeContext, value: str, prefix: str, suffix: str = "") -> str:
    """``${VALUE#PREFIX}``, then ``%SUFFIX``, each with a literal PREFIX and SUFFIX."""
    if prefix and value.startswith(prefix):
        value = value[len(prefix) :]
    if suffix and value.endswith(suffix):
        value = value[: -len(suffix)]
    return value


# --- sort -V ------------------------------------------------------------------------------

_SUFFIX = re.compile(r"(?:\.[A-Za-z~][A-Za-z0-9~]*)*$")


def _order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """gnulib's ``verrevcmp``: Debian's version comparison of two strings."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and j < len(b) and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _filevercmp(a: str, b: str) -> int:
    """GNU ``sort -V``'s order (gnulib ``filevercmp``), bytes as the last resort."""
    if a == b:
        return 0
    if not a or not b:
        return -1 if not a else 1
    for special in (".", ".."):
        if a == special or b == special:
            return -1 if a == special else 1
    if a[0] == "." and b[0] != ".":
        return -1
    if b[0] == "." and a[0] != ".":
        return 1
    if a[0] == "." and b[0] == ".":
        a, b = a[1:], b[1:]
    a_pre = a[: _SUFFIX.search(a).start()]  # type: ignore[union-attr]
    b_pre = b[: _SUFFIX.search(b).start()]  # type: ignore[union-attr]
    result = _verrevcmp(a_pre, b_pre)
    if result == 0 and not (a_pre == a and b_pre == b):
        result = _verrevcmp(a, b)
    if result == 0:
        result = (a > b) - (a < b)
    return result


@native("version_sort_first")
def _version_sort_first(ctx: NativeContext, *values: str) -> str:
    """``echo -e "A\\nB" | sort -V | head -n1``: the lowest of the lines by version order."""
    lines = [line for value in values for line in (value.split("\n") if value else [""])]
    return sorted(lines, key=functools.cmp_to_key(_filevercmp))[0] if lines else ""
