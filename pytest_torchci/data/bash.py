"""Bash's matching and expansion rules, for the places where test.sh's semantics must be
exact: patterns (``[[ == ]]``, ``find -name``), word splitting on IFS, and pathname
expansion (globs) in bash's order.

Only the rules are reproduced here; nothing is ever handed to a shell. Bash is taken as
test.sh runs it: default IFS, no ``nullglob``/``dotglob``/``noglob``, and the C or
``C.UTF-8`` collation CI images use (``export LANG=C.UTF-8``), where names sort by their
bytes.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "c_sorted",
    "glob_match",
    "glob_names",
    "glob_to_regex",
    "has_glob",
    "pathname_expand",
    "quoted_glob",
    "split_fields",
    "split_words",
]

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


# The default IFS: space, tab and newline, and only those (not str.split()'s whitespace).
_IFS = re.compile("[ \t\n]+")


def split_words(value: str) -> list[str]:
    """Word splitting of an unquoted expansion with the default IFS (space, tab,
    newline): runs of them separate words, and leading or trailing ones make none."""
    return [w for w in _IFS.split(value) if w]


def c_sorted(names: Iterable[str]) -> list[str]:
    """``names`` in the C/``C.UTF-8`` collation: by their bytes as the file system holds
    them (names that are not UTF-8 keep their bytes through ``os.fsencode``)."""
    return sorted(names, key=os.fsencode)


def _unescape(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal, flags=re.DOTALL)


def quoted_glob(word: str, cwd: Path) -> list[str]:
    """Pathname expansion of a word whose double-quoted parts are literal, as bash reads
    ``"$DIR"/lib*``: glob characters inside the quotes match only themselves, and the
    quotes go. Matching nothing, the word without its quotes."""
    out = []
    quoted = False
    for ch in word:
        if ch == '"':
            quoted = not quoted
        else:
            out.append("\\" + ch if quoted and ch in "*?[]\\" else ch)
    pattern = "".join(out)
    found = pathname_expand(pattern, cwd)
    return [_unescape(pattern)] if found == [pattern] else found


def _component_matches(folder: Path, pattern: str, dirs_only: bool) -> list[str]:
    """The names in ``folder`` that the glob component ``pattern`` matches: a leading
    ``.`` must be matched by a literal one (no ``dotglob``); ``.`` and ``..`` never."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if not dirs_only or e.is_dir()]
    except OSError:
        return []
    regex = glob_to_regex(pattern)
    dot_ok = pattern.startswith((".", "\\."))
    return [
        n for n in names if (dot_ok or not n.startswith(".")) and regex.fullmatch(n) is not None
    ]


def _glob(pattern: str, cwd: Path) -> list[str]:
    parts = pattern.split("/")
    shown = ["/" if pattern.startswith("/") else ""]
    if pattern.startswith("/"):
        parts = parts[1:]
    for i, comp in enumerate(parts):
        last = i == len(parts) - 1
        sep = "" if last else "/"
        if comp == "":
            # a doubled or trailing slash: kept as written; what came before is a folder
            shown = [s + sep for s in shown if (cwd / (s or ".")).is_dir()]
            continue
        if not has_glob(comp):
            literal = _unescape(comp)
            shown = [s + literal + sep for s in shown if os.path.lexists(cwd / (s + literal))]
            continue
        shown = [
            s + name + sep
            for s in shown
            for name in _component_matches(cwd / (s or "."), comp, dirs_only=not last)
        ]
        if not shown:
            return []
    return shown


def glob_names(folder: Path, pattern: str) -> list[str]:
    """The names in ``folder`` that one path component ``pattern`` gives (``"DIR"/PAT``
    with DIR quoted), sorted in the C collation; a pattern without glob characters gives
    itself where it exists. Empty when nothing matches (bash would keep the literal)."""
    if not has_glob(pattern):
        literal = _unescape(pattern)
        return [literal] if os.path.lexists(folder / literal) else []
    return c_sorted(_component_matches(folder, pattern, dirs_only=False))


def pathname_expand(word: str, cwd: Path) -> list[str]:
    """Bash's pathname expansion of one unquoted word, relative to ``cwd``.

    A word without glob characters stays as it is. Otherwise the paths it matches, sorted
    as a whole in the C collation (bash sorts the list it built); none (no ``nullglob``)
    leaves the word literal. ``*``, ``?`` and brackets match within one path component,
    never a leading ``.`` (no ``dotglob``); a component after the first one matched must
    be a folder (symbolic links to folders count, as bash follows them).
    """
    if not has_glob(word):
        return [word]
    return c_sorted(_glob(word, cwd)) or [word]


def split_fields(value: str, cwd: Path) -> list[str]:
    """An unquoted ``$VAR`` or ``$(...)`` in a command line: split on IFS, then each
    word pathname-expanded (``set -f`` is never on in test.sh)."""
    return [w for word in split_words(value) for w in pathname_expand(word, cwd)]
