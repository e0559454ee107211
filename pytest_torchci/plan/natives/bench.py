"""Native value functions for the bench suites (registered with :func:`natives.native`).

What the benchmark functions of test.sh (and the fbgemm installs of common_utils.sh)
compute with ``$(...)``, ``grep``, ``awk``, ``read`` loops and arithmetic, written in
Python. Each function names the bash it replaces.

While planning, the planner records commands without running them, so the files they
would write are not there and the outputs they would print are empty; functions that
read such things treat them as empty then, and fail (as the bash fails) only when the
suite runs for real.
"""

from __future__ import annotations

import math
import os
import re
import tempfile

from . import NativeContext, NativeError, native

__all__: list[str] = []


def _read_text(ctx: NativeContext, path: str) -> str | None:
    try:
        return ctx.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _read_lines(text: str) -> list[str]:
    """The lines ``while IFS= read -r line`` reads: a last line without newline is left out."""
    return text.split("\n")[:-1]


def _bash_int(value: str, what: str) -> int:
    raw = value.strip()
    if raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        raise NativeError(f"{what}={raw!r}: not an integer in an arithmetic expansion") from None


# --- test_inductor_set_cpu_affinity ---------------------------------------------------------


@native("machine")
def _machine(ctx: NativeContext) -> str:
    """``$(uname -m)``: the machine's hardware name (``x86_64``, ``aarch64``, ...)."""
    return os.uname().machine


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


@native("int_quotient")
def _int_quotient(ctx: NativeContext, dividend: str, divisor: str) -> str:
    """``$((DIVIDEND / DIVISOR))`` (truncating, as bash does).

    A zero or empty divisor is bash's "division by 0" error; when planning (the divisor
    comes from a command's output, which the planner does not run) the answer is empty.
    """
    a = _bash_int(dividend, "dividend")
    b = _bash_int(divisor, "divisor")
    if b == 0:
        if ctx.planning:
            return ""
        raise NativeError(f"$(({dividend} / {divisor})): division by 0")
    q = abs(a) // abs(b)
    return str(q if (a >= 0) == (b >= 0) else -q)


# --- loops ------------------------------------------------------------------------------------


@native("int_range")
def _int_range(ctx: NativeContext, first: str, last: str) -> list[str]:
    """``for ((i=FIRST; i<=LAST; i++))``: the integers FIRST..LAST, as words."""
    a, b = _bash_int(first, "first"), _bash_int(last, "last")
    return [str(i) for i in range(a, b + 1)]


# --- test_inductor_torchbench_cpu_smoketest_perf ----------------------------------------------


@native("uncommented_lines")
def _uncommented_lines(ctx: NativeContext, path: str) -> list[str]:
    """``grep -v '^ *#' < FILE | while IFS=',' read -r -a row``: the rows the loop reads.

    A file that cannot be read, or one with no such line, makes the pipeline fail
    (``pipefail``); when planning, a missing file has no rows.
    """
    text = _read_text(ctx, path)
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


@native("csv_field")
def _csv_field(ctx: NativeContext, row: str, index: str) -> str:
    """``${row[INDEX]}`` after ``IFS=',' read -r -a row``: one comma-separated field.

    As ``read`` splits on a non-blank IFS: empty fields are kept, one trailing empty
    field is dropped, blanks around fields are kept; a field past the end is empty.
    """
    fields = row.split(",")
    if fields[-1] == "":
        fields.pop()
    i = _bash_int(index, "index")
    return fields[i] if 0 <= i < len(fields) else ""


# --- test_unbacked_parity_smoketest -----------------------------------------------------------

_REGRESSION_LINE = re.compile(
    r"^[ \t\n\r\f\v]+([A-Za-z0-9_./-]+)[ \t\n\r\f\v]+([0-9.]+)[ \t\n\r\f\v]+([0-9.]+)"
    r"[ \t\n\r\f\v]+\+([0-9.]+)%"
)
_MODEL_HEADER = re.compile(r"^---[ \t\n\r\f\v]+([A-Za-z0-9_./-]+)[ \t\n\r\f\v]+---")
_BACKED_FAILED = re.compile(r"backed.*FAILED|backed.*TIMEOUT|backed.*ERROR")
_UNBACKED_FAILED = re.compile(r"unbacked.*FAILED|unbacked.*TIMEOUT|unbacked.*ERROR")


def _awk_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


@native("unbacked_parity_regressions")
def _unbacked_parity_regressions(ctx: NativeContext, path: str, threshold: str) -> str:
    """``check_regressions`` of ``test_unbacked_parity_smoketest``.

    Reads the comparison table in FILE (``while IFS= read -r line ... done < FILE``) and
    returns the models slower by more than THRESHOLD percent (``awk "BEGIN{exit !(DIFF >
    THRESHOLD)}"``) as ``model:+DIFF%`` words; empty when there are none (the function's
    status 1), also when FILE cannot be read (the loop's redirection fails).
    """
    text = _read_text(ctx, path)
    limit = _awk_number(threshold)
    if text is None or limit is None:
        return ""
    found = []
    for line in _read_lines(text):
        m = _REGRESSION_LINE.search(line)
        if m is None:
            continue
        diff = _awk_number(m.group(4))
        if diff is not None and diff > limit:
            found.append(f"{m.group(1)}:+{m.group(4)}%")
    return " ".join(found)


@native("unbacked_parity_failures")
def _unbacked_parity_failures(ctx: NativeContext, path: str) -> str:
    """``check_failures`` of ``test_unbacked_parity_smoketest``.

    Walks FILE followed by the sentinel ``--- END ---`` (``done < <(cat FILE; echo ...)``)
    model by model, with the same patterns in the same order (a line that matches the
    ``backed`` pattern is not tested against the ``unbacked`` one), and returns the
    failure messages, one a line; empty when no model failed (the function's status 1).
    """
    text = _read_text(ctx, path) or ""
    current = ""
    backed_failed = unbacked_failed = False
    both: list[str] = []
    unbacked_only: list[str] = []
    for line in _read_lines(text + "--- END ---\n"):
        header = _MODEL_HEADER.search(line)
        if header is not None:
            if current:
                if backed_failed and unbacked_failed:
                    both.append(current)
                elif unbacked_failed and not backed_failed:
                    unbacked_only.append(current)
            current = header.group(1)
            backed_failed = unbacked_failed = False
        elif _BACKED_FAILED.search(line):
            backed_failed = True
        elif _UNBACKED_FAILED.search(line):
            unbacked_failed = True
    messages = []
    if both:
        messages.append("FAILURES DETECTED: Both backed and unbacked failed for: " + " ".join(both))
    if unbacked_only:
        messages.append(
            "FAILURES DETECTED: Unbacked failed (but backed succeeded) for: "
            + " ".join(unbacked_only)
        )
    return "\n".join(messages)


# --- install_torchrec_and_fbgemm --------------------------------------------------------------


@native("grep_field")
def _grep_field(ctx: NativeContext, path: str, pattern: str, field: str) -> str:
    """``grep PATTERN FILE | awk '{print $FIELD}'``: that field of each matching line.

    No matching line, or a file that cannot be read, makes the pipeline fail
    (``pipefail``); when planning, a file the machine provides may be missing here and
    the answer is empty.
    """
    text = _read_text(ctx, path)
    n = _bash_int(field, "field")
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


@native("machine_file")
def _machine_file(ctx: NativeContext, path: str) -> str:
    """``[ -f PATH ]`` for a file the CI machine provides (``$ROCM_HOME/...``).

    True while planning too: a plan may be made on a machine without it; the test is
    made for real when the suite runs.
    """
    return "1" if ctx.planning or ctx.path(path).is_file() else ""


# --- test_verify_cachebench -------------------------------------------------------------------


@native("produced_file")
def _produced_file(ctx: NativeContext, path: str) -> str:
    """``[[ -s PATH ]]`` for a file an earlier command of the suite writes.

    True while planning: the planner records that command without running it, as one
    that succeeds.
    """
    if ctx.planning:
        return "1"
    p = ctx.path(path)
    return "1" if p.is_file() and p.stat().st_size > 0 else ""


# --- test_better_benchmark --------------------------------------------------------------------


@native("mktemp_dir_template")
def _mktemp_dir_template(ctx: NativeContext, template: str) -> str:
    """``$(mktemp -d TEMPLATE)``: a new folder named after TEMPLATE (trailing ``X``s random).

    When planning, the template itself stands for the folder (nothing is created).
    """
    if ctx.planning:
        return template
    stem = template.rstrip("X")
    if len(template) - len(stem) < 3:
        raise NativeError(f"mktemp: too few X's in template {template!r}")
    folder, prefix = os.path.split(stem)
    return tempfile.mkdtemp(prefix=prefix, dir=str(ctx.path(folder or ".")))


# --- test_inductor_torchbench_smoketest_perf --------------------------------------------------


@native("realpath_cmd")
def _realpath_cmd(ctx: NativeContext, value: str) -> str:
    """``"$(realpath PATH)"`` in an argument: coreutils' answer, empty where it fails.

    ``realpath`` (``-E``, its default) needs every folder but the last component to
    exist; where one is missing it prints nothing, and the failed substitution leaves an
    empty argument (the command still runs).
    """
    if not value:
        return ""
    p = ctx.path(value)
    if not p.parent.is_dir():
        return ""
    return os.path.realpath(p)
