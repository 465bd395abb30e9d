"""Spruce's signals as OpenTelemetry SDK objects: router spans and log records.

Names follow the OTel semantic conventions (HTTP server spans, container metrics) with
router.md's fields as `heroku.*` attributes; docs/telemetry.md lists every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from spruce.router import trace as t

SCOPE = InstrumentationScope("spruce.router", "1")
LOG_SCOPE = InstrumentationScope("spruce.logs", "1")
PROTOCOL_VERSION = {"http1.1": "1.1", "http2.0": "2"}


def router_span(rec: Sequence[Any], resource: Resource) -> ReadableSpan:
    """One SERVER span for one routed request (a record from `router.trace.record`)."""
    trace_id = int(rec[t.R_TRACE], 16)
    flags = TraceFlags(int(rec[t.R_FLAGS], 16))
    ctx = SpanContext(trace_id, int(rec[t.R_SPAN], 16), is_remote=False, trace_flags=flags)
    parent = None
    if rec[t.R_PARENT]:
        parent = SpanContext(trace_id, int(rec[t.R_PARENT], 16), is_remote=True, trace_flags=flags)
    target = str(rec[t.R_PATH])
    path, _, query = target.partition("?")
    tls = bool(rec[t.R_TLS])
    attrs: dict[str, Any] = {
        "http.request.method": rec[t.R_METHOD],
        "url.path": path,
        "url.scheme": "https" if tls else "http",
        "server.address": rec[t.R_HOST],
        "client.address": rec[t.R_CLIENT],
        "network.protocol.name": "http",
        "network.protocol.version": PROTOCOL_VERSION.get(rec[t.R_PROTOCOL], rec[t.R_PROTOCOL]),
        "heroku.request_id": rec[t.R_REQUEST_ID],
    }
    if query:
        attrs["url.query"] = query
    status = rec[t.R_STATUS]
    if status is not None:
        attrs["http.response.status_code"] = int(status)
    if rec[t.R_BYTES] is not None:
        attrs["http.response.body.size"] = int(rec[t.R_BYTES])
    if rec[t.R_DYNO]:
        attrs["heroku.dyno"] = rec[t.R_DYNO]
    if rec[t.R_CONNECT] is not None:
        attrs["heroku.router.connect_ms"] = int(rec[t.R_CONNECT])
    if rec[t.R_SERVICE] is not None:
        attrs["heroku.router.service_ms"] = int(rec[t.R_SERVICE])
    code = rec[t.R_CODE]
    span_status = Status(StatusCode.UNSET)
    if code:
        attrs["heroku.router.code"] = code
        attrs["error.type"] = code
        span_status = Status(StatusCode.ERROR, code)
    elif status is not None and int(status) >= 500:
        attrs["error.type"] = str(status)
        span_status = Status(StatusCode.ERROR)
    return ReadableSpan(
        name=str(rec[t.R_METHOD]),
        context=ctx,
        parent=parent,
        resource=resource,
        attributes=attrs,
        kind=SpanKind.SERVER,
        status=span_status,
        start_time=int(rec[t.R_START]),
        end_time=int(rec[t.R_END]),
        instrumentation_scope=SCOPE,
    )


def log_record(
    when: float, source: str, process: str, text: str, resource: Resource
) -> ReadableLogRecord:
    """One log line (app output, router, API, add-on) as an OTel log record."""
    error = source == "heroku" and ("at=error" in text or text.startswith("Error R"))
    ts = int(when * 1e9)
    record = LogRecord(
        timestamp=ts,
        observed_timestamp=ts,
        severity_text="ERROR" if error else "INFO",
        severity_number=SeverityNumber.ERROR if error else SeverityNumber.INFO,
        body=text,
        attributes={"heroku.source": source, "heroku.process": process},
    )
    return ReadableLogRecord(record, resource, LOG_SCOPE)
