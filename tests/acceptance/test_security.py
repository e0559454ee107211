"""What the run trusts in its lock folders, and what it will signal.

The attacker is another user of a shared GPU host (or, where the test cannot have a
second account, files and processes planted by the test itself outside the run)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_torchci.run import reaper
from pytest_torchci.run.reaper import CANCEL_GRACE, COOKIE_VARIABLE, new_cookie, stop_groups
from pytest_torchci.run.statedir import (
    UnsafeFileError,
    UnsafeFolderError,
    check_shared_folder,
    private_folder,
    read_private,
    write_private,
)

from ..conftest import Background, SuitesFactory
from .test_devices import (
    _natives_for_fakes,  # noqa: F401 (the fake suites' natives need it)
    fake_args,
    make_run_dir,
    run_fake,
    run_pytest,
    write_fake_suites,
)
from .test_hangs_crashes import ESCAPE, HANG, _gone, _pids, alive
from .test_hangs_crashes import make_suites as make_hang_suites

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a second account needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def sleeper(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A process outside any run, in a process group of its own, once it runs Python."""
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    proc = subprocess.Popen(argv, start_new_session=True, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            if b"time.sleep" in f.read():
                break
        time.sleep(0.01)
    return proc


# --- the private state folder -------------------------------------------------------


def test_missing_levels_are_made_0700(tmp_path: Path) -> None:
    folder = private_folder(tmp_path / "a" / "b" / "c")
    for level in (tmp_path / "a", tmp_path / "a" / "b", folder):
        assert mode(level) == 0o700
    assert private_folder(folder) == folder  # an existing private folder is accepted


@pytest.mark.parametrize("bits", [0o777, 0o770, 0o702])
def test_a_folder_others_can_write_is_refused(tmp_path: Path, bits: int) -> None:
    folder = tmp_path / "locks"
    folder.mkdir()
    folder.chmod(bits)
    with pytest.raises(UnsafeFolderError, match=r"others can write to it.*chmod 700"):
        private_folder(folder)


def test_a_symlink_for_the_folder_is_refused(tmp_path: Path) -> None:
    real = private_folder(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafeFolderError, match="symbolic link"):
        private_folder(tmp_path / "link")


def test_a_new_folder_under_a_world_writable_non_sticky_one_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(UnsafeFolderError, match=r"lets anyone rename.*chmod \+t"):
        private_folder(open_dir / "locks")
    open_dir.chmod(0o1777)  # sticky, as /tmp is: fine
    assert mode(private_folder(open_dir / "locks")) == 0o700


@needs_root
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(UnsafeFolderError, match=rf"belongs to .*uid {NOBODY}"):
        private_folder(folder)


def test_files_are_never_followed(tmp_path: Path) -> None:
    folder = private_folder(tmp_path / "locks")
    target = tmp_path / "target"
    target.write_text('{"ok": true}')
    marker = folder / "setup-x-0.done"
    marker.symlink_to(target)
    with pytest.raises(UnsafeFileError, match="symbolic link; not followed"):
        read_private(marker)
    write_private(marker, "mine")  # replaces the link, never writes through it
    assert target.read_text() == '{"ok": true}'
    assert not marker.is_symlink() and read_private(marker) == "mine"
    assert mode(marker) == 0o600


# --- as a user runs it: exit 4 and a message -----------------------------------------


def test_default_lock_folder_is_made_0700(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, make_suites: SuitesFactory
) -> None:
    tmp = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(tmp))
    # In this process: the temporary folder is looked up anew, as a new process would.
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv("TORCHCI_LOCK_DIR", raising=False)
    suites = make_suites()
    result = pytester.runpytest_inprocess(
        "--torchci-config=demo", f"--torchci-suites={suites}", f"--torchci-root={pytester.path}"
    )
    result.assert_outcomes(passed=1)
    assert mode(tmp / f"torchci-locks-{os.getuid()}") == 0o700


@pytest.mark.parametrize("source", ["option", "environment"])
def test_a_lock_folder_others_can_write_stops_the_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    make_suites: SuitesFactory,
    source: str,
) -> None:
    locks = pytester.mkdir("locks")
    locks.chmod(0o777)
    suites = make_suites()
    args = ["--torchci-config=demo", f"--torchci-suites={suites}"]
    if source == "option":
        args.append(f"--torchci-lock-dir={locks}")
    else:
        monkeypatch.setenv("TORCHCI_LOCK_DIR", str(locks))
    result = pytester.runpytest_inprocess(*args)  # stops before anything runs
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    named = "--torchci-lock-dir" if source == "option" else "TORCHCI_LOCK_DIR=*(environment)"
    result.stderr.fnmatch_lines(
        [f"ERROR: {named}*{locks} is not private: others can write to it*chmod 700 {locks}"]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@needs_root
def test_a_lock_folder_of_another_user_stops_the_run(
    pytester: pytest.Pytester, make_suites: SuitesFactory
) -> None:
    locks = pytester.mkdir("locks")
    locks.chmod(0o700)
    os.chown(locks, NOBODY, NOBODY)
    suites = make_suites()
    result = pytester.runpytest_inprocess(  # stops before anything runs
        "--torchci-config=demo", f"--torchci-suites={suites}", f"--torchci-lock-dir={locks}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{locks} is not private: it belongs to *uid {NOBODY}*"])


# --- a shared folder for device locks ------------------------------------------------


def test_shared_lock_folder_holds_only_device_locks(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    locks = tmp_path / "mine"
    run = make_run_dir(tmp_path, "run")
    out = tmp_path / "r.jsonl"
    suites = write_fake_suites(run / "suites", [("fake1", "a-0.3"), ("fake1", "b-0.3")], out=out)
    proc = run_pytest(
        run, *fake_args(run, suites, locks), f"--torchci-shared-lock-dir={shared}", "-n", "2"
    )
    assert proc.returncode == 0, proc.stdout
    names = sorted(p.name for p in shared.iterdir())
    assert names and all(n.startswith("cuda-") and n.endswith(".lock") for n in names), names
    assert all(mode(shared / n) == 0o666 for n in names)  # every user can take them
    assert mode(locks) == 0o700
    seen = {json.loads(line)["seen"] for line in out.read_text().splitlines()}
    assert seen == {"0", "1"}


def test_a_file_planted_in_the_shared_folder_costs_that_device_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "cuda-0.slot0.lock").symlink_to(tmp_path / "elsewhere")
    run = make_run_dir(tmp_path, "run")
    out = tmp_path / "r.jsonl"
    suites = write_fake_suites(run / "suites", [("fake1", "a-0.2"), ("fake1", "b-0.2")], out=out)
    args = [*fake_args(run, suites, tmp_path / "mine"), f"--torchci-shared-lock-dir={shared}"]
    proc = run_pytest(run, *args, "-n", "2")
    assert proc.returncode == 0, proc.stdout
    assert {json.loads(line)["seen"] for line in out.read_text().splitlines()} == {"1"}
    assert not (tmp_path / "elsewhere").exists()


def test_shared_lock_folder_from_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone could delete a lock that a run holds
    run = make_run_dir(tmp_path, "run")
    (run / "pytest.ini").write_text(f"[pytest]\ntorchci_shared_lock_dir = {shared}\n")
    suites = write_fake_suites(run / "suites", [("fake1", "a-0")], out=tmp_path / "r.jsonl")
    proc = run_fake(pytester, run, *fake_args(run, suites, tmp_path / "mine"))
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "torchci_shared_lock_dir" in proc.stderr
    assert "lets others delete the lock files your run holds" in proc.stderr
    assert f"chmod +t {shared}" in proc.stderr
    with pytest.raises(UnsafeFolderError, match="mkdir -m 1777"):
        check_shared_folder(tmp_path / "missing")


# --- planted files are not followed --------------------------------------------------


def test_a_link_planted_at_a_lock_file_is_not_followed(tmp_path: Path) -> None:
    locks = private_folder(tmp_path / "locks")
    target = tmp_path / "precious"
    target.write_text("keep me")
    (locks / "cuda-0.slot0.lock").symlink_to(target)
    run = make_run_dir(tmp_path, "run")
    suites = write_fake_suites(run / "suites", [("fake1", "a-0")], out=tmp_path / "r.jsonl")
    proc = run_pytest(run, *fake_args(run, suites, locks, "cuda:1"), "-n", "1")
    assert proc.returncode == 1, proc.stdout
    assert f"lock file {locks}/cuda-0.slot0.lock: a symbolic link, not followed" in proc.stdout
    assert target.read_text() == "keep me"


def test_a_link_planted_at_a_setup_marker_is_not_followed(tmp_path: Path) -> None:
    """A marker saying "the install is done" must not make the run skip its install."""
    locks = private_folder(tmp_path / "locks")
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"ok": True, "message": "", "cites": "x"}))
    for index in range(4):
        (private_folder(locks / "runs" / "fixed") / f"setup-{index}.done").symlink_to(planted)
    ran = tmp_path / "install-ran"
    run = make_run_dir(tmp_path, "run")
    extra = (
        '[install_thing]\nrole = "setup"\ncites = "test.sh: install_thing()"\n'
        f'steps = [{{ run = ["{sys.executable}", "-c", "open(r\'{ran}\', \'w\')"] }}]\n'
    )
    suites = write_fake_suites(
        run / "suites", [("fake1", "a-0"), ("fake1", "b-0")], out=tmp_path / "r.jsonl", extra=extra
    )
    routes = (suites / "routes.toml").read_text()
    (suites / "routes.toml").write_text(
        routes.replace("calls = [", 'calls = [{ call = "install_thing" }, ')
    )
    proc = run_pytest(run, *fake_args(run, suites, locks), "-n", "1", "--testrunuid=fixed")
    assert proc.returncode == 1, proc.stdout
    assert "setup marker" in proc.stdout and "symbolic link; not followed" in proc.stdout
    assert not ran.exists()  # neither skipped as done nor run on a planted word
    assert json.loads(planted.read_text())["cites"] == "x"


# --- kill only what is provably the run's own ----------------------------------------


def test_a_planted_journal_cannot_make_a_cancel_kill_another_process(
    pytester: pytest.Pytester, background: Background
) -> None:
    """The attack of issue 11: a journal naming a process group that is not the run's.
    After SIGTERM the run's own suites are stopped; the other process lives on.

    The cancel itself, as under any -n 2 run (SIGTERM to the controller only): both
    suites hang, one with a tree that ignores SIGINT (its grandchild SIGTERM too), one
    whose grandchild left for a session of its own; both trees are stopped, in time,
    and the JUnit file is written."""
    root = pytester.mkdir("checkout")
    locks = private_folder(pytester.path / "locks")
    suites = make_hang_suites(
        pytester.path / "suites", {"hang": HANG, "escape": ESCAPE.format(then="hang")}
    )
    junit = pytester.path / "out.xml"
    victim = sleeper()
    try:
        journal = private_folder(locks / "runs" / "fixed" / "groups") / "99999999"
        journal.write_text(f"+{victim.pid}\n+1\n+{os.getpgrp()}\n")
        argv = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--torchci-config=x",
            f"--torchci-suites={suites}", f"--torchci-root={root}", f"--torchci-lock-dir={locks}",
            "-n", "2", "--testrunuid=fixed", f"--junitxml={junit}",
        ]  # fmt: skip
        proc = background.start(
            argv, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        own = _pids(suites / "hang", 90) + _pids(suites / "escape", 90)
        cancelled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert time.monotonic() - cancelled < 10 + 5, output
        assert not _gone(own), output
        assert time.monotonic() - cancelled < sum(CANCEL_GRACE) + 6
        assert "Traceback" not in output
        ET.parse(junit)  # well-formed
        assert victim.poll() is None, output  # the planted group was left alone
        assert f"pid {victim.pid}: left alone (does not carry this run's" in output
        assert "process group 1: not signalled" in output
        assert f"process group {os.getpgrp()}: not signalled" in output
    finally:
        victim.kill()
        victim.wait()


# What a dead worker left running is stopped by the controller's sweep (the worker's
# journal names the group; the process carries the run's cookie, made by the controller
# and handed to the worker): test_hangs_crashes.py, a_dead_worker_failed_its_item_only.


STRIPPED = """
# Leaves a process behind, started with an empty environment: no cookie.
import subprocess, sys
left = subprocess.Popen(["sleep", "60"], env={{}}, start_new_session={session})
with open(sys.argv[1], "w") as f:
    f.write(str(left.pid))
"""


def test_a_leftover_without_the_cookie_is_named_not_killed(pytester: pytest.Pytester) -> None:
    """Two suites each leave a process without the cookie: one in the suite's group, one
    in a session of its own."""
    root = pytester.mkdir("checkout")
    suites = make_hang_suites(
        pytester.path / "suites",
        {"in_group": STRIPPED.format(session=False), "in_session": STRIPPED.format(session=True)},
    )
    result = pytester.runpytest_subprocess(
        "--torchci-config=x", f"--torchci-suites={suites}", f"--torchci-root={root}",
        f"--torchci-lock-dir={pytester.path / 'locks'}", "-rA", timeout=120,
    )  # fmt: skip
    pids = [int((suites / name).read_text()) for name in ("in_group", "in_session")]
    try:
        assert all(alive(pid) for pid in pids)
        result.assert_outcomes(passed=2)
        for pid in pids:
            result.stdout.fnmatch_lines(
                [f"*left running after the command ended: pid {pid}: left alone (does not carry*"]
            )
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_stop_groups_signals_only_processes_with_the_cookie() -> None:
    cookie = new_cookie()
    ours = sleeper({**os.environ, COOKIE_VARIABLE: cookie})
    other_run = sleeper({**os.environ, COOKIE_VARIABLE: new_cookie()})
    plain = sleeper()
    try:
        sweep = stop_groups([ours.pid, other_run.pid, plain.pid, 0, 1], cookie, (0.5, 0.5))
        assert ours.wait(timeout=10) != 0  # stopped by a signal
        assert other_run.poll() is None and plain.poll() is None
        assert sweep.stopped == {ours.pid}
        assert set(sweep.skipped) == {other_run.pid, plain.pid}
        assert set(sweep.refused) == {0, 1}
    finally:
        for p in (ours, other_run, plain):
            p.kill()
            p.wait()


@needs_root
def test_stop_groups_leaves_another_users_process_alone() -> None:
    cookie = new_cookie()
    theirs = subprocess.Popen(
        ["sleep", "120"], env={COOKIE_VARIABLE: cookie}, user=NOBODY, start_new_session=True
    )
    try:
        time.sleep(0.2)
        sweep = stop_groups([theirs.pid], cookie, (0.2, 0.2))
        assert theirs.poll() is None
        assert sweep.skipped[theirs.pid].startswith(f"runs as uid {NOBODY}")
    finally:
        theirs.kill()
        theirs.wait()


def test_the_runs_own_group_is_never_signalled() -> None:
    assert reaper.refusal(os.getpgrp()) == "the run's own process group"
    assert reaper.refusal(0) is not None and reaper.refusal(1) is not None
