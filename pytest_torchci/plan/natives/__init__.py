"""Native value functions: what test.sh computes with ``$(...)``, written in Python.

A word of the suite data may hold ``@name(arg, ...)``, and a ``native`` step names one;
the engine calls the function registered under that name with the arguments expanded.
Nothing here starts a shell; what needs a program (``git status``) is a ``run`` step of
the data instead.

The registry (:mod:`.registry`) holds :class:`NativeError`, :class:`NativeContext`,
``NATIVES``, the :func:`native` decorator and :func:`call_native`; a user's conftest may
register more with ``native``. The natives themselves are grouped by what they do, one
module each (``MODULES``), and register themselves when imported here:

- :mod:`.paths`: path names (``pwd``, ``realpath``, ``dirname``, ``basename``);
- :mod:`.files`: one file tested, read or written (``[ -f ]``, ``< FILE``, ``echo >``);
- :mod:`.finds`: lists of files (globs, ``find``);
- :mod:`.tempfiles`: ``mktemp``;
- :mod:`.text`: strings and captured output (words, ``tail``, ``${V//A/B}``, fields);
- :mod:`.grep`: ``grep`` and its basic regular expressions;
- :mod:`.arith`: integer arithmetic and sums;
- :mod:`.versions`: ``sort -V``;
- :mod:`.reports`: verdicts on a test's output;
- :mod:`.pins`: pinned commits;
- :mod:`.platform`: the machine, its programs and the build's traits.

Each imports only :mod:`.registry` and the private helpers of :mod:`._common` (and
:mod:`.reports` the ``grep -q`` of :mod:`.grep`, :mod:`.finds` bash's glob and word rules
of :mod:`...data.bash`), never this package.
"""

from __future__ import annotations

from . import arith, files, finds, grep, paths, pins, platform, reports, tempfiles, text, versions
from .registry import NATIVES, NativeContext, NativeError, NativeFn, call_native, native

__all__ = [
    "MODULES",
    "NATIVES",
    "NativeContext",
    "NativeError",
    "NativeFn",
    "call_native",
    "native",
]

# The operation modules: importing them registered their natives.
MODULES = (arith, files, finds, grep, paths, pins, platform, reports, tempfiles, text, versions)
