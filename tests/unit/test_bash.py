"""``glob_match`` must give what bash's ``[[ value == pattern ]]`` gives (unquoted pattern)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pytest_torchci.data.bash import glob_match

# (value, pattern, what bash says)
CASES: list[tuple[str, str, bool]] = [
    # *: any string, anchored at both ends
    ("linux-jammy-cuda12.8-py3.10-gcc11", "*cuda*", True),
    ("linux-jammy-py3.10-gcc11", "*cuda*", False),
    ("cuda", "*cuda*", True),
    ("", "*", True),
    ("a\nb", "a*b", True),
    ("linux-jammy-py3.11-gcc11", "*py3.11-gcc11", True),
    ("linux-jammy-py3.11-gcc11-debug", "*py3.11-gcc11", False),
    # no glob character: an exact, whole-string match
    ("default", "default", True),
    ("default2", "default", False),
    ("xdefault", "default", False),
    ("Default", "default", False),
    ("", "", True),
    # regex characters are literal
    ("a.b", "a.b", True),
    ("axb", "a.b", False),
    ("a+", "a+", True),
    ("aa", "a+", False),
    ("(x)", "(x)", True),
    # ?: exactly one character
    ("a.b", "a?b", True),
    ("ab", "a?b", False),
    ("", "?", False),
    ("abc", "???", True),
    # [abc]: one character of the class
    ("b", "[abc]", True),
    ("d", "[abc]", False),
    ("ab", "[ab]", False),
    ("b", "[a-c]", True),
    ("-", "[a-]", True),
    ("]", "[]]", True),
    ("cuda12", "cuda1[0-9]", True),
    # [!a] and [^a]: negated classes
    ("b", "[!a]", True),
    ("a", "[!a]", False),
    ("b", "[^a]", True),
    ("a", "[^a]", False),
    ("x", "[!]]", True),
    ("]", "[!]]", False),
    # a backslash makes the next character literal
    ("*", r"\*", True),
    ("a", r"\*", False),
    ("?", r"\?", True),
    ("x", r"\?", False),
    ("[a]", r"\[a]", True),
    ("a*b", r"a\*b", True),
    ("axxb", r"a\*b", False),
    # an unterminated [ is literal
    ("[abc", "[abc", True),
    ("a", "[abc", False),
    ("[", "[", True),
    ("x[y", "x[*", True),
    # inside a class: an escaped ], a literal [ and a POSIX class
    ("]", r"[\]]", True),
    ("\\]", r"[\]]", False),
    ("[", "[[]", True),
    ("7", "[[:digit:]]", True),
    ("x", "[[:digit:]]", False),
]


def _id(case: tuple[str, str, bool]) -> str:
    value, pattern, expected = case
    return f"{value!r}=={pattern!r}->{expected}"


@pytest.mark.parametrize(("value", "pattern", "expected"), CASES, ids=[_id(c) for c in CASES])
def test_glob_match(value: str, pattern: str, expected: bool) -> None:
    assert glob_match(value, pattern) is expected


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to cross-check the table")
def test_table_agrees_with_bash() -> None:
    """The expectations above are bash's own answers, not guesses."""
    script = (
        'while IFS= read -r -d "" v && IFS= read -r -d "" p; do '
        "[[ $v == $p ]] && echo 1 || echo 0; "
        "done"
    )
    stdin = "".join(f"{v}\0{p}\0" for v, p, _ in CASES)
    out = subprocess.run(
        ["bash", "-c", script], input=stdin, capture_output=True, text=True, check=True
    ).stdout.split()
    bash_says = [o == "1" for o in out]
    assert len(bash_says) == len(CASES)
    wrong = [(v, p, e) for (v, p, e), b in zip(CASES, bash_says, strict=True) if e is not b]
    assert wrong == []
