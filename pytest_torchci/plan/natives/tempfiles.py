"""Natives that make temporary files and folders: test.sh's ``mktemp`` calls.

Planning makes nothing: the template stands for the path. There are two natives because
test.sh's two kinds of call are made differently here:

- ``mktemp``: ``mktemp [-d] [TEMPLATE]``, made with Python's :mod:`tempfile` (its random
  part is eight characters, whatever the number of X's), the path made absolute;
- ``mktemp_in``: ``mktemp TEMPLATE -p FOLDER [-d]``, made as coreutils makes it (exactly
  as many random letters and digits as X's), the path returned as FOLDER/NAME.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import tempfile

from ._common import strerror
from .registry import NativeContext, NativeError, native

__all__: list[str] = []

# mktemp's own template, in the temporary folder; the placeholders the plans show.
_DEFAULT_TEMPLATE = {"file": "tmp.XXXXXXXXXX", "folder": "tmp.XXXXXX"}
_MKTEMP_CHARS = string.ascii_letters + string.digits
_MKTEMP_TRIES = 100


@native("mktemp")
def _mktemp(ctx: NativeContext, *argv: str) -> str:
    """``$(mktemp [-d] [TEMPLATE])``: a new empty file (mode 0600), or with ``-d`` a new
    folder (mode 0700).

    TEMPLATE ends in at least three X's that stand for the random part; a TEMPLATE without
    a folder is made in the current folder. Without TEMPLATE: ``tmp.`` and the random part
    in the temporary folder (:func:`tempfile.gettempdir`). When planning nothing is made
    and the template is the answer (the default one shows ten X's for a file, six for a
    folder).
    """
    make_folder = bool(argv) and argv[0] == "-d"
    templates = argv[1:] if make_folder else argv
    if len(templates) > 1:
        raise NativeError(f"mktemp: too many templates: {' '.join(templates)}")
    if templates:
        template = templates[0]
    else:
        default = _DEFAULT_TEMPLATE["folder" if make_folder else "file"]
        template = os.path.join(tempfile.gettempdir(), default)
    if ctx.planning:
        return template
    stem = template.rstrip("X")
    if len(template) - len(stem) < 3:
        raise NativeError(f"mktemp: too few X's in template {template!r}")
    folder, prefix = os.path.split(stem)
    where = str(ctx.path(folder or "."))
    if make_folder:
        return tempfile.mkdtemp(prefix=prefix, dir=where)
    fd, path = tempfile.mkstemp(prefix=prefix, dir=where)
    os.close(fd)
    return path


@native("mktemp_in")
def _mktemp_in(ctx: NativeContext, template: str, folder: str, flag: str = "") -> str:
    """``mktemp TEMPLATE -p FOLDER`` (with ``flag`` ``-d``: ``mktemp TEMPLATE -d -p FOLDER``).

    The last run of X's in TEMPLATE (at least three) becomes random letters and digits;
    the new file (mode 0600) or folder (mode 0700) is made and its path, FOLDER/NAME,
    returned. An empty FOLDER is ``$TMPDIR`` or ``/tmp``. Planning makes nothing and
    returns FOLDER/TEMPLATE.
    """
    if flag not in ("", "-d"):
        raise NativeError(f"mktemp: invalid option -- '{flag.lstrip('-')}'")
    m = re.search(r"(X+)([^X]*)$", template)
    if "/" in template or m is None or len(m.group(1)) < 3:
        raise NativeError(f"mktemp: too few X's in template '{template}'")
    folder = folder or os.environ.get("TMPDIR") or "/tmp"
    if ctx.planning:
        return os.path.join(folder, template)
    head, suffix = template[: m.start(1)], m.group(2)
    last: OSError | None = None
    for _ in range(_MKTEMP_TRIES):
        rand = "".join(secrets.choice(_MKTEMP_CHARS) for _ in m.group(1))
        shown = os.path.join(folder, f"{head}{rand}{suffix}")
        target = ctx.path(shown)
        try:
            if flag == "-d":
                os.mkdir(target, 0o700)
            else:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError as exc:
            last = exc
            continue
        except OSError as exc:
            kind = "directory" if flag == "-d" else "file"
            raise NativeError(
                f"mktemp: failed to create {kind} via template "
                f"'{os.path.join(folder, template)}': {strerror(exc)}"
            ) from None
        return shown
    raise NativeError(
        f"mktemp: failed to create a name from template '{template}' in '{folder}': "
        f"{strerror(last) if last else 'too many tries'}"
    )
