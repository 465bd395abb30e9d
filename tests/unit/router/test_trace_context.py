"""W3C trace context at the router: which traceparent headers it joins, what the dyno gets."""

from __future__ import annotations

import pytest

from spruce.router import trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "joined"),
    [
        (f"00-{TRACE}-{PARENT}-01", True),
        (f"00-{TRACE}-{PARENT}-00", True),  # not sampled: still the caller's trace
        (f"01-{TRACE}-{PARENT}-01-extra", True),  # a later version: its first four fields
        (f"00-{TRACE}-{PARENT}-01-extra", False),  # version 00 has exactly four
        (f"ff-{TRACE}-{PARENT}-01", False),  # version ff is invalid
        (f"00-{'0' * 32}-{PARENT}-01", False),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", False),  # all-zero parent id
        (f"00-{TRACE.upper()}-{PARENT}-01", False),  # upper-case hex is invalid
        ("00-abc-def-01", False),
        ("", False),
    ],
)
def test_which_traceparents_are_joined(value: str, joined: bool) -> None:
    ctx = trace.begin([("Traceparent", value)] if value else [])
    assert len(ctx.span_id) == 16 and ctx.span_id != PARENT
    if joined:
        assert (ctx.trace_id, ctx.parent_id) == (TRACE, PARENT)
        assert ctx.flags == value.split("-")[3]
    else:
        assert ctx.trace_id != TRACE and len(ctx.trace_id) == 32 and ctx.parent_id == ""
        assert ctx.flags == "01"


def test_two_traceparent_headers_start_a_new_trace() -> None:
    tp = f"00-{TRACE}-{PARENT}-01"
    ctx = trace.begin([("traceparent", tp), ("traceparent", tp)])
    assert ctx.trace_id != TRACE


def test_the_dyno_gets_the_routers_span_as_parent_and_tracestate_untouched() -> None:
    headers = [("Host", "a"), ("traceparent", f"00-{TRACE}-{PARENT}-01"), ("tracestate", "x=1")]
    ctx = trace.begin(headers)
    out = trace.with_traceparent(headers, ctx)
    assert [v for k, v in out if k == "traceparent"] == [f"00-{TRACE}-{ctx.span_id}-01"]
    assert ("tracestate", "x=1") in out and ("Host", "a") in out
