"""What a failing suite's report says: the command, how it ended, its output and its log."""

from __future__ import annotations

import fnmatch
import json
import shlex
import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_torchci.run.processes import describe_status

EXIT_3 = [sys.executable, "-c", "import sys; print('line'); print('last words'); sys.exit(3)"]
SEGV = [
    sys.executable,
    "-c",
    "import os, signal; print('about to crash', flush=True); os.kill(os.getpid(), signal.SIGSEGV)",
]
BUILD = "linux-demo-py3.11"


def run_demo(
    pytester: pytest.Pytester, suites: Path, *extra: str
) -> tuple[pytest.RunResult, Path, Path]:
    checkout = pytester.path / "checkout"
    checkout.mkdir(exist_ok=True)  # (made beforehand by a test that plants something)
    xml = pytester.path / "out.xml"
    result = pytester.runpytest_inprocess(
        "--torchci-config=demo",
        f"--torchci-build-env={BUILD}",
        f"--torchci-suites={suites}",
        f"--torchci-root={checkout}",
        f"--junitxml={xml}",
        *extra,
    )
    return result, checkout, xml


def properties(xml: Path) -> tuple[ET.Element, dict[str, str]]:
    root = ET.parse(xml).getroot()
    (case,) = root.iter("testcase")
    props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return case, props


def test_failing_command_report(pytester: pytest.Pytester, make_suites: Any) -> None:
    result, checkout, xml = run_demo(pytester, make_suites(argv=EXIT_3))
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    log = checkout / "test" / "test-reports" / "torchci-logs" / "demo_suite.log"
    result.stdout.fnmatch_lines(
        [
            "demo_suite failed (demo: demo_suite())",
            f"command: {shlex.join(EXIT_3)}",
            "     in: .",
            f"   exit: {describe_status(3)}",
            "--- last 2 lines of output ---",
            "line",
            "last words",
            f"--- full log: {log}",
        ]
    )
    assert describe_status(3) == "exited with status 3"
    assert "Traceback" not in result.stdout.str()
    text = log.read_text()
    assert "line\nlast words\n" in text
    assert sys.executable in text

    case, props = properties(xml)
    assert case.get("name") == "demo_suite"
    assert case.get("classname") == "torchci"
    (failure,) = case.iter("failure")
    assert describe_status(3) in (failure.text or "")
    assert props["call"] == "demo_suite"
    assert props["args"] == ""
    assert props["exit_status"] == "3"
    assert float(props["suite_seconds"]) >= 0
    assert props["build_environment"] == BUILD
    assert props["test_config"] == "demo"
    assert props["shard"] == "1/1"
    assert json.loads(props["commands"]) == [shlex.join(EXIT_3)]
    assert props["log"] == str(log)


def test_killed_by_a_signal(pytester: pytest.Pytester, make_suites: Any) -> None:
    result, _, xml = run_demo(pytester, make_suites(argv=SEGV))
    result.assert_outcomes(failed=1)
    status = describe_status(-signal.SIGSEGV)
    assert "SIGSEGV" in status
    result.stdout.fnmatch_lines([f"   exit: {status}", "about to crash"])
    _, props = properties(xml)
    assert props["exit_status"] == str(-signal.SIGSEGV)


def test_command_that_cannot_start(pytester: pytest.Pytester, make_suites: Any) -> None:
    missing = str(pytester.path / "no-such-tool")
    result, _, xml = run_demo(pytester, make_suites(argv=[missing, "--flag"]))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"command: {missing} --flag",
            f"   exit: {describe_status(127)}",
            f"cannot start '{missing}'*",
        ]
    )
    _, props = properties(xml)
    assert props["exit_status"] == "127"


def test_command_whose_folder_is_missing(pytester: pytest.Pytester, make_suites: Any) -> None:
    """A step's own folder (``(cd test && python ...)`` in test.sh) that the checkout
    lacks: the cd fails, as in bash, and the command never starts."""
    suite = (
        "[demo_suite]\n"
        'cites = "demo: demo_suite()"\n'
        'steps = [{ run = ["python", "-c", "pass"], cwd = "nowhere" }]\n'
    )
    result, _, xml = run_demo(pytester, make_suites(files={"demo.toml": suite}))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["command: python -c pass", "     in: nowhere", f"   exit: {describe_status(1)}",
         "cd: nowhere: No such file or directory"]
    )  # fmt: skip
    _, props = properties(xml)
    assert props["exit_status"] == "1"


def test_passing_command_properties(pytester: pytest.Pytester, make_suites: Any) -> None:
    ok = [sys.executable, "-c", "print('fine')"]
    result, _, xml = run_demo(pytester, make_suites(argv=ok), "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["fine"])
    _, props = properties(xml)
    assert props["exit_status"] == "0"
    assert json.loads(props["commands"]) == [shlex.join(ok)]


def test_a_report_folder_that_cannot_be_written_leaves_the_failure_as_it_was(
    pytester: pytest.Pytester, make_suites: Any
) -> None:
    """The synthetic report's folder is taken by a file: the suite still fails for its own
    reason (a failure, not an error of the plugin), and the report says why no synthetic
    report was written."""
    taken = pytester.path / "checkout" / "test" / "test-reports" / "python-pytest" / "demo_suite"
    taken.parent.mkdir(parents=True)
    taken.write_text("not a folder")
    result, _, xml = run_demo(pytester, make_suites(argv=EXIT_3))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"   exit: {describe_status(3)}", "note: no synthetic report could be written: *"]
    )
    assert "Traceback" not in result.stdout.str()
    _, props = properties(xml)
    assert props["exit_status"] == "3" and "synthetic_report" not in props


UNREADABLE_REPORTS = """
from pytest_torchci.run.childreports import ChildReports

_collect = ChildReports.collect

def _fails(self, *args, **kwargs):
    raise PermissionError(13, "Permission denied", "test/test-reports")

def pytest_configure(config):
    ChildReports.collect = _fails

def pytest_unconfigure(config):
    ChildReports.collect = _collect
"""


@pytest.mark.parametrize("argv", [EXIT_3, [sys.executable, "-c", "pass"]], ids=["fails", "passes"])
def test_a_read_back_that_fails_never_takes_the_place_of_the_outcome(
    pytester: pytest.Pytester, make_suites: Any, argv: list[str]
) -> None:
    """The suite's XML cannot be read back (here: refused): a failed suite still fails
    for its own reason, with a note; a passed one still passes. Both say it in a property."""
    pytester.makeconftest(UNREADABLE_REPORTS)
    result, _, xml = run_demo(pytester, make_suites(argv=argv))
    # (a pattern: "[[]" and "[]]" match the brackets)
    why = "the suite's own XML could not be read back: [[]Errno 13[]] Permission denied: *"
    if argv is EXIT_3:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"   exit: {describe_status(3)}", f"note: {why}"])
    else:
        result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str()
    _, props = properties(xml)
    assert fnmatch.fnmatch(props["child_reports_error"], why)
