#!/usr/bin/env python3
"""Build the tiny prebuilt wheels under ``dist/`` for the sample checkout.

Each wheel is a valid, minimal, pure-Python ``py3-none-any`` wheel for the
distribution ``torchci-sample-<name>`` holding one empty module
``torchci_sample_<name>.py`` plus ``.dist-info`` (METADATA, WHEEL, RECORD).
Only the standard library is used, and the output is byte-for-byte
reproducible (fixed timestamps and ordering).

Usage: ``python make_wheels.py [--out DIR]`` (default: ``dist/`` next to this file).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

VERSION = "0.1.0"
# dist/ subdirectory -> short name used in the distribution name.
WHEELS: dict[str, str] = {
    "vision": "vision",
    "audio": "audio",
    "torchcomms": "torchcomms",
    "spmd_types": "spmd_types",
    "ao": "ao",
}
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def record_hash(data: bytes) -> str:
    """Return the RECORD-style ``sha256=<urlsafe b64, unpadded>`` digest."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wheel_files(name: str) -> tuple[str, dict[str, bytes]]:
    """Return the wheel file name and its members (path -> bytes), RECORD excluded."""
    dist = f"torchci-sample-{name.replace('_', '-')}"
    module = f"torchci_sample_{name}"
    dist_info = f"{module}-{VERSION}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {dist}\n"
        f"Version: {VERSION}\n"
        f"Summary: Placeholder wheel for the pytest-torchci sample checkout ({name})\n"
    )
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: torchci-sample-make-wheels\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    members = {
        f"{module}.py": b"",
        f"{dist_info}/METADATA": metadata.encode("utf-8"),
        f"{dist_info}/WHEEL": wheel.encode("utf-8"),
    }
    return f"{module}-{VERSION}-py3-none-any.whl", members


def build_wheel(name: str, out_dir: Path) -> Path:
    """Write the wheel for ``name`` into ``out_dir`` and return its path."""
    filename, members = wheel_files(name)
    dist_info = next(p.split("/")[0] for p in members if p.endswith("/WHEEL"))
    record_path = f"{dist_info}/RECORD"
    record_lines = [f"{path},{record_hash(data)},{len(data)}" for path, data in members.items()]
    record_lines.append(f"{record_path},,")
    members[record_path] = ("\n".join(record_lines) + "\n").encode("utf-8")

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / filename
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, date_time=FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Build every sample wheel into ``<out>/<subdir>/``; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "dist",
        help="output root (default: dist/ next to this script)",
    )
    args = parser.parse_args(argv)
    for subdir, name in WHEELS.items():
        out_dir = args.out / subdir
        for stale in out_dir.glob("*.whl"):
            stale.unlink()
        print(build_wheel(name, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
