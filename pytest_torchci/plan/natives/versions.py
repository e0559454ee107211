"""Natives that order versions: GNU ``sort -V`` (gnulib's ``filevercmp``), for
``echo -e "A\\nB" | sort -V | head -n1``."""

from __future__ import annotations

import functools
import re

from .registry import NativeContext, native

__all__: list[str] = []

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
