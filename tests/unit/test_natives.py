"""Every native value function, in-process, one table row per case.

A row names the native, its arguments, the files to make in a fresh checkout (the current
folder of the call), whether the call is made while planning, and what it must answer:
a value (``{cwd}`` and ``{tmp}`` stand for the checkout and the temporary folder), a
:class:`Raises` (a :class:`NativeError` whose message holds the text), or a
:class:`Check` (a predicate, for answers that are random or the machine's own). Each row
is called through :func:`call_native`, as the engine calls it. The last test checks that
the table covers every registered native.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci.plan import natives
from pytest_torchci.plan.natives import NATIVES, NativeContext, NativeError, call_native, native


@dataclass(frozen=True)
class Raises:
    """The call fails with a NativeError whose message contains ``text``."""

    text: str


@dataclass(frozen=True)
class Check:
    """The answer satisfies ``test(answer, cwd)`` (described by ``what``)."""

    what: str
    test: Callable[[Any, Path], bool]


DIR = "<dir>"  # a file's content that makes a folder instead
EXE = "<exe>"  # ... an executable file (mode 0755)
LINK = "<link>:"  # LINK + target: a symbolic link


@dataclass(frozen=True)
class Row:
    native: str
    args: Sequence[str]
    expected: object
    files: Mapping[str, str] = field(default_factory=dict)
    planning: bool = False
    env: Mapping[str, str] = field(default_factory=dict)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _made(kind: str, mode: int, name: str) -> Check:
    """A new file or folder (``kind``) of ``mode`` whose path, as answered, matches ``name``."""

    def test(value: Any, cwd: Path) -> bool:
        p = cwd / value
        made = p.is_dir() if kind == "dir" else p.is_file()
        return bool(re.fullmatch(name, str(value))) and made and _mode(p) == mode

    return Check(f"a new {kind} of mode {mode:o} named {name}", test)


def _wrote(path: str, text: str) -> Check:
    return Check(
        f"{path} holds {text!r}", lambda v, cwd: v == "" and (cwd / path).read_text() == text
    )


def _not_made(path: str) -> Check:
    return Check(f"{path} not made", lambda v, cwd: v == "" and not (cwd / path).exists())


_TABLE = "  modelA   1.00   1.20   +20.0%\n  modelB   1.00   1.01   +1.0%\nsummary\n"
_FAILURES = "--- m1 ---\nbacked: FAILED\n--- m2 ---\nunbacked: TIMEOUT\n--- m3 ---\nok\n"
_ROCM_H = "#define ROCM_VERSION_MAJOR 6\n#define ROCM_VERSION_MINOR 2\n"
_LSCPU = "Architecture: x86_64\nThread(s) per core:  2\n"
_STATUS = " M a.py\n?? third_party/x/\n?? new.py\n"
_PASSED_API = (
    "Expected the public API test 't' to fail after introducing\nthe item, but it succeeded! "
    "Check test/test_public_bindings.py\nfor any changes that may have broken the test."
)
_MISSED_ITEM = (
    "Expected the public API test 't' to identify the item, but\nit didn't! It's possible "
    "the test may not have run. Check test/test_public_bindings.py\nfor any changes that may "
    "have broken the test."
)
_TESTS = {"t/test_a.py": "", "t/sub/test_b.py": "", "t/helper.py": "", "t/test_c.txt": ""}
_BIN = {"bin/a": EXE, "bin/b": "", "bin/sub": DIR, "bin/link": LINK + "a"}


def _rows_paths() -> list[Row]:
    return [
        Row("pwd", [], "{cwd}"),
        Row("realpath", ["a/../b"], "{cwd}/b"),
        Row("realpath", [""], "{cwd}"),
        Row("realpath", ["lnk/x"], "{cwd}/d/x", {"d": DIR, "lnk": LINK + "d"}),
        Row("realpath", ["gone/x"], "{cwd}/gone/x"),
        Row("realpath", ["gone/x", "-E"], ""),
        Row("realpath", ["x", "-E"], "{cwd}/x"),
        Row("realpath", ["", "-E"], ""),
        Row("realpath", ["x", "-e"], Raises("neither -m nor -E")),
        Row("dirname", ["a/b/c"], "a/b"),
        Row("dirname", ["c"], "."),
        Row("dirname", [], Raises("@dirname() called with 0 arguments")),
        Row("basename", ["a/b.py"], "b.py"),
        Row("basename", ["a/b.py", ".py"], "b"),
        Row("basename", ["a/b.py", ".txt"], "b.py"),
    ]


def _rows_files() -> list[Row]:
    files = {"f": "x", "e": "", "d": DIR}
    return [
        Row("is_file", ["f"], "1", files),
        Row("is_file", ["e"], "1", files),
        Row("is_file", ["d"], "", files),
        Row("is_file", ["f", "-s"], "1", files),
        Row("is_file", ["e", "-s"], "", files),
        Row("is_file", ["f", "-d"], Raises("neither -f nor -s"), files),
        Row("is_file_at_run", ["gone"], "1", planning=True),
        Row("is_file_at_run", ["gone", "-s"], "1", planning=True),
        Row("is_file_at_run", ["gone"], ""),
        Row("is_file_at_run", ["f"], "1", files),
        Row("is_file_at_run", ["e", "-s"], "", files),
        Row("is_file_at_run", ["f", "-x"], Raises("neither -f nor -s"), planning=True),
        Row("is_dir", ["d"], "1", files),
        Row("is_dir", ["f"], "", files),
        Row("is_dir", [""], ""),
        Row("read_file", ["p"], "a\nb\n", {"p": "a\nb\n"}),
        Row("read_file", ["gone"], "", planning=True),
        Row("read_file", ["gone"], Raises("cannot read gone")),
        Row("cat_file", ["p"], "abc", {"p": "abc\n\n"}),
        Row("cat_file", ["gone"], ""),
        Row("echo_append", ["log", "b"], _wrote("log", "a\nb\n"), {"log": "a\n"}),
        Row("echo_append", ["log", "b"], _not_made("log"), planning=True),
        Row("echo_append", ["gone/log", "b"], Raises("gone/log: No such file or directory")),
        Row("echo_write", ["log", "b"], _wrote("log", "b\n"), {"log": "a\n"}),
        Row("echo_write", ["log", "b"], _not_made("log"), planning=True),
    ]


def _rows_finds() -> list[Row]:
    whl = {"w/a.whl": "", "w/b.whl": "", "w/d.whl": DIR}
    return [
        Row("glob", ["w/*.whl"], ["w/a.whl", "w/b.whl", "w/d.whl"], whl),
        Row("glob", ["w/*.whl"], ["w/*.whl"]),
        Row("glob", ['"w"/*.whl'], ["w/a.whl", "w/b.whl", "w/d.whl"], whl),
        Row("glob", ['"w/*"'], ["w/*"], whl),
        Row("existing_files", ["w/*.whl"], ["w/a.whl", "w/b.whl"], whl),
        Row("existing_files", ["w/*.whl"], []),
        Row("any_match", ["r.log.*"], "1", {"r.log.1": ""}),
        Row("any_match", ["r.log.*"], ""),
        Row("find_tests", ["t", "p/"], ["p/sub/test_b", "p/test_a"], _TESTS),
        Row("find_tests", ["gone", "p/"], []),
        Row("executables", ["bin"], ["bin/a", "bin/link", "bin/sub"], _BIN),
        Row("executables", ["bin/", "s*"], ["bin/sub"], _BIN),
        Row("executables", ["bin", "*", "cpp/", "-f"], ["cpp/a", "cpp/link"], _BIN),
        Row("executables", ["gone"], []),
        Row("executables", ["bin", "*", "", "-x"], Raises("neither empty nor -f"), _BIN),
        Row("find_file", ["lib", "x.so"], Check("both, as find prints them", _both_libs), _LIBS),
        Row("find_file", ["lib/", "x.so"], Check("lib/x.so", _lib_x), {"lib/x.so": ""}, True),
        Row("find_file", ["{cwd}/lib", "x.so"], "{cwd}/lib/x.so", {"lib/x.so": ""}),
        Row("find_file", ["lib", "lib"], "lib", {"lib/y.so": ""}),
        Row("find_file", ["gone", "x.so"], ""),
        Row("find_first_file", ["w/", "*.whl"], Check("w/a.whl or w/b.whl", _a_or_b), whl),
        Row("find_first_file", ["w", "*.txt"], "", whl),
        Row("find_first_file", ["gone", "*.whl"], "", planning=True),
        Row("find_first_file", ["gone", "*.whl"], Raises("find: 'gone': No such file")),
    ]


_LIBS = {"lib/a/x.so": "", "lib/x.so": "", "lib/y.so": ""}


def _both_libs(value: Any, cwd: Path) -> bool:
    return sorted(str(value).split("\n")) == ["lib/a/x.so", "lib/x.so"]


def _lib_x(value: Any, cwd: Path) -> bool:
    return bool(value == "lib/x.so")


def _a_or_b(value: Any, cwd: Path) -> bool:
    return value in ("w/a.whl", "w/b.whl")


def _rows_tempfiles() -> list[Row]:
    return [
        Row("mktemp", [], "{tmp}/tmp.XXXXXXXXXX", planning=True),
        Row("mktemp", ["-d"], "{tmp}/tmp.XXXXXX", planning=True),
        Row("mktemp", ["-d", "out/b.XXXXXX"], "out/b.XXXXXX", planning=True),
        Row("mktemp", ["-d", "b.XXXXXX"], _made("dir", 0o700, r".*/b\.[a-z0-9_]{8}")),
        Row("mktemp", ["f.XXX"], _made("file", 0o600, r".*/f\.[a-z0-9_]{8}")),
        Row("mktemp", ["-d", "b.XX"], Raises("too few X's in template 'b.XX'")),
        Row("mktemp", ["a.XXX", "b.XXX"], Raises("too many templates")),
        Row("mktemp_in", ["XXXXXXXX.py", "inst"], "inst/XXXXXXXX.py", planning=True),
        Row("mktemp_in", ["XXXXXXXX.py", ""], "{tmpdir}/XXXXXXXX.py", planning=True),
        Row("mktemp_in", ["XXXX.py", "i"], _made("file", 0o600, r"i/[A-Za-z0-9]{4}\.py"), _I),
        Row("mktemp_in", ["XXXXX", "i", "-d"], _made("dir", 0o700, r"i/[A-Za-z0-9]{5}"), _I),
        Row("mktemp_in", ["a/XXX", "i"], Raises("too few X's in template 'a/XXX'")),
        Row("mktemp_in", ["XXX", "i", "-q"], Raises("invalid option -- 'q'")),
        Row("mktemp_in", ["XXX", "gone"], Raises("failed to create file via template")),
    ]


_I = {"i": DIR}


def _rows_text() -> list[Row]:
    return [
        Row("read_array", ["  a  b\tc \\d *  "], ["a", "b\tc", "\\d", "*"]),
        Row("read_array", ["a b\nc d"], ["a", "b"]),
        Row("read_array", [""], []),
        Row("last_line", ["a\nb\n"], "b"),
        Row("last_line", [""], ""),
        Row("replace", ["a-b-c", "-", "_"], "a_b_c"),
        Row("replace", ["a-b", "-"], "ab"),
        Row("strip", ["test/x.py", "test/", ".py"], "x"),
        Row("strip", ["x.py", "", ".py"], "x"),
        Row("strip", ["abc", "x", "y"], "abc"),
        Row("csv_field", ["a,,b,", "1"], ""),
        Row("csv_field", ["a,,b,", "2"], "b"),
        Row("csv_field", ["a, b", "1"], " b"),
        Row("csv_field", ["a,b", "5"], ""),
        Row("csv_field", ["a", "x"], Raises("index='x': not an integer")),
        Row("dirty_lines", [_STATUS], " M a.py\n?? new.py"),
        Row("lscpu_threads_per_core", [_LSCPU], "2"),
        Row("lscpu_threads_per_core", [""], "", planning=True),
        Row("lscpu_threads_per_core", [""], Raises("no 'Thread(s) per core:' line")),
    ]


def _rows_grep() -> list[Row]:
    return [
        Row("grep_q", ["foo\\|bar", "x\nbar"], "1"),
        Row("grep_q", ["[[:digit:]]\\+$", "v12"], "1"),
        Row("grep_q", ["^a*b", "xab"], ""),
        Row("grep_q", ["a.c", "abd"], ""),
        Row("grep_q", ["[abc", "a"], Raises("grep: Unmatched [")),
        Row("grep_field", ["h", "MINOR", "3"], "2", {"h": _ROCM_H}),
        Row("grep_field", ["h", "VERSION", "3"], "6\n2", {"h": _ROCM_H}),
        Row("grep_field", ["h", "PATCH", "3"], Raises("no line of h matches"), {"h": _ROCM_H}),
        Row("grep_field", ["h", "PATCH", "3"], "", {"h": _ROCM_H}, planning=True),
        Row("grep_field", ["gone", "X", "1"], "", planning=True),
        Row("grep_field", ["gone", "X", "1"], Raises("grep: gone: cannot be read")),
        Row("uncommented_lines", ["m"], ["a,b", "c"], {"m": "# c\n  # d\na,b\nc\n"}),
        Row("uncommented_lines", ["gone"], [], planning=True),
        Row("uncommented_lines", ["gone"], Raises("gone: cannot be read")),
        Row("uncommented_lines", ["m"], Raises("selected no line"), {"m": "# only\n"}),
    ]


def _rows_arith() -> list[Row]:
    return [
        Row("int_quotient", ["7", "2"], "3"),
        Row("int_quotient", ["-7", "2"], "-3"),
        Row("int_quotient", ["1", ""], "", planning=True),
        Row("int_quotient", ["1", "0"], Raises("division by 0")),
        Row("int_quotient", ["x", "1"], Raises("dividend='x'")),
        Row("int_range", ["1", "3"], ["1", "2", "3"]),
        Row("int_range", ["3", "1"], []),
        Row("sum_first_column", ["n"], "17.5", {"n": "3 a\n4.5\nx\n\n1e1\n"}),
        Row("sum_first_column", ["n"], "5", {"n": "2\n3\n"}),
        Row("sum_first_column", ["gone"], "0", planning=True),
        Row("sum_first_column", ["gone"], Raises("awk: cannot open 'gone'")),
        Row("version_sort_first", ["3.10", "3.9"], "3.9"),
        Row("version_sort_first", ["1.10\n1.2"], "1.2"),
        Row("version_sort_first", ["1.0~rc1", "1.0"], "1.0~rc1"),
        Row("version_sort_first", [], ""),
    ]


def _rows_reports() -> list[Row]:
    api = "public_api_check"
    return [
        Row("unbacked_parity_regressions", ["r", "5"], "modelA:+20.0%", {"r": _TABLE}),
        Row("unbacked_parity_regressions", ["r", "50"], "", {"r": _TABLE}),
        Row("unbacked_parity_regressions", ["gone", "5"], ""),
        # As in test.sh, an "unbacked ... FAILED" line matches the backed pattern first.
        Row("unbacked_parity_failures", ["f"], "", {"f": _FAILURES}),
        Row("unbacked_parity_failures", ["gone"], ""),
        Row(api, ["t", "0", "out", "bad_item", "the item"], _PASSED_API),
        Row(api, ["t", "1", "has bad_item here", "bad_item", "the item"], ""),
        Row(api, ["t", "1", "nothing", "bad_item", "the item"], _MISSED_ITEM),
        Row(api, ["t", "x", "", "i", "d"], Raises("'x' is not a status")),
    ]


def _rows_platform() -> list[Row]:
    pins = {".github/ci_commit_pins/vision.txt": "abc123\n"}
    which_path = {"PATH": "{cwd}/bin"}
    return [
        Row("pin", ["vision"], "abc123", pins),
        Row("pin", ["audio"], "", planning=True),
        Row("pin", ["audio"], Raises("no pinned commit for 'audio'")),
        Row("machine", [], os.uname().machine),
        Row("nproc", [], Check("a positive count", lambda v, cwd: int(v) > 0)),
        Row("which", ["a"], "{cwd}/bin/a", _BIN, env=which_path),
        Row("which", ["b"], "", _BIN, env=which_path),
        Row("site_packages", [], Check("a folder", lambda v, cwd: Path(v).is_dir())),
        Row("trait_group", ["cuda", "1"], "12"),
        Row("trait_group", ["cuda"], "cuda12.8"),
        Row("trait_group", ["rocm", "1"], ""),
    ]


ROWS = [
    *_rows_paths(),
    *_rows_files(),
    *_rows_finds(),
    *_rows_tempfiles(),
    *_rows_text(),
    *_rows_grep(),
    *_rows_arith(),
    *_rows_reports(),
    *_rows_platform(),
]

# The traits trait_group reads: name -> (regex, the value it is tested against).
TRAITS = {"cuda": (r"cuda(\d+)\.(\d+)", "linux-jammy-cuda12.8-py3"), "rocm": (r"rocm(\d+)", "x")}


def _ids() -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for row in ROWS:
        seen[row.native] = seen.get(row.native, 0) + 1
        ids.append(f"{row.native}-{seen[row.native]}")
    return ids


def _make(cwd: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == DIR:
            path.mkdir()
        elif content.startswith(LINK):
            path.symlink_to(content[len(LINK) :])
        else:
            path.write_text("#!/bin/sh\n" if content == EXE else content)
            if content == EXE:
                path.chmod(0o755)


def _fill(value: Any, cwd: Path) -> Any:
    """``value`` with ``{cwd}``, ``{tmp}`` and ``{tmpdir}`` put in."""
    if isinstance(value, list):
        return [_fill(v, cwd) for v in value]
    if not isinstance(value, str):
        return value
    tmpdir = os.environ.get("TMPDIR") or "/tmp"
    return (
        value.replace("{cwd}", str(cwd))
        .replace("{tmpdir}", tmpdir)
        .replace("{tmp}", tempfile.gettempdir())
    )


def _context(cwd: Path, planning: bool, env: Mapping[str, str]) -> NativeContext:
    def trait_match(name: str) -> re.Match[str] | None:
        pattern, value = TRAITS[name]
        return re.search(pattern, value)

    filled = {k: _fill(v, cwd) for k, v in env.items()}
    return NativeContext(cwd, cwd, planning, lambda n: filled.get(n, ""), trait_match)


@pytest.mark.parametrize("row", ROWS, ids=_ids())
def test_native(row: Row, tmp_path: Path) -> None:
    cwd = tmp_path.resolve() / "checkout"
    cwd.mkdir()
    _make(cwd, row.files)
    ctx = _context(cwd, row.planning, row.env)
    args = [_fill(a, cwd) for a in row.args]
    if isinstance(row.expected, Raises):
        with pytest.raises(NativeError, match=re.escape(row.expected.text)):
            call_native(row.native, ctx, args)
        return
    answer = call_native(row.native, ctx, args)
    if isinstance(row.expected, Check):
        assert row.expected.test(answer, cwd), f"{answer!r} is not {row.expected.what}"
    else:
        assert answer == _fill(row.expected, cwd)


def test_an_unknown_native_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NativeError, match=re.escape("unknown native function @nope()")):
        call_native("nope", _context(tmp_path, True, {}), [])


def test_a_conftest_registers_its_own_native(tmp_path: Path) -> None:
    @native("_test_only_shout")
    def _shout(ctx: NativeContext, word: str) -> str:
        return word.upper()

    try:
        assert call_native("_test_only_shout", _context(tmp_path, True, {}), ["hi"]) == "HI"
    finally:
        del NATIVES["_test_only_shout"]


def test_the_table_covers_every_native() -> None:
    # NATIVES less any a conftest of an in-process run may have added.
    ours = {m.__name__ for m in natives.MODULES}
    registered = {name for name, fn in NATIVES.items() if fn.__module__ in ours}
    assert {row.native for row in ROWS} == registered
