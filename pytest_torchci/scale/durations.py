"""Suite durations: from earlier JUnit files of the plugin and from a JSON store.

A duration is keyed by the item's name (``test_python_shard[3]``). Several JUnit files
(one per shard, say) merge; a later file wins for the same item.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..plan.planner import NODE_PREFIX, Unit

__all__ = ["DurationsError", "expected", "predict", "read_durations", "write_store"]


class DurationsError(ValueError):
    """A durations file that cannot be read; the message names it."""


def _from_junit(path: Path) -> dict[str, float]:
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DurationsError(f"{path}: not a JUnit XML file ({exc})") from None
    out: dict[str, float] = {}
    for case in tree.iter("testcase"):
        if case.get("classname") != NODE_PREFIX:
            continue
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        # suite_seconds: the suite's commands alone (older files: duration)
        raw = props.get("suite_seconds") or props.get("duration") or case.get("time") or "0"
        try:
            out[case.get("name", "")] = float(raw)
        except ValueError:
            continue
    return out


def read_durations(paths: Iterable[Path]) -> dict[str, float]:
    """Durations from JUnit XML files (``.xml``) and JSON stores (anything else)."""
    out: dict[str, float] = {}
    for path in paths:
        if not path.is_file():
            raise DurationsError(f"{path}: no such file")
        if path.suffix.lower() == ".xml":
            out.update(_from_junit(path))
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DurationsError(f"{path}: not a JSON durations store ({exc})") from None
        items = data.get("durations", data) if isinstance(data, dict) else None
        if not isinstance(items, dict):
            raise DurationsError(f'{path}: expected {{"durations": {{NAME: SECONDS}}}}')
        for name, seconds in items.items():
            if isinstance(seconds, (int, float)):
                out[str(name)] = float(seconds)
    return out


def write_store(path: Path, durations: Mapping[str, float]) -> None:
    path.write_text(
        json.dumps({"durations": dict(sorted(durations.items()))}, indent=1) + "\n",
        encoding="utf-8",
    )


def expected(units: Sequence[Unit], known: Mapping[str, float]) -> dict[str, float]:
    """Each test unit's expected seconds: measured, else its suite's hint, else the mean
    of the measured ones (of the hints when nothing was measured; 60 s with neither)."""
    hints = [u.suite.duration for u in units if u.suite is not None and u.suite.duration]
    values = list(known.values()) or [h for h in hints if h is not None]
    default = sum(values) / len(values) if values else 60.0
    return {
        u.name: predict(u.name, u.suite.duration if u.suite else None, known, default)
        for u in units
        if u.role == "test"
    }


def predict(name: str, hint: float | None, known: Mapping[str, float], default: float) -> float:
    """A measured duration, else the suite's hint, else ``default``."""
    if name in known:
        return known[name]
    if hint is not None:
        return hint
    return default
