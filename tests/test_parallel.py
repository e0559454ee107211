"""What a parallel run reports: progress totals, the suites' own XML, the lock folder."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_devices import make_run_dir, run_pytest, write_fake_suites


@pytest.fixture(autouse=True)
def _fake_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCHCI_FAKE_DIR", str(tmp_path))  # for the fake suites' natives


def fake_args(run: Path, suites: Path, locks: Path, devices: str = "cuda:2") -> list[str]:
    return [
        "--torchci-config=fake",
        "--torchci-build-env=linux-cuda12-py3",
        f"--torchci-suites={suites}",
        f"--torchci-root={run / 'checkout'}",
        f"--torchci-lock-dir={locks}",
        f"--torchci-devices={devices}",
    ]


def completed(proc: object) -> subprocess.CompletedProcess[str]:
    assert isinstance(proc, subprocess.CompletedProcess)
    return proc


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "n2"])
def test_progress_counts_the_selected_items_only(tmp_path: Path, workers: list[str]) -> None:
    run = make_run_dir(tmp_path, "run")
    calls = [("fake1", "alpha-0"), ("fake1", "beta-0"), ("fake1", "gamma-0")]
    suites = write_fake_suites(run / "suites", calls, out=tmp_path / "r.jsonl")
    args = fake_args(run, suites, tmp_path / "locks")
    proc = completed(run_pytest(run, *args, "-k", "alpha or gamma", *workers))
    assert proc.returncode == 0, proc.stdout
    lines = re.findall(r"\[(\d+)/(\d+)\] fake1", proc.stdout)
    assert sorted(lines) == [("1", "2"), ("2", "2")], proc.stdout
    assert os.path.exists(tmp_path / "r.jsonl")


def _entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_lock_folder_stays_small(tmp_path: Path) -> None:
    """Runs with a setup call, one of them killed: what is left is the device slots'
    lock files and a few folders, not a file per run."""
    run = make_run_dir(tmp_path, "run")
    extra = (
        '[install_thing]\nrole = "setup"\ncites = "test.sh: install_thing()"\n'
        f'steps = [{{ run = ["{sys.executable}", "-c", "pass"] }}]\n'
    )
    calls = [("fake1", "a-0"), ("fake1", "b-0")]
    suites = write_fake_suites(run / "suites", calls, out=tmp_path / "r.jsonl", extra=extra)
    routes = (suites / "routes.toml").read_text()
    (suites / "routes.toml").write_text(
        routes.replace("calls = [", 'calls = [{ call = "install_thing" }, ')
    )
    locks = tmp_path / "locks"
    args = fake_args(run, suites, locks)
    for _ in range(3):
        assert completed(run_pytest(run, *args, "-n", "2")).returncode == 0
    after_runs = _entries(locks)
    assert len(after_runs) <= 2 + 3, after_runs  # two slots, the queue, runs/, ...

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
    assert completed(run_pytest(run, *args, "-n", "2")).returncode == 0
    assert not (locks / "runs").exists() or not any((locks / "runs").iterdir())
    assert len(_entries(locks)) <= len(after_runs) + 1, _entries(locks)


def test_verbose_summary_says_what_each_suite_waited_for(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, "run")
    calls = [("fake1", "a-0.3"), ("fake1", "b-0.3")]
    suites = write_fake_suites(run / "suites", calls, out=tmp_path / "r.jsonl")
    args = fake_args(run, suites, tmp_path / "locks", devices="cuda:1")
    proc = completed(run_pytest(run, *args, "-n", "2", "-v"))
    assert proc.returncode == 0, proc.stdout
    summary = proc.stdout.split("torchci device leases", 1)[1]
    assert summary.count("ran on cuda:0") == 2, proc.stdout
    assert "after waiting" in summary and "waits for 1 cuda device (whole)" in summary
