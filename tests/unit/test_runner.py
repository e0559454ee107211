"""run_command on its own: the two output paths and the two ways of waiting."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_torchci.data.model import Command
from pytest_torchci.run import processes as runner
from pytest_torchci.run.processes import RunOptions, run_command
from pytest_torchci.run.reaper import children
from pytest_torchci.run.suitelog import SuiteLog

SLEEPER = (sys.executable, "-c", "import time; print('going to sleep', flush=True); time.sleep(60)")
TALKER = (sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)")


def command(argv: tuple[str, ...]) -> Command:
    return Command(argv, ".", {}, "")


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "waitid"])
def test_deadline_stops_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    if not pidfd:
        monkeypatch.setattr(runner, "open_pidfd", lambda pid: None)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open on this system")
    options = RunOptions(root=tmp_path, base_env={}, timeout=1.0, grace=(0.5, 0.5))
    start = time.monotonic()
    result = run_command(command(SLEEPER), options)
    assert result.timed_out
    assert result.returncode < 0  # ended by a signal
    assert time.monotonic() - start < 15
    assert "going to sleep" in options.tail


@pytest.mark.parametrize("realtime", [False, True], ids=["into-the-log", "through-a-pipe"])
@pytest.mark.parametrize("kind", ["text-file", "suite-log-over-a-longer-one"])
def test_output_reaches_log_live_and_tail(tmp_path: Path, realtime: bool, kind: str) -> None:
    live = io.StringIO()
    log_path = tmp_path / "item.log"
    log: SuiteLog | io.TextIOWrapper
    if kind == "text-file":
        log = open(log_path, "a+", encoding="utf-8")  # noqa: SIM115
    else:
        log_path.write_text("an earlier run's line\n" * 500)
        log = SuiteLog(log_path)
    with log:
        options = RunOptions(root=tmp_path, base_env={}, log=log, live=live, realtime=realtime)
        first = run_command(command(TALKER), options)
        second = run_command(command(TALKER), options)
    assert (first.returncode, second.returncode) == (0, 0)
    header = f"$ {shlex.join(TALKER)}    (in .)\n"
    text = log_path.read_text()
    assert text.count(header) == 2
    # The order of stdout and stderr lines may interleave when they come through pipes.
    assert sorted(text.replace(header, "").splitlines()) == ["err", "err", "out", "out"]
    assert sorted(live.getvalue().replace(header, "").splitlines()) == sorted(
        ["err", "err", "out", "out"]
    )
    assert sorted(options.tail) == ["err", "err", "out", "out"]


def test_capture_returns_stdout_only(tmp_path: Path) -> None:
    result = run_command(command(TALKER), RunOptions(root=tmp_path, base_env={}), capture=True)
    assert result.output == "out\n"


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_at_the_log_path_is_replaced_not_written_through(tmp_path: Path, link: str) -> None:
    """A link planted at the log's path is removed, not truncated or written over: the
    file it pointed at keeps its contents."""
    other = tmp_path / "other.txt"
    other.write_text("not a log\n")
    path = tmp_path / "logs" / "suite.log"
    path.parent.mkdir()
    if link == "symlink":
        path.symlink_to(other)
    else:
        os.link(other, path)
    with SuiteLog(path) as log:
        log.write("this run\n")
    assert other.read_text() == "not a log\n"
    assert not path.is_symlink() and path.read_text() == "this run\n"
    assert os.stat(path).st_ino != os.stat(other).st_ino


@pytest.mark.parametrize("lines", [1000, 20000], ids=["zeroed", "punched"])
def test_an_earlier_log_is_written_over_in_place(tmp_path: Path, lines: int) -> None:
    """The same file, with none of the earlier run's text in it at any moment: while the
    run writes, what follows its output reads as zero bytes (a run killed then leaves no
    earlier lines behind its own); closed, the log is this run's output alone. A short
    earlier log (22 KB) is written over with zeros, a long one (440 KB) punched out."""
    path = tmp_path / "suite.log"
    path.write_text("an earlier run's line\n" * lines)
    inode = os.stat(path).st_ino
    with SuiteLog(path) as log:
        log.write("this run\n")
        during = path.read_bytes()
        assert during.startswith(b"this run\n")
        assert b"earlier" not in during and not during[len("this run\n") :].strip(b"\0")
    assert path.read_text() == "this run\n"
    if lines == 1000:  # (a file system that cannot punch holes gets a new file instead)
        assert os.stat(path).st_ino == inode


def test_a_child_writing_first_finds_the_earlier_text_zeroed(tmp_path: Path) -> None:
    """The descriptor handed to a child before any line of ours: blanked already."""
    path = tmp_path / "suite.log"
    path.write_text("an earlier run's line\n" * 10)
    with SuiteLog(path) as log:
        os.write(log.fileno(), b"child\n")
        assert path.read_bytes().rstrip(b"\0") == b"child\n"
    assert path.read_text() == "child\n"


def test_a_log_in_use_elsewhere_is_left_to_its_writer(tmp_path: Path) -> None:
    """Two runs of one suite at once on one checkout (or a process an earlier run left
    writing): the second gets a new file; the first writes on, undisturbed, into its own."""
    path = tmp_path / "suite.log"
    with SuiteLog(path) as first:
        first.write("first run\n")
        with SuiteLog(path) as second:
            second.write("second run\n")
            first.write("first run, still\n")
            assert os.fstat(first.fileno()).st_ino != os.stat(path).st_ino
            with open(f"/proc/self/fd/{first.fileno()}", encoding="utf-8") as mine:
                assert mine.read() == "first run\nfirst run, still\n"
    assert path.read_text() == "second run\n"


def test_a_shorter_earlier_log_is_written_past(tmp_path: Path) -> None:
    path = tmp_path / "suite.log"
    path.write_text("old\n")
    with SuiteLog(path) as log:
        log.write("a longer line of this run\n")
    assert path.read_text() == "a longer line of this run\n"


def test_a_new_log_makes_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "test-reports" / "torchci-logs" / "suite.log"
    SuiteLog(path).close()
    assert path.read_text() == ""


def test_children_lists_live_and_exited_children() -> None:
    """A child that has ended and one that still runs are both listed until reaped; with
    none left, the list is empty again (the quick answer when there are none)."""
    known = set(children())
    done = subprocess.Popen(["true"])
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while os.waitid(os.P_PID, done.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
            assert {done.pid, running.pid} <= set(children()) - known
    finally:
        running.kill()
        running.wait()
        done.wait()
    assert not {done.pid, running.pid} & set(children())
