"""What dynos export to the platform's OTLP endpoint, decoded and forwarded to the drains.

The app's own spans, metrics and logs stay as the app made them (every field the app's SDK
wrote): the request is decoded with opentelemetry-proto, Heroku's common resource attributes
are added where the app did not set them, and the same request goes on to each drain of
that signal, over OTLP/HTTP or gRPC, like a collector's OTLP receiver and exporter.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from spruce.services.model import TelemetryDrainSpec

REQUESTS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_RESOURCE_LISTS = {
    "traces": "resource_spans",
    "metrics": "resource_metrics",
    "logs": "resource_logs",
}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")
RETRY_STATUSES = (429, 502, 503, 504)


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str) and v:
                try:
                    node[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    pass
            else:
                _hex_ids_to_base64(v)
    elif isinstance(node, list):
        for v in node:
            _hex_ids_to_base64(v)


def decode(signal: str, payload: bytes, content_type: str) -> Message:
    """An export request from its body (protobuf, or OTLP/JSON); ValueError if it is not."""
    kind = REQUESTS[signal]
    msg = kind()
    try:
        if content_type.split(";")[0].strip().lower() == "application/json":
            data = json.loads(payload)
            _hex_ids_to_base64(data)
            json_format.ParseDict(data, msg, ignore_unknown_fields=True)
        else:
            msg.ParseFromString(payload)
    except (DecodeError, ValueError, json_format.ParseError) as e:
        raise ValueError(f"The OTLP {signal} request does not decode: {e}") from None
    return msg


def add_resource(signal: str, msg: Message, attrs: dict[str, str]) -> None:
    """Heroku's common resource attributes, where the app's own resource lacks them."""
    for item in getattr(msg, _RESOURCE_LISTS[signal]):
        have = {kv.key for kv in item.resource.attributes}
        for k, v in attrs.items():
            if k not in have:
                kv = KeyValue(key=k)
                kv.value.string_value = v
                item.resource.attributes.append(kv)


class Forwarder:
    """Sends export requests to one drain (called from the drain's thread)."""

    def __init__(self, spec: TelemetryDrainSpec, timeout: float) -> None:
        self.spec = spec
        self.timeout = timeout
        self._grpc: Any = None

    def send(self, signal: str, msg: Message) -> bool:
        if self.spec.exporter_type == "otlp":
            return self._send_grpc(signal, msg)
        return self._send_http(signal, msg)

    def _send_http(self, signal: str, msg: Message) -> bool:
        import requests

        from .drain import _http_url

        body = gzip.compress(msg.SerializeToString())
        headers = {
            **dict(self.spec.headers),
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        url = _http_url(self.spec.endpoint, f"v1/{signal}")
        delay = 0.5
        for attempt in range(3):
            try:
                r = requests.post(url, data=body, headers=headers, timeout=self.timeout)
            except requests.RequestException:
                return False
            if r.status_code < 300:
                return True
            if r.status_code not in RETRY_STATUSES or attempt == 2:
                return False
            time.sleep(delay)
            delay *= 2
        return False

    def _send_grpc(self, signal: str, msg: Message) -> bool:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        from .drain import _grpc_insecure

        if self._grpc is None:
            endpoint = self.spec.endpoint
            channel = (
                grpc.insecure_channel(endpoint)
                if _grpc_insecure(endpoint)
                else grpc.secure_channel(endpoint, grpc.ssl_channel_credentials())
            )
            stubs: dict[str, Any] = {
                "traces": trace_service_pb2_grpc.TraceServiceStub,
                "metrics": metrics_service_pb2_grpc.MetricsServiceStub,
                "logs": logs_service_pb2_grpc.LogsServiceStub,
            }
            self._grpc = {k: make(channel) for k, make in stubs.items()}
            self._grpc["channel"] = channel
        metadata = tuple((k.lower(), v) for k, v in self.spec.headers)
        try:
            self._grpc[signal].Export(
                msg, metadata=metadata, timeout=self.timeout, compression=grpc.Compression.Gzip
            )
        except grpc.RpcError:
            return False
        return True

    def close(self) -> None:
        if self._grpc is not None:
            self._grpc["channel"].close()
            self._grpc = None
