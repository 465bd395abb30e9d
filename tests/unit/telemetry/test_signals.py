"""Spruce's signals as OTel objects: the router span's names and parentage, log records,
and the platform's OTLP endpoint decoding what dynos send (protobuf and OTLP/JSON)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind, StatusCode

from spruce.router import trace
from spruce.router.logline import RouterLine
from spruce.telemetry.ingest import add_resource, decode
from spruce.telemetry.signals import log_record, router_span

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def record(code: str | None = None, status: int | None = 200) -> list[object]:
    ctx = trace.begin([("traceparent", f"00-{TRACE}-{PARENT}-01")])
    line = RouterLine(
        method="POST", path="/a/b?q=1", host="app.example.com", request_id="r" * 36,
        fwd="10.0.0.1", protocol="http2.0", tls=True, tls_version="tls1.3", dyno="web-abc-12345",
        connect_ms=1, service_ms=7, status=status, bytes=12, code=code,
    )  # fmt: skip
    return trace.record(ctx, "app-id", line, "10.0.0.1")


def test_a_router_span_follows_the_http_conventions() -> None:
    span = router_span(record(), Resource({"service.name": "app"}))
    assert span.kind is SpanKind.SERVER and span.name == "POST"
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT
    a = dict(span.attributes or {})
    assert a["url.path"] == "/a/b" and a["url.query"] == "q=1" and a["url.scheme"] == "https"
    assert a["network.protocol.version"] == "2" and a["http.response.status_code"] == 200
    assert a["heroku.dyno"] == "web-abc-12345" and a["heroku.router.service_ms"] == 7
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time >= span.start_time


def test_an_h_code_marks_the_span_as_an_error() -> None:
    span = router_span(record("H12", 503), Resource({}))
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["heroku.router.code"] == "H12"


def test_router_errors_are_error_log_records() -> None:
    r = log_record(1.5, "heroku", "router", "at=error code=H12 desc=...", Resource({}))
    assert r.log_record.severity_text == "ERROR" and r.log_record.timestamp == 1_500_000_000
    r = log_record(1.5, "app", "web-abc-12345", "hello", Resource({}))
    assert r.log_record.severity_text == "INFO" and r.log_record.body == "hello"


def test_otlp_json_ids_are_hex_and_the_app_keeps_its_own_attributes() -> None:
    body = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "mine"}}]},
        "scopeSpans": [{"spans": [{"traceId": TRACE, "spanId": PARENT, "name": "x"}]}]}]}  # fmt: skip
    msg = decode("traces", json.dumps(body).encode(), "application/json")
    assert isinstance(msg, ExportTraceServiceRequest)
    span = msg.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id.hex() == TRACE and span.span_id.hex() == PARENT
    add_resource("traces", msg, {"service.name": "app", "cloud.provider": "heroku"})
    attrs = {kv.key: kv.value.string_value for kv in msg.resource_spans[0].resource.attributes}
    assert attrs == {"service.name": "mine", "cloud.provider": "heroku"}
    again = decode("traces", msg.SerializeToString(), "application/x-protobuf")
    assert again == msg


def test_a_payload_that_does_not_decode_is_refused() -> None:
    with pytest.raises(ValueError, match="does not decode"):
        decode("traces", b"\xff\xff\xff", "application/x-protobuf")
    with pytest.raises(ValueError, match="does not decode"):
        decode("logs", b"{not json", "application/json")
