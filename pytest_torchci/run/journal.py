"""The journal of a run's suite process groups, for the run's end to stop what its
suites left running (after a cancel, or a worker that died).

Each process appends to its own journal, in the run's private folder: ``+PGID`` when a
group starts, written before anything can leave the group, so that a killed worker's
journal still names every group that may live; ``-PGID`` when it ends, written with the
next ``+`` line or when the journal closes (one write per command). A group a killed
worker ended without saying so is stopped at the run's end only if a process in it
proves itself the run's: none does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .reaper import Sweep, stop_groups, stop_tree
from .statedir import UnsafeFileError, UnsafeFolderError, open_private, private_folder, read_private

__all__ = ["GroupJournal"]


class GroupJournal:
    """This process's journal of suite process groups in ``folder``, and the sweep of
    every journal there."""

    def __init__(self, folder: Path, cookie: str) -> None:
        self.folder = folder
        self.cookie = cookie
        self._fd: int | None = None
        self._ended = ""  # the "-PGID" lines not written yet

    def _record(self, line: str) -> None:
        line, self._ended = self._ended + line, ""
        with contextlib.suppress(OSError, UnsafeFolderError, UnsafeFileError):
            if self._fd is None:
                folder = private_folder(self.folder, "lock folder")
                self._fd = open_private(
                    folder / str(os.getpid()), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                )
            os.write(self._fd, line.encode())

    def register(self, pgid: int) -> None:
        self._record(f"+{pgid}\n")

    def unregister(self, pgid: int) -> None:
        self._ended += f"-{pgid}\n"

    def close(self) -> None:
        if self._ended and self._fd is not None:
            self._record("")
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def live(self) -> set[int]:
        """The groups the journals say started and have not ended."""
        live: set[int] = set()
        try:
            private_folder(self.folder, "lock folder")
            journals = list(self.folder.iterdir())
        except (OSError, UnsafeFolderError):
            journals = []
        for journal in journals:
            mine: set[int] = set()  # in order, per process: a pgid may be reused later
            with contextlib.suppress(OSError, UnsafeFileError, UnicodeDecodeError):
                for line in (read_private(journal) or "").split():
                    sign, pgid = line[:1], line[1:]
                    if pgid.isdigit():
                        (mine.add if sign == "+" else mine.discard)(int(pgid))
            live |= mine
        return live

    def sweep(self) -> Sweep:
        """Stop what the run's suites still have running: the process groups the
        journals name, each process only if it proves itself the run's (see
        :mod:`.reaper`)."""
        self.close()
        sweep = stop_groups(sorted(self.live()), self.cookie)
        # What left its group (a session of its own) and outlived its worker.
        sweep.stopped |= stop_tree(self.cookie, None).stopped
        shutil.rmtree(self.folder, ignore_errors=True)
        return sweep
