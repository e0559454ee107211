"""The plugin's command line options and ini values, and the markers it declares.

A light module: the plugin's entry point imports it on every pytest run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..data.loader import SuiteData

__all__ = ["add_options", "register_markers"]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchci", "PyTorch CI suites (pytest-torchci)")
    _job_options(group)
    _device_options(group, parser)
    _report_options(group)
    _deadline_options(group, parser)
    _scale_options(group)
    _folder_options(group)


def _job_options(group: pytest.OptionGroup) -> None:
    """What to run, and how."""
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


def _device_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    """The host's devices, and the folders their leases live in."""
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


def _report_options(group: pytest.OptionGroup) -> None:
    """What the run shows while it runs and leaves behind."""
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


def _deadline_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    """How a suite past its deadline is stopped (the deadline itself: --timeout)."""
    group.addoption(
        "--torchci-kill-grace",
        metavar="SECONDS",
        help="when a suite's deadline passes, the seconds between SIGINT and SIGTERM and "
        "between SIGTERM and SIGKILL to its process tree, for a suite's pytest to write its "
        "XML (default 5; also TORCHCI_KILL_GRACE and the torchci_kill_grace ini value)",
    )
    parser.addini(
        "torchci_kill_grace",
        "seconds between the signals that stop a suite past its deadline (see "
        "--torchci-kill-grace)",
        default="",
    )


def _scale_options(group: pytest.OptionGroup) -> None:
    """Durations, shards and their balance."""
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


def _folder_options(group: pytest.OptionGroup) -> None:
    """Where the suite data comes from and the logs go."""
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


def register_markers(config: pytest.Config, data: SuiteData) -> None:
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
