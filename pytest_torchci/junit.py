"""The JUnit XML the suites write (under ``test/test-reports``), read back after each
item; and the synthetic XML for a suite that died without writing any, in the layout the
dashboards' uploader reads."""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ChildCase", "ChildReport", "read_child_reports", "write_synthetic_failure"]

REPORTS = Path("test") / "test-reports"
# The plugin's own folders under test-reports: logs, never a test file's XML.
_NOT_REPORTS = frozenset({"torchci-logs"})


@dataclass(frozen=True)
class ChildCase:
    file: str
    classname: str
    name: str
    outcome: str
    message: str = ""

    def describe(self) -> str:
        where = "::".join(p for p in (self.file, self.classname, self.name) if p)
        return f"{where}: {self.message}" if self.message else where


@dataclass
class ChildReport:
    """What the XML files written during one item say."""

    files: list[Path] = field(default_factory=list)
    cases: list[ChildCase] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.cases)

    @property
    def failing(self) -> list[ChildCase]:
        return [c for c in self.cases if c.outcome in ("failure", "error")]


def read_child_reports(root: Path, since: float, *, skip: tuple[Path, ...] = ()) -> ChildReport:
    """Parse every ``*.xml`` under ``root/test/test-reports`` modified since ``since``
    (not ``*.report.xml``, not ``skip``), with a real XML parser."""
    report = ChildReport()
    base = root / REPORTS
    if not base.is_dir():
        return report
    skipped = {p.resolve() for p in skip}
    found: list[Path] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in _NOT_REPORTS]
        found.extend(Path(folder, f) for f in files if f.endswith(".xml"))
    for path in sorted(found):
        try:
            if path.name.endswith(".report.xml") or path.stat().st_mtime < since:
                continue
        except OSError:
            continue
        if path.resolve() in skipped:
            continue
        try:
            tree = ET.parse(path)
        except (ET.ParseError, OSError):
            continue
        report.files.append(path)
        for case in tree.iter("testcase"):
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    text = child.get("message") or (child.text or "")
                    message = text.strip().splitlines()[0] if text.strip() else ""
                    break
            report.cases.append(
                ChildCase(
                    case.get("file", ""), case.get("classname", ""), case.get("name", ""),
                    outcome, message,
                )
            )  # fmt: skip
    return report


def write_synthetic_failure(
    root: Path, suite: str, name: str, seconds: float, message: str
) -> Path:
    """A test file's XML for a suite that died without writing any: one testcase with
    ``file``, ``classname``, ``name``, ``time`` and a ``failure``, under
    ``test/test-reports/python-pytest/<suite>/``, so the dashboard sees it failed."""
    folder = root / REPORTS / "python-pytest" / suite
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{suite}-{secrets.token_hex(8)}.xml"
    suites = ET.Element("testsuites")
    ts = ET.SubElement(
        suites, "testsuite", name=suite, tests="1", failures="1", errors="0", skipped="0",
        time=f"{seconds:.3f}",
    )  # fmt: skip
    case = ET.SubElement(
        ts, "testcase", file=f"torchci/{suite}", classname=f"torchci.{suite}", name=name,
        time=f"{seconds:.3f}",
    )  # fmt: skip
    failure = ET.SubElement(case, "failure", message=message.splitlines()[0] if message else "")
    failure.text = message
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
