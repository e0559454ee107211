"""pytest-torchci's entry point: its options, and the switch into torchci mode.

Only ``--torchci-config`` turns torchci mode on; without it the plugin changes nothing
about a pytest run. In torchci mode :func:`pytest_configure` resolves the settings, plans
the job and registers a :class:`~.hooks.TorchciSession`, whose methods are the run's
hooks (as pytest-xdist registers its ``DSession`` and junitxml its ``LogXML``).

This module is imported by every pytest run of an environment that has the plugin
(run_test.py starts one per test file), so it stays light: the rest of the plugin is
imported inside the hooks below, only in torchci mode.

Owns the options (:mod:`.options`), the run's start (:mod:`.startup`), its hooks
(:mod:`.hooks`) and state (:mod:`.session`, with :mod:`.running` and :mod:`.dryrun`),
settings, items, placement, scheduling, progress and the summary (:mod:`.reporting`).
May import :mod:`..scale`, :mod:`..devices`, :mod:`..run`, :mod:`..plan` and
:mod:`..data`.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from . import hookspecs
from .keys import CANCEL_KEY
from .options import add_options, register_markers

# What every command of an item carries (run.reaper.TOKEN_VARIABLE, not imported here:
# a plain pytest run, such as one a suite starts, stays light; a test keeps them equal).
_TOKEN_VARIABLE = "TORCHCI_ITEM_TOKEN"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """In torchci mode, SIGTERM and SIGINT end the run in order from here on (see
    :mod:`cancel`): before the plan is made, which may run commands."""
    if config.getoption("torchci_config") is None:
        return
    from ..run.cancel import Cancel  # torchci mode only: plain runs stay light

    cancel = Cancel(config)
    cancel.install()
    config.stash[CANCEL_KEY] = cancel
    config.pluginmanager.register(cancel, "torchci-cancel")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("torchci_config") is None:
        _plain_pytest(config)
        return
    from .startup import start_session  # torchci mode only: plain runs stay light

    start_session(config)


def _plain_pytest(config: pytest.Config) -> None:
    """Without torchci mode: a pytest that a suite started claims the XML it writes
    for its suite; ``pytest --markers`` documents the plugin's markers too."""
    if _TOKEN_VARIABLE in os.environ:  # a pytest that a suite started
        from ..run.reports import claim_child_xml  # only there: plain runs stay light

        claim_child_xml(config.option, os.environ)
    if config.getoption("markers", False):
        from ..data.loader import SuiteDataError, load_suites  # --markers only: stays light

        with contextlib.suppress(SuiteDataError):
            register_markers(config, load_suites())


def pytest_unconfigure(config: pytest.Config) -> None:
    """The signal handlers go back, last: after the TorchciSession's own unconfigure
    (registered later, it is called first)."""
    cancel = config.stash.get(CANCEL_KEY, None)
    if cancel is not None:
        cancel.uninstall()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` in torchci mode: one worker per device slot (CPU count without devices).
    xdist asks before pytest_configure, so this one cannot be the session's."""
    if config.getoption("torchci_config") is None:
        return None
    from ..devices.discovery import discover  # torchci mode only: plain runs stay light
    from .settings import declared_host  # torchci mode only: plain runs stay light

    host = declared_host(config, os.environ) or discover()
    if host.count == 0:
        return None
    return host.count * (config.getoption("torchci_slots_per_device") or 1)
