"""A real OTLP receiver for tests: OTLP/HTTP (protobuf, gzip) and gRPC on free loopback
ports, decoding every request with opentelemetry-proto, as a collector's receiver does.

`delay` makes it slow and `status` makes the HTTP side refuse (e.g. 503), to test what a
bad collector costs the platform.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

REQUESTS: dict[str, Any] = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}


def attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = getattr(v, kind) if kind else None
    return out


class Received:
    """What arrived, flattened: spans, metric names with their points, log records."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, Any, dict[str, str]]] = []

    def add(self, signal: str, msg: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append((signal, msg, headers))

    def _of(self, signal: str) -> list[tuple[Any, dict[str, str]]]:
        with self.lock:
            return [(m, h) for s, m, h in self.requests if s == signal]

    def spans(self) -> list[dict[str, Any]]:
        out = []
        for msg, _ in self._of("traces"):
            for rs in msg.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        out.append(
                            {
                                "name": sp.name,
                                "trace_id": sp.trace_id.hex(),
                                "span_id": sp.span_id.hex(),
                                "parent_id": sp.parent_span_id.hex(),
                                "kind": sp.kind,
                                "attributes": attrs(sp.attributes),
                                "resource": res,
                                "start": sp.start_time_unix_nano,
                                "end": sp.end_time_unix_nano,
                            }
                        )
        return out

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for msg, _ in self._of("metrics"):
            for rm in msg.resource_metrics:
                res = attrs(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        kind = m.WhichOneof("data")
                        for p in getattr(m, kind).data_points:
                            point: dict[str, Any] = {"attributes": attrs(p.attributes)}
                            point["resource"] = res
                            if kind == "histogram":
                                point["count"] = p.count
                            else:
                                point["value"] = (
                                    p.as_double if p.HasField("as_double") else p.as_int
                                )
                            out.setdefault(m.name, []).append(point)
        return out

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for msg, _ in self._of("logs"):
            for rl in msg.resource_logs:
                res = attrs(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for r in sl.log_records:
                        out.append(
                            {
                                "body": r.body.string_value,
                                "attributes": attrs(r.attributes),
                                "resource": res,
                                "severity": r.severity_text,
                            }
                        )
        return out

    def headers(self, signal: str) -> list[dict[str, str]]:
        return [h for _, h in self._of(signal)]


class HttpReceiver:
    """OTLP/HTTP: POST /v1/traces, /v1/metrics, /v1/logs with protobuf bodies."""

    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.received = Received()
        self.delay = delay
        self.status = status
        self.hits = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.hits += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                signal = self.path.rstrip("/").rsplit("/", 1)[-1]
                if receiver.status != 200 or signal not in REQUESTS:
                    self.send_response(receiver.status if signal in REQUESTS else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                msg = REQUESTS[signal]()
                msg.ParseFromString(body)
                receiver.received.add(signal, msg, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver:
    """OTLP/gRPC: the collector's three Export services on one port."""

    def __init__(self) -> None:
        self.received = Received()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        received = self.received

        def servicer(base: type, signal: str, response: Callable[[], Any]) -> Any:
            class S(base):  # type: ignore[misc,valid-type]
                def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                    md = {k: v for k, v in context.invocation_metadata()}
                    received.add(signal, request, md)
                    return response()

            return S()

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            servicer(
                trace_service_pb2_grpc.TraceServiceServicer,
                "traces",
                trace_service_pb2.ExportTraceServiceResponse,
            ),
            self.server,
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            servicer(
                metrics_service_pb2_grpc.MetricsServiceServicer,
                "metrics",
                metrics_service_pb2.ExportMetricsServiceResponse,
            ),
            self.server,
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
            servicer(
                logs_service_pb2_grpc.LogsServiceServicer,
                "logs",
                logs_service_pb2.ExportLogsServiceResponse,
            ),
            self.server,
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"
        self.server.start()

    def close(self) -> None:
        self.server.stop(0)
