"""One telemetry drain: the OTLP exporters of its signals and the thread that feeds them.

Spans and log records wait in bounded queues and leave in batches from the drain's own
thread, so the control plane's loop never waits for a collector: when the queue is full, or
an export fails after the exporter's own retries (with backoff, on 429/503 and the like),
what was in it is counted as dropped. Metrics leave through the SDK's periodic reader, whose
thread is the drain's as well.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spruce.services.model import TelemetryDrainSpec

from .ingest import Forwarder

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class DrainSettings:
    """Batching and limits of every drain (SPRUCE_TUNING's "telemetry" section in tests)."""

    def __init__(
        self,
        batch_interval: float = 1.0,
        batch_size: int = 512,
        queue_size: int = 4096,
        export_timeout: float = 10.0,
        metrics_interval: float = 10.0,
    ) -> None:
        self.batch_interval = batch_interval
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.export_timeout = export_timeout
        self.metrics_interval = metrics_interval


def _grpc_insecure(endpoint: str) -> bool:
    """gRPC endpoints are host:port: TLS unless the collector is on this machine."""
    host = endpoint.rsplit(":", 1)[0]
    return host in LOOPBACK


def _http_url(endpoint: str, path: str) -> str:
    """An otlphttp endpoint is the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT's
    rule): each signal goes to <base>/v1/<signal>. A URL that already ends with a signal's
    path is taken as the base for the others."""
    base = endpoint.rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/{path}"


def _options(spec: TelemetryDrainSpec, timeout: float) -> dict[str, Any]:
    """The SDK exporters' keyword arguments: headers, timeout, gzip; gRPC's TLS choice."""
    headers = dict(spec.headers)
    if spec.exporter_type == "otlp":
        from grpc import Compression

        return {
            "endpoint": spec.endpoint,
            "insecure": _grpc_insecure(spec.endpoint),
            "headers": headers,
            "timeout": timeout,
            "compression": Compression.Gzip,
        }
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

    return {"headers": headers, "timeout": timeout, "compression": HttpCompression.Gzip}


def make_exporters(
    spec: TelemetryDrainSpec, timeout: float
) -> tuple[SpanExporter, LogRecordExporter]:
    """The SDK's OTLP span and log exporters for the drain: protobuf over HTTP, or gRPC."""
    kw = _options(spec, timeout)
    if spec.exporter_type == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogs,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpans,
        )

        return GrpcSpans(**kw), GrpcLogs(**kw)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (
        OTLPSpanExporter(endpoint=_http_url(spec.endpoint, "v1/traces"), **kw),
        OTLPLogExporter(endpoint=_http_url(spec.endpoint, "v1/logs"), **kw),
    )


def make_metric_exporter(spec: TelemetryDrainSpec, timeout: float) -> MetricExporter:
    kw = _options(spec, timeout)
    if spec.exporter_type == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )

        return GrpcMetrics(**kw)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=_http_url(spec.endpoint, "v1/metrics"), **kw)


class CountingMetricExporter(MetricExporter):
    """The SDK's metric exporter, with failed exports counted as drops."""

    def __init__(self, inner: MetricExporter, dropped: Callable[[int], None]) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.dropped = dropped

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self.dropped(
                sum(
                    len(m.data.data_points)
                    for rm in metrics_data.resource_metrics
                    for sm in rm.scope_metrics
                    for m in sm.metrics
                )
            )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class DrainPipeline:
    """Queues and the export thread of one drain."""

    def __init__(self, spec: TelemetryDrainSpec, settings: DrainSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.spans_out, self.logs_out = make_exporters(spec, settings.export_timeout)
        self._spans: deque[ReadableSpan] = deque()
        self._logs: deque[ReadableLogRecord] = deque()
        # export requests the app's dynos sent the platform: forwarded as they came
        self._forwarded: deque[tuple[str, Any]] = deque()
        self.forwarder = Forwarder(spec, settings.export_timeout)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0
        self.exported = 0
        self._thread = threading.Thread(
            target=self._run, name=f"telemetry-drain-{spec.id[:8]}", daemon=True
        )
        self._thread.start()

    def metrics_exporter(self) -> CountingMetricExporter:
        """A new metric exporter for a meter provider (shutting a provider down shuts its
        exporter down too, and an app's provider is remade when its resource changes)."""
        metrics = make_metric_exporter(self.spec, self.settings.export_timeout)
        return CountingMetricExporter(metrics, self.count_drops)

    @property
    def signals(self) -> frozenset[str]:
        return self.spec.signals

    def count_drops(self, n: int) -> None:
        if n:
            with self._lock:
                self.dropped += n

    def _offer(self, queue: deque[Any], item: Any) -> None:
        with self._lock:
            if len(queue) >= self.settings.queue_size:
                self.dropped += 1
                return
            queue.append(item)
            full = len(queue) >= self.settings.batch_size
        if full:
            self._wake.set()

    def offer_span(self, span: ReadableSpan) -> None:
        self._offer(self._spans, span)

    def offer_log(self, record: ReadableLogRecord) -> None:
        self._offer(self._logs, record)

    def offer_request(self, signal: str, request: Any) -> None:
        self._offer(self._forwarded, (signal, request))

    def _take(self, queue: deque[Any]) -> list[Any]:
        with self._lock:
            n = min(len(queue), self.settings.batch_size)
            return [queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            self._wake.wait(self.settings.batch_interval)
            self._wake.clear()
            self._drain_queues()
            if self._stopping:
                return

    def _drain_queues(self) -> None:
        for queue, export in ((self._spans, self._export_spans), (self._logs, self._export_logs)):
            while True:
                batch = self._take(queue)
                if not batch:
                    break
                export(batch)
        while True:
            batch = self._take(self._forwarded)
            if not batch:
                break
            for signal, request in batch:
                self._tally(self.forwarder.send(signal, request), 1)

    def _export_spans(self, batch: Sequence[ReadableSpan]) -> None:
        try:
            ok = self.spans_out.export(batch) is SpanExportResult.SUCCESS
        except Exception:  # the exporter logs why; the batch is lost
            ok = False
        self._tally(ok, len(batch))

    def _export_logs(self, batch: Sequence[ReadableLogRecord]) -> None:
        try:
            ok = self.logs_out.export(batch) is LogRecordExportResult.SUCCESS
        except Exception:
            ok = False
        self._tally(ok, len(batch))

    def _tally(self, ok: bool, n: int) -> None:
        with self._lock:
            if ok:
                self.exported += n
            else:
                self.dropped += n

    def close(self, flush_within: float = 2.0) -> None:
        """Send what waits (for up to `flush_within` seconds), then end the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join(flush_within)
        for exporter in (self.spans_out, self.logs_out, self.forwarder):
            try:
                if isinstance(exporter, Forwarder):
                    exporter.close()
                else:
                    exporter.shutdown()
            except Exception:
                log.debug("telemetry exporter shutdown failed", exc_info=True)


def now_ns() -> int:
    return time.time_ns()
