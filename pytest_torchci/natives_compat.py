"""Native value functions for the compatibility and external-project suites."""

from __future__ import annotations

from .natives import NativeContext, native

__all__: list[str] = []

_ = (NativeContext, native)
