"""The suites' own JUnit XML, per item: the window an item's files are looked for in,
which of them are its own (see :mod:`.reports`), their test cases counted into the
item's properties, and a synthetic failure where a failed suite wrote none."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from .failure import SuiteError
from .junit import parse_child_xml, synthetic_path, write_synthetic_failure
from .reports import CLAIMS_VARIABLE, Activity, ReportWatcher, claim, claims_folder, item_files
from .statedir import UnsafeFileError, UnsafeFolderError

__all__ = ["ChildReports", "Window"]

Window = tuple[list[Path] | None, bool]  # the files written in it (None: scan), ran alone
Property = tuple[str, object]
# The item's properties that count its test cases by outcome.
_COUNTED = (("child_failures", "failure"), ("child_errors", "error"), ("child_skipped", "skipped"))


@dataclass
class ChildReports:
    """This process's view of the XML the suites write under ``root``.

    ``side_by_side``: other items of the run may run at the same time (an xdist worker),
    so a file that nobody claims is counted for an item only if it ran alone."""

    root: Path
    run_dir: Path
    side_by_side: bool = False
    _claims_dir: Path | None = field(default=None, repr=False)
    _watcher: ReportWatcher | None = field(default=None, repr=False)
    _watching: bool = True  # False: inotify is not to be had; scan instead

    def claims(self) -> Path:
        if self._claims_dir is None:
            self._claims_dir = claims_folder(self.run_dir)
        return self._claims_dir

    def variables(self) -> dict[str, str]:
        """What every command of an item carries besides its token: where to claim XML."""
        try:
            return {CLAIMS_VARIABLE: str(self.claims())}
        except UnsafeFolderError:
            return {}

    def start(self) -> tuple[bool, int]:
        """Start an item's window on test-reports: (ran alone so far, epoch)."""
        if self._watching and self._watcher is None:
            try:
                self._watcher = ReportWatcher(self.root)
            except OSError:
                self._watching = False
        if self._watcher is not None:
            self._watcher.mark()
        if not self.side_by_side:
            return (True, 0)
        return Activity(self.run_dir).start()

    def end(self, started: tuple[bool, int]) -> Window:
        """The XML files written in the window (None: scan) and whether it ran alone."""
        written = self._watcher.written() if self._watcher is not None else None
        if not self.side_by_side:
            return written, True
        return written, Activity(self.run_dir).end(started)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def collect(
        self,
        token: str,
        window: Window,
        since: float,
        error: SuiteError | None,
        synthetic: tuple[str, str, float],
    ) -> list[Property]:
        """Count the test cases of the XML the item ``token`` wrote; name the failing
        ones in its failure; when a failed suite wrote none, write a synthetic failure
        (``synthetic``: the suite, the item's name, its seconds). The item's properties."""
        claims = self.claims()
        found = item_files(claims, token, window[0], window[1], root=self.root, since=since)
        report = parse_child_xml(found.files)
        props: list[Property] = [(key, str(report.count(o))) for key, o in _COUNTED]
        props.append(("child_tests", str(len(report.cases))))
        if found.unattributed:
            props.append(("child_unattributed", str(len(found.unattributed))))
        if error is None:
            return props
        error.failing = [c.describe() for c in report.failing]
        if found.unattributed:
            error.notes.append(
                f"{len(found.unattributed)} XML files were written while this suite ran by "
                "a writer that does not say which suite it belongs to, and other suites ran "
                "too: counted for none"
            )
        if not report.files:
            try:
                path = self._synthetic(token, error, *synthetic)
            except OSError as exc:  # a test-reports folder that cannot be written
                error.notes.append(f"no synthetic report could be written: {exc}")
            else:
                props.append(("synthetic_report", str(path)))
        return props

    def _synthetic(self, token: str, error: SuiteError, suite: str, name: str, s: float) -> Path:
        path = synthetic_path(self.root, suite)
        with contextlib.suppress(OSError, UnsafeFileError):
            claim(self.claims(), token, str(path))
        write_synthetic_failure(path, suite, name, s, error.render())
        return path
