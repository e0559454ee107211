"""The timeline's own pieces, without a pytest run: spans, the Chrome trace and the gantt
chart (the runs that write them are in test_terminal.py)."""

from __future__ import annotations

import json

import pytest

from pytest_torchci.run.timeline import Span, Timeline, chrome_trace, mermaid_gantt


def test_a_span_records_its_outcome_and_a_failure_goes_on() -> None:
    timeline = Timeline("gw0")
    with timeline.span("ok", "setup"):
        pass
    with pytest.raises(RuntimeError), timeline.span("boom", "teardown"):
        raise RuntimeError("x")
    ok, boom = timeline.spans
    assert (ok.outcome, boom.outcome) == ("passed", "failed")
    assert ok.worker == "gw0" and ok.end >= ok.start and ok.tracks == ["gw0"]


def test_spans_travel_from_a_worker_to_the_controller() -> None:
    worker = Timeline("gw1")
    worker.add(Span("s[1]", "suite", "gw1", 10.0, 12.5, "failed", ["cuda:1"]))
    controller = Timeline("main")
    controller.load(worker.dump())
    assert controller.spans == worker.spans


def test_chrome_trace_has_device_tracks_first_and_a_slice_per_device() -> None:
    spans = [
        Span("wide", "suite", "gw0", 1.0, 3.0, "passed", ["cuda:10", "cuda:2"]),
        Span("cpu", "suite", "gw1", 1.5, 2.0, "passed"),
        Span("wide", "lease-wait", "gw1", 0.5, 1.0, "waited", detail="held: x"),
    ]
    trace = json.loads(json.dumps(chrome_trace(spans, "t")))
    names = {
        e["tid"]: e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name"
    }
    # Devices in numeric order, then the workers (gw0 ran only on devices).
    assert [names[t] for t in sorted(names)] == ["cuda:2", "cuda:10", "gw1"]
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    wide = [names[e["tid"]] for e in slices if e["name"] == "wide" and e["cat"] == "suite"]
    assert sorted(wide) == ["cuda:10", "cuda:2"]
    (suite,) = [e for e in slices if e["name"] == "cpu"]
    assert (suite["ts"], suite["dur"], names[suite["tid"]]) == (1_500_000, 500_000, "gw1")
    (wait,) = [e for e in slices if e["cat"] == "lease-wait"]
    assert wait["args"]["detail"] == "held: x"


def test_gantt_chart_is_mermaid_with_failures_marked() -> None:
    spans = [
        Span("a: b#c", "suite", "main", 1.0, 2.0, "failed"),
        Span("install", "setup", "main", 0.0, 0.0, "passed"),
    ]
    text = mermaid_gantt(spans, "torchci default")
    assert text.startswith("```mermaid\ngantt\n") and text.endswith("```\n")
    assert "    section main" in text
    # Mermaid's separators never appear in a label; a zero-length span still shows.
    assert "    a  b c (failed) :crit, 1000, 2000" in text
    assert "    setup install (passed) :done, 0, 1" in text
    assert mermaid_gantt([], "t") == ""
