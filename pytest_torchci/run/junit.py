"""The JUnit XML the suites write (under ``test/test-reports``), read back after each
item; and the synthetic XML for a suite that died without writing any, in the layout the
dashboards' uploader reads."""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LOGS",
    "NOT_REPORTS",
    "REPORTS",
    "SYNTHETIC_PROPERTY",
    "ChildCase",
    "ChildReport",
    "is_synthetic",
    "parse_child_xml",
    "scan_child_xml",
    "synthetic_path",
    "write_synthetic_failure",
]

REPORTS = Path("test") / "test-reports"
# The plugin's own folders under test-reports: logs (--torchci-log-dir's default),
# never a test file's XML.
LOGS = "torchci-logs"
NOT_REPORTS = frozenset({LOGS})
SYNTHETIC_PROPERTY = "torchci_synthetic"


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


def scan_child_xml(root: Path, since: float) -> list[Path]:
    """Every ``*.xml`` under ``root/test/test-reports`` modified since ``since`` (not
    ``*.report.xml``, not the plugin's logs): a walk of the whole tree, for where the
    written files cannot be watched (see :mod:`reports`)."""
    base = root / REPORTS
    found: list[Path] = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if d not in NOT_REPORTS]
        for name in files:
            if not name.endswith(".xml") or name.endswith(".report.xml"):
                continue
            path = Path(folder, name)
            try:
                if path.stat().st_mtime >= since:
                    found.append(path)
            except OSError:
                continue
    return sorted(found)


def parse_child_xml(paths: Iterable[Path]) -> ChildReport:
    """The test cases of these XML files, with a real XML parser (files that do not
    parse, or that are the plugin's own synthetic failures, are left out)."""
    report = ChildReport()
    for path in paths:
        try:
            tree = ET.parse(path)
        except (ET.ParseError, OSError):
            continue
        if is_synthetic(tree.getroot()):
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
                    case.get("file", ""),
                    case.get("classname", ""),
                    case.get("name", ""),
                    outcome,
                    message,
                )
            )
    return report


def is_synthetic(root: ET.Element) -> bool:
    """Whether an XML tree is a failure the plugin wrote for a suite that wrote none."""
    return any(prop.get("name") == SYNTHETIC_PROPERTY for prop in root.iter("property"))


def synthetic_path(root: Path, suite: str) -> Path:
    """Where a suite's synthetic failure goes: ``python-pytest/<suite>/<suite>-<hex>.xml``
    under ``test/test-reports``, the layout the dashboards' uploader reads."""
    return root / REPORTS / "python-pytest" / suite / f"{suite}-{secrets.token_hex(8)}.xml"


def write_synthetic_failure(
    path: Path, suite: str, name: str, seconds: float, message: str
) -> Path:
    """A test file's XML for a suite that died without writing any: one testcase with
    ``file``, ``classname``, ``name``, ``time`` and a ``failure``, so the dashboard sees it
    failed; a ``torchci_synthetic`` property tells it from what a suite wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suites = ET.Element("testsuites")
    ts = ET.SubElement(
        suites,
        "testsuite",
        name=suite,
        tests="1",
        failures="1",
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
    )
    props = ET.SubElement(ts, "properties")
    ET.SubElement(props, "property", name=SYNTHETIC_PROPERTY, value="1")
    case = ET.SubElement(
        ts,
        "testcase",
        file=f"torchci/{suite}",
        classname=f"torchci.{suite}",
        name=name,
        time=f"{seconds:.3f}",
    )
    failure = ET.SubElement(case, "failure", message=message.splitlines()[0] if message else "")
    failure.text = message
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    ET.ElementTree(suites).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
