"""What a parallel run reports: progress totals, the suites' own XML, the lock folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..conftest import run_inprocess
from .test_devices import (
    _natives_for_fakes,  # noqa: F401 (the fake suites' natives need it)
    fake_args,
    make_run_dir,
    run_pytest,
    write_fake_suites,
)

# The progress lines count the selected items only: test_terminal.py,
# test_progress_lines_follow_verbosity (-k leaves a suite out in each of its runs).


def _entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def suites_with_a_setup(run: Path, marker: Path, out: Path) -> Path:
    """Two fake suites after a setup call, `install_thing`, which appends to ``marker``."""
    extra = (
        '[install_thing]\nrole = "setup"\ncites = "test.sh: install_thing()"\n'
        f'steps = [{{ run = ["{sys.executable}", "-c", '
        f"\"open(r'{marker}', 'a').write('x')\"] }}]\n"
    )
    calls = [("fake1", "a-0"), ("fake1", "b-0")]
    suites = write_fake_suites(run / "suites", calls, out=out, extra=extra)
    routes = (suites / "routes.toml").read_text()
    (suites / "routes.toml").write_text(
        routes.replace("calls = [", 'calls = [{ call = "install_thing" }, ')
    )
    return suites


def setup_calls_of(junit: Path) -> list[tuple[str, list[str]]]:
    """Each testcase's name and the values of its `setup_calls` property, in order."""
    return [
        (
            case.get("name", ""),
            [p.get("value", "") for p in case.iter("property") if p.get("name") == "setup_calls"],
        )
        for case in ET.parse(junit).iter("testcase")
    ]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_the_setup_calls_a_suite_brought_about_are_named(
    pytester: pytest.Pytester, tmp_path: Path, workers: list[str]
) -> None:
    """The install runs once per run; the suite whose start ran it says so (-v's line,
    the JUnit property `setup_calls`), and under xdist a suite whose worker took another
    worker's outcome says that instead of a time."""
    run = make_run_dir(tmp_path, "run")
    marker = tmp_path / "setup-ran.txt"
    suites = suites_with_a_setup(run, marker, tmp_path / "r.jsonl")
    junit = tmp_path / "out.xml"
    args = [*fake_args(run, suites, tmp_path / "locks"), "-v", f"--junitxml={junit}", *workers]
    proc = run_pytest(run, *args) if workers else run_inprocess(pytester, run, *args)
    assert proc.returncode == 0, proc.stdout
    assert marker.read_text() == "x"
    said = {name: value for name, values in setup_calls_of(junit) for value in values}
    ran = [name for name, value in said.items() if value != "install_thing (run by another worker)"]
    assert len(ran) == 1, said
    assert re.fullmatch(r"install_thing \d+\.\d\d s", said[ran[0]])
    if not workers:  # the second suite brought nothing about
        assert len(said) == 1
    lines = [ln for ln in proc.stdout.splitlines() if re.match(r"\[\d/2\] ", ln)]
    assert len(lines) == 2, proc.stdout
    assert sum("(setup calls first: install_thing " in ln for ln in lines) == len(said)


def test_a_failed_setup_call_is_named_with_those_before_it(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A second setup call fails: the suite whose start ran both names both (the failed
    one last) and errors; the next suite errors too, having brought nothing about."""
    run = make_run_dir(tmp_path, "run")
    suites = suites_with_a_setup(run, tmp_path / "setup-ran.txt", tmp_path / "r.jsonl")
    broken = '[install_broken]\nrole = "setup"\ncites = "test.sh: install_broken()"\n'
    broken += f'steps = [{{ run = ["{sys.executable}", "-c", "raise SystemExit(1)"] }}]\n'
    with open(suites / "fake.toml", "a") as f:
        f.write(broken)
    routes = (suites / "routes.toml").read_text()
    first = '{ call = "install_thing" }, '
    (suites / "routes.toml").write_text(
        routes.replace(first, first + '{ call = "install_broken" }, ')
    )
    junit = tmp_path / "out.xml"
    proc = run_inprocess(
        pytester, run, *fake_args(run, suites, tmp_path / "locks"), f"--junitxml={junit}"
    )
    assert proc.returncode == 1, proc.stdout
    said = [values for _, values in setup_calls_of(junit)]
    assert len(said) == 2 and said[1] == [], said
    assert re.fullmatch(r"install_thing \d+\.\d\d s; install_broken \d+\.\d\d s", said[0][0])


def test_the_lock_folder_stays_small(tmp_path: Path) -> None:
    """A run killed, then runs with a setup call: what is left is the device slots' lock
    files and a few folders, not a file per run. (The setup call, an install, runs once
    per run, not once per worker.)"""
    run = make_run_dir(tmp_path, "run")
    marker = tmp_path / "setup-ran.txt"
    out = tmp_path / "r.jsonl"
    suites = suites_with_a_setup(run, marker, out)
    locks = tmp_path / "locks"
    args = fake_args(run, suites, locks)

    # A run killed with SIGKILL (controller and workers) leaves its folder behind ...
    slow = write_fake_suites(run / "slow", [("fake1", "slow-60")], out=tmp_path / "s.jsonl")
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "1"]
    killed = subprocess.Popen(
        [*argv, *fake_args(run, slow, locks)], cwd=run, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pidfile = tmp_path / "slow-60.pid"
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    os.kill(json.loads(pidfile.read_text())["pid"], signal.SIGKILL)
    (left,) = (locks / "runs").iterdir()
    old = time.time() - 3600
    os.utime(left, (old, old))
    # ... which the next run removes; a live run's folder is never touched.
    assert run_pytest(run, *args, "-n", "2").returncode == 0
    assert not (locks / "runs").exists() or not any((locks / "runs").iterdir())
    after_run = _entries(locks)
    assert len(after_run) <= 2 + 3, after_run  # two slots, the queue, runs/, ...
    # Another run with a setup call adds nothing (but the lock file of a device slot
    # that the first run happened not to need).
    assert run_pytest(run, *args, "-n", "1").returncode == 0
    slots = {"cuda-0.slot0.lock", "cuda-1.slot0.lock"}
    assert set(_entries(locks)) <= set(after_run) | slots, _entries(locks)
    # Each run ran both suites, and the install once (the first: not once per worker).
    assert marker.read_text() == "xx"
    assert len(out.read_text().splitlines()) == 4


def test_verbose_summary_says_what_each_suite_waited_for(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, "run")
    calls = [("fake1", "a-0.3"), ("fake1", "b-0.3")]
    suites = write_fake_suites(run / "suites", calls, out=tmp_path / "r.jsonl")
    args = fake_args(run, suites, tmp_path / "locks", devices="cuda:1")
    proc = run_pytest(run, *args, "-n", "2", "-v")
    assert proc.returncode == 0, proc.stdout
    summary = proc.stdout.split("torchci device leases", 1)[1]
    assert summary.count("ran on cuda:0") == 2, proc.stdout
    assert "after waiting" in summary and "waits for 1 cuda device (whole)" in summary


# --- the suites' own XML, suites side by side -----------------------------------------

CHILD_PYTEST = """
# Writes a test file of CASES tests (the first FAILING fail), waits, runs pytest on it
# with --junitxml in PyTorch's layout, waits again: suites side by side interleave.
import os, secrets, subprocess, sys, time
name, cases, failing, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
folder = os.path.join("test", "test-reports", "python-pytest", name)
os.makedirs(folder, exist_ok=True)
src = os.path.join(os.environ["TORCHCI_FAKE_DIR"], f"test_{name}.py")
with open(src, "w") as f:
    for i in range(cases):
        f.write(f"def test_{i}():\\n    assert {i} >= {failing}, 'case {i} of {name}'\\n")
time.sleep(delay)
xml = os.path.join(folder, f"{name}-{secrets.token_hex(8)}.xml")
argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", src, f"--junitxml={xml}"]
code = subprocess.call(argv, stdout=subprocess.DEVNULL)
time.sleep(delay)
sys.exit(code)
"""

PLAIN_WRITER = """
# Writes CASES test cases (the first FAILING fail) as XML itself: no pytest, no claim.
import os, secrets, sys, time
name, cases, failing, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
folder = os.path.join("test", "test-reports", "python-unittest", name)
os.makedirs(folder, exist_ok=True)
time.sleep(delay)
body = "".join(
    f'<testcase classname="{name}" name="test_{i}">'
    + (f'<failure message="case {i}">x</failure>' if i < failing else "")
    + "</testcase>"
    for i in range(cases)
)
with open(os.path.join(folder, f"{name}-{secrets.token_hex(8)}.xml"), "w") as f:
    f.write(f'<testsuites><testsuite name="{name}">{body}</testsuite></testsuites>')
time.sleep(delay)
sys.exit(1 if failing else 0)
"""


def xml_suites(folder: Path, script: str, calls: list[tuple[str, int, int, float]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "writer.py").write_text(script)
    (folder / "traits.toml").write_text(
        '[traits]\nconfig_x = { var = "TEST_CONFIG", glob = "x", help = "x" }\n'
    )
    entries = ", ".join(
        f'{{ call = "writer", args = ["{n}", "{c}", "{f}", "{d}"] }}' for n, c, f, d in calls
    )
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "test.sh: x"\nwhen = "config_x"\ncalls = [{entries}]\n'
    )
    run = f'["{sys.executable}", "-S", "{folder / "writer.py"}", "$1", "$2", "$3", "$4"]'
    (folder / "x.toml").write_text(
        '[writer]\ncites = "test.sh: writer()"\nparams = ["name", "cases", "failing", "delay"]\n'
        f"steps = [{{ run = {run} }}]\n"
    )
    return folder


def run_x(
    pytester: pytest.Pytester,
    tmp_path: Path,
    suites: Path,
    root: Path,
    junit: Path,
    workers: list[str],
) -> subprocess.CompletedProcess[str]:
    """The `x` config of ``suites`` on ``root``, with JUnit XML to ``junit``: under xdist
    in a subprocess, in this process otherwise."""
    args = [
        "--torchci-config=x", f"--torchci-suites={suites}", f"--torchci-root={root}",
        f"--torchci-lock-dir={tmp_path / 'locks'}", f"--junitxml={junit}", *workers,
    ]  # fmt: skip
    if not workers:
        return run_inprocess(pytester, tmp_path, *args)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=240)


def child_properties(junit: Path) -> dict[str, dict[str, str]]:
    out = {}
    for case in ET.parse(junit).iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        out[props["args"].split()[0]] = props
    return out


SIDE_BY_SIDE = [("s1", 18, 2, 0.3), ("s2", 20, 0, 0.15), ("s3", 10, 3, 0.25), ("s4", 21, 1, 0.1)]


@pytest.mark.parametrize("workers", [["-n", "4"], []], ids=["n4", "serial"])
def test_each_suite_counts_its_own_xml_whatever_runs_beside_it(
    pytester: pytest.Pytester, tmp_path: Path, workers: list[str]
) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    # One after the other, nothing runs beside a suite: no need to wait.
    calls = SIDE_BY_SIDE if workers else [(n, c, f, 0.0) for n, c, f, _ in SIDE_BY_SIDE]
    suites = xml_suites(tmp_path / "suites", CHILD_PYTEST, calls)
    junit = tmp_path / "out.xml"
    proc = run_x(pytester, tmp_path, suites, root, junit, workers)
    props = child_properties(junit)
    for name, cases, failing, _ in calls:
        got = props[name]
        assert (got["child_tests"], got["child_failures"]) == (str(cases), str(failing)), (
            name, got, proc.stdout,
        )  # fmt: skip
        assert "child_unattributed" not in got
    # A failure lists its own failing cases, and no other suite's.
    s3_id = "-".join(str(arg) for arg in calls[2])
    s3 = proc.stdout.split(f"writer[{s3_id}] failed (", 1)[1].split("--- full log", 1)[0]
    assert s3.count("AssertionError: case") == 3 and "of s1" not in s3, proc.stdout


def test_xml_nobody_claims_counts_only_for_a_suite_that_ran_alone(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    results = {}
    # Side by side, each writer waits so that the other's file lands while it runs.
    for mode, workers, delay in (("serial", [], 0.0), ("n2", ["-n", "2"], 0.5)):
        calls = [("p1", 5, 1, delay), ("p2", 7, 0, delay)]
        suites = xml_suites(tmp_path / f"suites-{mode}", PLAIN_WRITER, calls)
        junit = tmp_path / f"{mode}.xml"
        proc = run_x(pytester, tmp_path, suites, root, junit, workers)
        results[mode] = (child_properties(junit), proc.stdout)
    serial, _ = results["serial"]
    assert (serial["p1"]["child_tests"], serial["p2"]["child_tests"]) == ("5", "7")
    side, out = results["n2"]
    # Side by side, neither writer says whose file it is: counted for none, and said so.
    assert (side["p1"]["child_tests"], side["p2"]["child_tests"]) == ("0", "0"), out
    assert side["p1"]["child_unattributed"] == side["p2"]["child_unattributed"] == "2"
    assert "2 XML files were written while this suite ran by a writer" in out


# --- the window on test-reports, on its own ---------------------------------------------


def test_the_watcher_sees_what_is_written_wherever_the_folder_comes_from(tmp_path: Path) -> None:
    from pytest_torchci.run.reports import ReportWatcher

    root = tmp_path / "checkout"
    root.mkdir()
    watcher = ReportWatcher(root)  # no test/ yet
    try:
        watcher.mark()
        deep = root / "test" / "test-reports" / "python-pytest" / "test_a"
        deep.mkdir(parents=True)
        (deep / "test_a-1.xml").write_text("<testsuites/>")
        (deep / "notes.txt").write_text("not a report")
        assert watcher.written() == [deep / "test_a-1.xml"]
        # Old files are not news; a file replaced by a rename is.
        watcher.mark()
        (deep / "test_a-2.xml.tmp").write_text("<testsuites/>")
        (deep / "test_a-2.xml.tmp").rename(deep / "test_a-2.xml")
        assert watcher.written() == [deep / "test_a-2.xml"]
        # The whole tree removed (a suite cleans up) and made again.
        watcher.mark()
        shutil.rmtree(root / "test" / "test-reports")
        assert watcher.written() == []
        again = root / "test" / "test-reports" / "cpp"
        again.mkdir(parents=True)
        (again / "c.xml").write_text("<testsuites/>")
        assert watcher.written() == [again / "c.xml"]
    finally:
        watcher.close()


def test_the_validator_leaves_synthetic_failures_out(tmp_path: Path) -> None:
    from pytest_torchci.run.junit import synthetic_path, write_synthetic_failure
    from pytest_torchci.validate.real import junit_cases

    path = synthetic_path(tmp_path, "crashy")
    write_synthetic_failure(path, "crashy", "crashy[1]", 1.0, "was killed by SIGSEGV")
    real = tmp_path / "test" / "test-reports" / "python-pytest" / "t" / "t-1.xml"
    real.parent.mkdir(parents=True)
    real.write_text(
        '<testsuites><testsuite><testcase classname="T" name="t"/></testsuite></testsuites>'
    )
    assert junit_cases(tmp_path, 0.0) == frozenset({("T", "t", "passed")})
