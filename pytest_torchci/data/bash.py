"""Bash's matching rules, for the few places where test.sh's semantics must be exact.

Only matching is reproduced here; nothing is ever handed to a shell.
"""

from __future__ import annotations

import functools
import re

__all__ = ["glob_match", "glob_to_regex", "has_glob", "split_words"]

_GLOB_CHARS = frozenset("*?[")


def has_glob(pattern: str) -> bool:
    """Whether ``pattern`` holds an unescaped glob character."""
    escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in _GLOB_CHARS:
            return True
    return False


_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "digit": "0-9",
    "lower": "a-z",
    "upper": "A-Z",
    "space": " \\t\\n\\r\\f\\v",
    "xdigit": "0-9A-Fa-f",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "word": "a-zA-Z0-9_",
}


def _class(pattern: str, i: int) -> tuple[str, int] | None:
    """Parse the bracket expression opening at ``pattern[i]``; None if it never closes."""
    n = len(pattern)
    j = i + 1
    negate = j < n and pattern[j] in "!^"
    if negate:
        j += 1
    parts: list[str] = []
    first = True
    while j < n:
        ch = pattern[j]
        if ch == "]" and not first:
            body = "".join(parts)
            return f"[{'^' if negate else ''}{body}]", j
        first = False
        if ch == "\\" and j + 1 < n:
            parts.append(re.escape(pattern[j + 1]))
            j += 2
            continue
        if ch == "[" and pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            name = pattern[j + 2 : end] if end != -1 else ""
            if name in _POSIX_CLASSES:
                parts.append(_POSIX_CLASSES[name])
                j = end + 2
                continue
        if ch == "-" and parts and j + 1 < n and pattern[j + 1] != "]":
            parts.append("-")
        else:
            parts.append(re.escape(ch))
        j += 1
    return None


@functools.lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a bash pattern (as in ``[[ $x == PATTERN ]]``) into a regular expression.

    ``*`` matches any string, ``?`` any one character, ``[...]`` a class (``[!...]`` and
    ``[^...]`` negate it, ``[:digit:]`` and the other POSIX classes work inside it), and a
    backslash makes the next character literal. A ``[`` without its closing ``]`` is
    literal, as in bash.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            parsed = _class(pattern, i)
            if parsed is None:
                out.append(re.escape(ch))
            else:
                out.append(parsed[0])
                i = parsed[1]
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(value: str, pattern: str) -> bool:
    """``[[ value == pattern ]]`` with an unquoted pattern: a whole-string match."""
    return glob_to_regex(pattern).fullmatch(value) is not None


def split_words(value: str) -> list[str]:
    """Word splitting of an unquoted expansion with the default IFS."""
    return value.split()
