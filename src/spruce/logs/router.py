"""The log router: Spruce's Logplex.

Every producer calls `LogRouter.emit`; the router keeps the last lines of each app in a ring
buffer, feeds log sessions (`spruce logs`, `heroku logs --tail`) and forwards every line to
the app's drains. `emit` does a constant amount of work and never waits: readers follow the
ring buffer by sequence number, drains have bounded buffers that drop and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable

from spruce.logs.buffer import AppLog, Waiter
from spruce.logs.config import LogRouterConfig
from spruce.logs.drains import (
    DrainSpec,
    DrainStatus,
    DrainWorker,
    make_worker,
    validate_drain_url,
)
from spruce.logs.framing import l10_text
from spruce.logs.lines import (
    LogLine,
    check_process,
    check_source,
    decode_message,
    process_matches,
    split_message,
)
from spruce.logs.sessions import LogSession, LogSessionApp, SessionRegistry

LogTap = Callable[[str, float, str, str, str], None]
"""Hears every line: (app_id, epoch seconds, source, process, text)."""


class LogRouter:
    """Implements `spruce.events.LogSink`.

    Thread model: `emit` may be called from any thread. Everything else (`start`, `stop`,
    `set_drains`, `remove_app`, serving `asgi_app`) runs on the control plane's event loop.
    """

    def __init__(
        self,
        config: LogRouterConfig | None = None,
        *,
        drain_ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        tap: LogTap | None = None,
    ) -> None:
        self.config = config or LogRouterConfig()
        self._tap = tap
        self._clock = clock
        self._lock = threading.Lock()
        self._apps: dict[str, AppLog] = {}
        self._app_drains: dict[str, tuple[DrainWorker, ...]] = {}
        self._drains: dict[str, DrainWorker] = {}
        self._ssl_context = drain_ssl_context
        self._sessions = SessionRegistry(self)
        self._asgi = LogSessionApp(self)
        self._running = False
        self._housekeeper: asyncio.Task[None] | None = None

    # --- producing ------------------------------------------------------------------------

    def emit(
        self,
        app_id: str,
        source: str,
        process: str,
        message: str | bytes,
        ts: float | None = None,
    ) -> None:
        """Record output for an app. Bytes and invalid UTF-8 are accepted; several lines or an
        over-long line become several lines. Raises ValueError only for a bad source/process
        (a programming error in the producer)."""
        self._emit(app_id, check_source(source), check_process(process), message, ts, None)

    def _emit(
        self,
        app_id: str,
        source: str,
        process: str,
        message: str | bytes,
        ts: float | None,
        skip_drain: DrainWorker | None,
    ) -> None:
        texts = split_message(decode_message(message), self.config.max_line_bytes)
        # A bad timestamp from a producer must not break every later read of the stream.
        when = ts if ts is not None and _MIN_TS <= ts < _MAX_TS else self._clock()
        with self._lock:
            log = self._apps.get(app_id)
            if log is None:
                log = self._apps[app_id] = AppLog(self.config.buffer_lines)
            drains = self._app_drains.get(app_id, ())
            for text in texts:
                log.seq += 1
                line = LogLine(log.seq, when, source, process, text)
                log.lines.append(line)
                for drain in drains:
                    if drain is not skip_drain:
                        drain.offer(line)
            waiters = tuple(log.waiters) if log.waiters else ()
        for waiter in waiters:
            waiter.wake()
        for drain in drains:
            if drain is not skip_drain:
                drain.notify()
        tap = self._tap
        if tap is not None:  # (telemetry drains: it keeps only apps with a logs drain)
            for text in texts:
                tap(app_id, when, source, process, text)

    # --- reading --------------------------------------------------------------------------

    def recent(
        self,
        app_id: str,
        lines: int = 100,
        source: str | None = None,
        dyno: str | None = None,
    ) -> tuple[list[LogLine], int]:
        """The last `lines` matching lines (oldest first) and the app's current sequence
        number (a tail continues after it)."""
        with self._lock:
            log = self._apps.get(app_id)
            if log is None:
                return [], 0
            head = log.seq
            snapshot = list(log.lines) if (source or dyno) else None
            if snapshot is None:
                n = min(lines, len(log.lines))
                picked = list(log.lines)[len(log.lines) - n :] if n else []
                return picked, head
        matching = [ln for ln in snapshot if _matches(ln, source, dyno)]
        return (matching[len(matching) - lines :] if lines else []), head

    def lines_after(
        self, app_id: str, seq: int, source: str | None = None, dyno: str | None = None
    ) -> tuple[list[LogLine], int]:
        """Matching lines newer than `seq`, and the sequence number they bring the reader to."""
        with self._lock:
            log = self._apps.get(app_id)
            if log is None:
                return [], seq
            found, _skipped = log.after(seq)
            head = log.seq
        if source or dyno:
            found = [ln for ln in found if _matches(ln, source, dyno)]
        return found, max(head, seq)

    def head(self, app_id: str) -> int:
        with self._lock:
            log = self._apps.get(app_id)
            return log.seq if log else 0

    def add_waiter(self, app_id: str, waiter: Waiter) -> None:
        with self._lock:
            log = self._apps.get(app_id)
            if log is None:
                log = self._apps[app_id] = AppLog(self.config.buffer_lines)
            log.waiters.add(waiter)

    def remove_waiter(self, app_id: str, waiter: Waiter) -> None:
        with self._lock:
            log = self._apps.get(app_id)
            if log is not None:
                log.waiters.discard(waiter)

    # --- log sessions ---------------------------------------------------------------------

    def create_session(
        self,
        app_id: str,
        lines: int = 100,
        tail: bool = False,
        source: str | None = None,
        dyno: str | None = None,
    ) -> str:
        """Create a single-purpose log session; returns its secret token. The URL to hand out
        is the mount point of `asgi_app` + `session_path(token)`. Raises LogSessionError
        (a ValueError) for bad parameters."""
        return self._sessions.create(app_id, lines, tail, source, dyno).token

    def session(self, token: str) -> LogSession | None:
        return self._sessions.peek(token)

    @property
    def sessions(self) -> SessionRegistry:
        return self._sessions

    @staticmethod
    def session_path(token: str) -> str:
        return f"/{token}"

    @property
    def asgi_app(self) -> LogSessionApp:
        """ASGI app serving `GET /<token>` (SSE with `Accept: text/event-stream`, else
        plain text). Mount it anywhere: only the last path segment is read."""
        return self._asgi

    # --- drains ---------------------------------------------------------------------------

    def set_drains(self, app_id: str, drains: Iterable[DrainSpec]) -> None:
        """Make `drains` the app's complete set of drains. Unchanged drains keep their
        connection and buffer; removed ones stop; URLs are validated first (ValueError)."""
        specs = list(drains)
        ids = [s.id for s in specs]
        if len(set(ids)) != len(ids):
            raise ValueError("drain ids must be unique")
        for spec in specs:
            validate_drain_url(spec.url)
            other = self._drains.get(spec.id)
            if other is not None and other.app_id != app_id:
                raise ValueError(f"drain {spec.id} belongs to another app")
        old = {w.spec.id: w for w in self._app_drains.get(app_id, ())}
        workers: list[DrainWorker] = []
        for spec in specs:
            current = old.pop(spec.id, None)
            if current is not None and current.spec == spec:
                workers.append(current)
                continue
            if current is not None:
                current.stop()
            worker = make_worker(app_id, spec, self.config, self._ssl_context, self._clock)
            workers.append(worker)
            if self._running:
                worker.start()
        with self._lock:
            if workers:
                self._app_drains[app_id] = tuple(workers)
            else:
                self._app_drains.pop(app_id, None)
        for gone in old.values():
            gone.stop()
            self._drains.pop(gone.spec.id, None)
        for worker in workers:
            self._drains[worker.spec.id] = worker

    def drains(self, app_id: str) -> list[DrainSpec]:
        return [w.spec for w in self._app_drains.get(app_id, ())]

    def drain_status(self, drain_id: str) -> DrainStatus:
        """Raises KeyError for an unknown drain id."""
        return self._drains[drain_id].status()

    def drain_state(self, drain_id: str) -> str | None:
        worker = self._drains.get(drain_id)
        return worker.status().state if worker is not None else None

    @staticmethod
    def check_drain_url(url: str) -> None:
        """A ValueError (a sentence for the user) for a URL no drain can deliver to."""
        validate_drain_url(url)

    def remove_app(self, app_id: str) -> None:
        """Forget an app: its lines, sessions and drains."""
        with self._lock:
            self._apps.pop(app_id, None)
            workers = self._app_drains.pop(app_id, ())
        for worker in workers:
            worker.stop()
            self._drains.pop(worker.spec.id, None)
        self._sessions.remove_app(app_id)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start drain tasks and housekeeping (session expiry, L10 reports)."""
        if self._running:
            return
        self._running = True
        for worker in self._drains.values():
            worker.start()
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="logs-housekeeping")

    async def stop(self) -> None:
        self._running = False
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None
        await asyncio.gather(*(w.aclose() for w in list(self._drains.values())))
        await self._asgi.close_streams()

    async def _housekeeping(self) -> None:
        interval = max(0.05, min(self.config.l10_interval, self.config.session_ttl / 4, 5.0))
        next_l10 = time.monotonic() + self.config.l10_interval
        while True:
            await asyncio.sleep(interval)
            self._sessions.expire()
            if time.monotonic() >= next_l10:
                next_l10 = time.monotonic() + self.config.l10_interval
                self.report_overflows()

    def report_overflows(self) -> None:
        """Write `Error L10` into each overflowing drain's app stream (not into that drain:
        it gets its own L10 frame once it accepts lines again, as Logplex does)."""
        for worker in list(self._drains.values()):
            report = worker.take_overflow_report()
            if report is not None:
                dropped, since = report
                self._emit(
                    worker.app_id, "heroku", "logplex", l10_text(dropped, since), None, worker
                )


_MIN_TS, _MAX_TS = 0.0, 253402300800.0  # 1970 .. year 10000


def _matches(line: LogLine, source: str | None, dyno: str | None) -> bool:
    return (source is None or line.source == source) and process_matches(line.process, dyno)
