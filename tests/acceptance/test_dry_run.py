"""``--torchci-dry-run``: every item passes and shows its commands; no process starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_torchci import Job, load_suites, plan_job

BUILD = "linux-jammy-py3.11-gcc11"


@pytest.mark.parametrize("live", ["-s", "--capture=tee-sys"])
def test_dry_run_on_the_sample_checkout(
    sample_checkout: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, live: str
) -> None:
    started: list[object] = []

    def no_process(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise AssertionError(f"a dry run started a process: {args!r}")

    expected = plan_job(load_suites(), Job(BUILD, "default"), sample_checkout).plan
    test_ids = [str(s.nodeid) for s in expected.steps if s.role == "test"]
    assert len(test_ids) >= 10  # the final else: test_python, test_aten, ...

    monkeypatch.setattr(subprocess, "Popen", no_process)
    result = pytester.runpytest(
        "--torchci-config=default", f"--torchci-build-env={BUILD}", "--torchci-dry-run", live, "-v"
    )
    assert started == []
    # Nothing ran: every item is skipped, so no dashboard counts it as a passed test.
    result.assert_outcomes(skipped=len(test_ids))
    result.stdout.fnmatch_lines(["torchci: config default, build *, shard 1/1, root *, dry run"])
    # (-s: what the dry run prints comes between a node id and its outcome.)
    assert sum("SKIPPED (dry run)" in line for line in result.outlines) == len(test_ids)
    assert all(nodeid in str(result.stdout) for nodeid in test_ids)
    result.stdout.fnmatch_lines(
        [
            "[[]dry-run[]] test_python: 2 commands",  # a line of its own, not after the node id
            "  (.) python test/run_test.py --exclude-jit-executor * --verbose*",
        ]
    )
    # Setups are shown too, once, before the first item that needs them.
    assert sum(line.startswith("[dry-run] install_torchvision:") for line in result.outlines) == 1
    assert any(
        "python3 -mpip install --no-index --no-deps dist/vision/" in line
        for line in result.outlines
    )

    reports = sample_checkout / "test" / "test-reports"
    assert not (reports / "python-pytest").exists()
    assert not (sample_checkout / "test" / "cpp").exists()  # tools/download_mnist.py never ran


def test_dry_run_junit_lists_the_planned_commands(
    sample_checkout: Path, pytester: pytest.Pytester
) -> None:
    xml = pytester.path / "dry.xml"
    result = pytester.runpytest(
        "--torchci-config=default",
        f"--torchci-build-env={BUILD}",
        "--torchci-shard=3/3",
        "--torchci-dry-run",
        f"--junitxml={xml}",
    )
    result.assert_outcomes(skipped=1)
    text = xml.read_text()
    assert '<skipped type="pytest.skip" message="dry run"' in text
    assert 'name="test_python_shard[3]"' in text
    assert "python test/run_test.py --exclude-jit-executor" in text
    assert "--shard 3 3" in text
    assert not (sample_checkout / "test" / "test-reports" / "python-pytest").exists()
