"""The plugin's settings, resolved once: option, then environment variable, then default.

Every value is validated here; a bad one is a :class:`pytest.UsageError` that names the
value and where it came from.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..devices.discovery import DeviceSpecError, Host, parse_device_spec
from ..plan.jobs import parse_shard as parse_shard_text
from ..plan.jobs import whole_number
from ..run.junit import LOGS, REPORTS
from ..run.processes import GRACE_SECONDS
from ..run.statedir import UnsafeFolderError, check_shared_folder, private_folder

__all__ = ["Settings", "parse_shard", "resolve_settings"]


def default_lock_dir() -> Path:
    """Lock files on local disk, one folder per user."""
    return Path(tempfile.gettempdir()) / f"torchci-locks-{os.getuid()}"


@dataclass(frozen=True)
class Settings:
    """What one torchci run is: the job, the checkout, and what to do with them."""

    config: str
    build_environment: str
    shard: str
    num_shards: str
    root: Path
    plan_file: Path | None
    dry_run: bool
    suites_dir: Path | None
    log_dir: Path
    selectors: tuple[str, ...] = ()
    no_setup: bool = False
    declared_host: Host | None = None
    lock_dir: Path = field(default_factory=default_lock_dir)
    timeline_file: Path | None = None  # --torchci-timeline
    durations_store: Path | None = None  # --torchci-store-durations
    shared_lock_dir: Path | None = None
    require_devices: str | None = None  # why a missing device fails the suite (None: skip)
    slots_per_device: int = 1
    durations: tuple[Path, ...] = ()
    kill_grace: float = GRACE_SECONDS[0]  # seconds from SIGINT to SIGTERM, and on to SIGKILL


def declared_host(config: pytest.Config, environ: Mapping[str, str]) -> Host | None:
    """``--torchci-devices`` (or ``TORCHCI_DEVICES``) as a Host; None: discover."""
    spec = config.getoption("torchci_devices")
    source = "--torchci-devices"
    if spec is None and environ.get("TORCHCI_DEVICES"):
        spec, source = environ["TORCHCI_DEVICES"], "TORCHCI_DEVICES (environment)"
    if spec is None:
        return None
    try:
        return parse_device_spec(spec, source)
    except DeviceSpecError as exc:
        raise pytest.UsageError(str(exc)) from None


def _whole_number(value: str, source: str, what: str, *, allow_zero: bool) -> int:
    try:
        return whole_number(value, source, what, allow_zero=allow_zero)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def parse_shard(value: str, source: str) -> tuple[str, str]:
    """:func:`..plan.jobs.parse_shard`, as a usage error."""
    try:
        return parse_shard_text(value, source)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _lock_folders(config: pytest.Config, env: Mapping[str, str]) -> tuple[Path, Path | None]:
    """The private state folder (made 0700, or checked) and the shared lock folder, if
    one is given: option, then environment variable (then ini for the shared one; a
    relative path there is relative to the ini file's folder)."""
    here = Path(config.invocation_params.dir)

    def given(option: str, variable: str) -> tuple[str | None, str]:
        flag = "--" + option.replace("_", "-")
        value = config.getoption(option)
        if value is not None:
            if not value.strip():
                raise pytest.UsageError(f"{flag}: the folder is empty")
            return value, f"{flag} {value}"
        value = env.get(variable)
        if value is not None:
            if not value.strip():
                raise pytest.UsageError(f"{variable}= (environment): the folder is empty")
            return value, f"{variable}={value} (environment)"
        return None, ""

    private, source = given("torchci_lock_dir", "TORCHCI_LOCK_DIR")
    try:
        if private:
            lock_dir = private_folder(here / private)
        else:
            default = default_lock_dir()
            source = f"the default lock folder ($TMPDIR or /tmp, then torchci-locks-{os.getuid()})"
            lock_dir = private_folder(default)
    except UnsafeFolderError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None

    shared, shared_source = given("torchci_shared_lock_dir", "TORCHCI_SHARED_LOCK_DIR")
    shared_base = here
    if shared is None and config.getini("torchci_shared_lock_dir"):
        shared = str(config.getini("torchci_shared_lock_dir"))
        ini = config.inipath
        shared_source = f"torchci_shared_lock_dir = {shared} ({ini or 'ini'})"
        if ini is not None:
            shared_base = ini.parent
    if not shared:
        return lock_dir, None
    try:
        return lock_dir, check_shared_folder(shared_base / shared)
    except UnsafeFolderError as exc:
        raise pytest.UsageError(f"{shared_source}: {exc}") from None


def resolve_settings(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the torchci options of ``config``; only call this in torchci mode."""
    env = os.environ if environ is None else environ
    opt = config.getoption

    test_config = str(opt("torchci_config"))
    if not test_config.strip():
        raise pytest.UsageError("--torchci-config: the config name is empty")
    build_env = opt("torchci_build_env")
    if build_env is None:
        build_env = env.get("BUILD_ENVIRONMENT", "")
    shard, num = _shard(config, env)
    root = _root(config, env)
    plan_file = output_file(config, "torchci_plan")
    suites_dir = _suites_dir(config)
    log_opt = opt("torchci_log_dir")
    log_dir = Path(log_opt) if log_opt else root / REPORTS / LOGS
    if not log_dir.is_absolute():
        log_dir = Path(config.invocation_params.dir) / log_dir
    lock_dir, shared_lock_dir = _lock_folders(config, env)
    slots = opt("torchci_slots_per_device")
    if slots is not None and slots < 1:
        raise pytest.UsageError(f"--torchci-slots-per-device {slots}: must be at least 1")
    durations = _durations(config)
    return Settings(
        config=test_config,
        build_environment=str(build_env),
        shard=shard,
        num_shards=num,
        root=root,
        plan_file=plan_file,
        dry_run=bool(opt("torchci_dry_run")),
        no_setup=bool(opt("torchci_no_setup")),
        declared_host=declared_host(config, env),
        lock_dir=lock_dir,
        shared_lock_dir=shared_lock_dir,
        require_devices=_require_devices(config, env),
        slots_per_device=slots or 1,
        durations=durations,
        kill_grace=_kill_grace(config, env),
        suites_dir=suites_dir,
        log_dir=log_dir,
        timeline_file=output_file(config, "torchci_timeline"),
        durations_store=output_file(config, "torchci_store_durations"),
    )


def _shard(config: pytest.Config, env: Mapping[str, str]) -> tuple[str, str]:
    """--torchci-shard, else SHARD_NUMBER and NUM_TEST_SHARDS, else 1/1."""
    shard_opt = config.getoption("torchci_shard")
    if shard_opt is not None:
        return parse_shard(shard_opt, f"--torchci-shard {shard_opt}")
    raw_n = env.get("SHARD_NUMBER", "") or "1"
    raw_m = env.get("NUM_TEST_SHARDS", "") or "1"
    n = _whole_number(
        raw_n, f"SHARD_NUMBER={raw_n} (environment)", "the shard number", allow_zero=True
    )
    m = _whole_number(
        raw_m, f"NUM_TEST_SHARDS={raw_m} (environment)", "the shard count", allow_zero=False
    )
    if n > m:
        raise pytest.UsageError(
            f"SHARD_NUMBER={raw_n} and NUM_TEST_SHARDS={raw_m} (environment): "
            f"shard {n} is past the shard count {m}"
        )
    return str(n), str(m)


def _root(config: pytest.Config, env: Mapping[str, str]) -> Path:
    """The checkout: --torchci-root, else PYTORCH_ROOT, else the folder pytest ran in."""
    root_opt = config.getoption("torchci_root")
    root_source = "--torchci-root"
    if root_opt is None and env.get("PYTORCH_ROOT"):
        root_opt, root_source = env["PYTORCH_ROOT"], "PYTORCH_ROOT (environment)"
    root = Path(root_opt) if root_opt else Path(config.invocation_params.dir)
    if not root.is_absolute():
        root = Path(config.invocation_params.dir) / root
    if not root.is_dir():
        raise pytest.UsageError(
            f"{root_source} {root_opt}: no such folder (the PyTorch checkout to run in)"
        )
    return root.resolve()


def output_file(config: pytest.Config, dest: str) -> Path | None:
    """The file an option names for the run to write (relative to where pytest was
    started), or None; a folder that does not exist is a usage error now, before
    planning (which may run commands), not a lost file after the run."""
    value = config.getoption(dest)
    if not value:
        return None
    path = Path(config.invocation_params.dir) / str(value)
    if not path.parent.is_dir():
        flag = "--" + dest.replace("_", "-")
        raise pytest.UsageError(f"{flag} {value}: the folder {path.parent} does not exist")
    return path


def _suites_dir(config: pytest.Config) -> Path | None:
    suites_opt = config.getoption("torchci_suites")
    if not suites_opt:
        return None
    suites_dir = Path(suites_opt)
    if not suites_dir.is_absolute():
        suites_dir = Path(config.invocation_params.dir) / suites_dir
    if not suites_dir.is_dir():
        raise pytest.UsageError(f"--torchci-suites {suites_opt}: no such folder")
    return suites_dir


def _durations(config: pytest.Config) -> tuple[Path, ...]:
    durations = []
    for raw in config.getoption("torchci_durations") or []:
        path = Path(raw)
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if not path.is_file():
            raise pytest.UsageError(f"--torchci-durations {raw}: no such file")
        durations.append(path)
    return tuple(durations)


def _kill_grace(config: pytest.Config, env: Mapping[str, str]) -> float:
    """--torchci-kill-grace, else TORCHCI_KILL_GRACE, else the ini value, else 5 s."""
    candidates = [
        (config.getoption("torchci_kill_grace"), "--torchci-kill-grace {}"),
        (env.get("TORCHCI_KILL_GRACE"), "TORCHCI_KILL_GRACE={} (environment)"),
        (config.getini("torchci_kill_grace") or None, "torchci_kill_grace = {} (ini)"),
    ]
    for raw, source in candidates:
        if raw is None:
            continue
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds < float("inf"):
            raise pytest.UsageError(
                f"{source.format(raw)}: not a number of seconds (0 or more, e.g. 5 or 0.5)"
            )
        return seconds
    return GRACE_SECONDS[0]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _require_devices(config: pytest.Config, env: Mapping[str, str]) -> str | None:
    """Why a suite whose devices the host lacks fails instead of being skipped, or None:
    asked for, or under CI (a CI job that skipped every suite would be a green job that
    tested nothing), unless missing devices are allowed."""
    if config.getoption("torchci_require_devices"):
        return "--torchci-require-devices"
    if config.getoption("torchci_allow_missing_devices") or config.getini(
        "torchci_allow_missing_devices"
    ):
        return None
    if _truthy(env.get("CI")):
        return "CI is set; --torchci-allow-missing-devices skips instead"
    return None
