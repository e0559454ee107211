"""Plans against a populated checkout, compared with what bash itself does on it.

Each test builds a small tree in ``tmp_path`` from the tables below (odd names included:
spaces, tabs, newlines, leading dashes, glob characters, non-ASCII and non-UTF-8 bytes,
folders and links where files are expected, modes with and without the execute bits),
runs the shell commands test.sh runs on that tree with bash, find, sed, sort and tr
themselves, and checks that the plugin's plan of the job passes the same words. The
expectation comes from bash, never from a list written here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from pytest_torchci.data.bash import pathname_expand, split_words
from pytest_torchci.data.loader import SuiteData, load_suites
from pytest_torchci.data.model import Command, Job, Plan
from pytest_torchci.plan.natives import NativeContext, call_native
from pytest_torchci.plan.planner import plan_job

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("bash", "find", "sed", "sort", "tr")),
    reason="needs bash, find, sed, sort and tr",
)

FILE, EXE, DIR, XDIR = "file", "exe", "dir", "xdir"  # 0644, 0755, 0755 folder, 0644 folder
LINK = "->"  # a symbolic link to what follows

# (path, kind): a non-UTF-8 byte is written as a surrogate (os.fsdecode's).
_XFF = os.fsdecode(b"\xff")
TREE: tuple[tuple[str, str], ...] = (
    # test_dtensor: find test/distributed/tensor -name 'test_*.py' ... | sort | tr
    ("test/distributed/tensor/test_api.py", FILE),
    ("test/distributed/tensor/test_dynamic 2.py", FILE),
    ("test/distributed/tensor/test_tab\tx.py", FILE),
    ("test/distributed/tensor/test_new\nline.py", FILE),
    ("test/distributed/tensor/test_[ab].py", FILE),
    ("test/distributed/tensor/test_*.py", FILE),
    ("test/distributed/tensor/test_é.py", FILE),
    (f"test/distributed/tensor/test_{_XFF}.py", FILE),
    ("test/distributed/tensor/test_Z.py", FILE),
    ("test/distributed/tensor/parallel/test_tp.py", FILE),
    ("test/distributed/tensor/-dash/test_dash.py", FILE),
    ("test/distributed/tensor/test_dir.py/test_inner.py", FILE),
    ("test/distributed/tensor/test_link.py", LINK + "test_api.py"),
    ("test/distributed/tensor/linked", LINK + "parallel"),
    ("test/distributed/tensor/helper.py", FILE),
    ("test/distributed/tensor/test_notes.txt", FILE),
    # what an unquoted `distributed/tensor/test_*` or `..._[ab]` then globs to
    ("distributed/tensor/test_zz", DIR),
    ("distributed/tensor/test_a", FILE),
    # test_native_aot's glob and test_python_smoke_b200's find
    ("test/python_native/test_b.py", FILE),
    ("test/python_native/test_a c.py", FILE),
    ("test/python_native/test_[x].py", FILE),
    ("test/python_native/test_x.py", FILE),
    ("test/python_native/test_ü.py", FILE),
    (f"test/python_native/test_{_XFF}.py", FILE),
    ("test/python_native/test_\U0001f600.py", FILE),  # after \xff in str order, before in bytes
    ("test/python_native/test_B.py", FILE),
    ("test/python_native/test_-1.py", FILE),
    ("test/python_native/sub/test_deep.py", FILE),
    ("test/python_native/.test_hidden.py", FILE),
    # test_vec256: $(find . -maxdepth 1 -executable -name 'vec256_test*'), unquoted
    ("build/bin/vec256_test_a", EXE),
    ("build/bin/vec256_test_plain", FILE),
    ("build/bin/vec256_test_dir", DIR),
    ("build/bin/vec256_test_closed", XDIR),
    ("build/bin/vec256_test c", EXE),
    ("build/bin/vec256_test_[a]", EXE),
    ("build/bin/vec256_test\nnl", EXE),
    ("build/bin/vec256_test_link", LINK + "vec256_test_a"),
    ("build/bin/vec256_test_broken", LINK + "gone"),
    ("build/bin/.vec256_test_hidden", EXE),
    ("build/bin/other_test", EXE),
    # test_libtorch_profiler: for f in "$kineto_bin_dir"/*; [[ -x $f ]] ...
    ("build/bin/kineto/k_a", EXE),
    ("build/bin/kineto/k_plain", FILE),
    ("build/bin/kineto/k_dir", DIR),
    ("build/bin/kineto/.k_hidden", EXE),
    ("build/bin/kineto/k space", EXE),
    ("build/bin/kineto/-k_dash", EXE),
    ("build/bin/kineto/k_nl\n", EXE),
    (f"build/bin/kineto/k_{_XFF}", EXE),
    ("build/bin/kineto/K_upper", EXE),
    ("build/bin/kineto/k_link", LINK + "k_a"),
    # the tsan prelude: "$(echo dist/*.whl)[opt-einsum]"
    ("dist/torch-2.whl", FILE),
    ("dist/torch 1.whl", FILE),
    ("dist/torch-é.whl", FILE),
    (f"dist/torch-{_XFF}.whl", FILE),
    ("dist/torch-\U0001f600.whl", FILE),
    ("dist/.hidden.whl", FILE),
)

# The jobs that read those folders.
DTENSOR = Job("linux-jammy-cuda13.2-py3.11-gcc11", "dtensor")
SMOKE_B200 = Job("linux-jammy-cuda13.0-py3.12-gcc11-sm100", "smoke_b200")
NATIVE_AOT = Job("linux-jammy-cuda13.0-py3.12-gcc11-sm100", "native_aot")
DEFAULT_CPU = Job("linux-jammy-py3.10-gcc11", "default")  # the final else: test_vec256
DEFAULT_SHARD2 = Job("linux-jammy-cuda13.2-py3.11-gcc11", "default", "2", "2")  # profiler
TSAN = Job("linux-jammy-py3.14t-clang18-tsan", "tsan")


def build_tree(root: Path, entries: Iterable[tuple[str, str]]) -> Path:
    for rel, kind in entries:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind.startswith(LINK):
            path.symlink_to(kind[len(LINK) :])
        elif kind in (DIR, XDIR):
            path.mkdir(exist_ok=True)
            path.chmod(0o755 if kind == DIR else 0o644)
        else:
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755 if kind == EXE else 0o644)
    return root


@pytest.fixture(scope="module")
def suites() -> SuiteData:
    return load_suites()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = build_tree(tmp_path / "checkout", TREE)
    yield root
    for rel, kind in TREE:  # let pytest remove the folders it cannot list
        if kind == XDIR:
            (root / rel).chmod(0o755)


# `words ARG...` prints each argument NUL-terminated (nothing for none).
_WORDS = "set -e -o pipefail\nwords() { [ $# -eq 0 ] || printf '%s\\0' \"$@\"; }\n"


def bash_words(script: str, cwd: Path) -> list[str]:
    """Run ``script`` with bash in ``cwd`` (the locale test.sh sets, errexit and
    pipefail as there) and read the words it prints with ``words``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    out = subprocess.run(
        ["bash", "-c", _WORDS + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    return [os.fsdecode(w) for w in out.split(b"\0")[:-1]]


def plan_of(data: SuiteData, job: Job, root: Path) -> Plan:
    plan = plan_job(data, job, root).plan
    assert plan.error is None, plan.error
    return plan


def commands(plan: Plan, call: str | None) -> list[Command]:
    return [c for s in (*plan.prelude, *plan.steps) if s.call == call for c in s.commands]


def words_after(argv: tuple[str, ...], flag: str, stop: str | None) -> list[str]:
    rest = list(argv[argv.index(flag) + 1 :])
    return rest[: rest.index(stop)] if stop is not None else rest


def run_test_includes(plan: Plan, call: str) -> list[list[str]]:
    return [
        words_after(c.argv, "--include", None)
        for c in commands(plan, call)
        if c.argv[:2] == ("python", "test/run_test.py") and "--include" in c.argv
    ]


# --- the find pipelines: unquoted $(find ... | sed | sort | tr), split and globbed ----

FIND_TESTS = r"""
words $(find {folder} -name 'test_*.py' -printf '%P\n' \
  | sed 's|\.py$||; s|^|{prefix}|' | sort | tr '\n' ' ')
"""


def test_dtensor_passes_the_words_bash_makes(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(
        FIND_TESTS.format(folder="test/distributed/tensor", prefix="distributed/tensor/"), tree
    )
    # the cases this tree is for: a name with a space is two words, a glob in a name
    # is expanded at the checkout's top, a folder named test_*.py counts
    assert "distributed/tensor/test_dynamic" in expected and "2" in expected
    assert "distributed/tensor/test_zz" in expected  # from the file named test_*.py
    assert "distributed/tensor/test_a" in expected  # from test_[ab].py
    assert "distributed/tensor/test_dir" in expected
    assert "distributed/tensor/linked/test_tp" not in expected  # links are not followed
    plan = plan_of(suites, DTENSOR, tree)
    (includes,) = run_test_includes(plan, "test_dtensor")
    assert includes[: includes.index("--verbose")] == expected


def test_smoke_b200_finds_python_native_as_bash_does(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(
        FIND_TESTS.format(folder="test/python_native", prefix="python_native/"), tree
    )
    assert "python_native/sub/test_deep" in expected
    plan = plan_of(suites, SMOKE_B200, tree)
    last = run_test_includes(plan, "test_python_smoke_b200")[-1]
    assert last[: last.index("--verbose")] == expected


def test_a_missing_folder_gives_no_word(suites: SuiteData, tmp_path: Path) -> None:
    root = build_tree(tmp_path / "checkout", [("test/other/x.py", FILE)])
    script = FIND_TESTS.format(folder="test/distributed/tensor", prefix="distributed/tensor/")
    assert bash_words(script, root) == []
    plan = plan_of(suites, DTENSOR, root)
    (includes,) = run_test_includes(plan, "test_dtensor")
    assert includes[: includes.index("--verbose")] == []


# --- globs: for f in test/python_native/test_*.py, "$(echo dist/*.whl)" -------------

NATIVE_AOT_LOOP = r"""
tests=()
for f in test/python_native/test_*.py; do tests+=("${f#test/}"); done
words "${tests[@]%.py}"
"""

TSAN_WHEEL = 'words "$(echo dist/*.whl)[opt-einsum]"'


def test_native_aot_globs_in_bash_order(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(NATIVE_AOT_LOOP, tree)
    assert "python_native/test_a c" in expected  # one word: the glob's result is not split
    assert "python_native/test_B" in expected and "python_native/test_b" in expected
    plan = plan_of(suites, NATIVE_AOT, tree)
    (includes,) = run_test_includes(plan, "test_native_aot")
    assert includes[: includes.index("--upload-artifacts-while-running")] == expected


def test_a_glob_that_matches_nothing_stays_literal(suites: SuiteData, tmp_path: Path) -> None:
    root = build_tree(tmp_path / "checkout", [("test/python_native/helper.py", FILE)])
    expected = bash_words(NATIVE_AOT_LOOP, root)
    assert expected == ["python_native/test_*"]
    plan = plan_of(suites, NATIVE_AOT, root)
    (includes,) = run_test_includes(plan, "test_native_aot")
    assert includes[:-1] == expected
    tsan = plan_of(suites, TSAN, root)
    (argv,) = [
        c.argv for c in commands(tsan, None) if c.argv[:4] == ("python", "-m", "pip", "install")
    ]
    assert list(argv[4:]) == bash_words(TSAN_WHEEL, root)


def test_tsan_installs_the_echoed_wheels(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(TSAN_WHEEL, tree)
    assert len(expected) == 1 and "dist/torch 1.whl" in expected[0]
    plan = plan_of(suites, TSAN, tree)
    (argv,) = [
        c.argv for c in commands(plan, None) if c.argv[:4] == ("python", "-m", "pip", "install")
    ]
    assert list(argv[4:]) == expected


# --- executables: find -executable (unsorted) and [[ -x ]] over a glob ---------------

VEC256 = r"""
cd build/bin
vec256_tests=$(find . -maxdepth 1 -executable -name 'vec256_test*')
for vec256_exec in $vec256_tests; do words "$vec256_exec"; done
"""

KINETO = r"""
kineto_tests=()
for kineto_test in "build/bin/kineto"/*; do
  [[ -x "${kineto_test}" ]] || continue
  kineto_tests+=("cpp/$(basename "${kineto_test}")")
done
words "${kineto_tests[@]}"
"""


def test_vec256_runs_what_find_finds_in_its_order(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(VEC256, tree)
    # folders count (executable means searchable; vec256_test_closed, mode 0644, only
    # for root), a name with a space or a newline is
    # two words, ./vec256_test_[a] globs to ./vec256_test_a, links count as their target
    assert "./vec256_test_dir" in expected and "./vec256_test_plain" not in expected
    assert "./vec256_test" in expected and "c" in expected and "nl" in expected
    assert "./vec256_test_[a]" not in expected
    plan = plan_of(suites, DEFAULT_CPU, tree)
    runs = [c for c in commands(plan, "test_vec256") if c.cwd == "build/bin"]
    assert [c.argv[0] for c in runs] == expected
    assert all(
        c.argv[1] == f"--gtest_output=xml:test/test-reports/vec256/{c.argv[0]}.xml" for c in runs
    )
    (step,) = [s for s in plan.steps if s.call == "test_vec256"]
    assert any("order this file system lists" in n for n in step.notes)


def test_kineto_tests_are_the_executables_bash_globs(suites: SuiteData, tree: Path) -> None:
    expected = bash_words(KINETO, tree)
    assert "cpp/k_dir" in expected and "cpp/.k_hidden" not in expected
    assert "cpp/k_nl" in expected and "cpp/k space" in expected
    plan = plan_of(suites, DEFAULT_SHARD2, tree)
    (argv,) = [
        c.argv
        for c in commands(plan, "test_libtorch_profiler")
        if c.env.get("CPP_TESTS_DIR") == "build/bin/kineto"
    ]
    assert words_after(argv, "-i", None) == expected


def test_no_kineto_binary_fails_as_test_sh_does(suites: SuiteData, tmp_path: Path) -> None:
    root = build_tree(tmp_path / "checkout", [("build/bin/kineto/k_plain", FILE)])
    assert bash_words(KINETO, root) == []
    plan = plan_job(suites, DEFAULT_SHARD2, root).plan
    assert not [c for c in commands(plan, "test_libtorch_profiler") if c.env.get("CPP_TESTS_DIR")]


# --- the rules themselves: IFS splitting, globs ---------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        " a\tb\nc ",
        "a\vb\fc",
        "a\u00a0b",
        "a\rb",
        "x\x1cy",
        "",
        " \t\n",
        "--flag=1  -k 'x y'",
    ],
    ids=repr,
)
def test_split_words_is_bash_s(value: str, tmp_path: Path) -> None:
    script = f"set -f; v=$'{_ansi_c(value)}'; words $v"
    assert split_words(value) == bash_words(script, tmp_path)


def _ansi_c(value: str) -> str:
    """``value`` inside bash's ``$'...'``: every byte as ``\\xHH``."""
    return "".join(f"\\x{b:02x}" for b in value.encode())


@pytest.mark.parametrize(
    "pattern",
    [
        "dist/*.whl",
        "dist/.*",
        "dist/*",
        "build/bin/vec256_test_[a]",
        "build/bin/vec256_test_[!a]*",
        "build/bin/vec256_test_[^a]*",
        "build/bin/vec256_test?c",
        "build/bin/*/k_[[:alpha:]]*",
        "build/*/",
        "build//bin/k*",
        "test/*/test_*.py",
        "test/python_native/test_[",
        "nothing/*.whl",
        "dist/torch-[0-9].whl",
        "build/bin/kineto/*",
    ],
)
def test_pathname_expansion_is_bash_s(pattern: str, tree: Path) -> None:
    expected = bash_words(f"p='{pattern}'; words $p", tree)
    assert pathname_expand(pattern, tree) == expected


def _native(name: str, cwd: Path, *args: str) -> str | list[str]:
    ctx = NativeContext(cwd, cwd, False, lambda n: "", lambda n: None)
    return call_native(name, ctx, list(args))


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("build/bin", "k_*"),
        ("build/bin/", "vec256_test*"),
        ("build/../build/bin", "k_a"),
        ("test", "test_*.py"),
        ("dist", "*.whl"),
        ("build", "kineto"),
        ("build/bin/kineto", "kineto"),
        ("nothing", "x"),
    ],
)
def test_find_file_prints_what_find_prints(folder: str, name: str, tree: Path) -> None:
    """``VAR=$(find FOLDER -name NAME)``, as the jemalloc and TBB preloads read it: the
    same paths, as given, in find's order (the folder's own, depth first)."""
    script = f"v=$(find '{folder}' -name '{name}' 2>/dev/null || true); words \"$v\""
    (expected,) = bash_words(script, tree)
    assert _native("find_file", tree, folder, name) == expected
    absolute = str(tree / folder)
    (expected,) = bash_words(script.replace(f"'{folder}'", f"'{absolute}'"), tree)
    assert _native("find_file", tree, absolute, name) == expected


@pytest.mark.parametrize(
    "value",
    ["a b", "  a   b  ", "a\tb c", "a\\b c", "a b\nc d", "*.whl dist/*", "one", " ", ""],
    ids=repr,
)
def test_read_array_is_bash_s(value: str, tmp_path: Path) -> None:
    """``IFS=' ' read -r -a paths <<< "$value"`` (pip_install_whl's split), run by bash."""
    (tmp_path / "x.whl").write_text("")
    script = f"v=$'{_ansi_c(value)}'; IFS=' ' read -r -a a <<< \"$v\" || true; words \"${{a[@]}}\""
    assert _native("read_array", tmp_path, value) == bash_words(script, tmp_path)


@pytest.mark.parametrize(
    ("folder", "rest"),
    [
        ("lib[1]", "/libc10*"),  # the folder's name would be a pattern unquoted
        ("lib*", "/libc10*"),
        ("a b", "/*.whl"),
        ("lib[1]", "/nothing*"),  # no match: the word, its quotes removed
        ("plain", "/lib?10.so"),
    ],
)
def test_a_quoted_variable_in_a_glob_is_literal(folder: str, rest: str, tmp_path: Path) -> None:
    """``"$DIR"/libc10*`` (test_aten's links, pip_build_and_install's wheels): the value
    is taken as it is, however it reads as a pattern; only the unquoted rest globs."""
    for name in ("lib[1]", "lib1", "libx", "lib*", "a b", "plain"):
        (tmp_path / name).mkdir()
        for leaf in ("libc10.so", "libc10_cuda.so", "t.whl"):
            (tmp_path / name / leaf).write_text("")
    expected = bash_words(f"d='{folder}'; words \"$d\"{rest}", tmp_path)
    assert _native("glob", tmp_path, f'"{folder}"{rest}') == expected
    unquoted = bash_words(f"set -f; d='{folder}'; set +f; words $d{rest}", tmp_path)
    if " " not in folder:  # unquoted, bash would split the value too
        assert _native("glob", tmp_path, f"{folder}{rest}") == unquoted


@pytest.mark.parametrize("folder", ["dist", "dist/", "build/bin/kineto", "nothing-here"])
def test_find_first_file_takes_what_find_lists_first(folder: str, tree: Path) -> None:
    """``find FOLDER -maxdepth 1 -name '*' -type f | head -1`` (the wheel test's pick),
    and a note where more than one could have been first."""
    find = f"find '{folder}' -maxdepth 1 -name '*' -type f 2>/dev/null"
    script = f'v=$({find} | head -1 || true); words "$v"'
    (expected,) = bash_words(script, tree)
    notes: list[str] = []
    ctx = NativeContext(tree, tree, True, lambda n: "", lambda n: None, notes.append)
    assert call_native("find_first_file", ctx, [folder, "*"]) == expected
    assert bool(notes) == (folder.startswith("dist") or folder == "build/bin/kineto")
