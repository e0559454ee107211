"""Natives that do what ``grep`` does: ``grep -q`` on a string (with GNU grep's basic
regular expressions, translated for :mod:`re` by :func:`bre_to_regex`), ``grep | awk``
over a file, and ``grep -v`` over a file's lines."""

from __future__ import annotations

import re

from ._common import bash_int, read_text
from .registry import NativeContext, NativeError, native

__all__ = ["bre_to_regex", "grep_q"]

_BRE_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
}
_BRE_ESCAPES = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?",
                "<": r"\b", ">": r"\b", "w": r"\w", "W": r"\W", "s": r"\s", "S": r"\S",
                "b": r"\b", "B": r"\B"}  # fmt: skip


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """The POSIX bracket expression opening at ``pattern[i]`` as Python's, and its end."""
    j = i + 1
    out = ["["]
    if j < len(pattern) and pattern[j] == "^":
        out.append("^")
        j += 1
    first = True
    while j < len(pattern):
        ch = pattern[j]
        if ch == "]" and not first:
            out.append("]")
            return "".join(out), j + 1
        first = False
        if ch == "[" and pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            if end > 0 and pattern[j + 2 : end] in _BRE_CLASSES:
                out.append(_BRE_CLASSES[pattern[j + 2 : end]])
                j = end + 2
                continue
        out.append("\\" + ch if ch in "\\[]^" else ch)
        j += 1
    raise NativeError("grep: Unmatched [, [^, [:, [., or [=")


def bre_to_regex(pattern: str) -> str:
    """A POSIX basic regular expression (GNU grep's, with its ``\\+ \\? \\|``) for ``re``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    start = True  # where ``*`` is literal and ``^`` anchors: the start, after ``\(`` or ``\|``
    while i < n:
        ch = pattern[i]
        at_start, start = start, False
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(_BRE_ESCAPES.get(nxt, re.escape(nxt)))
            start = nxt in "(|"
            i += 2
            continue
        if ch == "[":
            text, i = _bracket(pattern, i)
            out.append(text)
            continue
        if ch == "^" and at_start:
            out.append("^")
            start = True
        elif ch == "$" and (i + 1 == n or pattern.startswith("\\)", i + 1)):
            out.append("$")
        elif ch == "*" and not at_start:
            out.append("*")
        elif ch == ".":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@native("grep_q")
def grep_q(ctx: NativeContext, pattern: str, text: str) -> str:
    """``grep -q "PATTERN" <<< "TEXT"``: ``1`` when a line of TEXT matches, else empty."""
    try:
        rx = re.compile(bre_to_regex(pattern))
    except re.error as exc:
        raise NativeError(f"grep: {exc}") from None
    return "1" if any(rx.search(line) for line in text.split("\n")) else ""


@native("grep_field")
def _grep_field(ctx: NativeContext, path: str, pattern: str, field: str) -> str:
    """``grep PATTERN FILE | awk '{print $FIELD}'``: that field of each matching line.

    No matching line, or a file that cannot be read, makes the pipeline fail
    (``pipefail``); when planning, a file the machine provides may be missing here and
    the answer is empty.
    """
    text = read_text(ctx, path)
    n = bash_int(field, "field")
    if text is None:
        if ctx.planning:
            return ""
        raise NativeError(f"grep: {path}: cannot be read")
    regex = re.compile(pattern)
    values = []
    for line in text.splitlines():
        if regex.search(line):
            words = line.split()
            values.append(words[n - 1] if 0 < n <= len(words) else "")
    if not values:
        if ctx.planning:
            return ""
        raise NativeError(f"grep: no line of {path} matches {pattern!r}")
    return "\n".join(values)


@native("uncommented_lines")
def _uncommented_lines(ctx: NativeContext, path: str) -> list[str]:
    """``grep -v '^ *#' < FILE | while IFS=',' read -r -a row``: the rows the loop reads.

    A file that cannot be read, or one with no such line, makes the pipeline fail
    (``pipefail``); when planning, a missing file has no rows.
    """
    text = read_text(ctx, path)
    if text is None:
        if ctx.planning:
            return []
        raise NativeError(f"{path}: cannot be read")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = [line for line in lines if re.match(r" *#", line) is None]
    if not rows and not ctx.planning:
        raise NativeError(f"{path}: grep -v '^ *#' selected no line")
    return rows
