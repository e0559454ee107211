"""Shared fixtures of pytest-torchci's own tests.

``sample_checkout`` copies the sample checkout into pytester's temporary folder (the copy
is not a git repository, so ``git status --porcelain`` fails there and the plugin's
``assert_git_not_dirty`` passes, as test.sh's does). ``make_suites`` writes a tiny suites
folder for runs that must not depend on the installed suite data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# What a torchci run imports on demand, imported once here: pytester puts sys.modules
# back after each in-process run, which would otherwise import (and rewrite) them anew.
import pytest_torchci.plugin.dryrun
import pytest_torchci.plugin.startup
import pytest_torchci.run.cancel  # noqa: F401
from pytest_torchci.data import loader

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


_LOAD_SUITES = loader.load_suites


@pytest.fixture(autouse=True, scope="session")
def _suite_data_parsed_once() -> Iterator[None]:
    """A suites folder is parsed once per process for as long as its TOML files hold the
    same bytes: the installed suite data is read by most tests and by every in-process
    pytest run (the plugin's start), over 250 times a session, about 0.1 s each. The data
    layer reads nothing but those files (no environment, no registry), and its objects
    are frozen, so a folder whose files are byte for byte the same gives what a new parse
    would (the same path included); any change to a file, a file added or removed, a
    folder that cannot be read and any error are parsed (and raised) anew."""
    parsed: dict[tuple[str, str, bytes], loader.SuiteData] = {}

    @functools.wraps(_LOAD_SUITES)
    def load_suites(directory: Path | None = None) -> loader.SuiteData:
        folder = Path(directory) if directory is not None else loader.default_suites_dir()
        try:
            digest = hashlib.sha256()
            for path in sorted(folder.glob("*.toml")):
                data = path.read_bytes()
                digest.update(b"%s\0%d\0" % (path.name.encode(), len(data)) + data)
            key = (str(folder), str(folder.resolve()), digest.digest())
        except OSError:
            return _LOAD_SUITES(directory)
        if key not in parsed:
            parsed[key] = _LOAD_SUITES(directory)
        return parsed[key]

    with pytest.MonkeyPatch.context() as mp:
        # The loader's own name (the plugin and the torchci command import it from there
        # when they start) and every module that bound the name when it was imported.
        for module in list(sys.modules.values()):
            if getattr(module, "__dict__", {}).get("load_suites") is _LOAD_SUITES:
                mp.setattr(module, "load_suites", load_suites)
        yield


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


class Background:
    """Processes a test starts and does not wait for itself. Whatever the test's outcome,
    each one still running at teardown is killed (with its process group, where it leads
    one), reaped, and its pipes closed: none outlives its test, and no open pipe or
    unreaped child is left for the garbage collector to report during a later test (an
    in-process run there would take the warning for an error of its own)."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[str]:
        proc: subprocess.Popen[str] = subprocess.Popen(argv, **kwargs)
        self._started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self._started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if os.getpgid(proc.pid) == proc.pid:
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def background() -> Iterator[Background]:
    started = Background()
    try:
        yield started
    finally:
        started.stop_all()


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


def runpytest_side_by_side(
    pytester: pytest.Pytester, runs: dict[str, list[str]]
) -> dict[str, pytest.RunResult]:
    """``pytest -p no:cacheprovider ARGS`` for each run (name: ARGS), in subprocesses
    started together in pytester's folder, each with a basetemp and output files of its
    own: for runs that do not depend on each other and spend most of their time waiting
    (deadlines, what their commands leave running), so that the waits overlap."""
    started = {}
    for name, args in runs.items():
        argv = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
            f"--basetemp={pytester.path / f'basetemp-{name}'}", *args,
        ]  # fmt: skip
        out, err = (pytester.path / f"{name}.stdout", pytester.path / f"{name}.stderr")
        with open(out, "w", encoding="utf-8") as fout, open(err, "w", encoding="utf-8") as ferr:
            proc = subprocess.Popen(
                argv, cwd=pytester.path, stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr
            )
        started[name] = (proc, out, err, time.monotonic())
    results = {}
    try:
        for name, (proc, out, err, start) in started.items():
            code = proc.wait(timeout=120)
            outlines = out.read_text(encoding="utf-8").splitlines()
            errlines = err.read_text(encoding="utf-8").splitlines()
            results[name] = pytest.RunResult(code, outlines, errlines, time.monotonic() - start)
    finally:
        for proc, *_ in started.values():
            if proc.poll() is None:  # a run past its time: stopped, as pytester does
                proc.kill()
                proc.wait()
    return results


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
