"""Which JUnit XML files a suite wrote, whatever runs beside it.

Three sources, from exact to cautious:

1. **Claims.** Every command of an item carries the item's token
   (:data:`TOKEN_VARIABLE`) and the run's claims folder (:data:`CLAIMS_VARIABLE`). A
   pytest process started under it (PyTorch's ``run_test.py`` starts one per test file)
   loads this plugin, which claims the XML files that process will write
   (``--junitxml`` and PyTorch's ``--junit-xml-reruns``) before it writes them: one line
   in the item's manifest, and one claim file per XML path naming the token. A claimed
   file belongs to exactly one item, however the suites interleave.
2. **The window.** An inotify watch on ``test/test-reports`` says which XML files were
   written while the item ran, at a cost in proportion to what was written (not to what
   the folder holds). A file nobody claimed (a writer that is not pytest) is the item's
   only when no other item of the run ran at any moment of its window.
3. **Otherwise** such a file cannot be told apart: it is counted for no suite, and the
   item's report says how many there were.

Without inotify (another kernel, or its limits reached), the window falls back to a scan
of the folder by modification time.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .junit import NOT_REPORTS, REPORTS, scan_child_xml
from .libc import libc
from .reaper import TOKEN_VARIABLE
from .statedir import UnsafeFileError, open_private, private_folder, read_private

__all__ = [
    "CLAIMS_VARIABLE",
    "TOKEN_VARIABLE",
    "Activity",
    "Attribution",
    "ReportWatcher",
    "claim",
    "claim_child_xml",
    "claims_folder",
    "item_files",
]

CLAIMS_VARIABLE = "TORCHCI_CLAIMS"


# --- claims ------------------------------------------------------------------------


def _claim_name(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()


def claim(claims: Path, token: str, path: str) -> None:
    """Record that the item ``token`` writes the XML file ``path`` (absolute)."""
    fd = open_private(claims / _claim_name(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    fd = open_private(claims / f"{token}.files", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, (path + "\n").encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def claim_child_xml(options: object, environ: Mapping[str, str]) -> None:
    """In a pytest process that a suite started: claim the XML files this process was
    told to write (every ``xmlpath*`` option: ``--junitxml``, ``--junit-xml-reruns``)."""
    token, claims = environ.get(TOKEN_VARIABLE), environ.get(CLAIMS_VARIABLE)
    if not token or not claims:
        return
    for name, value in sorted(vars(options).items()):
        if name.startswith("xmlpath") and isinstance(value, str) and value:
            path = os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(value))))
            with contextlib.suppress(OSError, UnsafeFileError):
                claim(Path(claims), token, path)


def _owner(claims: Path, path: Path) -> str | None:
    """The token that claimed ``path``, or None."""
    with contextlib.suppress(OSError, UnsafeFileError):
        text = read_private(claims / _claim_name(str(path)))
        return None if text is None else text.strip()
    return None


def _claimed_by(claims: Path, token: str) -> list[Path]:
    manifest = os.path.join(claims, f"{token}.files")
    if not os.access(manifest, os.F_OK, follow_symlinks=False):
        return []  # the common case (no pytest among the item's commands): one quick call
    with contextlib.suppress(OSError, UnsafeFileError):
        text = read_private(Path(manifest)) or ""
        return [Path(p) for p in dict.fromkeys(text.splitlines()) if p]
    return []


# --- the window: inotify ----------------------------------------------------------

_IN_CLOSE_WRITE = 0x8
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ISDIR = 0x40000000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_MASK = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE_SELF | _IN_MOVE_SELF
_EVENT = struct.Struct("iIII")


class _Inotify:
    def __init__(self) -> None:
        self._libc = libc()
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd

    def add(self, path: str) -> int:
        wd: int = self._libc.inotify_add_watch(
            self.fd, os.fsencode(path), _MASK | _IN_ONLYDIR | _IN_DONT_FOLLOW
        )
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch", path)
        return wd

    def events(self) -> Iterator[tuple[int, int, str]]:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                name = data[offset : offset + size].rstrip(b"\0")
                offset += size
                yield wd, mask, os.fsdecode(name)

    def close(self) -> None:
        os.close(self.fd)


class ReportWatcher:
    """The XML files written under ``root/test/test-reports`` between :meth:`mark` and
    :meth:`written`, from inotify events (the folder may not exist yet, and may be
    removed and made again)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / REPORTS
        self._ino = _Inotify()
        self._dirs: dict[int, Path] = {}
        self._found: list[Path] = []
        self.broken = False
        self._attach()

    def _attach(self, *, new: bool = False) -> None:
        """Watch the tree if it exists, else the nearest folder on the way to it. With
        ``new``, the tree has just been made: its XML files are new."""
        if self.base.is_dir():
            self._watch_tree(str(self.base), collect=new)
            return
        for folder in (self.base.parent, self.root):
            if folder.is_dir():
                self._watch(str(folder))
                return

    def _watch(self, folder: str) -> bool:
        try:
            wd = self._ino.add(folder)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.ENOMEM):
                self.broken = True  # the user's watch limit: fall back to scanning
            return False
        self._dirs[wd] = Path(folder)
        return True

    def _watch_tree(self, top: str, *, collect: bool) -> None:
        """Watch ``top`` and every folder below it; with ``collect``, the XML files
        already there count as written now (their folders are new)."""
        stack = [top]
        while stack:
            folder = stack.pop()
            if os.path.basename(folder) in NOT_REPORTS or not self._watch(folder):
                continue
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif collect and _is_report(entry.name):
                        self._found.append(Path(entry.path))

    def _in_tree(self, path: Path) -> bool:
        return path == self.base or self.base in path.parents

    def _drain(self) -> None:
        for wd, mask, name in self._ino.events():
            if mask & _IN_Q_OVERFLOW:
                self.broken = True
                continue
            folder = self._dirs.get(wd)
            if mask & _IN_IGNORED:
                self._dirs.pop(wd, None)
                if folder == self.base:
                    self._attach(new=True)
                continue
            if folder is None or not name:
                continue
            path = folder / name
            if mask & _IN_ISDIR:
                if mask & (_IN_CREATE | _IN_MOVED_TO):
                    if self._in_tree(path):
                        self._watch_tree(str(path), collect=True)
                    elif path in self.base.parents:
                        self._attach(new=True)
            elif (
                mask & (_IN_CLOSE_WRITE | _IN_MOVED_TO) and _is_report(name) and self._in_tree(path)
            ):
                self._found.append(path)

    def mark(self) -> None:
        """Start a window: what was written before it is forgotten."""
        self._drain()
        self._found.clear()

    def written(self) -> list[Path] | None:
        """The XML files written since :meth:`mark` (None: cannot tell, scan instead)."""
        self._drain()
        found = list(dict.fromkeys(self._found))
        self._found.clear()
        if self.broken:
            return None
        return found

    def close(self) -> None:
        self._ino.close()


def _is_report(name: str) -> bool:
    return name.endswith(".xml") and not name.endswith(".report.xml")


# --- who else ran meanwhile --------------------------------------------------------


class Activity:
    """Whether an item ran alone: a count of the run's running items and a count of
    starts and ends, under a lock (``activity`` in the run's folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "activity"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[int]]:
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 64, 0).split()
            values = [int(v) for v in raw[:2]] if len(raw) >= 2 else [0, 0]
            yield values
            data = f"{values[0]} {values[1]}\n".encode()
            os.pwrite(fd, data.ljust(64), 0)
        finally:
            os.close(fd)

    def start(self) -> tuple[bool, int]:
        """(alone now, the epoch after this start)."""
        with self._locked() as v:
            v[0] += 1
            v[1] += 1
            return v[0] == 1, v[1]

    def end(self, started: tuple[bool, int]) -> bool:
        """Whether the item ran alone from start to end."""
        with self._locked() as v:
            alone = started[0] and v[1] == started[1]
            v[0] = max(0, v[0] - 1)
            v[1] += 1
            return alone


# --- putting it together -----------------------------------------------------------


@dataclass
class Attribution:
    """An item's XML files: its own, and those written meanwhile that could be anyone's."""

    files: list[Path] = field(default_factory=list)
    unattributed: list[Path] = field(default_factory=list)


def item_files(
    claims: Path,
    token: str,
    window: Iterable[Path] | None,
    alone: bool,
    *,
    root: Path,
    since: float,
) -> Attribution:
    """The XML files of the item ``token`` (see the module's docstring)."""
    mine = [p for p in _claimed_by(claims, token) if p.is_file()]
    if window is None:  # no inotify: scan by modification time
        window = scan_child_xml(root, since)
    out = Attribution(list(mine))
    seen = set(mine)
    for path in window:
        if path in seen:
            continue
        seen.add(path)
        owner = _owner(claims, path)
        if owner is not None:
            continue  # another item's (its own claim would be in the manifest)
        (out.files if alone else out.unattributed).append(path)
    return out


def claims_folder(run_dir: Path) -> Path:
    return private_folder(run_dir / "claims", "lock folder")
