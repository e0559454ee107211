"""Natives that judge a test's output: the checks test.sh makes after a run and prints
a verdict for (``check_regressions`` and ``check_failures`` of
``test_unbacked_parity_smoketest``, the checks of ``check_public_api_test_fails``)."""

from __future__ import annotations

import math
import re

from ._common import read_lines, read_text
from .grep import grep_q
from .registry import NativeContext, NativeError, native

__all__: list[str] = []

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
    text = read_text(ctx, path)
    limit = _awk_number(threshold)
    if text is None or limit is None:
        return ""
    found = []
    for line in read_lines(text):
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
    text = read_text(ctx, path) or ""
    current = ""
    backed_failed = unbacked_failed = False
    both: list[str] = []
    unbacked_only: list[str] = []
    for line in read_lines(text + "--- END ---\n"):
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
    if not grep_q(ctx, item, output):
        return (
            f"Expected the public API test '{test_name}' to identify {desc}, but\n"
            "it didn't! It's possible the test may not have run. Check "
            "test/test_public_bindings.py\nfor any changes that may have broken the test."
        )
    return ""
