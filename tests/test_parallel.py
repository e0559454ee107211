"""What a parallel run reports: progress totals, the suites' own XML, the lock folder."""

from __future__ import annotations

import os
import re
import subprocess
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
