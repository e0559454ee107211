"""A picture of a run: which suite ran where and when.

Each process that runs suites (the only one, or each xdist worker) records spans: a
suite's commands, the wait for its devices' lease, the setups and teardowns it ran. A
worker hands its spans to the controller in ``workeroutput`` when it ends; the controller
writes them, with its own, as a Chrome trace event file (``--torchci-timeline FILE``,
the JSON that Perfetto and ``chrome://tracing`` open, as Bazel's ``--profile`` writes),
and under GitHub Actions adds a Mermaid gantt chart of the same to the job summary.

Tracks: one per device a suite held (a suite on two devices has a slice on each), and
one per worker for what used no device (suites without a lease, waits, setups,
teardowns).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WORKER_OUTPUT_KEY", "Span", "Timeline", "chrome_trace", "mermaid_gantt"]

# The key of a worker's spans in xdist's workeroutput.
WORKER_OUTPUT_KEY = "torchci_timeline"


@dataclass
class Span:
    """One slice: ``kind`` is suite, lease-wait, setup or teardown; times in seconds
    since the epoch; ``devices`` the ids it held (``kind:id``), empty for none."""

    name: str
    kind: str
    worker: str
    start: float
    end: float
    outcome: str = ""
    devices: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def tracks(self) -> list[str]:
        return self.devices or [self.worker]


class Timeline:
    """The spans this process recorded."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.spans: list[Span] = []

    @contextmanager
    def span(self, name: str, kind: str, **fields: Any) -> Iterator[Span]:
        """Record ``name`` from now until the block ends; the block may set the span's
        outcome, devices and detail. An exception marks it failed (and goes on)."""
        span = Span(name, kind, self.worker, time.time(), 0.0, **fields)
        try:
            yield span
        except BaseException:
            span.outcome = span.outcome or "failed"
            raise
        finally:
            span.end = time.time()
            span.outcome = span.outcome or "passed"
            self.spans.append(span)

    def add(self, span: Span) -> None:
        self.spans.append(span)

    def dump(self) -> str:
        """The spans as JSON, for the controller (xdist's workeroutput holds strings)."""
        return json.dumps([asdict(s) for s in self.spans])

    def load(self, text: str) -> None:
        """Add a worker's spans (what :meth:`dump` wrote)."""
        self.spans.extend(Span(**raw) for raw in json.loads(text))


def _track_ids(spans: Iterable[Span]) -> dict[str, int]:
    """Device tracks first, in device order, then the workers' tracks."""
    names = {t for s in spans for t in s.tracks}

    def key(name: str) -> tuple[int, str, int, str]:
        kind, _, ident = name.partition(":")
        device = bool(ident) and ident.isdigit()
        return (0 if device else 1, kind if device else "", int(ident) if device else 0, name)

    return {name: i + 1 for i, name in enumerate(sorted(names, key=key))}


def chrome_trace(spans: list[Span], title: str) -> dict[str, Any]:
    """The Trace Event Format: complete events (``ph: X``) in microseconds, one thread
    per track, named by metadata events."""
    tracks = _track_ids(spans)
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": title}}
    ]
    for name, tid in tracks.items():
        events.append(
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": name}}
        )
        events.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": 1,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    for span in sorted(spans, key=lambda s: s.start):
        args = {"outcome": span.outcome, "worker": span.worker}
        if span.devices:
            args["devices"] = ",".join(span.devices)
        if span.detail:
            args["detail"] = span.detail
        for track in span.tracks:
            events.append(
                {
                    "name": span.name,
                    "cat": span.kind,
                    "ph": "X",
                    "ts": round(span.start * 1e6),
                    "dur": max(1, round((span.end - span.start) * 1e6)),
                    "pid": 1,
                    "tid": tracks[track],
                    "args": args,
                }
            )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(path: Path, spans: list[Span], title: str) -> None:
    """Write the trace (to a new file, then renamed: a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(chrome_trace(spans, title)) + "\n", encoding="utf-8")
    os.replace(tmp, path)


_UNSAFE = re.compile(r"[:#;\n]")


def mermaid_gantt(spans: list[Span], title: str) -> str:
    """A Mermaid ``gantt`` chart of the spans (GitHub renders it in Markdown): a section
    per track; failed suites marked ``crit``."""
    if not spans:
        return ""
    tracks = _track_ids(spans)
    lines = [
        "```mermaid",
        "gantt",
        f"    title {_UNSAFE.sub(' ', title)}",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
    ]
    for track in tracks:
        lines.append(f"    section {_UNSAFE.sub(' ', track)}")
        for span in sorted((s for s in spans if track in s.tracks), key=lambda s: s.start):
            label = span.name if span.kind == "suite" else f"{span.kind} {span.name}"
            tag = "crit" if span.outcome in ("failed", "error") else "done"
            start, end = (
                round(span.start * 1000),
                max(round(span.end * 1000), round(span.start * 1000) + 1),
            )
            lines.append(f"    {_UNSAFE.sub(' ', label)} ({span.outcome}) :{tag}, {start}, {end}")
    lines.append("```")
    return "\n".join(lines) + "\n"
