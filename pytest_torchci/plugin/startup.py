"""Torchci mode's start, from the entry point's ``pytest_configure``: the settings, the
job's plan, the :class:`Runtime`, and the :class:`TorchciSession` that holds the run's
hooks, registered; then what the run holds until its end (the subreaper, the run's
folder), and the checks and files that need the plan."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import pytest

from ..data.loader import SuiteData, SuiteDataError, load_suites
from ..data.model import Command, Job, Plan
from ..plan.configs import unknown_config_warning
from ..plan.engine import CommandResult, Executor
from ..plan.planner import NODE_PREFIX, JobPlan, plan_job, selects
from ..run.processes import RunOptions, run_command
from ..run.reaper import children, new_cookie, set_subreaper
from ..run.statedir import (
    RunFolder,
    UnsafeFileError,
    UnsafeFolderError,
    open_private,
    private_folder,
)
from ..run.timeline import Timeline
from ..scale.shards import expand_all_shards
from .hooks import TorchciSession
from .keys import CANCEL_KEY, RUNTIME_KEY
from .options import register_markers
from .session import Runtime
from .settings import Settings, resolve_settings

__all__ = ["SESSION_PLUGIN", "start_session"]

SESSION_PLUGIN = "torchci-session"  # the name the run's TorchciSession is registered under


def start_session(config: pytest.Config) -> TorchciSession:
    """Plan the job, register the run's hooks, and start the run."""
    settings = resolve_settings(config)
    try:
        data = load_suites(settings.suites_dir)
    except SuiteDataError as exc:
        raise pytest.UsageError(f"suite data: {exc}") from None
    register_markers(config, data)
    settings = dataclasses.replace(settings, selectors=_selectors(config))
    config.args = [str(config.rootpath)]
    timeline = Timeline(_worker_id(config)) if settings.timeline_file is not None else None
    cookie = _cookie(config)
    job, job_plan, plans = _plan(config, settings, data, cookie)
    runtime = Runtime(
        settings,
        data,
        job,
        job_plan,
        config=config,
        run_id=_run_id(config),
        cookie=cookie,
        timeline=timeline,
        balance=config.getoption("torchci_balance"),
    )
    config.stash[RUNTIME_KEY] = runtime
    worker = hasattr(config, "workerinput")
    warnings = [] if worker else _config_warnings(data, job, settings.root)
    session = TorchciSession(config, runtime, warnings)
    config.pluginmanager.register(session, SESSION_PLUGIN)
    _introduce_workers(config, runtime)
    if not session.xdist or worker:  # this process runs suites
        session.subreaper = set_subreaper(True)
    if not worker:
        session.run_folder = _open_run_folder(settings.lock_dir, runtime.run_id)
    if runtime.balance is not None:
        units = runtime.shard_units()
        plans = [dataclasses.replace(job_plan.plan, steps=tuple(u.step for u in units))]
    _check_selectors(runtime)
    if settings.plan_file is not None and not worker:
        _write_plans(settings.plan_file, plans)
    return session


def _selectors(config: pytest.Config) -> tuple[str, ...]:
    """The node ids the command line selects suites by (paths are an error)."""
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
    return tuple(selectors)


def _plan(
    config: pytest.Config, settings: Settings, data: SuiteData, cookie: str
) -> tuple[Job, JobPlan, list[Plan]]:
    """The job (its shard count from --torchci-balance), its plan, and the plans the
    plan file holds (one per shard with --torchci-all-shards)."""
    job = Job(settings.build_environment, settings.config, settings.shard, settings.num_shards)
    query = None if settings.dry_run else _query_executor(settings.root, cookie)
    balance_n = config.getoption("torchci_balance")
    if balance_n is None and not config.getoption("torchci_all_shards"):
        job_plan = plan_job(data, job, settings.root, base_env=dict(os.environ), query=query)
        return job, job_plan, [job_plan.plan]
    if balance_n is not None:
        if balance_n < 1:
            raise pytest.UsageError(f"--torchci-balance {balance_n}: must be at least 1")
        if int(job.shard) > balance_n:
            raise pytest.UsageError(
                f"--torchci-balance {balance_n}: shard {job.shard} is past {balance_n}"
            )
        job = Job(job.build_environment, job.test_config, job.shard, str(balance_n))
    job_plan, shard_plans = expand_all_shards(
        data, job, settings.root, base_env=dict(os.environ), query=query
    )
    return job, job_plan, [jp.plan for jp in shard_plans]


def _query_executor(root: Path, cookie: str) -> Executor:
    """Runs the commands whose output the plan reads (``$(nvidia-smi ...)``), quietly."""
    options = RunOptions(root=root, base_env=dict(os.environ), timeout=120.0, cookie=cookie)

    def query(command: Command, *, capture: bool) -> CommandResult:
        return run_command(command, options, capture=capture)

    return query


def _config_warnings(data: SuiteData, job: Job, root: Path) -> list[str]:
    """A config no rule names runs test.sh's final else, as test.sh does; say so."""
    warning = unknown_config_warning(data, job, root=root, base_env=dict(os.environ))
    return [] if warning is None else [f"torchci: warning: {warning}"]


def _check_selectors(runtime: Runtime) -> None:
    """A node id that names no suite of this job is an error, as pytest's own
    ``ERROR: not found`` (exit status 4), not an empty run."""
    names = [f"{NODE_PREFIX}::{u.name}" for u in runtime.shard_units() if u.role == "test"]
    for selector in runtime.settings.selectors:
        if selector == NODE_PREFIX:
            continue
        if not any(selects(selector, n) for n in names):
            raise pytest.UsageError(
                f"not found: {selector}\n(no suite of this job has that name; "
                "`pytest --collect-only -q` with the same options lists them)"
            )


def _write_plans(path: Path, plans: list[Plan]) -> None:
    """--torchci-plan: the plan as JSON; with several shards, one line each."""
    texts = [p.as_json() for p in plans]
    text = json.dumps(texts[0], indent=1) if len(texts) == 1 else "\n".join(map(json.dumps, texts))
    path.write_text(text + "\n")


def _run_id(config: pytest.Config) -> str:
    """One id for the whole run, shared by xdist's workers (their ``testrunuid``); it
    names folders, so anything but a plain name is replaced by its hash."""
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


def _worker_id(config: pytest.Config) -> str:
    """xdist's name of this worker (gw0, ...), or main (this run's own, not one a pytest
    run that started this one left in the environment)."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput.get("workerid", "main")) if workerinput is not None else "main"


def _cookie(config: pytest.Config) -> str:
    """The run's cookie: made by the controller, handed to each xdist worker."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("torchci_cookie"):
        return str(workerinput["torchci_cookie"])
    return new_cookie()


def _introduce_workers(config: pytest.Config, runtime: Runtime) -> None:
    """Under xdist each worker says who it is in the run's folder; the controller's
    cancel handler signals those of them that are its own children."""
    if hasattr(config, "workerinput"):
        with contextlib.suppress(OSError, UnsafeFolderError, UnsafeFileError):
            folder = private_folder(runtime.run_dir() / "workers")
            os.close(open_private(folder / str(os.getpid()), os.O_WRONLY | os.O_CREAT))
        return
    cancel = config.stash.get(CANCEL_KEY, None)
    if cancel is None or not config.getoption("numprocesses", None):
        return
    folder = runtime.run_dir() / "workers"

    def workers() -> list[int]:
        try:
            named = {int(n) for n in os.listdir(folder) if n.isdigit()}
        except OSError:
            return []
        return [p for p in children() if p in named]

    cancel.workers = workers


def _open_run_folder(state: Path, run_id: str) -> RunFolder:
    """The run's own folder in the state folder; first, what killed runs left there."""
    RunFolder.clean_dead(state, keep=run_id)
    folder = RunFolder(state, run_id)
    try:
        folder.open()
    except (OSError, UnsafeFolderError, UnsafeFileError) as exc:
        raise pytest.UsageError(
            f"lock folder {state}: cannot make this run's folder: {exc}"
        ) from None
    return folder
