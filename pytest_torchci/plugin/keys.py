"""Where the plugin keeps its session state on the pytest config (a light module: the
plugin's entry point imports it on every pytest run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .session import Runtime

__all__ = ["RUNTIME_KEY"]

RUNTIME_KEY: pytest.StashKey[Runtime] = pytest.StashKey()
