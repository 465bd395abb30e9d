"""What every drain shares: a bounded line buffer that drops and counts, overflow (L10)
bookkeeping, reconnection with exponential backoff, and a status for the API."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spruce.logs.config import LogRouterConfig
from spruce.logs.drains.urls import DrainURL, validate_drain_url
from spruce.logs.lines import LogLine
from spruce.services.model import DrainSpec


@dataclass(frozen=True)
class DrainStatus:
    id: str
    state: str
    """`connecting` (no attempt finished yet), `connected`, `failing` or `stopped`."""
    sent: int
    dropped: int
    """Lines lost since the drain was added: buffer overflows and undeliverable batches."""
    buffered: int
    last_error: str | None
    last_error_at: float | None


class DrainWorker(ABC):
    """One drain: `offer` is called by `emit` (any thread, under the router lock); the
    asyncio task `_run` connects, sends and reconnects."""

    def __init__(
        self,
        app_id: str,
        spec: DrainSpec,
        config: LogRouterConfig,
        ssl_context: ssl.SSLContext | None,
        clock: Callable[[], float],
    ) -> None:
        self.app_id = app_id
        self.spec = spec
        self.url: DrainURL = validate_drain_url(spec.url)
        self.config = config
        self.ssl_context = ssl_context
        self.clock = clock
        self.buffer: deque[LogLine] = deque()
        self.state = "connecting"
        self.sent = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._counts = threading.Lock()
        # Lines dropped and not yet reported into the app's stream / into this drain.
        self._unreported: tuple[int, float] | None = None
        self._undelivered: tuple[int, float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._waiting = False
        self._backoff = config.drain_backoff_min

    # --- producer side (emit) -------------------------------------------------------------

    def offer(self, line: LogLine) -> None:
        if len(self.buffer) < self.config.drain_buffer_lines:
            self.buffer.append(line)
        else:
            self.record_loss(1, line.ts)

    def notify(self) -> None:
        if not self._waiting or self._wake is None:
            return
        if threading.get_ident() == self._thread_id:
            self._wake.set()
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    def record_loss(self, count: int, since: float) -> None:
        with self._counts:
            self.dropped += count
            n, t = self._unreported or (0, since)
            self._unreported = (n + count, t)
            n, t = self._undelivered or (0, since)
            self._undelivered = (n + count, t)

    def take_overflow_report(self) -> tuple[int, float] | None:
        """(dropped, since) for an L10 line in the app's stream, once per overflow episode."""
        with self._counts:
            report, self._unreported = self._unreported, None
        return report

    def take_undelivered(self) -> tuple[int, float] | None:
        """(dropped, since) for an L10 frame sent to this drain ahead of its next lines."""
        with self._counts:
            report, self._undelivered = self._undelivered, None
        return report

    def restore_undelivered(self, report: tuple[int, float]) -> None:
        with self._counts:
            n, t = self._undelivered or (0, report[1])
            self._undelivered = (n + report[0], min(t, report[1]))

    # --- consumer side (task) -------------------------------------------------------------

    def take_batch(self, limit: int) -> list[LogLine]:
        out: list[LogLine] = []
        buf = self.buffer
        while buf and len(out) < limit:
            out.append(buf.popleft())
        return out

    async def wait_for_lines(self, also: asyncio.Future[Any] | None = None) -> None:
        """Return once the buffer has lines (or `also` completes)."""
        assert self._wake is not None
        while not self.buffer and not (also is not None and also.done()):
            self._wake.clear()
            self._waiting = True
            try:
                if self.buffer:
                    return
                await self._wake.wait()
            finally:
                self._waiting = False

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"drain-{self.spec.id}")

    def stop(self) -> None:
        self.state = "stopped"
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        self.state = "stopped"
        if task is not None:
            # Python 3.11's asyncio.wait_for can swallow a cancellation that lands as the
            # awaited write completes: the worker then goes back to waiting for lines and
            # would be awaited for ever. Cancel again until it has ended.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        await self.close_transport()

    def status(self) -> DrainStatus:
        return DrainStatus(
            id=self.spec.id,
            state=self.state,
            sent=self.sent,
            dropped=self.dropped,
            buffered=len(self.buffer),
            last_error=self.last_error,
            last_error_at=self.last_error_at,
        )

    async def _supervise(self) -> None:
        try:
            while True:
                try:
                    await self.run_connection()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # any failure: record, back off, reconnect
                    self.fail(exc)
                await self.close_transport()
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, self.config.drain_backoff_max)
        finally:
            # Also when cancelled (drain removed or replaced): never leak the connection.
            self.state = "stopped"
            await self.close_transport()

    def connected(self) -> None:
        self.state = "connected"
        self._backoff = self.config.drain_backoff_min

    def fail(self, exc: BaseException | str) -> None:
        self.state = "failing"
        self.last_error = self.redact(exc if isinstance(exc, str) else describe(exc))
        self.last_error_at = self.clock()

    def redact(self, text: str) -> str:
        for secret in (self.url.password, self.url.parts.username, self.spec.token):
            if secret:
                text = text.replace(secret, "***")
        return text

    # --- for subclasses -------------------------------------------------------------------

    @abstractmethod
    async def run_connection(self) -> None:
        """Connect and send until something breaks (raise) or cancelled."""

    async def close_transport(self) -> None:
        return None


class DrainError(ConnectionError):
    """A drain failure whose message is already user-facing."""


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, DrainError):
        return text
    name = type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) and not text:
        return "timed out"
    return f"{name}: {text}" if text else name
