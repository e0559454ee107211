"""Natives that work on strings and a command's captured output: word splitting,
``tail -n 1``, ``${VALUE//OLD/NEW}``, ``${VALUE#PREFIX}``/``%SUFFIX``, a CSV row's field,
and the filters test.sh runs over ``git status`` and ``lscpu`` output.

Nothing here reads a file (a file's text is :mod:`.files`; ``grep`` over a file is
:mod:`.grep`).
"""

from __future__ import annotations

from ._common import bash_int
from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("read_array")
def _read_array(ctx: NativeContext, text: str) -> list[str]:
    """``IFS=' ' read -r -a ARRAY <<< "$TEXT"``: the first line of ``text`` split at
    runs of spaces (tabs and backslashes stay in the words; no globbing)."""
    return [word for word in text.split("\n", 1)[0].split(" ") if word]


@native("last_line")
def _last_line(ctx: NativeContext, text: str) -> str:
    """``| tail -n 1``."""
    lines = text.splitlines()
    return lines[-1] if lines else ""


@native("replace")
def _replace(ctx: NativeContext, value: str, old: str, new: str = "") -> str:
    """``${VALUE//OLD/NEW}`` with a literal OLD."""
    return value.replace(old, new)


@native("strip")
def _strip(ctx: NativeContext, value: str, prefix: str, suffix: str = "") -> str:
    """``${VALUE#PREFIX}``, then ``%SUFFIX``, each with a literal PREFIX and SUFFIX (an
    empty one strips nothing: ``@strip(V, , S)`` is ``${V%S}``)."""
    if prefix and value.startswith(prefix):
        value = value[len(prefix) :]
    if suffix and value.endswith(suffix):
        value = value[: -len(suffix)]
    return value


@native("csv_field")
def _csv_field(ctx: NativeContext, row: str, index: str) -> str:
    """``${row[INDEX]}`` after ``IFS=',' read -r -a row``: one comma-separated field.

    As ``read`` splits on a non-blank IFS: empty fields are kept, one trailing empty
    field is dropped, blanks around fields are kept; a field past the end is empty.
    """
    fields = row.split(",")
    if fields[-1] == "":
        fields.pop()
    i = bash_int(index, "index")
    return fields[i] if 0 <= i < len(fields) else ""


@native("dirty_lines")
def _dirty_lines(ctx: NativeContext, status: str) -> str:
    """``git status --porcelain | grep -v '?? third_party'``."""
    return "\n".join(line for line in status.splitlines() if line and "?? third_party" not in line)


@native("lscpu_threads_per_core")
def _lscpu_threads_per_core(ctx: NativeContext, lscpu_output: str) -> str:
    """``lscpu | grep 'Thread(s) per core:' | awk '{print $4}'`` on lscpu's output.

    Without a matching line the pipeline fails (``pipefail``); when planning, lscpu's
    output is empty and so is the answer.
    """
    fields = [
        (line.split() + [""] * 4)[3]
        for line in lscpu_output.split("\n")
        if "Thread(s) per core:" in line
    ]
    if not fields:
        if ctx.planning:
            return ""
        raise NativeError("lscpu printed no 'Thread(s) per core:' line")
    return "\n".join(fields)
