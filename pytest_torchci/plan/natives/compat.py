"""Native value functions for the compatibility and external-project suites.

These replace what test.sh computes with ``$(...)``, ``grep`` and ``echo ... > file`` in
``test_forward_backward_compatibility``, ``check_public_api_test_fails``,
``test_libtorch_agnostic_targetting`` and ``clone_pytorch_xla``. Those that write files do
so only when a job runs (``ctx.planning`` false): planning a job changes nothing on disk.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import secrets
import string

from . import NativeContext, NativeError, native

__all__ = ["bre_to_regex"]

_MKTEMP_CHARS = string.ascii_letters + string.digits
_MKTEMP_TRIES = 100


def _strerror(exc: OSError) -> str:
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


@native("mktemp_in")
def _mktemp_in(ctx: NativeContext, template: str, folder: str, flag: str = "") -> str:
    """``mktemp TEMPLATE -p FOLDER`` (with ``flag`` ``-d``: ``mktemp TEMPLATE -d -p FOLDER``).

    The last run of X's in TEMPLATE (at least three) becomes random letters and digits;
    the new file (mode 0600) or folder (mode 0700) is made and its path, FOLDER/NAME,
    returned. Planning makes nothing and returns FOLDER/TEMPLATE.
    """
    if flag not in ("", "-d"):
        raise NativeError(f"mktemp: invalid option -- '{flag.lstrip('-')}'")
    m = re.search(r"(X+)([^X]*)$", template)
    if "/" in template or m is None or len(m.group(1)) < 3:
        raise NativeError(f"mktemp: too few X's in template '{template}'")
    folder = folder or os.environ.get("TMPDIR") or "/tmp"
    if ctx.planning:
        return os.path.join(folder, template)
    head, suffix = template[: m.start(1)], m.group(2)
    last: OSError | None = None
    for _ in range(_MKTEMP_TRIES):
        rand = "".join(secrets.choice(_MKTEMP_CHARS) for _ in m.group(1))
        shown = os.path.join(folder, f"{head}{rand}{suffix}")
        target = ctx.path(shown)
        try:
            if flag == "-d":
                os.mkdir(target, 0o700)
            else:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError as exc:
            last = exc
            continue
        except OSError as exc:
            kind = "directory" if flag == "-d" else "file"
            raise NativeError(
                f"mktemp: failed to create {kind} via template "
                f"'{os.path.join(folder, template)}': {_strerror(exc)}"
            ) from None
        return shown
    raise NativeError(
        f"mktemp: failed to create a name from template '{template}' in '{folder}': "
        f"{_strerror(last) if last else 'too many tries'}"
    )


def _echo_to(ctx: NativeContext, path: str, text: str, mode: str) -> str:
    if ctx.planning:
        return ""
    try:
        with open(ctx.path(path), mode, encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise NativeError(f"{path}: {_strerror(exc)}") from None
    return ""


@native("echo_append")
def _echo_append(ctx: NativeContext, path: str, text: str) -> str:
    """``echo "TEXT" >> PATH``; nothing when planning."""
    return _echo_to(ctx, path, text, "a")


@native("echo_write")
def _echo_write(ctx: NativeContext, path: str, text: str) -> str:
    """``echo "TEXT" > PATH``; nothing when planning."""
    return _echo_to(ctx, path, text, "w")


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
def _grep_q(ctx: NativeContext, pattern: str, text: str) -> str:
    """``grep -q "PATTERN" <<< "TEXT"``: ``1`` when a line of TEXT matches, else empty."""
    try:
        rx = re.compile(bre_to_regex(pattern))
    except re.error as exc:
        raise NativeError(f"grep: {exc}") from None
    return "1" if any(rx.search(line) for line in text.split("\n")) else ""


@native("public_api_check")
def _public_api_check(
    ctx: NativeContext, test_name: str, status: str, output: str, item: str, desc: str
) -> str:
    """The checks of check_public_api_test_fails: ``[ "$ret" -eq 0 ]`` after the public API
    test, then ``grep -q "${invalid_item_name}" <<< "${test_output}"``.

    Empty when the test failed and named the invalid item; otherwise the message test.sh
    prints before the function returns 1.
    """
    try:
        failed = int(status.strip() or "0") != 0
    except ValueError:
        raise NativeError(f"check_public_api_test_fails: {status!r} is not a status") from None
    if not failed:
        return (
            f"Expected the public API test '{test_name}' to fail after introducing\n"
            f"{desc}, but it succeeded! Check test/test_public_bindings.py\n"
            "for any changes that may have broken the test."
        )
    if not _grep_q(ctx, item, output):
        return (
            f"Expected the public API test '{test_name}' to identify {desc}, but\n"
            "it didn't! It's possible the test may not have run. Check "
            "test/test_public_bindings.py\nfor any changes that may have broken the test."
        )
    return ""


@native("find_first_file")
def _find_first_file(ctx: NativeContext, folder: str, pattern: str) -> str:
    """``find FOLDER -maxdepth 1 -name PATTERN -type f | head -1`` (in directory order)."""
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
        raise NativeError(f"find: '{folder}': {_strerror(exc)}") from None
    return ""


@native("cat_file")
def _cat_file(ctx: NativeContext, path: str) -> str:
    """``"$(cat PATH)"`` as a command's argument: the text less its trailing newlines, or
    empty when PATH cannot be read (cat's failure does not stop the command)."""
    try:
        return ctx.path(path).read_text(encoding="utf-8").rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return ""
