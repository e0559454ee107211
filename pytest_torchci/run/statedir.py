"""The folders the plugin keeps state in, and the only ways it opens files there.

A run reads back what it keeps in its state folder and acts on it: process-group journals
(a cancelled run stops the groups they name), setup markers (a worker skips an install that
another worker has done), lease notes. So the state folder must be provably private: owned
by the user running pytest and writable by nobody else, checked with ``lstat`` (a symbolic
link is refused, never followed) at every level the plugin creates. Files in it are opened
with ``O_NOFOLLOW``.

Several users of one GPU host share device leases through a *shared* lock folder, given on
purpose (``--torchci-shared-lock-dir``). Only the device lock files live there; it must be
a real folder and, when others can write to it, sticky (as ``/tmp`` is), so that nobody
can delete a lock file that another user's run holds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from pathlib import Path

__all__ = [
    "PRIVATE_MODE",
    "RUNS",
    "RunFolder",
    "UnsafeFileError",
    "UnsafeFolderError",
    "check_shared_folder",
    "open_private",
    "private_folder",
    "read_private",
    "write_private",
]

PRIVATE_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class UnsafeFolderError(Exception):
    """A state folder that others could write to, or that is not what it claims to be."""


class UnsafeFileError(Exception):
    """A file in a state folder that the run did not write (a symbolic link, another
    user's file): it is neither followed nor trusted."""


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _describe(st: os.stat_result) -> str:
    return f"owner {_owner(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}"


_ELSEWHERE = "give another folder (--torchci-lock-dir or TORCHCI_LOCK_DIR)"


def _check_private(path: Path, what: str) -> None:
    """``path`` (not followed if a link) is a folder of ours that only we can write to."""
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    fix = f"remove it, or {_ELSEWHERE}"
    if stat.S_ISLNK(st.st_mode):
        problem = f"it is a symbolic link (to {os.readlink(path)})"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "it is not a folder"
    elif st.st_uid != os.geteuid():
        problem = f"it belongs to {_owner(st.st_uid)}, not to you ({_owner(os.geteuid())})"
        fix = f"find out who made it and why; remove it, or {_ELSEWHERE}"
    elif mode & stat.S_IWOTH and mode & stat.S_ISVTX:
        problem = f"it is a folder everyone shares (mode {mode:04o})"
        fix = f"give a folder of your own inside it, for example {path}/torchci-locks-{os.getuid()}"
    elif mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"others can write to it (mode {mode:04o})"
        fix = f"chmod {PRIVATE_MODE:o} {path}"
    else:
        return
    raise UnsafeFolderError(
        f"{what} {path} is not private: {problem}. The run acts on what it keeps there "
        "(process-group journals, setup markers, leases), so it must be yours and writable "
        f"by you alone. Fix: {fix}"
    )


def _check_parent(path: Path, what: str, leaf: Path) -> None:
    """The existing folder ``path`` above ``leaf``: nobody else may rename what it holds,
    unless it is sticky (as ``/tmp`` is)."""
    st = os.stat(path)
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFolderError(
            f"{what} {leaf} is not private: the folder above it, {path}, lets anyone rename "
            f"or replace what it holds ({_describe(st)}). Fix: chmod +t {path}, or "
            f"{_ELSEWHERE}"
        )


def private_folder(path: Path, what: str = "lock folder") -> Path:
    """``path``, made (mode 0700, with any missing parents) or checked: a folder of the
    current user that nobody else can write to, in a folder where nobody else can rename
    it, or :class:`UnsafeFolderError`."""
    path = Path(os.path.abspath(path))
    missing: list[Path] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    try:
        _check_parent(probe if missing else path.parent, what, path)
        for level in reversed(missing):
            with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
                os.mkdir(level, PRIVATE_MODE)
            _check_private(level, what)
        if not missing:
            _check_private(path, what)
    except OSError as exc:
        raise UnsafeFolderError(
            f"{what} {path}: cannot use it ({exc.strerror or exc}); give a folder on local "
            "disk that you can write to"
        ) from None
    return path


def check_shared_folder(path: Path) -> Path:
    """A folder several users share for device lock files: an existing folder (not a
    link); sticky when others can write to it."""
    path = Path(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UnsafeFolderError(
            f"shared lock folder {path}: {exc.strerror or exc}. Make it once for every user "
            f"of the host: mkdir -m 1777 {path}"
        ) from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
        raise UnsafeFolderError(f"shared lock folder {path} is {kind}; give the folder itself")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnsafeFolderError(
            f"shared lock folder {path}: you cannot make lock files there "
            f"({_describe(st)}); every user of it needs to: chmod 1777 {path}"
        )
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFolderError(
            f"shared lock folder {path} lets others delete the lock files your run holds "
            f"({_describe(st)}, not sticky). Fix: chmod +t {path}"
        )
    return path


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that never follows a symbolic link at ``path``."""
    try:
        return os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path} is a symbolic link; not followed") from None
        raise


def read_private(path: Path) -> str | None:
    """The text of a file the current user wrote in a state folder; None if there is none.
    A link or another user's file is :class:`UnsafeFileError`."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with open(fd, encoding="utf-8") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise UnsafeFileError(f"{path} was not written by this user ({_describe(st)})")
        return f.read()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: a new file renamed into place (a link planted at
    ``path`` is replaced, never followed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


RUNS = "runs"
_ALIVE = "alive.lock"
_YOUNG_SECONDS = 60.0  # a run folder this new may not hold its lock yet


class RunFolder:
    """One run's files in the state folder (``runs/RUN_ID``): process-group journals,
    setup markers, report claims. The run's first process makes it and holds a lock on
    ``alive.lock`` in it while it lives; it removes the folder when it ends. A folder whose
    lock nobody holds belongs to a run that was killed: the next run removes it.
    """

    def __init__(self, state: Path, run_id: str) -> None:
        self.state = state
        self.path = state / RUNS / run_id
        self._alive: int | None = None

    def open(self) -> Path:
        """Make the folder and hold its lock (the run's first process)."""
        import fcntl

        private_folder(self.path, "lock folder")
        self._alive = open_private(self.path / _ALIVE, os.O_RDWR | os.O_CREAT)
        fcntl.flock(self._alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self.path

    def close(self) -> None:
        """Remove the folder and let go of its lock."""
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        if self._alive is not None:
            os.close(self._alive)
            self._alive = None

    def sub(self, name: str) -> Path:
        """A private folder inside the run's folder (made if missing)."""
        return private_folder(self.path / name, "lock folder")

    @staticmethod
    def clean_dead(state: Path, *, keep: str = "") -> int:
        """Remove the folders of runs that are gone (killed before they could); returns
        how many. A run that is alive holds its lock, and a new one is given a minute to
        take it."""
        import fcntl
        import shutil
        import time

        removed = 0
        try:
            entries = list(os.scandir(state / RUNS))
        except OSError:
            return 0
        for entry in entries:
            if entry.name == keep or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _YOUNG_SECONDS:
                    continue
                fd = open_private(Path(entry.path) / _ALIVE, os.O_RDWR | os.O_CREAT)
            except (OSError, UnsafeFileError):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # alive
            finally:
                os.close(fd)
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        return removed
