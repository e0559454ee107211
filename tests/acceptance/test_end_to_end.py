"""Real runs on a copy of the sample checkout: processes start, reports are written.

The install steps run ``python3 -mpip install ... dist/vision/*.whl``; a conftest.py in
the run's folder implements ``pytest_torchci_command`` to replace every pip command with
a no-op, so nothing is installed into the environment running these tests.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_torchci import Job, load_suites, plan_job
from pytest_torchci.run.processes import describe_status

BUILD = "linux-jammy-py3.11-gcc11"
HOOK_LOG = "torchci-hook.jsonl"
NO_OP = [sys.executable, "-c", "pass"]

HOOK_CONFTEST = f"""

# --- added by test_end_to_end.py: no pip command may change the environment -------------
import dataclasses as _dataclasses
import json as _json
import sys as _sys

import pytest as _pytest


# optionalhook: the child pytest runs of run_test.py load this conftest.py too.
@_pytest.hookimpl(optionalhook=True)
def pytest_torchci_command(command, suite, config):
    if not any("pip" in word for word in command.argv[:3]):
        return None
    with open(config.rootpath / {HOOK_LOG!r}, "a", encoding="utf-8") as log:
        log.write(_json.dumps({{"suite": suite, "argv": list(command.argv)}}) + "\\n")
    return _dataclasses.replace(command, argv=(_sys.executable, "-c", "pass"))
"""


@pytest.fixture
def e2e_checkout(sample_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conftest = sample_checkout / "conftest.py"
    conftest.write_text(conftest.read_text() + HOOK_CONFTEST)
    monkeypatch.delenv("TORCHCI_SAMPLE_FAIL", raising=False)
    for name in ("BUILD_ENVIRONMENT", "TEST_CONFIG", "SHARD_NUMBER", "NUM_TEST_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    return sample_checkout


def load_run_test(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The copy's test/run_test.py, imported, to ask it what a shard holds."""
    name = f"_sample_run_test_{abs(hash(checkout))}"
    spec = importlib.util.spec_from_file_location(name, checkout / "test" / "run_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def planned_argv(checkout: Path, shard: str, num_shards: str) -> list[str]:
    plan = plan_job(load_suites(), Job(BUILD, "default", shard, num_shards), checkout).plan
    (step,) = [s for s in plan.steps if s.call == "test_python_shard"]
    return list(step.commands[0].argv)


def shard_files(checkout: Path, monkeypatch: pytest.MonkeyPatch, shard: str) -> list[str]:
    """The test files run_test.py runs for the plan's test_python_shard command."""
    argv = planned_argv(checkout, shard, "3")
    assert argv[:2] == ["python", "test/run_test.py"]
    run_test = load_run_test(checkout, monkeypatch)
    args, _ = run_test.build_parser().parse_known_args(argv[2:])
    selected = run_test.select_tests(run_test.discover_tests(), args)
    return list(run_test.shard(selected, *args.shard))


def read_testcases(xml: Path) -> dict[str, dict[str, str]]:
    root = ET.parse(xml).getroot()
    return {
        c.get("name", ""): {p.get("name", ""): p.get("value", "") for p in c.iter("property")}
        for c in root.iter("testcase")
    }


def test_shard_3_of_3_runs_for_real(
    e2e_checkout: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = shard_files(e2e_checkout, monkeypatch, "3")
    assert files == ["test_cuda", "test_modules", "test_torch"]

    installed_before = _installed("torchci-sample-vision")
    result = pytester.runpytest_inprocess(
        "--torchci-config=default",
        "--torchci-shard=3/3",
        f"--torchci-build-env={BUILD}",
        "--junitxml=out.xml",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == 0

    # One testcase per item, with the item's properties.
    cases = read_testcases(e2e_checkout / "out.xml")
    assert list(cases) == ["test_python_shard[3]"]
    props = cases["test_python_shard[3]"]
    assert props["call"] == "test_python_shard"
    assert props["args"] == "3"
    assert props["exit_status"] == "0"
    assert float(props["suite_seconds"]) > 0
    assert props["build_environment"] == BUILD
    assert props["test_config"] == "default"
    assert props["shard"] == "3/3"
    commands = json.loads(props["commands"])
    assert commands[0] == shlex.join(planned_argv(e2e_checkout, "3", "3"))
    assert "--shard 3 3" in commands[0]
    assert Path(props["log"]).is_file()

    # run_test.py's children wrote their JUnit XML, one file per test file of the shard.
    reports = e2e_checkout / "test" / "test-reports" / "python-pytest"
    assert sorted(p.name for p in reports.iterdir()) == files
    for name in files:
        (xml,) = (reports / name).glob(f"{name}-*.xml")
        suite = ET.parse(xml).getroot().find("testsuite")
        assert suite is not None
        assert int(suite.get("tests", "0")) >= 1
        assert suite.get("failures") == "0" and suite.get("errors") == "0"

    # The hook replaced the wheel install; nothing was installed.
    hook_calls = [json.loads(line) for line in (e2e_checkout / HOOK_LOG).read_text().splitlines()]
    # The prelude's `pip uninstall -y onnxruntime` went through the hook too.
    prelude = [c for c in hook_calls if c["suite"] == "prelude"]
    assert prelude and prelude[0]["argv"][:3] == ["pip", "uninstall", "-y"]
    hook_calls = [c for c in hook_calls if c["suite"] != "prelude"]
    assert [c["suite"] for c in hook_calls] == ["install_torchvision"]
    assert hook_calls[0]["argv"][:5] == ["python3", "-mpip", "install", "--no-index", "--no-deps"]
    assert hook_calls[0]["argv"][5].startswith("dist/vision/torchci_sample_vision-")
    install_log = (
        e2e_checkout / "test" / "test-reports" / "torchci-logs" / "install_torchvision.log"
    )
    assert f"$ {shlex.join(NO_OP)}" in install_log.read_text()
    # Whatever this environment held before (the README's Quickstart really installs it),
    # the run left it as it was.
    assert _installed("torchci-sample-vision") == installed_before


def _installed(distribution: str) -> bool:
    importlib.invalidate_caches()
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_failing_shard_is_reported(
    e2e_checkout: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shard of 3 that holds test_env_controlled, by run_test.py's own sharding
    # (round-robin over the sorted names): shard 1, not 2.
    holding = [
        n
        for n in ("1", "2", "3")
        if "test_env_controlled" in shard_files(e2e_checkout, monkeypatch, n)
    ]
    assert holding == ["1"]
    shard = holding[0]
    plan = plan_job(load_suites(), Job(BUILD, "default", shard, "3"), e2e_checkout).plan
    n_items = sum(s.role == "test" for s in plan.steps)

    monkeypatch.setenv("TORCHCI_SAMPLE_FAIL", "1")
    result = pytester.runpytest_inprocess(
        "--torchci-config=default",
        f"--torchci-shard={shard}/3",
        f"--torchci-build-env={BUILD}",
        "--junitxml=out.xml",
        "torchci::test_python_shard",
    )
    result.assert_outcomes(failed=1, deselected=n_items - 1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    argv = planned_argv(e2e_checkout, shard, "3")
    result.stdout.fnmatch_lines(
        [
            f"test_python_shard[[]{shard}[]] failed (test.sh: test_python_shard())",
            f"command: {shlex.join(argv)}",
            f"   exit: {describe_status(1)}",
            "--- last * lines of output ---",
            "*[[]run_test[]] FAILED: test_env_controlled",
            f"--- full log: *test_python_shard[[]{shard}[]].log",
        ]
    )
    props = read_testcases(e2e_checkout / "out.xml")[f"test_python_shard[{shard}]"]
    assert props["exit_status"] == "1"
    (xml,) = (e2e_checkout / "test/test-reports/python-pytest/test_env_controlled").glob("*.xml")
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_shard_2_of_3_does_not_hold_the_failing_test(
    e2e_checkout: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TORCHCI_SAMPLE_FAIL=1 shard 2/3 still passes: it runs other files."""
    files = shard_files(e2e_checkout, monkeypatch, "2")
    assert files == ["lazy/test_ts_opinfo", "test_linalg", "test_ops_gradients"]
    plan = plan_job(load_suites(), Job(BUILD, "default", "2", "3"), e2e_checkout).plan
    n_items = sum(s.role == "test" for s in plan.steps)
    monkeypatch.setenv("TORCHCI_SAMPLE_FAIL", "1")
    result = pytester.runpytest_inprocess(
        "--torchci-config=default",
        "--torchci-shard=2/3",
        f"--torchci-build-env={BUILD}",
        "torchci::test_python_shard",
    )
    result.assert_outcomes(passed=1, deselected=n_items - 1)
    reports = e2e_checkout / "test" / "test-reports" / "python-pytest"
    assert sorted(p.name for p in reports.iterdir()) == [
        "lazy.test_ts_opinfo",
        "test_linalg",
        "test_ops_gradients",
    ]


PATH_PRELUDE = """\
[prelude]
steps = [{ export = { PATH = "$HOME/.local/bin:$PATH" } }]
"""


@pytest.mark.parametrize("prelude", [False, True], ids=["no-prelude", "prelude-exports-PATH"])
def test_python_in_a_suite_is_pytests_interpreter(
    pytester: pytest.Pytester, make_suites: Any, monkeypatch: pytest.MonkeyPatch, prelude: bool
) -> None:
    """`python` in a suite is the interpreter running pytest (README: "the folder of
    pytest's interpreter first on PATH"), also when the prelude exports PATH as test.sh's
    does (`export PATH="$HOME/.local/bin:$PATH"`)."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    folder = make_suites(
        argv=["python", "-c", "import sys; print('interpreter:', sys.executable)"],
        files={"prelude.toml": PATH_PRELUDE} if prelude else {},
    )
    result = pytester.runpytest_inprocess(
        "--torchci-config=demo", f"--torchci-suites={folder}", "-s"
    )
    result.assert_outcomes(passed=1)
    (line,) = [x for x in result.outlines if x.startswith("interpreter: ")]
    # The same interpreter, however it is spelled (a new venv's `pytest` script may name
    # bin/python3 while PATH finds bin/python).
    assert os.path.samefile(line.removeprefix("interpreter: "), sys.executable)
