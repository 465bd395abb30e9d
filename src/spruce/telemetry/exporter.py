"""The TelemetryExporter port over the OpenTelemetry SDK: each app's drains and signals.

Producers (the log router's tap, the router supervisor's span records, services' dyno
samples) call in from the control plane's loop or the API's threads; every call here is a
dictionary look-up and, for an app with a matching drain, an append to a bounded queue. The
exporting happens in each drain's thread (drain.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from spruce.router import trace as t
from spruce.services.model import DynoUsage, TelemetryDrainSpec, TelemetryTarget

from .drain import DrainPipeline, DrainSettings
from .ingest import add_resource, decode
from .signals import log_record, router_span


@dataclass
class AppTelemetry:
    """One app's drains, resources and meters."""

    app_id: str
    resource_attrs: dict[str, str]
    drains: tuple[TelemetryDrainSpec, ...]
    pipelines: list[DrainPipeline]
    traces: list[DrainPipeline] = field(default_factory=list)
    logs: list[DrainPipeline] = field(default_factory=list)
    meters: MeterProvider | None = None
    usage: Sequence[DynoUsage] = ()
    router_metrics: Any = None
    _resources: dict[str, Resource] = field(default_factory=dict)

    def resource(self, instance: str = "") -> Resource:
        """The app's resource; `instance` (a dyno) as service.instance.id."""
        found = self._resources.get(instance)
        if found is None:
            attrs: dict[str, Any] = dict(self.resource_attrs)
            if instance:
                attrs["service.instance.id"] = instance
            found = self._resources[instance] = Resource(attrs)
            if len(self._resources) > 256:  # dyno names change with every release
                self._resources.clear()
        return found


class RouterMetrics:
    """The router's request rate, latency and H codes for one app (OTel instruments)."""

    def __init__(self, meters: MeterProvider) -> None:
        meter = meters.get_meter("spruce.router", "1")
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Routed request time."
        )
        self.requests = meter.create_counter(
            "heroku.router.requests", unit="{request}", description="Requests routed."
        )
        self.errors = meter.create_counter(
            "heroku.router.errors", unit="{request}", description="Requests ended by an H code."
        )

    def record(self, rec: Sequence[Any]) -> None:
        status = rec[t.R_STATUS]
        attrs: dict[str, Any] = {"http.request.method": rec[t.R_METHOD]}
        if status is not None:
            attrs["http.response.status_code"] = int(status)
        self.duration.record((int(rec[t.R_END]) - int(rec[t.R_START])) / 1e9, attrs)
        self.requests.add(1, attrs)
        if rec[t.R_CODE]:
            self.errors.add(1, {"heroku.router.code": rec[t.R_CODE]})


def _dyno_meters(app: AppTelemetry, meters: MeterProvider) -> None:
    meter = meters.get_meter("spruce.dynos", "1")

    def attrs(u: DynoUsage) -> dict[str, str]:
        return {"heroku.dyno": u.name, "heroku.process_type": u.type}

    def memory(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(u.memory_bytes, attrs(u)) for u in app.usage]

    def limit(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(u.memory_limit_bytes, attrs(u)) for u in app.usage]

    def cpu(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(u.cpu_seconds, attrs(u)) for u in app.usage]

    def restarts(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(u.restarts, attrs(u)) for u in app.usage]

    meter.create_observable_gauge(
        "container.memory.usage", [memory], unit="By", description="Dyno memory in use."
    )
    meter.create_observable_gauge(
        "heroku.dyno.memory.quota", [limit], unit="By", description="The dyno size's memory."
    )
    meter.create_observable_counter(
        "container.cpu.time", [cpu], unit="s", description="CPU time the dyno used."
    )
    meter.create_observable_counter(
        "heroku.dyno.restarts", [restarts], unit="{restart}", description="Dyno restarts."
    )


class OtlpTelemetry:
    """The TelemetryExporter: OTLP over HTTP or gRPC with the OpenTelemetry SDK."""

    def __init__(self, settings: DrainSettings | None = None) -> None:
        self.settings = settings or DrainSettings()
        self._apps: dict[str, AppTelemetry] = {}
        self._lock = threading.Lock()
        self._drops: dict[str, int] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        with self._lock:
            apps, self._apps = list(self._apps.values()), {}
        for app in apps:
            self._close(app)

    # -- targets --------------------------------------------------------------------------
    def set_target(self, target: TelemetryTarget) -> None:
        with self._lock:
            old = self._apps.pop(target.app_id, None)
            if old is not None and old.drains == target.drains:
                # only the resource changed (a release): keep the pipelines
                old.resource_attrs = dict(target.resource)
                old._resources = {}
                if old.meters is not None:
                    self._close_meters(old)
                    self._meters(old)
                self._apps[target.app_id] = old
                return
            if target.drains:
                self._apps[target.app_id] = self._build(target)
        if old is not None:
            self._close(old)

    def _build(self, target: TelemetryTarget) -> AppTelemetry:
        pipelines = [DrainPipeline(d, self.settings) for d in target.drains]
        for p in pipelines:  # a drain remade (PATCH, new release) keeps counting its drops
            p.dropped = self._drops.get(p.spec.id, 0)
        app = AppTelemetry(target.app_id, dict(target.resource), target.drains, pipelines)
        app.traces = [p for p in pipelines if "traces" in p.signals]
        app.logs = [p for p in pipelines if "logs" in p.signals]
        self._meters(app)
        return app

    def _meters(self, app: AppTelemetry) -> None:
        readers = [
            PeriodicExportingMetricReader(
                p.metrics_exporter(),
                export_interval_millis=self.settings.metrics_interval * 1000,
                export_timeout_millis=self.settings.export_timeout * 1000,
            )
            for p in app.pipelines
            if "metrics" in p.signals
        ]
        if not readers:
            return
        app.meters = MeterProvider(metric_readers=readers, resource=app.resource())
        app.router_metrics = RouterMetrics(app.meters)
        _dyno_meters(app, app.meters)

    def _close_meters(self, app: AppTelemetry) -> None:
        meters, app.meters, app.router_metrics = app.meters, None, None
        if meters is not None:
            meters.shutdown(timeout_millis=2000)

    def _close(self, app: AppTelemetry) -> None:
        self._close_meters(app)
        for p in app.pipelines:
            p.close()
            self._drops[p.spec.id] = p.dropped

    def remove_app(self, app_id: str) -> None:
        with self._lock:
            old = self._apps.pop(app_id, None)
        if old is not None:
            self._close(old)

    def drops(self, drain_id: str) -> int:
        for app in list(self._apps.values()):
            for p in app.pipelines:
                if p.spec.id == drain_id:
                    return p.dropped
        return self._drops.get(drain_id, 0)

    def wants_router_spans(self, app_id: str) -> bool:
        app = self._apps.get(app_id)
        return app is not None and bool(app.traces or app.meters)

    # -- signals in -----------------------------------------------------------------------
    def log_line(self, app_id: str, when: float, source: str, process: str, text: str) -> None:
        """The log router's tap: every line of every app (kept for apps with a logs drain)."""
        app = self._apps.get(app_id)
        if app is None or not app.logs:
            return
        instance = process if source == "app" and process not in ("api", "router") else ""
        record = log_record(when, source, process, text, app.resource(instance))
        for p in app.logs:
            p.offer_log(record)

    def router_spans(self, records: Sequence[Sequence[Any]]) -> None:
        """Span records from the router workers (apps with a traces or metrics drain)."""
        for rec in records:
            app = self._apps.get(str(rec[t.R_APP]))
            if app is None:
                continue
            if app.traces:
                span = router_span(rec, app.resource(str(rec[t.R_DYNO] or "")))
                for p in app.traces:
                    p.offer_span(span)
            metrics = app.router_metrics
            if metrics is not None:
                metrics.record(rec)

    def record_dyno_usage(self, app_id: str, usage: Sequence[DynoUsage]) -> None:
        app = self._apps.get(app_id)
        if app is not None:
            app.usage = tuple(usage)

    def receive(self, app_id: str, signal: str, payload: bytes, content_type: str) -> None:
        msg = decode(signal, payload, content_type)  # (ValueError for the dyno's SDK)
        app = self._apps.get(app_id)
        if app is None:
            return
        targets = [p for p in app.pipelines if signal in p.signals]
        if targets:
            add_resource(signal, msg, app.resource_attrs)
            for p in targets:
                p.offer_request(signal, msg)
