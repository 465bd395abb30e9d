"""W3C trace context for apps with a telemetry drain, and the span record a worker sends.

Only apps whose route carries the telemetry feature come here (they leave the fast lanes),
so apps without a drain pay nothing. The router accepts a valid incoming `traceparent`
(version 00 layout; later versions read by their first four fields, as the spec asks) and
starts a new trace otherwise; either way the dyno gets a `traceparent` naming the router's
own span as parent, and `tracestate` passes through untouched.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


class TraceContext:
    """The trace of one exchange: its trace id, the caller's span (or ""), the router's."""

    __slots__ = ("trace_id", "parent_id", "span_id", "flags", "start_ns")

    def __init__(self, trace_id: str, parent_id: str, span_id: str, flags: str) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.span_id = span_id
        self.flags = flags
        self.start_ns = time.time_ns()

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid header, else None (W3C rules)."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip())
    if m is None:
        return None
    version, trace_id, parent, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    return trace_id, parent, flags


def begin(headers: Sequence[tuple[str, str]]) -> TraceContext:
    """The exchange's trace: joining the caller's, or a new one (sampled)."""
    values = [v for k, v in headers if k.lower() == "traceparent"]
    found = parse_traceparent(values[0]) if len(values) == 1 else None
    span_id = os.urandom(8).hex()
    if found is None:
        return TraceContext(os.urandom(16).hex(), "", span_id, "01")
    trace_id, parent, flags = found
    return TraceContext(trace_id, parent, span_id, flags)


def with_traceparent(headers: list[tuple[str, str]], ctx: TraceContext) -> list[tuple[str, str]]:
    """The dyno's headers: any traceparent replaced by the router's."""
    out = [(k, v) for k, v in headers if k.lower() != "traceparent"]
    out.append(("traceparent", ctx.traceparent()))
    return out


# A span record, as a worker sends it to the control plane (a JSON list, by position).
(
    R_APP,
    R_TRACE,
    R_SPAN,
    R_PARENT,
    R_FLAGS,
    R_START,
    R_END,
    R_METHOD,
    R_PATH,
    R_HOST,
    R_STATUS,
    R_CODE,
    R_DYNO,
    R_CONNECT,
    R_SERVICE,
    R_REQUEST_ID,
    R_PROTOCOL,
    R_CLIENT,
    R_BYTES,
    R_TLS,
) = range(20)


def record(ctx: TraceContext, app_id: str, line: Any, client_ip: str) -> list[Any]:
    """The span record of an exchange that ended, from its router line (`RouterLine`)."""
    return [
        app_id,
        ctx.trace_id,
        ctx.span_id,
        ctx.parent_id,
        ctx.flags,
        ctx.start_ns,
        time.time_ns(),
        line.method,
        line.path,
        line.host,
        line.status,
        line.code,
        line.dyno,
        line.connect_ms,
        line.service_ms,
        line.request_id,
        line.protocol,
        client_ip,
        line.bytes,
        line.tls,
    ]
