"""The TOML reader: the standard library's ``tomllib`` (Python 3.11+), else ``tomli``.

``tomli`` is the package ``tomllib`` was made from, with the same API; it is a dependency
only below Python 3.11.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = ["tomllib"]
