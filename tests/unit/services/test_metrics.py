"""The metrics store: buckets, retention, percentiles; and the router line they come from."""

from __future__ import annotations

import random

from spruce.events import PrintLogSink
from spruce.router.logline import RouterLine
from spruce.router.measures import MeasuringLogSink, parse_request
from spruce.services.events import DynosMeasured, EventBus, RequestsMeasured
from spruce.services.metrics import Histogram, Metrics, MetricsSettings
from spruce.services.model import DynoSample, RequestSample


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_percentiles_are_within_five_percent_of_the_measured_values() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(4, 1.2)) + 1 for _ in range(5000)]
    h = Histogram()
    for v in values:
        h.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[int(q * len(ordered)) - 1]
        got = h.percentile(q)
        assert got is not None
        assert abs(got - exact) <= 0.06 * exact + 1, (q, got, exact)
    assert Histogram().percentile(0.5) is None


def test_requests_and_dynos_land_in_their_buckets_and_gaps_are_empty() -> None:
    bus = EventBus()
    clock = Clock(10_000.0)
    m = Metrics(bus, MetricsSettings(bucket_seconds=10, retention_seconds=60), clock)
    bus.publish(
        RequestsMeasured(
            (
                RequestSample("a", 9_981.0, 200, 12, None),
                RequestSample("a", 9_982.0, 503, 30000, "H12"),
                RequestSample("a", 10_000.5, 200, 8, None),
                RequestSample("b", 10_000.5, 200, 8, None),
            )
        )
    )
    bus.publish(DynosMeasured((DynoSample("a", "web.1", 10_000.2, 40.0, 512.0, 0.5),)))
    view = m.series("a", 60)
    assert [p.start for p in view.points] == list(range(9_950, 10_001, 10))
    by_start = {p.start: p for p in view.points}
    assert by_start[9_980].requests == 2
    assert by_start[9_980].codes == {"H12": 1}
    assert by_start[9_980].statuses == {"2xx": 1, "5xx": 1}
    assert by_start[9_990].requests == 0 and by_start[9_990].p50_ms is None
    assert by_start[10_000].dynos["web.1"].memory_mb == 40.0
    assert view.requests == 3 and view.dyno_names == ("web.1",)


def test_retention_drops_old_buckets_and_late_samples() -> None:
    bus = EventBus()
    clock = Clock(1_000.0)
    m = Metrics(bus, MetricsSettings(bucket_seconds=10, retention_seconds=30), clock)
    for t in range(900, 1_001, 10):
        m.record_requests([RequestSample("a", float(t), 200, 5, None)])
    m.record_requests([RequestSample("a", 850.0, 200, 5, None)])  # older than kept: dropped
    assert len(m._apps["a"]) == 4  # the retention's buckets and the current one, no more
    assert m.series("a", 3600).requests == 3  # the window is capped at the retention
    m.forget("a")
    assert m.series("a", 30).requests == 0


def test_the_router_line_gives_status_service_time_and_h_code() -> None:
    ok = RouterLine(
        "GET",
        '/x service=1ms status=999"',
        "a.example",
        "rid",
        "1.2.3.4",
        "http1.1",
        False,
        "unknown",
        dyno="web.1",
        connect_ms=1,
        service_ms=42,
        status=201,
        bytes=3,
    )
    got = parse_request("app", ok.format(), 5.0)
    assert got == RequestSample("app", 5.0, 201, 42, None)
    err = RouterLine(
        "GET",
        "/",
        "a.example",
        "rid",
        "1.2.3.4",
        "http1.1",
        False,
        "unknown",
        status=503,
        service_ms=30000,
        code="H12",
    )
    assert parse_request("app", err.format(), 5.0) == RequestSample("app", 5.0, 503, 30000, "H12")
    assert parse_request("app", "Scaled to web@1:Basic", 5.0) is None


def test_the_measuring_sink_passes_every_line_on_and_measures_router_lines() -> None:
    inner = PrintLogSink()
    got: list[tuple[RequestSample, ...]] = []
    sink = MeasuringLogSink(inner, got.append)
    line = RouterLine(
        "GET", "/", "h", "r", "f", "http1.1", False, "unknown", status=200, service_ms=3
    ).format()
    sink.emit("app", "heroku", "router", line, 7.0)
    sink.emit("app", "app", "web.1", line, 7.0)  # an app printing a look-alike is not measured
    assert len(inner.lines) == 2
    assert got == [(RequestSample("app", 7.0, 200, 3, None),)]


def test_the_store_survives_a_restart_less_what_aged_out(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = Clock(10_000.0)
    settings = MetricsSettings(bucket_seconds=10, retention_seconds=100)
    m = Metrics(EventBus(), settings, clock)
    m.record_requests([RequestSample("a", 9_950.0, 500, 120, "H12")])
    m.record_requests([RequestSample("a", 9_995.0, 200, 40, None)])
    m.record_dynos([DynoSample("a", "web.1", 9_995.0, 33.0, 512.0, 0.25)])
    path = tmp_path / "metrics.json"
    m.save(path)
    clock.now = 10_060.0  # the 9_950 bucket is now past the retention
    again = Metrics(EventBus(), settings, clock)
    again.load(path)
    view = again.series("a", 100)
    assert view.requests == 1
    point = next(p for p in view.points if p.requests)
    assert point.statuses == {"2xx": 1} and point.p50_ms is not None
    assert abs(point.p50_ms - 40) <= 2 and point.dynos["web.1"].memory_mb == 33.0
    other = Metrics(EventBus(), MetricsSettings(bucket_seconds=60), clock)
    other.load(path)  # another bucket size: nothing is mixed in
    assert other.series("a", 3600).requests == 0
    path.write_text("{not json")
    Metrics(EventBus(), settings, clock).load(path)  # unreadable: an empty store, no error
