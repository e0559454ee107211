"""Hangs, crashes, cancellation and the suites' own JUnit XML, with real processes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_torchci.run.processes import CANCEL_GRACE

from ..conftest import Background, runpytest_side_by_side, toml_argv

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
        run = f'["{sys.executable}", "-S", "{script}", "$1"]'  # -S: no site, a sooner start
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


# A deadline kills the whole tree (HANG): the_timeout_killed_the_whole_tree, below.


def test_a_segfault_is_reported_by_signal_name(pytester: pytest.Pytester) -> None:
    root = pytester.mkdir("checkout")
    suites = make_suites(pytester.path / "suites", {"crash": SEGV})
    result = pytester.runpytest_inprocess(*args(suites, root))  # the suite crashes, not pytest
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
    result = pytester.runpytest_inprocess(*args(suites, root), "--junitxml=out.xml")
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


# Starts a sleeper in its own process group, records its pid, then kills its xdist worker.
ORPHAN = """
import os, signal, subprocess, sys
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as f:
    f.write(str(sleeper.pid))
os.kill(os.getppid(), signal.SIGKILL)
"""


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


# Runs after the escaping suite ESCAPE: says whether its grandchild still lived then
# ("alive"), was dead but not reaped ("zombie"), or had no /proc entry any more ("gone").
PROBE = textwrap.dedent(
    """
    import os, sys
    folder = os.path.dirname(sys.argv[1])
    grandchild = open(os.path.join(folder, "ESCAPE")).read().split()[1]
    try:
        state = open(f"/proc/{grandchild}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    with open(sys.argv[1], "w") as f:
        f.write(state if state == "gone" else "zombie" if state == "Z" else "alive")
    """
)


# Suites that look for what an escaping suite left: a suite whose command hangs past the
# deadline, one whose command ends at once, each followed by a suite that looks for what
# it left (assert_escapes_stopped says what they must have found).
ESCAPES = {
    "hang": ESCAPE.format(then="hang"),
    "probe_hang": PROBE.replace("ESCAPE", "hang"),
    "exit": ESCAPE.format(then="exit"),
    "probe_exit": PROBE.replace("ESCAPE", "exit"),
}


def assert_escapes_stopped(suites: Path) -> None:
    """What ESCAPES left was stopped at its suite's deadline, or when its suite's command
    ended: before the next suite, not at the run's end. The one killed when its command
    ended is also reaped by the process that runs suites (a child subreaper), not left as
    a zombie until the run ends."""
    survivors = _gone(_pids(suites / "hang") + _pids(suites / "exit"))
    assert (suites / "probe_hang").read_text() in ("zombie", "gone")  # at the deadline
    assert (suites / "probe_exit").read_text() == "gone"  # when its command ended, reaped
    assert not survivors


def test_a_process_that_left_the_group_is_stopped_before_the_next_suite(
    pytester: pytest.Pytester,
) -> None:
    """ESCAPES without xdist, ESCAPES under xdist (-n 1) and, to begin with,
    the_timeout_killed_the_whole_tree: three runs, side by side, as each mostly waits for
    its deadlines. The xdist run ends with a worker that dies mid-item
    (a_dead_worker_failed_its_item_only)."""
    tree = make_suites(pytester.path / "tree", {"hang": HANG})
    serial = make_suites(pytester.path / "serial", ESCAPES)
    xdist = make_suites(pytester.path / "xdist", {**ESCAPES, "die": ORPHAN, "fine": "print('ok')"})
    results = runpytest_side_by_side(
        pytester,
        {
            "tree": [
                *args(tree, pytester.mkdir("checkout-tree")), "--timeout=2",
                "--torchci-kill-grace=1", f"--junitxml={pytester.path / 'tree.xml'}",
            ],
            "serial": [*args(serial, pytester.mkdir("checkout-serial")), "--timeout=2"],
            "xdist": [*args(xdist, pytester.mkdir("checkout-xdist")), "--timeout=2", "-n", "1"],
        },
    )  # fmt: skip
    pid = int((xdist / "die").read_text())
    try:
        the_timeout_killed_the_whole_tree(results["tree"], tree, pytester.path / "tree.xml")
        results["serial"].assert_outcomes(failed=1, passed=3)  # the hanging one timed out
        assert_escapes_stopped(serial)
        a_dead_worker_failed_its_item_only(results["xdist"], pid)
        assert_escapes_stopped(xdist)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def the_timeout_killed_the_whole_tree(result: pytest.RunResult, suites: Path, junit: Path) -> None:
    """HANG's child ignores SIGINT, its grandchild SIGTERM too: the child ends at SIGTERM, a
    grace period (--torchci-kill-grace; 5 s by default: test_settings.py) after SIGINT, and
    SIGKILL ends the grandchild. The command that timed out is among the item's commands."""
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after 2 s*"])
    props = ET.parse(junit).iter("property")
    (commands,) = (p.get("value", "") for p in props if p.get("name") == "commands")
    hang = [sys.executable, "-S", str(suites / "hang.py"), str(suites / "hang")]
    assert json.loads(commands) == [shlex.join(hang)]
    assert 2 + 1 <= result.duration < 2 + 2 * 1 + 8  # pytest start-up included
    child, grandchild = (int(p) for p in (suites / "hang").read_text().split())
    assert not alive(child) and not alive(grandchild)
    assert "Timeout" not in result.stdout.str()  # pytest-timeout did not fire first


def a_dead_worker_failed_its_item_only(result: pytest.RunResult, sleeper: int) -> None:
    """The item whose worker died fails; the next runs on a new worker. What the dead
    worker left running (ORPHAN's sleeper) is stopped by the controller's sweep: the
    worker's journal names its group, and it carries the run's cookie (made by the
    controller, handed to the worker)."""
    outcomes = result.parseoutcomes()
    # Failed: the hanging escape (its deadline) and the item whose worker died.
    assert outcomes.get("failed") == 2 and outcomes.get("passed") == 4, result.stdout.str()
    result.stdout.fnmatch_lines(["*die*"])
    result.stdout.fnmatch_lines(["*torchci: stopped 1 processes the suites left running*"])
    assert not alive(sleeper)


# SIGTERM to the controller of a -n 2 run whose suites hang (a tree that ignores SIGINT,
# a grandchild in a session of its own): test_security.py,
# test_a_planted_journal_cannot_make_a_cancel_kill_another_process, whose run is that one.


def _stragglers(marker: str, seconds: float = 10) -> list[int]:
    """Processes whose environment carries ``marker`` still alive after ``seconds``
    (killed, so that no test leaves them)."""

    def carriers() -> list[int]:
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

    found = carriers()
    return _gone(found, seconds) if found else []


# A setup call, a suite for each of two workers, and a teardown call (once per worker);
# each says when it starts.
PHASE = "import sys, time; open(sys.argv[1] + '.started', 'w').close(); time.sleep({})"


def phase_suites(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "traits.toml").write_text(
        '[traits]\nconfig_x = { var = "TEST_CONFIG", glob = "x", help = "x" }\n'
    )
    units = [("install", "setup", 0.25), ("a", "test", 0.3), ("b", "test", 0.3)]
    units += [("cleanup", "teardown", 0.25)]
    calls = ", ".join(f'{{ call = "{n}", args = ["{folder / n}"] }}' for n, _, _ in units)
    (folder / "routes.toml").write_text(
        f'[[route]]\ncites = "test.sh: x"\nwhen = "config_x"\ncalls = [{calls}]\n'
    )
    text = ""
    for name, role, seconds in units:
        run = toml_argv([sys.executable, "-S", "-c", PHASE.format(seconds), "$1"])
        text += f'[{name}]\nrole = "{role}"\ncites = "test.sh: {name}()"\nparams = ["scratch"]\n'
        text += f"steps = [{{ run = {run} }}]\n\n"
    (folder / "x.toml").write_text(text)
    return folder


# The run's conftest.py: the controller's configuration and the workers' collection are
# over in moments, so in the run aimed at one of them, each process marks the phase and
# holds it (the signal ends the hold).
HOLD_CONFTEST = textwrap.dedent(
    """
    import os, time
    import pytest

    def _hold(config, phase):
        if os.environ.get("TORCHCI_TEST_HOLD") == phase:
            who = getattr(config, "workerinput", {}).get("workerid", "controller")
            (config.rootpath / f"{phase}-{who}.reached").touch()
            time.sleep(2)

    def pytest_configure(config):
        if not hasattr(config, "workerinput"):  # the controller, its plan made
            _hold(config, "configuration")

    def pytest_collectstart(collector):
        if isinstance(collector, pytest.Session) and hasattr(collector.config, "workerinput"):
            _hold(collector.config, "collection")
    """
)


def _reached(marker: str, count: int = 1) -> Callable[[Path, str, float], bool]:
    """The run has reached the phase: ``count`` markers (a glob in its folder) are there."""
    return lambda run, out, t: len(list(run.glob(marker))) >= count


# Where a signal lands in a -n 2 run, each found as the run gets there rather than by
# the clock: (phase, how the signal is sent, whether the run, in its folder, with its
# output so far and its seconds so far, has reached that phase).
MOMENTS: list[tuple[str, str, Callable[[Path, str, float], bool]]] = [
    ("starting", "twice", lambda run, out, t: t >= 0.1),  # Python, pytest loading
    ("configuration", "sigint", _reached("configuration-*.reached")),
    # Both workers are up. (A signal to the controller alone here is answered too, but
    # its wait for the workers' last reports runs to the end of its 10 s.)
    ("collection", "group", _reached("collection-*.reached", count=2)),
    ("setup-call", "twice", _reached("suites/install.started")),
    ("suites", "group", _reached("suites/[ab].started")),
    ("teardowns", "sigint", _reached("suites/cleanup.started")),
    ("session-end", "twice", lambda run, out, t: "generated xml file" in out),
]


@pytest.mark.parametrize(
    ("phase", "how", "reached"), MOMENTS, ids=[phase for phase, _, _ in MOMENTS]
)
def test_signals_at_any_moment_end_the_run_in_order(
    pytester: pytest.Pytester, phase: str, how: str, reached: Callable[[Path, str, float], bool]
) -> None:
    """SIGTERM (once, twice, or to the whole process group) and SIGINT in each phase of a
    short -n 2 run: start-up, configuration, the workers' start and collection, a setup
    call, the suites, the teardown calls, the session's end. Each run ends in order:
    interrupted (or not started yet), no traceback, a well-formed JUnit file, nothing of
    it left running; a signal once the session is ending leaves its outcome as it was."""
    suites = phase_suites(pytester.path / "suites")
    pytester.makeconftest(HOLD_CONFTEST)
    junit = pytester.path / "out.xml"
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--torchci-config=x",
        f"--torchci-suites={suites}", f"--torchci-root={pytester.path}",
        f"--torchci-lock-dir={pytester.path / 'locks'}", "-n", "2", f"--junitxml={junit}",
    ]  # fmt: skip
    marker = f"TORCHCI_TEST_RUN={pytester.path}\0"  # every process of the run carries it
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TORCHCI_TEST_RUN": str(pytester.path)}
    env["TORCHCI_TEST_HOLD"] = phase
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True, env=env,
    )  # fmt: skip
    lines: list[str] = []  # the run's output so far

    def read() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = start + 60
        while not reached(pytester.path, "".join(lines), time.monotonic() - start):
            assert reader.is_alive() and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.01)
        sent = time.monotonic() - start
        sig = signal.SIGINT if how == "sigint" else signal.SIGTERM
        send = os.killpg if how == "group" else os.kill
        send(proc.pid, sig)  # not reaped yet: the pid is still the run's
        if how == "twice":
            time.sleep(0.1)
            send(proc.pid, sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # the phase never came: stop the run
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=60)
    output = "".join(lines)
    where = f"{how} in {phase}, at {sent:.2f} s: exit {code}\n{output}"
    assert "Traceback" not in output, where
    if not output:  # stopped while starting: interrupted, or not a run yet
        assert code in (pytest.ExitCode.INTERRUPTED, -signal.SIGTERM, -signal.SIGINT), where
    else:
        assert code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.OK), where
    if phase == "session-end":  # every suite had passed: so the run says
        assert code == pytest.ExitCode.OK and "2 passed" in output, where
    if junit.exists():
        finished_cases(junit)  # well-formed, with what finished
    assert not _stragglers(marker), where


def test_a_cancel_under_xdist_stops_the_suites_now_and_starts_no_new_one(
    pytester: pytest.Pytester, background: Background
) -> None:
    """SIGTERM to the controller only (not its workers): it passes the signal on."""
    root = pytester.mkdir("checkout")
    stamp = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time())); time.sleep(20)"
    suites = make_suites(pytester.path / "suites", {f"s{i}": stamp for i in range(4)})
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args(suites, root)]
    junit = pytester.path / "out.xml"
    proc = background.start(
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
    assert finished_cases(junit) == []  # the two interrupted suites are not in it


def finished_cases(junit: Path) -> list[str]:
    """The testcases of a run's JUnit file, each of a suite that finished: named, and as
    many as the file's own count (an interrupted suite is not written half)."""
    (suite,) = ET.parse(junit).getroot().iter("testsuite")
    names = [case.get("name", "") for case in suite.iter("testcase")]
    assert all(names), ET.tostring(suite)
    assert int(suite.get("tests", "-1")) == len(names), ET.tostring(suite)
    return names


def test_an_interrupt_leaves_the_suite_it_stopped_out_of_the_junit_file(
    pytester: pytest.Pytester, background: Background
) -> None:
    """SIGINT (Ctrl-C) in the middle of the second suite of a serial run: the first is in
    the JUnit file, the second (whose setup had passed) is not, not even nameless."""
    root = pytester.mkdir("checkout")
    stamp = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time())); time.sleep(20)"
    suites = make_suites(pytester.path / "suites", {"done": "pass", "stopped": stamp})
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args(suites, root)]
    junit = pytester.path / "out.xml"
    proc = background.start(
        [*argv, f"--junitxml={junit}"], cwd=pytester.path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (suites / "stopped").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert [name.split("[")[0] for name in finished_cases(junit)] == ["done"], output
