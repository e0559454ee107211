"""A checkout's layout, without its contents, for the validator's dry sandbox.

:func:`scan_tree` reads a real checkout once (``os.scandir``, no following of links):
every folder, file and symbolic link under it with its permission bits, leaving out the
folders and files named in ``exclude`` at any depth (``.git`` and caches by default).
:meth:`TreeMirror.materialize` then lays that layout out under a sandbox's checkout, as
many times as there are jobs: folders with their modes, each file empty with its mode
(an executable one holding the tracer's stub, where one is given),
each link a link (not what it points to). A link keeps its target text, except that an
absolute target inside the scanned checkout is pointed at the same place inside the
sandbox; so ``-x``, ``-d`` and ``find -executable`` see what they see in the real
checkout. Other kinds of file (fifos, sockets, devices) are left out and counted.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_EXCLUDES",
    "MirrorError",
    "TreeLayout",
    "TreeMirror",
    "apply_modes",
    "scan_tree",
]

# Left out wherever they appear: version control, caches, virtual environments, editors.
DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".tox", ".nox", ".venv", "venv", "node_modules", ".eggs", ".idea", ".vscode",
)  # fmt: skip

_DIR_FIRST = 0o700  # a folder is made writable and searchable first, given its mode last


class MirrorError(RuntimeError):
    """The tree cannot be read, or its layout cannot be laid out in a sandbox."""


@dataclass(frozen=True)
class TreeLayout:
    """The layout of one checkout: relative paths (``os.fsdecode`` strings) and modes."""

    source: Path
    folders: tuple[tuple[str, int], ...]  # parents before children
    files: tuple[tuple[str, int], ...]
    links: tuple[tuple[str, str], ...]
    skipped: int = 0  # neither folder, file nor link, or unreadable
    excluded: tuple[str, ...] = ()
    scan_seconds: float = 0.0


class TreeMirror:
    """Lays a :class:`TreeLayout` out in sandboxes, one per job (safe from several threads).

    Each sandbox gets its own folders, links and files. The empty files of one mode are
    hard links to one empty file of that mode made in that sandbox: a link is far cheaper
    than a new file (measured on ext4: 20,000 files in under 2 s a sandbox against 10 s
    and more; on tmpfs 0.3 s either way). So the files of a sandbox share their contents:
    the traced script's own redirection into an existing file of the checkout would show
    in the others of its mode (its tools are stubs; nothing else writes there). Where the
    file system has no hard links, or with ``link=False``, each file is made on its own.
    """

    def __init__(self, layout: TreeLayout, *, link: bool = True) -> None:
        self.layout = layout
        self._link = link
        self.copy_seconds: list[float] = []

    def summary(self) -> str:
        """One line: what was mirrored from where, and how long it took."""
        tree = self.layout
        copies = self.copy_seconds
        how = "hard links" if self._link else "one file each"
        per_job = (
            f"; laid out in {len(copies)} sandboxes, {max(copies):.2f} s each at most ({how})"
            if copies
            else "; laid out in no sandbox"
        )
        left = f"; left out: {', '.join(tree.excluded)}" if tree.excluded else ""
        other = f"; {tree.skipped} other entries skipped" if tree.skipped else ""
        return (
            f"tree: mirrored {len(tree.files)} files, {len(tree.folders)} folders and"
            f" {len(tree.links)} links of {tree.source}: scanned in {tree.scan_seconds:.2f} s"
            f"{per_job}{left}{other}"
        )

    def materialize(self, checkout: Path, program: str = "") -> list[tuple[Path, int]]:
        """Lay the layout out under ``checkout`` (which may exist); returns the folders
        whose modes are still to be set, deepest first (:func:`apply_modes`), so that the
        sandbox can add its own files to them first. Executable files hold ``program``
        (the tracer's stub for a program run by its path); the others are empty."""
        start = time.perf_counter()
        try:
            _make(self.layout, checkout, link=self._link, program=program)
        except _NoLinks:
            self._link = False
            _make(self.layout, checkout, link=False, program=program)
        self.copy_seconds.append(time.perf_counter() - start)
        return [(checkout / rel, mode) for rel, mode in reversed(self.layout.folders)]


class _NoLinks(Exception):
    pass


_MAX_LINKS = 60_000  # below ext4's 65,000 links to one file
_NO_LINKS = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.ENOSYS)


def _new_file(path: str, mode: int, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if text:
            os.write(fd, text.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _make(tree: TreeLayout, checkout: Path, *, link: bool, program: str = "") -> None:
    root = os.fspath(checkout)
    source = os.fspath(tree.source)
    try:
        os.makedirs(root, exist_ok=True)
        for rel, _ in tree.folders:
            path = os.path.join(root, rel)
            try:
                os.mkdir(path, _DIR_FIRST)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise
        seeds: dict[int, tuple[str, int]] = {}  # mode: (a file of that mode, its links)
        for rel, mode in tree.files:
            path = os.path.join(root, rel)
            seed = seeds.get(mode) if link else None
            if seed is None or seed[1] >= _MAX_LINKS:
                _new_file(path, mode, program if mode & 0o111 else "")
                seeds[mode] = (path, 1)
                continue
            try:
                os.link(seed[0], path)
            except OSError as exc:
                if exc.errno in _NO_LINKS:
                    raise _NoLinks from None
                raise
            seeds[mode] = (seed[0], seed[1] + 1)
        for rel, target in tree.links:
            if os.path.isabs(target) and _under(target, source):
                target = os.path.join(root, os.path.relpath(target, source))
            os.symlink(target, os.path.join(root, rel))
    except _NoLinks:
        _clear(root)
        raise
    except OSError as exc:
        raise MirrorError(f"cannot mirror the tree: {exc.filename}: {exc.strerror}") from None


def _clear(root: str) -> None:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)


def apply_modes(folders: Iterable[tuple[Path, int]]) -> None:
    """Give mirrored folders their modes (after the sandbox has written into them)."""
    for path, mode in folders:
        os.chmod(path, mode)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_tree(source: Path, exclude: Collection[str] = DEFAULT_EXCLUDES) -> TreeLayout:
    """Read the layout of ``source``; names in ``exclude`` are left out at any depth, and a
    name holding ``/`` is a path relative to ``source``."""
    if not source.exists():
        raise MirrorError(f"{source}: no such folder")
    if not source.is_dir():
        raise MirrorError(f"{source}: not a folder")
    start = time.perf_counter()
    names = {e for e in exclude if "/" not in e.strip("/")}
    paths = {e.strip("/") for e in exclude if "/" in e.strip("/")}
    folders: list[tuple[str, int]] = []
    files: list[tuple[str, int]] = []
    links: list[tuple[str, str]] = []
    skipped = 0
    stack = [("", os.fspath(source.resolve()))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            entries = list(os.scandir(abs_dir))
        except OSError:
            skipped += 1
            continue
        subdirs = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name in names or rel in paths:
                continue
            try:
                if entry.is_symlink():
                    links.append((rel, os.readlink(entry.path)))
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                skipped += 1
                continue
            if stat.S_ISDIR(mode):
                folders.append((rel, stat.S_IMODE(mode)))
                subdirs.append((rel, entry.path))
            elif stat.S_ISREG(mode):
                files.append((rel, stat.S_IMODE(mode)))
            else:
                skipped += 1
        stack.extend(reversed(subdirs))
    return TreeLayout(
        source=source.resolve(),
        folders=tuple(folders),
        files=tuple(files),
        links=tuple(links),
        skipped=skipped,
        excluded=tuple(sorted(names | paths)),
        scan_seconds=time.perf_counter() - start,
    )
