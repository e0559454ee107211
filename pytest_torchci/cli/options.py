"""Option types and actions every subcommand of ``torchci`` shares."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["DeprecatedOption", "add_json_option", "parse_workers"]


def parse_workers(text: str) -> int:
    """``-n/--workers``: a whole number of at least 1, or ``auto`` (one per CPU)."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


class DeprecatedOption(argparse.Action):
    """An old spelling of an option: stores as the new one does, and says so on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, use: str, **kw: Any):
        self.use = use
        super().__init__(option_strings, dest, **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog}: {option_string} is deprecated; use {self.use}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json [FILE]``: the same in every subcommand that writes JSON."""
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help=f"write {what} as JSON to FILE (no FILE, or '-': to stdout)",
    )
