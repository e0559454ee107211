#!/usr/bin/env python3
"""Minimal test runner for the pytest-torchci sample checkout.

This stands in for PyTorch's ``test/run_test.py``. It accepts the flags that
``.ci/pytorch/test.sh`` passes, selects test files under ``test/``, shards them
and runs each selected file in its own ``python -m pytest`` child process,
writing one JUnit XML report per file in PyTorch's
``test/test-reports/python-pytest/<name>/<name>-<hex>.xml`` layout.

Flags that only matter to a real PyTorch build are accepted and reported but
have no further effect. Unknown flags produce a warning, not an error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

TEST_DIR = Path(__file__).resolve().parent
REPORTS_DIR = TEST_DIR / "test-reports" / "python-pytest"

# Directories under test/ that never hold sample test files.
SKIP_DIRS = frozenset({"torch", "test-reports", "cpp", "__pycache__"})

# Exclusion groups: flag destination -> (path prefixes, exact test names).
EXCLUSION_GROUPS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "exclude_jit_executor": (
        (),
        frozenset({"test_jit_legacy", "test_jit_profiling", "test_jit_fuser_legacy"}),
    ),
    "exclude_distributed_tests": (("distributed/",), frozenset()),
    "exclude_quantization_tests": (
        ("quantization/",),
        frozenset({"test_quantization"}),
    ),
    "exclude_inductor_tests": (("inductor/",), frozenset()),
    "exclude_torch_export_tests": (("export/",), frozenset({"test_export"})),
    "exclude_aot_dispatch_tests": (("functorch/test_aotdispatch",), frozenset()),
}

# Flags accepted for compatibility that change nothing in the sample.
NO_OP_FLAGS = (
    "upload_artifacts_while_running",
    "multigpu_filter",
    "multigpu_min_gpus",
    "xpu",
    "einops",
    "openreg",
    "include_dynamo_core_tests",
    "include_inductor_core_tests",
    "include_cpython_tests",
    "dist",
)


@dataclass(frozen=True)
class Outcome:
    """Result of running one selected test (Python file or skipped C++ binary)."""

    name: str
    status: str
    returncode: int
    seconds: float
    report: Path

    @property
    def ok(self) -> bool:
        """Whether this test counts as passing (pytest exit 5 is 'no tests')."""
        return self.returncode in (0, 5)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser mirroring the flags test.sh passes."""
    parser = argparse.ArgumentParser(
        description="Sample-checkout stand-in for PyTorch's test/run_test.py",
        allow_abbrev=False,
    )
    parser.add_argument(
        "-i",
        "--include",
        nargs="+",
        default=[],
        metavar="TEST",
        help="only run these tests (names relative to test/, .py optional)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="TEST",
        help="do not run these tests",
    )
    parser.add_argument("--exclude-jit-executor", action="store_true")
    parser.add_argument("--exclude-distributed-tests", action="store_true")
    parser.add_argument("--exclude-quantization-tests", action="store_true")
    parser.add_argument("--exclude-inductor-tests", action="store_true")
    parser.add_argument("--exclude-torch-export-tests", action="store_true")
    parser.add_argument("--exclude-aot-dispatch-tests", action="store_true")
    parser.add_argument(
        "--shard",
        nargs=2,
        type=int,
        metavar=("N", "M"),
        help="run shard N of M (1-based, round-robin over sorted tests)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print the command line of each child pytest",
    )
    parser.add_argument(
        "--cpp",
        action="store_true",
        help="run C++ tests (none are built in the sample: all skipped)",
    )
    parser.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="pytest -k expression passed to each child",
    )
    parser.add_argument("--upload-artifacts-while-running", action="store_true")
    parser.add_argument(
        "--dynamo",
        action="store_true",
        help="set PYTORCH_TEST_WITH_DYNAMO=1 for children",
    )
    parser.add_argument(
        "--inductor",
        action="store_true",
        help="set PYTORCH_TEST_WITH_INDUCTOR=1 for children",
    )
    parser.add_argument(
        "--distributed-tests",
        action="store_true",
        help="only run tests under distributed/",
    )
    parser.add_argument("--multigpu-filter", metavar="FILTER")
    parser.add_argument("--xpu", action="store_true")
    parser.add_argument("--einops", action="store_true")
    parser.add_argument("--openreg", action="store_true")
    parser.add_argument("--include-dynamo-core-tests", action="store_true")
    parser.add_argument("--include-inductor-core-tests", action="store_true")
    parser.add_argument("--include-cpython-tests", action="store_true")
    parser.add_argument(
        "--pytest-xdist-workers",
        type=int,
        metavar="N",
        help="pass -n N to child pytest when pytest-xdist is installed",
    )
    parser.add_argument("--multigpu-min-gpus", type=int, metavar="N")
    parser.add_argument("-dist", dest="dist", metavar="BACKEND")
    return parser


def log(message: str) -> None:
    """Print a runner message, flushed so it stays ordered with child output."""
    print(f"[run_test] {message}", flush=True)


def flag_name(dest: str) -> str:
    """Return the command-line spelling of the option stored in ``dest``."""
    return "-dist" if dest == "dist" else "--" + dest.replace("_", "-")


def normalize_name(name: str) -> str:
    """Turn a user-supplied test name into the ``dir/test_x`` form."""
    name = name.replace(os.sep, "/").strip("/")
    name = name.removeprefix("test/")
    return name.removesuffix(".py")


def discover_tests(test_dir: Path = TEST_DIR) -> list[str]:
    """Return sorted names (relative to test/, no ``.py``) of all test files."""
    names: list[str] = []
    for path in test_dir.rglob("test_*.py"):
        rel = path.relative_to(test_dir)
        if rel.parts[0] in SKIP_DIRS or "__pycache__" in rel.parts:
            continue
        names.append(rel.with_suffix("").as_posix())
    return sorted(names)


def is_excluded(name: str, args: argparse.Namespace) -> bool:
    """Whether ``name`` is dropped by ``--exclude`` or an ``--exclude-*`` group flag."""
    if name in {normalize_name(n) for n in args.exclude}:
        return True
    for dest, (prefixes, exact) in EXCLUSION_GROUPS.items():
        if getattr(args, dest) and (name in exact or name.startswith(prefixes)):
            return True
    return False


def select_tests(all_tests: Sequence[str], args: argparse.Namespace) -> list[str]:
    """Apply ``--include``, ``--distributed-tests`` and exclusions (sorted result)."""
    available = set(all_tests)
    if args.include:
        wanted = [normalize_name(n) for n in args.include]
        missing = [n for n in wanted if n not in available]
        if missing:
            log(f"note: not in the sample checkout, ignored: {' '.join(missing)}")
        selected = {n for n in wanted if n in available}
    else:
        selected = set(available)
    if args.distributed_tests:
        selected = {n for n in selected if n.startswith("distributed/")}
    return sorted(n for n in selected if not is_excluded(n, args))


def shard(tests: Sequence[str], which: int, total: int) -> list[str]:
    """Return shard ``which`` (1-based) of ``total`` by round-robin over ``tests``."""
    return [t for i, t in enumerate(tests) if i % total == which - 1]


def report_path(name: str) -> Path:
    """Return a fresh JUnit XML path for ``name`` in PyTorch's report layout."""
    dotted = name.replace("/", ".")
    return REPORTS_DIR / dotted / f"{dotted}-{secrets.token_hex(8)}.xml"


def write_skipped_report(path: Path, name: str, reason: str) -> None:
    """Write a JUnit XML report holding a single skipped testcase."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dotted = quoteattr(name.replace("/", "."))
    suite = 'name="pytest" errors="0" failures="0" skipped="1" tests="1"'
    skipped = f"message={quoteattr(reason)}>{escape(reason)}"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<testsuites><testsuite {suite}>"
        f'<testcase classname={dotted} name={dotted} time="0.0">'
        f'<skipped type="pytest.skip" {skipped}</skipped>'
        "</testcase></testsuite></testsuites>\n",
        encoding="utf-8",
    )


def run_cpp_tests(names: Iterable[str]) -> list[Outcome]:
    """Record every requested C++ test as skipped: the sample has no binaries."""
    outcomes: list[Outcome] = []
    for raw in names:
        name = normalize_name(raw)
        path = report_path(name)
        reason = "no C++ test binaries in the sample checkout"
        log(f"{name}: skipped ({reason})")
        write_skipped_report(path, name, reason)
        outcomes.append(Outcome(name, "SKIPPED", 0, 0.0, path))
    return outcomes


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """Return the environment for child pytest processes."""
    env = dict(os.environ)
    if args.dynamo:
        env["PYTORCH_TEST_WITH_DYNAMO"] = "1"
    if args.inductor:
        env["PYTORCH_TEST_WITH_INDUCTOR"] = "1"
    return env


def pytest_argv(name: str, xml: Path, args: argparse.Namespace) -> list[str]:
    """Build the child ``python -m pytest`` command for test file ``name``."""
    argv = [sys.executable, "-m", "pytest", f"{name}.py", "-q"]
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.pytest_xdist_workers and importlib.util.find_spec("xdist") is not None:
        argv += ["-n", str(args.pytest_xdist_workers)]
    argv += ["-p", "no:cacheprovider", f"--junitxml={xml}"]
    return argv


def run_python_test(name: str, args: argparse.Namespace, env: dict[str, str]) -> Outcome:
    """Run one test file in a child pytest with cwd=test/ and return its outcome."""
    xml = report_path(name)
    xml.parent.mkdir(parents=True, exist_ok=True)
    argv = pytest_argv(name, xml, args)
    if args.verbose:
        log(f"$ {' '.join(argv)}")
    start = time.monotonic()
    rc = subprocess.run(argv, cwd=TEST_DIR, env=env, check=False).returncode
    seconds = time.monotonic() - start
    status = {0: "PASSED", 5: "NO TESTS"}.get(rc, f"FAILED (exit {rc})")
    log(f"{name}: {status} in {seconds:.2f}s -> {xml.relative_to(TEST_DIR)}")
    return Outcome(name, status, rc, seconds, xml)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, select and run tests; return the process exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"warning: ignoring unknown arguments: {' '.join(unknown)}")
    if args.shard is not None:
        which, total = args.shard
        if total < 1 or not 1 <= which <= total:
            parser.error(f"--shard {which} {total}: need 1 <= N <= M")
    ignored = [flag_name(d) for d in NO_OP_FLAGS if getattr(args, d)]
    if ignored:
        log(f"note: accepted, no effect in the sample: {' '.join(ignored)}")

    if args.cpp:
        outcomes = run_cpp_tests(args.include)
    else:
        selected = select_tests(discover_tests(), args)
        if args.shard is not None:
            count = len(selected)
            selected = shard(selected, *args.shard)
            log(
                f"shard {args.shard[0]}/{args.shard[1]}: "
                f"{len(selected)} of {count} selected test files"
            )
        if not selected:
            log("note: no test files selected, nothing to run")
        env = child_env(args)
        outcomes = [run_python_test(name, args, env) for name in selected]

    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        log(f"FAILED: {' '.join(failed)}")
        return 1
    log(f"OK: {len(outcomes)} test(s) ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
