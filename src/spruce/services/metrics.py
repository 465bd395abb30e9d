"""Application metrics: what the router and the dyno backend measured, over time.

The router's log lines (response time, status, H code) and the dyno backend's samples
(memory, load) arrive as events; they are kept per app in fixed time buckets for a bounded
retention window, in memory (like Heroku's metrics, they are not the app's data). Response
times go into a log-scaled histogram per bucket, so p50/p95/p99 cost constant memory and
are within 5% of the measured value.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .events import AppDeleted, DynosMeasured, EventBus, RequestsMeasured
from .model import DynoSample, RequestSample

# Histogram bins: 0 ms, then bins growing by 10% (the middle is within 5% of any value).
_GROWTH = 1.1
_LOG_GROWTH = math.log(_GROWTH)
MAX_DYNOS_PER_APP = 200  # a bound on what one bucket keeps, whatever the formation


def _bin(ms: int) -> int:
    return 0 if ms <= 0 else 1 + int(math.log(ms) / _LOG_GROWTH)


def _bin_value(b: int) -> float:
    """The middle of a bin, geometrically."""
    if b == 0:
        return 0.0
    low = _GROWTH ** (b - 1)
    return low * math.sqrt(_GROWTH)


class Histogram:
    """Counts of values in log-scaled bins."""

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.count = 0

    def add(self, ms: int) -> None:
        b = _bin(ms)
        self.bins[b] = self.bins.get(b, 0) + 1
        self.count += 1

    def percentile(self, q: float) -> float | None:
        """The value below which a share q (0..1) of the values fall; None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return _bin_value(b)
        return _bin_value(max(self.bins))  # pragma: no cover - rank <= count


@dataclass
class _DynoStat:
    memory_sum: float = 0.0
    memory_max: float = 0.0
    load_sum: float = 0.0
    load_max: float = 0.0
    samples: int = 0
    quota_mb: float = 0.0


@dataclass
class _Bucket:
    start: int
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    service: Histogram = field(default_factory=Histogram)
    dynos: dict[str, _DynoStat] = field(default_factory=dict)


@dataclass(frozen=True)
class DynoPoint:
    memory_mb: float
    memory_max_mb: float
    memory_quota_mb: float
    load_avg: float
    load_max: float


@dataclass(frozen=True)
class MetricsPoint:
    """One bucket: `start` in seconds since the epoch."""

    start: int
    requests: int
    statuses: dict[str, int]
    """Requests by status class: "2xx", "3xx", "4xx", "5xx"."""
    codes: dict[str, int]
    """Router errors by H code."""
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    dynos: dict[str, DynoPoint]


@dataclass(frozen=True)
class MetricsView:
    app_id: str
    bucket_seconds: int
    points: tuple[MetricsPoint, ...]

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.points)

    @property
    def dyno_names(self) -> tuple[str, ...]:
        names = {n for p in self.points for n in p.dynos}
        return tuple(sorted(names))


@dataclass(frozen=True)
class MetricsSettings:
    bucket_seconds: int = 60
    retention_seconds: int = 24 * 3600


class Metrics:
    """A bounded store of each app's measurements (thread-safe: events arrive on the loop,
    readers run in the API's threads)."""

    def __init__(
        self,
        events: EventBus,
        settings: MetricsSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or MetricsSettings()
        if self.settings.bucket_seconds < 1 or self.settings.retention_seconds < 1:
            raise ValueError("metrics buckets and retention must be at least a second")
        self._clock = clock
        self._lock = threading.Lock()
        self._apps: dict[str, deque[_Bucket]] = {}
        events.subscribe(RequestsMeasured, lambda e: self.record_requests(e.samples))
        events.subscribe(DynosMeasured, lambda e: self.record_dynos(e.samples))
        events.subscribe(AppDeleted, lambda e: self.forget(e.app_id))

    @property
    def _max_buckets(self) -> int:
        s = self.settings
        return s.retention_seconds // s.bucket_seconds + 1

    def _bucket(self, app_id: str, at: float) -> _Bucket | None:
        """The bucket for a time (None when it is older than the oldest kept)."""
        size = self.settings.bucket_seconds
        start = int(at // size) * size
        buckets = self._apps.get(app_id)
        if buckets is None:
            buckets = self._apps[app_id] = deque(maxlen=self._max_buckets)
        if buckets and buckets[-1].start == start:
            return buckets[-1]
        if not buckets or buckets[-1].start < start:
            bucket = _Bucket(start)
            buckets.append(bucket)
            return bucket
        for b in reversed(buckets):  # a late sample (another worker's batch)
            if b.start == start:
                return b
            if b.start < start:
                break
        return None

    def record_requests(self, samples: Iterable[RequestSample]) -> None:
        with self._lock:
            for r in samples:
                b = self._bucket(r.app_id, r.at)
                if b is None:
                    continue
                b.requests += 1
                if r.status is not None:
                    cls = f"{r.status // 100}xx"
                    b.statuses[cls] = b.statuses.get(cls, 0) + 1
                if r.code:
                    b.codes[r.code] = b.codes.get(r.code, 0) + 1
                if r.service_ms is not None:
                    b.service.add(r.service_ms)

    def record_dynos(self, samples: Iterable[DynoSample]) -> None:
        with self._lock:
            for d in samples:
                b = self._bucket(d.app_id, d.at)
                if b is None:
                    continue
                stat = b.dynos.get(d.dyno)
                if stat is None:
                    if len(b.dynos) >= MAX_DYNOS_PER_APP:
                        continue
                    stat = b.dynos[d.dyno] = _DynoStat()
                stat.samples += 1
                stat.memory_sum += d.memory_mb
                stat.memory_max = max(stat.memory_max, d.memory_mb)
                stat.load_sum += d.load_avg_1m
                stat.load_max = max(stat.load_max, d.load_avg_1m)
                stat.quota_mb = d.memory_quota_mb

    def forget(self, app_id: str) -> None:
        with self._lock:
            self._apps.pop(app_id, None)

    def series(self, app_id: str, window_seconds: int) -> MetricsView:
        """The app's points over the last window (capped at the retention), one per bucket,
        empty buckets included, oldest first."""
        size = self.settings.bucket_seconds
        window = max(size, min(int(window_seconds), self.settings.retention_seconds))
        now = self._clock()
        last = int(now // size) * size
        first = last - (window // size - 1) * size
        with self._lock:
            kept = {b.start: b for b in self._apps.get(app_id, ()) if b.start >= first}
            points = tuple(
                _point(kept[start]) if start in kept else _empty(start)
                for start in range(first, last + 1, size)
            )
        return MetricsView(app_id, size, points)

    # -- across restarts: the platform writes the store when it stops, reads it when it starts
    def save(self, path: Path) -> None:
        with self._lock:
            data = {
                app_id: [_bucket_json(b) for b in buckets] for app_id, buckets in self._apps.items()
            }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"bucket_seconds": self.settings.bucket_seconds, "apps": data}, f)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        """What `save` wrote, less what is past the retention (nothing when the bucket size
        changed or the file is unreadable: metrics are not worth failing a start for)."""
        try:
            data = json.loads(path.read_text())
            if data.get("bucket_seconds") != self.settings.bucket_seconds:
                return
            oldest = self._clock() - self.settings.retention_seconds
            loaded = {
                app_id: deque(
                    (b for b in map(_bucket_from, rows) if b.start >= oldest),
                    maxlen=self._max_buckets,
                )
                for app_id, rows in data["apps"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return
        with self._lock:
            self._apps.update(loaded)


def _bucket_json(b: _Bucket) -> dict[str, Any]:
    return {
        "start": b.start,
        "requests": b.requests,
        "statuses": b.statuses,
        "codes": b.codes,
        "service": {str(k): v for k, v in b.service.bins.items()},
        "dynos": {name: asdict(stat) for name, stat in b.dynos.items()},
    }


def _bucket_from(raw: dict[str, Any]) -> _Bucket:
    b = _Bucket(int(raw["start"]), int(raw["requests"]), dict(raw["statuses"]), dict(raw["codes"]))
    for k, v in raw["service"].items():
        b.service.bins[int(k)] = int(v)
        b.service.count += int(v)
    b.dynos = {name: _DynoStat(**stat) for name, stat in raw["dynos"].items()}
    return b


def _empty(start: int) -> MetricsPoint:
    return MetricsPoint(start, 0, {}, {}, None, None, None, {})


def _point(b: _Bucket) -> MetricsPoint:
    h = b.service
    return MetricsPoint(
        b.start,
        b.requests,
        dict(b.statuses),
        dict(b.codes),
        h.percentile(0.50),
        h.percentile(0.95),
        h.percentile(0.99),
        {
            name: DynoPoint(
                s.memory_sum / s.samples,
                s.memory_max,
                s.quota_mb,
                s.load_sum / s.samples,
                s.load_max,
            )
            for name, s in b.dynos.items()
            if s.samples
        },
    )
