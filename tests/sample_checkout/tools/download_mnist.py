#!/usr/bin/env python3
"""Sample stand-in for PyTorch's tools/download_mnist.py.

Accepts the same ``-d/--destination`` and ``-q/--quiet`` flags but performs no
network access: it creates the destination directory and writes a small
marker file there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

MARKER = "SAMPLE_MNIST.txt"


def main(argv: Sequence[str] | None = None) -> int:
    """Create the destination directory with a marker file; return 0."""
    parser = argparse.ArgumentParser(description="Fake MNIST download (no network).")
    parser.add_argument("-d", "--destination", default="mnist", help="output directory")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)

    dest = Path(args.destination)
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / MARKER
    marker.write_text(
        "Placeholder for the MNIST data set (pytest-torchci sample).\n",
        encoding="utf-8",
    )
    if not args.quiet:
        print(f"Wrote {marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
