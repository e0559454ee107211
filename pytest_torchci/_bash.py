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


@functools.lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a bash pattern (as in ``[[ $x == PATTERN ]]``) into a regular expression.

    ``*`` matches any string, ``?`` any one character, ``[...]`` a class (``[!...]`` and
    ``[^...]`` negate it), and a backslash makes the next character literal. A ``[``
    without its closing ``]`` is literal, as in bash.
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
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^' if negate else ''}{body}]")
                i = j
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
