"""Natives that read the commits CI pins: ``get_pinned_commit NAME``, the commit in
``.github/ci_commit_pins/NAME.txt``."""

from __future__ import annotations

from .registry import NativeContext, NativeError, native

__all__: list[str] = []


@native("pin")
def _pin(ctx: NativeContext, name: str) -> str:
    """``get_pinned_commit NAME``: the commit in ``.github/ci_commit_pins/NAME.txt``."""
    path = ctx.cwd / ".github" / "ci_commit_pins" / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        if ctx.planning:
            return ""
        raise NativeError(f"no pinned commit for {name!r}: {path} cannot be read") from None
