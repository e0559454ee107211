"""pytest-torchci's hooks and options. Only ``--torchci-config`` turns torchci mode on;
without it the plugin changes nothing about a pytest run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .keys import RUNTIME_KEY

# Heavy modules load only in torchci mode: the plugin is loaded by every pytest run of an
# environment that has it (run_test.py starts one per test file).
if TYPE_CHECKING:
    from ..data.loader import SuiteData
    from ..data.model import Job
    from ..plan.engine import Executor
    from ..run.cancel import Cancel
    from ..run.reaper import Sweep
    from ..run.statedir import RunFolder
    from .progress import Progress
    from .session import Runtime

NODE_PREFIX = "torchci"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchci", "PyTorch CI suites (pytest-torchci)")
    group.addoption(
        "--torchci-config",
        metavar="NAME",
        help="run the CI suites of TEST_CONFIG NAME (turns torchci mode on)",
    )
    group.addoption(
        "--torchci-build-env",
        metavar="NAME",
        help="the job's BUILD_ENVIRONMENT (default: $BUILD_ENVIRONMENT)",
    )
    group.addoption(
        "--torchci-shard",
        metavar="N/M",
        help="shard N of M (default: $SHARD_NUMBER/$NUM_TEST_SHARDS, else 1/1)",
    )
    group.addoption(
        "--torchci-root",
        metavar="DIR",
        help="the PyTorch checkout the suites run in (default: $PYTORCH_ROOT, else .)",
    )
    group.addoption(
        "--torchci-plan",
        metavar="FILE",
        help="write this job's plan (JSON, schema 1) to FILE; works with --collect-only",
    )
    group.addoption(
        "--torchci-dry-run",
        action="store_true",
        default=False,
        help="collect and report every command without starting any process",
    )
    group.addoption(
        "--torchci-no-setup",
        action="store_true",
        default=False,
        help="skip the setup calls (installs): the environment is already set up",
    )
    group.addoption(
        "--torchci-devices",
        metavar="SPEC",
        help="declare the host's devices instead of discovering them: none, cuda:4, "
        "cuda:0,2, rocm:8, xpu:2, cuda:8xH100 (default: $TORCHCI_DEVICES, else discovery)",
    )
    group.addoption(
        "--torchci-lock-dir",
        metavar="DIR",
        help="the run's private state (leases, journals, setup markers), on local disk; "
        "must be yours and writable by you alone (default: $TORCHCI_LOCK_DIR, else "
        "torchci-locks-UID in the temp dir, made 0700)",
    )
    group.addoption(
        "--torchci-shared-lock-dir",
        metavar="DIR",
        help="a folder every user of the host shares for device lock files only, so that "
        "their runs share the devices (default: $TORCHCI_SHARED_LOCK_DIR, else the "
        "torchci_shared_lock_dir ini value, else none)",
    )
    parser.addini(
        "torchci_shared_lock_dir",
        "a folder every user of the host shares for device lock files (see "
        "--torchci-shared-lock-dir)",
        default="",
    )
    group.addoption(
        "--torchci-slots-per-device",
        metavar="N",
        type=int,
        help="slots per device: N light suites may share a device (default 1)",
    )
    group.addoption(
        "--torchci-require-devices",
        action="store_true",
        default=False,
        help="fail (instead of skip) a suite whose devices or hardware the host lacks "
        "(the default where the CI environment variable is true)",
    )
    group.addoption(
        "--torchci-allow-missing-devices",
        action="store_true",
        default=False,
        help="skip a suite whose devices or hardware the host lacks, also under CI (for CI "
        "hosts that mean to skip them)",
    )
    parser.addini(
        "torchci_allow_missing_devices",
        "skip suites whose devices the host lacks, also under CI (see "
        "--torchci-allow-missing-devices)",
        type="bool",
        default=False,
    )
    group.addoption(
        "--torchci-timeline",
        metavar="FILE",
        help="write a Chrome trace event file (open it in Perfetto or chrome://tracing): a "
        "track per device and per worker, a slice per suite, lease wait, setup and "
        "teardown; under GitHub Actions a gantt chart of it goes to the job summary",
    )
    group.addoption(
        "--torchci-progress",
        action="store_true",
        default=False,
        help="a line per finished suite at any verbosity (shown by default from -v on)",
    )
    group.addoption(
        "--torchci-durations",
        metavar="FILE",
        action="append",
        default=[],
        help="suite durations from earlier runs: the plugin's JUnit XML files or a JSON "
        "store (repeatable); used to start the longest suites first",
    )
    group.addoption(
        "--torchci-all-shards",
        action="store_true",
        default=False,
        help="run every shard of the config in this one run (N from --torchci-shard K/N)",
    )
    group.addoption(
        "--torchci-balance",
        metavar="N",
        type=int,
        help="split the config's suites over N shards by duration (longest first onto the "
        "lightest shard) and run shard K of --torchci-shard K/N",
    )
    group.addoption(
        "--torchci-store-durations",
        metavar="FILE",
        help="write the durations of this run's suites to a JSON store (merged into FILE)",
    )
    group.addoption(
        "--torchci-suites",
        metavar="DIR",
        help="a suites folder to use instead of the installed one",
    )
    group.addoption(
        "--torchci-log-dir",
        metavar="DIR",
        help="where each suite's log goes (default: ROOT/test/test-reports/torchci-logs)",
    )


def _register_markers(config: pytest.Config, data: SuiteData) -> None:
    config.addinivalue_line(
        "markers",
        "torchci_devices(count, exclusive=True): the suite leases COUNT devices (-1: all of "
        "the host's), whole devices or one shared slot",
    )
    config.addinivalue_line(
        "markers",
        "torchci_hardware(*models): the suite runs only where the host has one of these "
        "models (H100, B200, sm90, ...); elsewhere it is skipped",
    )
    families = dict(data.families)
    for suite in data.suites.values():
        families.setdefault(suite.family, "suite family")
    for name, text in families.items():
        config.addinivalue_line("markers", f"{name}: suite family: {text}")
    for trait in data.traits.values():
        test = f"{trait.var} {'matches' if trait.kind == 'glob' else '=~'} {trait.pattern}"
        config.addinivalue_line("markers", f"{trait.name}: job trait: {test} ({trait.help})")
    extra = {m for s in data.suites.values() for m in s.markers}
    extra |= {m for r in data.routes for e in r.entries for m in e.markers}
    for name in sorted(extra - set(families) - set(data.traits)):
        config.addinivalue_line("markers", f"{name}: suite marker")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("torchci_config") is None:
        import os

        if "TORCHCI_ITEM_TOKEN" in os.environ:  # a pytest that a suite started
            from ..run.reports import claim_child_xml

            claim_child_xml(config.option, os.environ)
        if config.getoption("markers", False):  # `pytest --markers` documents ours too
            from ..data.loader import SuiteDataError, load_suites

            with contextlib.suppress(SuiteDataError):
                _register_markers(config, load_suites())
        return
    from ..data.loader import SuiteDataError, load_suites
    from ..data.model import Job
    from ..plan.planner import plan_job
    from .session import Runtime
    from .settings import resolve_settings

    settings = resolve_settings(config)
    try:
        data = load_suites(settings.suites_dir)
    except SuiteDataError as exc:
        raise pytest.UsageError(f"suite data: {exc}") from None
    _register_markers(config, data)

    selectors: list[str] = []
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        for arg in config.args:
            if arg == NODE_PREFIX or arg.startswith(f"{NODE_PREFIX}::"):
                selectors.append(arg)
            else:
                raise pytest.UsageError(
                    f"{arg!r}: in torchci mode, arguments select suites by node id "
                    f"({NODE_PREFIX}::NAME, as --collect-only -q lists them), not paths"
                )
    config.args = [str(config.rootpath)]

    job = Job(settings.build_environment, settings.config, settings.shard, settings.num_shards)
    cookie = _cookie(config)
    query = None if settings.dry_run else _query_executor(settings.root, cookie)
    balance_n = config.getoption("torchci_balance")
    shard_plans = None
    if balance_n is not None or config.getoption("torchci_all_shards"):
        from ..scale.shards import expand_all_shards

        if balance_n is not None:
            if balance_n < 1:
                raise pytest.UsageError(f"--torchci-balance {balance_n}: must be at least 1")
            if int(job.shard) > balance_n:
                raise pytest.UsageError(
                    f"--torchci-balance {balance_n}: shard {job.shard} is past {balance_n}"
                )
            job = Job(job.build_environment, job.test_config, job.shard, str(balance_n))
        job_plan, shard_plans = expand_all_shards(
            data, job, settings.root, base_env=_environ(), query=query
        )
    else:
        job_plan = plan_job(data, job, settings.root, base_env=_environ(), query=query)
    settings = type(settings)(**{**settings.__dict__, "selectors": tuple(selectors)})
    runtime = Runtime(settings, data, job, job_plan, config=config, cookie=cookie)
    timeline = config.getoption("torchci_timeline")
    if timeline:
        from ..run.timeline import Timeline

        folder = (Path(config.invocation_params.dir) / timeline).parent
        if not folder.is_dir():
            raise pytest.UsageError(
                f"--torchci-timeline {timeline}: the folder {folder} does not exist"
            )
        runtime.timeline = Timeline(_worker_id(config))
    config.stash[RUNTIME_KEY] = runtime
    runtime.run_id = _run_id(config)
    _introduce_workers(config, runtime)
    if not _xdist_on(config) or hasattr(config, "workerinput"):  # this process runs suites
        from ..run.reaper import set_subreaper

        config.stash[_SUBREAPER_KEY] = set_subreaper(True)
    if not hasattr(config, "workerinput"):
        config.stash[_RUN_FOLDER_KEY] = _open_run_folder(settings.lock_dir, runtime.run_id)
    progress = _progress(config)
    if progress is not None:
        config.pluginmanager.register(
            _Reporter(progress, _config_warnings(data, job, settings.root)), "torchci-reporter"
        )
    plans = [job_plan.plan]
    if balance_n is not None:
        runtime.balance = balance_n
        units = runtime.shard_units()
        plans = [dataclasses.replace(job_plan.plan, steps=tuple(u.step for u in units))]
    elif shard_plans is not None:
        plans = [jp.plan for jp in shard_plans]
    _check_selectors(runtime)
    if settings.plan_file is not None and not hasattr(config, "workerinput"):
        text = (
            json.dumps(plans[0].as_json(), indent=1)
            if len(plans) == 1
            else "\n".join(json.dumps(p.as_json()) for p in plans)
        )
        settings.plan_file.write_text(text + "\n")


def _config_warnings(data: SuiteData, job: Job, root: Path) -> list[str]:
    """A config no rule names runs test.sh's final else, as test.sh does; say so."""
    from ..plan.configs import unknown_config_warning

    warning = unknown_config_warning(data, job, root=root, base_env=_environ())
    return [] if warning is None else [f"torchci: warning: {warning}"]


def _check_selectors(runtime: Runtime) -> None:
    """A node id that names no suite of this job is an error, as pytest's own
    ``ERROR: not found`` (exit status 4), not an empty run."""
    names = [f"{NODE_PREFIX}::{u.name}" for u in runtime.shard_units() if u.role == "test"]
    for selector in runtime.settings.selectors:
        if selector == NODE_PREFIX:
            continue
        if not any(n == selector or n.startswith(selector + "[") for n in names):
            raise pytest.UsageError(
                f"not found: {selector}\n(no suite of this job has that name; "
                "`pytest --collect-only -q` with the same options lists them)"
            )


def _run_id(config: pytest.Config) -> str:
    """One id for the whole run, shared by xdist's workers (their ``testrunuid``); it
    names folders, so anything but a plain name is replaced by its hash."""
    import hashlib
    import re
    import uuid

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = str(workerinput.get("testrunuid", "worker"))
    else:
        if config.getoption("numprocesses", None) and config.getoption("testrunuid", None) is None:
            config.option.testrunuid = uuid.uuid4().hex
        given = str(config.getoption("testrunuid", None) or uuid.uuid4().hex)
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", given):
        return given
    return hashlib.sha256(given.encode()).hexdigest()[:32]


def _introduce_workers(config: pytest.Config, runtime: Runtime) -> None:
    """Under xdist each worker says who it is in the run's folder; the controller's
    cancel handler signals those of them that are its own children."""
    import os

    if hasattr(config, "workerinput"):
        from ..run.statedir import UnsafeFileError, UnsafeFolderError, open_private, private_folder

        with contextlib.suppress(OSError, UnsafeFolderError, UnsafeFileError):
            folder = private_folder(runtime.run_dir() / "workers")
            os.close(open_private(folder / str(os.getpid()), os.O_WRONLY | os.O_CREAT))
        return
    cancel = config.stash.get(_CANCEL_KEY, None)
    if cancel is None or not _xdist_on(config):
        return
    folder = runtime.run_dir() / "workers"

    def workers() -> list[int]:
        from ..run.reaper import children

        try:
            named = {int(n) for n in os.listdir(folder) if n.isdigit()}
        except OSError:
            return []
        return [p for p in children() if p in named]

    cancel.workers = workers


def _worker_id(config: pytest.Config) -> str:
    """xdist's name of this worker (gw0, ...), or main (this run's own, not one a pytest
    run that started this one left in the environment)."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput.get("workerid", "main")) if workerinput is not None else "main"


def _cookie(config: pytest.Config) -> str:
    """The run's cookie: made by the controller, handed to each xdist worker."""
    from ..run.reaper import new_cookie

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("torchci_cookie"):
        return str(workerinput["torchci_cookie"])
    return new_cookie()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """xdist: each worker gets the run's cookie (see :mod:`reaper`)."""
    config = getattr(node, "config", None)
    runtime = None if config is None else _runtime(config)
    workerinput = getattr(node, "workerinput", None)
    if runtime is not None and isinstance(workerinput, dict):
        workerinput["torchci_cookie"] = runtime.cookie


_CANCEL_KEY: pytest.StashKey[Cancel] = pytest.StashKey()


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """In torchci mode, SIGTERM and SIGINT end the run in order from here on (see
    :mod:`cancel`): before the plan is made, which may run commands."""
    if config.getoption("torchci_config") is None:
        return
    from ..run.cancel import Cancel

    cancel = Cancel(config)
    cancel.install()
    config.stash[_CANCEL_KEY] = cancel
    config.pluginmanager.register(cancel, "torchci-cancel")


_RUN_FOLDER_KEY = pytest.StashKey["RunFolder"]()
_SUBREAPER_KEY = pytest.StashKey[bool]()


def _open_run_folder(state: Path, run_id: str) -> RunFolder:
    """The run's own folder in the state folder; first, what killed runs left there."""
    from ..run.statedir import RunFolder, UnsafeFileError, UnsafeFolderError

    RunFolder.clean_dead(state, keep=run_id)
    folder = RunFolder(state, run_id)
    try:
        folder.open()
    except (OSError, UnsafeFolderError, UnsafeFileError) as exc:
        raise pytest.UsageError(
            f"lock folder {state}: cannot make this run's folder: {exc}"
        ) from None
    return folder


def _close_run_folder(config: pytest.Config) -> None:
    folder = config.stash.get(_RUN_FOLDER_KEY, None)
    if folder is not None:
        folder.close()
        del config.stash[_RUN_FOLDER_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    runtime = _runtime(config)
    if runtime is not None:
        runtime.close()
    if config.stash.get(_SUBREAPER_KEY, False):
        from ..run.reaper import set_subreaper

        set_subreaper(False)
    _close_run_folder(config)
    cancel = config.stash.get(_CANCEL_KEY, None)
    if cancel is not None:
        cancel.uninstall()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's last word: stop any suite process group still registered (a worker
    that died, a cancelled run); the job summary; the durations store."""
    runtime = _runtime(session.config)
    if runtime is None:
        return
    if hasattr(session.config, "workerinput"):
        if runtime.timeline is not None:  # handed to the controller (pytest_testnodedown)
            from ..run.timeline import WORKER_OUTPUT_KEY

            session.config.workeroutput[WORKER_OUTPUT_KEY] = runtime.timeline.dump()  # type: ignore[attr-defined]
        return
    _report_sweep(session.config, runtime.sweep_groups())
    _write_timeline(session.config, runtime)
    _close_run_folder(session.config)
    progress = _progress(session.config)
    if progress is None:
        return
    s = runtime.settings
    progress.write_github_summary(
        f"torchci: {s.config} ({s.build_environment or 'no build'}, shard {s.shard}/{s.num_shards})"
    )
    store = session.config.getoption("torchci_store_durations")
    if store:
        progress.store(Path(store))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist: a worker ended; its timeline joins the controller's."""
    config = getattr(node, "config", None)
    runtime = None if config is None else _runtime(config)
    output = getattr(node, "workeroutput", None) or {}
    if runtime is not None and runtime.timeline is not None:
        from ..run.timeline import WORKER_OUTPUT_KEY

        text = output.get(WORKER_OUTPUT_KEY)
        if isinstance(text, str):
            runtime.timeline.load(text)


def _write_timeline(config: pytest.Config, runtime: Runtime) -> None:
    """--torchci-timeline: the trace file; under GitHub Actions, the gantt chart."""
    import os

    from ..run.timeline import mermaid_gantt, write_chrome_trace

    path = config.getoption("torchci_timeline")
    if not path or runtime.timeline is None:
        return
    s = runtime.settings
    title = f"torchci {s.config} shard {s.shard}/{s.num_shards}"
    target = Path(config.invocation_params.dir) / path
    try:
        write_chrome_trace(target, runtime.timeline.spans, title)
    except OSError as exc:
        _say(config, f"torchci: --torchci-timeline {path}: cannot write it ({exc.strerror})")
        return
    _say(config, f"torchci: timeline: {target} ({len(runtime.timeline.spans)} spans)")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if os.environ.get("GITHUB_ACTIONS") and summary:
        with contextlib.suppress(OSError), open(summary, "a", encoding="utf-8") as f:
            f.write(mermaid_gantt(runtime.timeline.spans, title))


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(line)
    else:
        print(line, flush=True)


def _report_sweep(config: pytest.Config, sweep: Sweep) -> None:
    """What the sweep stopped, and what it left alone because it could not prove it the
    run's own."""
    lines = []
    if sweep.stopped:
        lines.append(f"torchci: stopped {len(sweep.stopped)} processes the suites left running")
    lines += [f"torchci: {line}" for line in sweep.lines()]
    for line in lines:
        _say(config, line)


def _query_executor(root: Path, cookie: str) -> Executor:
    """Runs the commands whose output the plan reads (``$(nvidia-smi ...)``), quietly."""
    from ..data.model import Command
    from ..plan.engine import CommandResult
    from ..run.processes import RunOptions, run_command

    options = RunOptions(root=root, base_env=_environ(), timeout=120.0, cookie=cookie)

    def query(command: Command, *, capture: bool) -> CommandResult:
        return run_command(command, options, capture=capture)

    return query


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def _runtime(config: pytest.Config) -> Runtime | None:
    return config.stash.get(RUNTIME_KEY, None)


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _runtime(parent.config) is not None and path == parent.config.rootpath:
        from .items import JobDirectory

        return JobDirectory.from_parent(parent, path=path)
    return None


def _xdist_on(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput") or bool(config.getoption("numprocesses", None))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runtime = _runtime(config)
    if runtime is None:
        return
    from .items import SuiteItem

    for item in items:
        if isinstance(item, SuiteItem):
            runtime.set_deadline(item)
    if _xdist_on(config):
        # Side by side, longest first (in device-seconds: a 4-GPU suite is bigger than a
        # 1-GPU one of the same length), so that the last suite to finish is not a long one.
        expected = runtime.expected_durations()

        def size(item: pytest.Item) -> tuple[float, int, float]:
            seconds = expected.get(item.name, 0.0)
            devices = 1
            if isinstance(item, SuiteItem):
                need = runtime.need_for(item).count
                devices = runtime.host.count if need < 0 else max(1, need)
            # Equal device-seconds: the wider suite first, while the devices are all free.
            return (-seconds * devices, -devices, -seconds)

        items.sort(key=size)
    if not runtime.settings.selectors:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        nodeid = item.nodeid
        wanted = any(
            nodeid == s or nodeid.startswith(s + "[") or s == NODE_PREFIX
            for s in runtime.settings.selectors
        )
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    runtime = _runtime(config)
    if runtime is None:
        return None
    s, jp = runtime.settings, runtime.job_plan
    lines = [
        f"torchci: config {s.config}, build {s.build_environment or '(none)'}, "
        f"shard {s.shard}/{s.num_shards}, root {s.root}" + (", dry run" if s.dry_run else ""),
    ]
    if jp.rule is not None:
        lines.append(f"torchci: dispatch branch {jp.rule.branch}: {jp.rule.cites}")
    if jp.plan.error:
        lines.append(f"torchci: planning stopped early: {jp.plan.error}")
    if runtime.balance is not None:
        predicted = runtime.balanced().predicted
        shown = ", ".join(f"{i + 1}: {_hms(t)}" for i, t in enumerate(predicted))
        lines.append(f"torchci: balanced over {len(predicted)} shards, predicted {shown}")
    return lines


def _hms(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Longest-first suites want a round-robin start and one-item refills."""
    if config.getoption("torchci_config") is None or config.getoption("dist") != "load":
        return None
    from .scheduler import SuiteScheduling

    return SuiteScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` in torchci mode: one worker per device slot (CPU count without devices)."""
    if config.getoption("torchci_config") is None:
        return None
    import os

    from ..devices.discovery import discover
    from .settings import declared_host

    host = declared_host(config, os.environ) or discover()
    if host.count == 0:
        return None
    return host.count * (config.getoption("torchci_slots_per_device") or 1)


_PROGRESS_KEY = pytest.StashKey["Progress"]()


def _progress(config: pytest.Config) -> Progress | None:
    runtime = _runtime(config)
    if runtime is None or hasattr(config, "workerinput"):
        return None
    progress = config.stash.get(_PROGRESS_KEY, None)
    if progress is None:
        from .progress import Progress

        total = sum(u.role == "test" for u in runtime.shard_units())
        progress = Progress(config, total)
        config.stash[_PROGRESS_KEY] = progress
    return progress


def pytest_collection_finish(session: pytest.Session) -> None:
    """The total is what was selected (after -k, -m, --lf and node ids)."""
    progress = _progress(session.config)
    if progress is not None and not _xdist_on(session.config):
        progress.total = len(session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """Under xdist the controller collects nothing: the workers' selection is the total
    (every worker collects the same items)."""
    config = getattr(node, "config", None)
    progress = None if config is None else _progress(config)
    if progress is not None:
        progress.total = len(ids)


class _Reporter:
    """This run's reporting hooks, registered per config (so that a pytest run inside a
    pytest run, as pytester makes, keeps its own)."""

    def __init__(self, progress: Progress, warnings: list[str]) -> None:
        self.progress = progress
        self.lease_notes: list[str] = []
        self.warnings = warnings  # said in the summary at any verbosity
        self.missing: dict[str, tuple[str, str]] = {}  # suite -> (outcome, what it lacked)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One progress line per finished suite; what an item waited for; suites the
        host lacks the devices for."""
        for title, text in report.sections:
            if title.startswith("Captured torchci lease") and report.when == "call":
                self.lease_notes.append(text)
        if report.when == "setup":
            from .placement import MISSING_DEVICES

            for key, value in report.user_properties:
                if key == MISSING_DEVICES:
                    self.missing[report.nodeid] = (report.outcome, str(value))
        self.progress.report(report)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if terminalreporter.config.getoption("verbose") >= 1 and self.lease_notes:
            terminalreporter.section("torchci device leases")
            for note in self.lease_notes:
                terminalreporter.line(note)
        for line in [*self.warnings, *self._missing_lines()]:
            terminalreporter.write_line(line, yellow=True, bold=True)

    def _missing_lines(self) -> list[str]:
        """No silent green: one line whenever suites did not run for want of devices."""
        if not self.missing:
            return []
        total = self.progress.total
        reasons = list(dict.fromkeys(reason for _, reason in self.missing.values()))
        failed = sum(outcome == "failed" for outcome, _ in self.missing.values())
        n = len(self.missing)
        what = "no suite ran" if n >= total else f"{n} of {total} suites did not run"
        how = f"{failed} failed, {n - failed} skipped" if failed else "skipped"
        return [f"torchci: {what} ({how}): {reasons[0]}" + (" ..." if len(reasons) > 1 else "")]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A suite skipped (a dry run, devices the host lacks) is reported at the suite, not
    at the line of the plugin that skipped it (``SKIPPED [3] torchci: dry run``)."""
    report = yield
    from .items import SuiteItem

    if isinstance(item, SuiteItem) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (NODE_PREFIX, None, report.longrepr[2])  # type: ignore[assignment]
    return report


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    runtime = _runtime(item.config)
    if runtime is None:
        return
    from .items import SuiteItem

    if isinstance(item, SuiteItem):
        runtime.run_teardowns(item, nextitem)
