"""Hangs, crashes, cancellation and the suites' own JUnit XML, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_torchci.run.processes import CANCEL_GRACE, GRACE_SECONDS

HANG = textwrap.dedent(
    """
    # A child that starts a grandchild ignoring SIGTERM, records both pids, and hangs.
    import os, signal, subprocess, sys, time
    pids = sys.argv[1]
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"])
    with open(pids, "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(600)
    """
)
SEGV = (
    "import os, signal; print('about to crash', flush=True); os.kill(os.getpid(), signal.SIGSEGV)"
)
XML = textwrap.dedent(
    """
    # Writes a test file's JUnit XML in PyTorch's layout: 10 cases, 2 failing; exits 1.
    import os, sys
    folder = os.path.join("test", "test-reports", "python-pytest", "test_fake")
    os.makedirs(folder, exist_ok=True)
    cases = []
    for i in range(10):
        body = ""
        if i in (3, 7):
            body = f'<failure message="AssertionError: case {i} is wrong">trace</failure>'
        attrs = f'file="test_fake.py" classname="TestFake" name="test_{i}" time="0.1"'
        cases.append(f"<testcase {attrs}>{body}</testcase>")
    with open(os.path.join(folder, "test_fake-0123456789abcdef.xml"), "w") as f:
        f.write('<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="10" failures="2">'
                + "".join(cases) + "</testsuite></testsuites>")
    sys.exit(1)
    """
)


def make_suites(folder: Path, suites: dict[str, str]) -> Path:
    """A suites folder whose one route calls each named suite; each suite runs one
    Python script (the value) with `$1` = a scratch path."""
    folder.mkdir(parents=True)
    (folder / "traits.toml").write_text(
        '[traits]\nconfig_x = { var = "TEST_CONFIG", glob = "x", help = "x" }\n'
    )
    calls = ", ".join(f'{{ call = "{n}", args = ["{folder / n}"] }}' for n in suites)
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "test.sh: x"\nwhen = "config_x"\ncalls = [{calls}]\n'
    )
    text = ""
    for name, code in suites.items():
        script = folder / f"{name}.py"
        script.write_text(code)
        run = f'["{sys.executable}", "{script}", "$1"]'
        text += f'[{name}]\ncites = "test.sh: {name}()"\nparams = ["scratch"]\n'
        text += f"steps = [{{ run = {run} }}]\n\n"
    (folder / "x.toml").write_text(text)
    return folder


def args(suites: Path, root: Path) -> list[str]:
    return [
        "--torchci-config=x",
        f"--torchci-suites={suites}",
        f"--torchci-root={root}",
        f"--torchci-lock-dir={root / 'locks'}",
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not alive
        return f.read().split()[2] != "Z"


def test_timeout_kills_the_whole_tree(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"hang": HANG})
    start = time.monotonic()
    result = pytester.runpytest_subprocess(*args(suites, root), "--timeout=2", timeout=120)
    elapsed = time.monotonic() - start
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after 2 s*"])
    assert elapsed < 2 + sum(GRACE_SECONDS) + 8  # pytest start-up included
    child, grandchild = (int(p) for p in (suites / "hang").read_text().split())
    assert not alive(child) and not alive(grandchild)
    assert "Timeout" not in result.stdout.str()  # pytest-timeout did not fire first


def test_a_segfault_is_reported_by_signal_name(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"crash": SEGV})
    result = pytester.runpytest_subprocess(*args(suites, root), timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*was killed by SIGSEGV (signal 11)*", "*about to crash*"])
    # It wrote no XML: a synthetic failure stands in for it, in the uploader's layout.
    (xml,) = (root / "test" / "test-reports" / "python-pytest" / "crash").glob("crash-*.xml")
    case = ET.parse(xml).getroot().find("testsuite/testcase")
    assert case is not None
    assert {"file", "classname", "name", "time"} <= set(case.attrib)
    assert case.find("failure") is not None


def test_failing_child_cases_are_named(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"xml": XML})
    # The suite writes relative to its folder: the checkout root.
    result = pytester.runpytest_subprocess(*args(suites, root), "--junitxml=out.xml", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*failing test cases (2)*",
            "*test_fake.py::TestFake::test_3: AssertionError: case 3 is wrong*",
            "*test_fake.py::TestFake::test_7: AssertionError: case 7 is wrong*",
        ]
    )
    props = {
        p.get("name"): p.get("value") for p in ET.parse(pytester.path / "out.xml").iter("property")
    }
    assert (props["child_tests"], props["child_failures"], props["child_errors"]) == (
        "10",
        "2",
        "0",
    )
    # The suite wrote XML, so no synthetic one was added.
    assert len(list((root / "test" / "test-reports").rglob("*.xml"))) == 1


def test_cancel_with_sigterm_under_xdist(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"hang_a": HANG, "hang_b": HANG})
    junit = pytester.path / "out.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        *args(suites, root),
        "-n",
        "2",
        f"--junitxml={junit}",
    ]
    proc = subprocess.Popen(
        argv, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    pidfiles = [suites / "hang_a", suites / "hang_b"]
    deadline = time.monotonic() + 90
    while (
        not all(p.exists() and p.read_text().strip() for p in pidfiles)
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert all(p.exists() for p in pidfiles), "the suites never started"
    pids = [int(x) for p in pidfiles for x in p.read_text().split()]
    cancelled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - cancelled < 10 + 5, output
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [p for p in pids if alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors, output
    assert time.monotonic() - cancelled < sum(CANCEL_GRACE) + 6
    ET.parse(junit)  # well-formed


def test_a_worker_that_dies_mid_item_fails_that_item_only(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    die = "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"
    suites = make_suites(pytester.path / "suites", {"die": die, "fine": "print('ok')"})
    result = pytester.runpytest_subprocess(*args(suites, root), "-n", "1", timeout=120)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*die*"])


# A child whose grandchild leaves for a session of its own (as torchrun's agent starts its
# workers) and ignores SIGINT and SIGTERM; the child then hangs, or exits at once.
ESCAPE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    pids, then = sys.argv[1], "{then}"
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"],
        start_new_session=True)
    with open(pids, "w") as f:
        f.write(f"{{os.getpid()}} {{grandchild.pid}}")
    if then == "hang":
        time.sleep(600)
    """
)


def _pids(path: Path, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) == 2:
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def _gone(pids: list[int], seconds: float = 10) -> list[int]:
    """The pids still alive after ``seconds`` (killed, so that no test leaves them)."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in pids if alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    return survivors


# Runs after the escaping suite: says whether its grandchild still lived then.
PROBE = textwrap.dedent(
    """
    import os, sys
    folder = os.path.dirname(sys.argv[1])
    grandchild = open(os.path.join(folder, "escape")).read().split()[1]
    try:
        state = open(f"/proc/{grandchild}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    with open(sys.argv[1], "w") as f:
        f.write("alive" if state not in ("Z", "gone") else "dead")
    """
)


@pytest.mark.parametrize("then", ["hang", "exit"], ids=["at-the-deadline", "when-it-ends"])
@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["serial", "xdist"])
def test_a_process_that_left_the_group_is_stopped_before_the_next_suite(
    pytester: pytest.Pytester, workers: list[str], then: str
) -> None:
    """At its suite's deadline, or when its suite's command ends: not at the run's end."""
    root = pytester.mkdir("checkout")
    suites = make_suites(
        pytester.path / "suites", {"escape": ESCAPE.format(then=then), "probe": PROBE}
    )
    result = pytester.runpytest_subprocess(
        *args(suites, root), "--timeout=2", *workers, timeout=120
    )
    result.assert_outcomes(**({"failed": 1, "passed": 1} if then == "hang" else {"passed": 2}))
    survivors = _gone(_pids(suites / "escape"))
    assert (suites / "probe").read_text() == "dead"
    assert not survivors


def test_a_process_that_left_the_group_is_stopped_by_a_cancel(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"escape": ESCAPE.format(then="hang")})
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args(suites, root)]
    proc = subprocess.Popen(
        [*argv, "-n", "2"], cwd=pytester.path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    pids = _pids(suites / "escape")
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert not _gone(pids), output
    assert "Traceback" not in output


def _stragglers(marker: str) -> list[int]:
    """Live processes whose environment mentions ``marker`` (a run's lock folder)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                found = marker.encode() in f.read()
        except OSError:
            continue
        if found and alive(int(name)):
            out.append(int(name))
    return out


def test_signals_at_any_moment_end_the_run_in_order(pytester: pytest.Pytester) -> None:
    """SIGTERM (once, twice, or to the whole process group) and SIGINT at moments spread
    over a short -n 2 run: configuration, collection, setup, suites, the session's end."""
    root = pytester.mkdir("checkout")
    slow = "import time; time.sleep(0.4)"
    suites = make_suites(pytester.path / "suites", {"a": slow, "b": slow, "c": slow})
    junit = pytester.path / "out.xml"
    locks = pytester.path / "locks"
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args(suites, root),
        "-n", "2", f"--junitxml={junit}",
    ]  # fmt: skip

    def run(delay: float | None, how: str) -> tuple[int, str]:
        junit.unlink(missing_ok=True)
        proc = subprocess.Popen(
            argv, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        if delay is not None:
            time.sleep(delay)
            sig = signal.SIGINT if how == "sigint" else signal.SIGTERM
            send = os.killpg if how == "group" else os.kill
            send(proc.pid, sig)
            if how == "twice":
                time.sleep(0.1)
                send(proc.pid, sig)
        output, _ = proc.communicate(timeout=60)
        return proc.returncode, output

    start = time.monotonic()
    code, output = run(None, "")
    whole = time.monotonic() - start
    assert code == 0, output
    hows = ["twice", "group", "sigint"]
    for step in range(9):
        delay = 0.35 + step * whole / 8
        how = hows[step % len(hows)]
        code, output = run(delay, how)
        where = f"{how} at {delay:.2f} s of {whole:.2f} s: exit {code}\n{output}"
        assert "Traceback" not in output, where
        if not output:  # stopped while starting: interrupted, or not a run yet
            assert code in (pytest.ExitCode.INTERRUPTED, -signal.SIGTERM, -signal.SIGINT), where
            continue
        assert code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.OK), where
        if junit.exists():
            ET.parse(junit)  # well-formed, with what finished
        assert not _stragglers(str(locks)), where


def test_a_cancel_under_xdist_stops_the_suites_now_and_starts_no_new_one(
    pytester: pytest.Pytester,
) -> None:
    """SIGTERM to the controller only (not its workers): it passes the signal on."""
    root = pytester.mkdir("checkout")
    stamp = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time())); time.sleep(20)"
    suites = make_suites(pytester.path / "suites", {f"s{i}": stamp for i in range(4)})
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args(suites, root)]
    junit = pytester.path / "out.xml"
    proc = subprocess.Popen(
        [*argv, "-n", "2", f"--junitxml={junit}"], cwd=pytester.path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(list(suites.glob("s?"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    cancelled = time.time()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert time.time() - cancelled < sum(CANCEL_GRACE) + 3, output
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    started = [float(p.read_text()) for p in suites.glob("s?") if p.read_text()]
    assert len(started) == 2 and max(started) < cancelled, output
    assert "replacing crashed worker" not in output and "Traceback" not in output
    ET.parse(junit)


def test_what_a_suite_left_behind_is_collected_not_left_a_zombie(
    pytester: pytest.Pytester,
) -> None:
    """The escaped grandchild, killed when its command ended, is reaped by the process
    that runs suites (a child subreaper), not left as a zombie until the run ends."""
    root = pytester.mkdir("checkout")
    probe = textwrap.dedent(
        """
        import os, sys
        grandchild = open(os.path.join(os.path.dirname(sys.argv[1]), "escape")).read().split()[1]
        with open(sys.argv[1], "w") as f:
            f.write("gone" if not os.path.exists(f"/proc/{grandchild}") else "still there")
        """
    )
    suites = make_suites(
        pytester.path / "suites", {"escape": ESCAPE.format(then="exit"), "probe": probe}
    )
    result = pytester.runpytest_subprocess(*args(suites, root), timeout=120)
    result.assert_outcomes(passed=2)
    assert (suites / "probe").read_text() == "gone"  # no /proc entry: not even a zombie
