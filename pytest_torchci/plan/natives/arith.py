"""Natives that count: bash's arithmetic (``$((A / B))``, ``for ((i=A; i<=B; i++))``)
and awk's sum of a column."""

from __future__ import annotations

import re

from ._common import bash_int
from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("int_quotient")
def _int_quotient(ctx: NativeContext, dividend: str, divisor: str) -> str:
    """``$((DIVIDEND / DIVISOR))`` (truncating, as bash does).

    A zero or empty divisor is bash's "division by 0" error; when planning (the divisor
    comes from a command's output, which the planner does not run) the answer is empty.
    """
    a = bash_int(dividend, "dividend")
    b = bash_int(divisor, "divisor")
    if b == 0:
        if ctx.planning:
            return ""
        raise NativeError(f"$(({dividend} / {divisor})): division by 0")
    q = abs(a) // abs(b)
    return str(q if (a >= 0) == (b >= 0) else -q)


@native("int_range")
def _int_range(ctx: NativeContext, first: str, last: str) -> list[str]:
    """``for ((i=FIRST; i<=LAST; i++))``: the integers FIRST..LAST, as words."""
    a, b = bash_int(first, "first"), bash_int(last, "last")
    return [str(i) for i in range(a, b + 1)]


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
