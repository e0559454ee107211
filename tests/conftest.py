"""Shared fixtures of pytest-torchci's own tests.

``sample_checkout`` copies the sample checkout into pytester's temporary folder (the copy
is not a git repository, so ``git status --porcelain`` fails there and the plugin's
``assert_git_not_dirty`` passes, as test.sh's does). ``make_suites`` writes a tiny suites
folder for runs that must not depend on the installed suite data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# What a torchci run imports on demand, imported once here: pytester puts sys.modules
# back after each in-process run, which would otherwise import (and rewrite) them anew.
import pytest_torchci.plugin.dryrun
import pytest_torchci.plugin.startup
import pytest_torchci.run.cancel  # noqa: F401

# The sample's own test files are run by its test/run_test.py, never by this project.
collect_ignore = ["sample_checkout"]

SAMPLE_CHECKOUT = Path(__file__).resolve().parent / "sample_checkout"
_IGNORED = {"__pycache__", ".pytest_cache"}


def _ignore_outputs(folder: str, names: list[str]) -> set[str]:
    ignored = {n for n in names if n in _IGNORED}
    if Path(folder).resolve() == SAMPLE_CHECKOUT / "test" and "test-reports" in names:
        ignored.add("test-reports")
    return ignored


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``-n``: work stealing instead of xdist's default load scheduling, which deals
    tests out in chunks by count. These tests range from milliseconds (unit) to seconds
    (a pytest run, with its own workers), so by count one worker may be left holding a
    run of slow ones while the other has nothing left; with work stealing, a worker that
    runs dry takes half of what another still has queued. Only the order changes."""
    if config.getoption("dist") != "load":
        return None  # a --dist the caller chose
    from xdist.scheduler import WorkStealingScheduling  # type: ignore[import-untyped]

    scheduler: object = WorkStealingScheduling(config, log)
    return scheduler


@pytest.fixture(autouse=True, scope="session")
def _bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The Python processes these tests start (pytest runs, their xdist workers, the
    suites' commands) share one bytecode cache for the session, outside every source
    tree: without one (``PYTHONDONTWRITEBYTECODE``), each of them compiles the plugin and
    its assertion rewrites again, a good part of its start-up. What runs is unchanged."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by its workers
    prefix = base / "pycache"
    _seed_bytecode(prefix)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPYCACHEPREFIX", str(prefix))
        mp.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        yield


def _seed_bytecode(prefix: Path) -> None:
    """Start the cache with the bytecode this process runs from (the standard library's,
    pytest's: compiled when they were installed), so that a run compiles only the rest."""
    suffix = f".{sys.implementation.cache_tag}.pyc"
    for module in list(sys.modules.values()):
        source, cached = getattr(module, "__file__", None), getattr(module, "__cached__", None)
        if not (source and cached and source.endswith(".py") and cached.endswith(suffix)):
            continue
        folder, name = os.path.split(os.path.abspath(source))
        target = prefix / folder.lstrip(os.sep) / (name.removesuffix(".py") + suffix)
        if target.exists() or not os.path.isfile(cached):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}")  # workers seed it at once
        shutil.copyfile(cached, partial)
        os.replace(partial, target)


@pytest.fixture(autouse=True)
def _not_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs these tests start behave as on a developer's machine, wherever the tests
    run (under CI, a suite whose devices are missing fails instead of skipping); tests of
    the CI behaviour set these themselves."""
    for name in ("CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sample_checkout(pytester: pytest.Pytester) -> Path:
    """A fresh copy of tests/sample_checkout as pytester's folder (its rootdir)."""
    shutil.copytree(SAMPLE_CHECKOUT, pytester.path, ignore=_ignore_outputs, dirs_exist_ok=True)
    assert (pytester.path / "test" / "run_test.py").is_file()
    assert not (pytester.path / "test" / "test-reports").exists()
    return pytester.path


@pytest.fixture
def venv_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put this interpreter's folder first on PATH, so the suites' ``python`` is it."""
    bindir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bindir


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's string syntax is valid TOML for these values)."""
    return json.dumps(value)


def toml_argv(argv: list[str]) -> str:
    return "[" + ", ".join(toml_str(a) for a in argv) + "]"


TRAITS_TOML = """\
[families]
misc = "other suites"

[traits]
config_demo = { var = "TEST_CONFIG", glob = "demo", help = "TEST_CONFIG is demo" }
"""

ROUTES_TOML = """\
[[route]]
cites = "demo dispatch"
when = "config_demo"
calls = [{ call = "demo_suite" }]
"""


class SuitesFactory:
    """Writes tiny suites folders: one trait (config_demo), one route, one suite.

    ``make_suites(argv=[...])`` makes ``demo_suite`` run that one command; ``files``
    adds or replaces whole files (``make_suites.traits_toml`` and ``.routes_toml`` are
    the default texts, to edit).
    """

    traits_toml = TRAITS_TOML
    routes_toml = ROUTES_TOML

    def __init__(self, base: Path) -> None:
        self.base = base
        self.count = 0

    def __call__(self, argv: list[str] | None = None, files: dict[str, str] | None = None) -> Path:
        self.count += 1
        folder = self.base / f"suites{self.count}"
        folder.mkdir()
        argv = argv or [sys.executable, "-c", "pass"]
        contents = {
            "traits.toml": TRAITS_TOML,
            "routes.toml": ROUTES_TOML,
            "demo.toml": (
                "[demo_suite]\n"
                'cites = "demo: demo_suite()"\n'
                f"steps = [{{ run = {toml_argv(argv)} }}]\n"
            ),
        }
        contents.update(files or {})
        for name, text in contents.items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder


def run_inprocess(
    pytester: pytest.Pytester, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``pytest -p no:cacheprovider ARGS`` in ``cwd``, in this process, as a completed
    process (stdout, stderr, exit status): for runs without xdist, signals, deadlines or
    processes left running, where a subprocess would only add its start-up."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'basetemp'}", *args
        )
    out = "".join(f"{line}\n" for line in result.outlines)
    err = "".join(f"{line}\n" for line in result.errlines)
    return subprocess.CompletedProcess(list(args), int(result.ret), out, err)


def run_demo_config(
    pytester: pytest.Pytester, suites: Path, checkout: Path, *extra: str, in_process: bool = False
) -> pytest.RunResult:
    """``pytest --torchci-config=demo`` on ``suites`` and ``checkout``, in a subprocess
    (``in_process``: in this process, where nothing but the suite's command runs)."""
    args = ["--torchci-config=demo", f"--torchci-suites={suites}", f"--torchci-root={checkout}"]
    if in_process:
        return pytester.runpytest_inprocess(*args, *extra)
    return pytester.runpytest_subprocess(*args, *extra, timeout=120)


@pytest.fixture
def make_suites(tmp_path: Path) -> SuitesFactory:
    return SuitesFactory(tmp_path)
