"""One router's state (a worker process is one Heroku "router"): table, counters, pool."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from .proxy import BackendConn, DynoPool, Quarantine, choose
from .table import App, Dyno, RouteTable
from .timers import RouterTimers

LogEmit = Callable[[str, str], None]  # (app_id, router line)


class FastWaiter(Protocol):
    """A fast lane's exchange waiting for its dyno's response."""

    def on_response(self, data: bytes | None) -> None:
        """The dyno's bytes (None: EOF, or handed over to the coroutine path)."""


class PageCache:
    """MAINTENANCE_PAGE_URL / ERROR_PAGE_URL pages, fetched once and kept a while."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._pages: dict[str, tuple[float, bytes, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, url: str) -> tuple[bytes, str] | None:
        hit = self._pages.get(url)
        if hit and hit[0] > time.monotonic():
            return hit[1], hit[2]
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            hit = self._pages.get(url)
            if hit and hit[0] > time.monotonic():
                return hit[1], hit[2]
            import httpx

            try:
                async with httpx.AsyncClient(timeout=3.0, follow_redirects=True) as client:
                    r = await client.get(url)
                if r.status_code != 200 or len(r.content) > 1 << 20:
                    raise ValueError("unusable page")
                ctype = r.headers.get("content-type", "text/html; charset=utf-8")
                self._pages[url] = (time.monotonic() + self.ttl, r.content, ctype)
                return r.content, ctype
            except Exception:
                # retry a failed fetch soon, serving the built-in page meanwhile
                return None


class Router:
    def __init__(
        self,
        timers: RouterTimers | None = None,
        emit: LogEmit | None = None,
        on_wake: Callable[[str], None] | None = None,
        table: RouteTable | None = None,
        span: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self.timers = timers or RouterTimers()
        self.table = table or RouteTable()
        self.emit: LogEmit = emit or (lambda app_id, line: None)
        # span records of apps with a telemetry drain (router/trace.py)
        self.span: Callable[[list[Any]], None] = span or (lambda record: None)
        self.on_wake = on_wake or (lambda app_id: None)
        self.pool = DynoPool(self.timers.keepalive_idle)
        self.quarantine = Quarantine(self.timers.quarantine)
        self.pages = PageCache(self.timers.page_cache)
        self.inflight: Counter[str] = Counter()
        self.activity: Counter[str] = Counter()
        self.open_connections = 0
        self.connections: Counter[str] = Counter()  # client connections per app (H22)
        self.exchanges: set[asyncio.Task[Any]] = set()  # tasks running an exchange (H24)
        self.stopping = False  # shutdown begun: no new connections, no keepalive
        self.forced = False  # the grace period is over: exchanges still running get H24
        # client transports closed with a response still flushing to a slow reader (aborted
        # after the idle window); a stopping router gives them the grace period
        self.flushing: set[Any] = set()
        self.fast_lane = 0  # exchanges started on the HTTP/1.1 fast lane (tests, benchmarks)
        # HTTP/1.1 fast-lane exchanges waiting for their dyno (lane -> sent_at): a sweep hands
        # the slow ones to the coroutine path, which applies the exact response timeout
        self.fast_waiting: dict[FastWaiter, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._woken: dict[str, float] = {}
        self.on_certificates: Callable[[list[str] | None], None] | None = None
        """Told which certificates' TLS contexts are stale (None: all of them)."""

    # the fast lanes (h1_fast, h2_fast) -----------------------------------
    def take_pooled(self, app: App) -> tuple[Dyno, BackendConn] | None:
        """A random up, unquarantined dyno of `app` with an idle pooled connection, or None
        (the coroutine path then connects, waits or answers the H code)."""
        up = app.up
        quarantine = self.quarantine
        if len(up) == 1:
            dyno = up[0]
            if quarantine._until and quarantine.active(dyno.key):
                return None
        else:
            candidates = [d for d in up if not quarantine.active(d.key)]
            if not candidates:
                return None
            dyno = choose(candidates)
        conn = self.pool.take(dyno.key)  # (never one with bytes the dyno sent unasked)
        if conn is None:
            return None
        return dyno, conn

    def fast_begin(self, app: App) -> None:
        """A fast-lane exchange is in flight (dict.get: no Counter.__missing__ per request)."""
        app_id = app.id
        activity = self.activity
        activity[app_id] = activity.get(app_id, 0) + 1
        inflight = self.inflight
        inflight[app_id] = inflight.get(app_id, 0) + 1
        self.fast_lane += 1

    def fast_end(self, app: App) -> None:
        """The fast lane's exchange is no longer in flight."""
        inflight = self.inflight
        n = inflight.get(app.id, 0) - 1
        if n > 0:
            inflight[app.id] = n
        else:
            inflight.pop(app.id, None)

    def fast_wait(self, lane: FastWaiter, sent_at: float) -> None:
        self.fast_waiting[lane] = sent_at
        if self._sweeper is None:
            if self._loop is None:  # (get_running_loop() costs a getpid(): asked once)
                self._loop = asyncio.get_running_loop()
            self._sweeper = self._loop.call_later(self._sweep_tick(), self._sweep_fast_lane)

    def _sweep_tick(self) -> float:
        return min(0.5, self.timers.response / 4)

    def _sweep_fast_lane(self) -> None:
        self._sweeper = None
        waiting = self.fast_waiting
        tick = self._sweep_tick()
        limit = time.monotonic() - tick
        for lane in [c for c, sent_at in waiting.items() if sent_at <= limit]:
            lane.on_response(None)  # hand over (it leaves `waiting`)
        if waiting and self._loop is not None:
            self._sweeper = self._loop.call_later(tick, self._sweep_fast_lane)

    # table updates -------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def replace_table(self, snapshot: dict[str, Any]) -> None:
        self.table = RouteTable(snapshot)
        self._notify()
        if self.on_certificates:
            self.on_certificates(None)

    def upsert_app(self, app: dict[str, Any]) -> None:
        self.table.upsert_app(app)
        self._notify()

    def remove_app(self, app_id: str) -> None:
        self.table.remove_app(app_id)
        self._notify()

    def set_certificates(self, certs: list[dict[str, Any]], default: dict[str, Any] | None) -> None:
        self.table.set_certificates(certs, default)
        if self.on_certificates:
            self.on_certificates(None)

    def set_app_certificates(self, app_id: str, certs: list[dict[str, Any]]) -> None:
        gone = self.table.set_app_certificates(app_id, certs)
        if self.on_certificates and gone:
            self.on_certificates(gone)

    async def wait_change(self, timeout: float) -> None:
        if timeout <= 0:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            pass

    def wake(self, app_id: str) -> None:
        now = time.monotonic()
        if now - self._woken.get(app_id, 0.0) > 1.0:  # one wake request per second per app
            self._woken[app_id] = now
            self.on_wake(app_id)

    def take_activity(self) -> dict[str, int]:
        out = dict(self.activity)
        self.activity.clear()
        return out


class ConnectionApps:
    """The apps one client connection counts against (H22).

    An HTTP/1.1 connection (`moves=True`) counts against the app of its latest admitted
    request, an HTTP/2 connection against every app it carried an admitted stream for; both
    until `release()` when the connection closes. Whether a request is admitted (H22 among
    the rest) is `admission.refusal`'s to say.
    """

    __slots__ = ("_router", "_moves", "apps")

    def __init__(self, router: Router, moves: bool) -> None:
        self._router = router
        self._moves = moves
        self.apps: set[str] = set()

    def joining(self, app: App) -> int:
        """The connections counted against `app` that this one would join (0 when it counts
        against it already): `admission.refusal`'s `connections`."""
        if app.id in self.apps:
            return 0
        return self._router.connections.get(app.id, 0)  # (dict.get: no Counter.__missing__)

    def count(self, app: App) -> None:
        """Count this connection against `app` (moving an HTTP/1.1 one off its previous
        app): the request was admitted."""
        app_id = app.id
        if app_id in self.apps:
            return
        if self._moves and self.apps:
            self.release()
        counts = self._router.connections
        counts[app_id] = counts.get(app_id, 0) + 1
        self.apps.add(app_id)

    def release(self) -> None:
        counts = self._router.connections
        for app_id in self.apps:
            counts[app_id] -= 1
            if counts[app_id] <= 0:
                del counts[app_id]
        self.apps.clear()
