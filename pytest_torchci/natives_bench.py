"""Native value functions for the bench suites (registered with :func:`natives.native`)."""

from __future__ import annotations

from .natives import NativeContext, native

__all__: list[str] = []

_ = (NativeContext, native)
