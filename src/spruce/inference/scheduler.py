"""Fair queueing of model slots among apps, and per-key rate limits.

`FairQueue`: a model has `slots` sequences it decodes at once. One app holds at most
`slots - 1` of them, so another app's request always finds a slot free at once, however
long the first app's generations are (slots cannot be taken back mid-generation). When a
slot frees, it goes to the waiting app that holds the fewest slots, ties to the app served
longest ago; each app's own requests stay in order. The queue is bounded: past
`max_waiting`, a request is refused at once rather than left hanging.

`RateLimiter`: two token buckets per key (requests and tokens per minute), refilled
continuously. A request is admitted while both have something left; its real token count
is spent after it finishes (so one large request may overdraw the tokens bucket, and the
next request waits until it refills).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .link import Limits


class QueueFull(Exception):
    pass


class FairQueue:
    def __init__(self, slots: int, max_waiting: int = 64, per_app: int | None = None) -> None:
        self.slots = slots
        self.per_app = per_app or max(1, slots - 1)
        self.max_waiting = max_waiting
        self.running: Counter[str] = Counter()
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._served: dict[str, int] = {}
        self._tick = 0
        self.served_total = 0

    @property
    def busy(self) -> int:
        return sum(self.running.values())

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def stats(self) -> dict[str, int]:
        return {
            "slots": self.slots,
            "slots_per_app": self.per_app,
            "running": self.busy,
            "waiting": self.waiting,
        }

    def app_stats(self, app_id: str) -> dict[str, int]:
        return {
            "running": self.running.get(app_id, 0),
            "waiting": len(self._waiting.get(app_id, ())),
        }

    def _grant(self, app_id: str) -> None:
        self.running[app_id] += 1
        self._tick += 1
        self._served[app_id] = self._tick
        self.served_total += 1

    def _next_app(self) -> str | None:
        candidates = [
            a for a, q in self._waiting.items() if q and self.running.get(a, 0) < self.per_app
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda a: (self.running.get(a, 0), self._served.get(a, 0)))

    def _release(self, app_id: str) -> None:
        self.running[app_id] -= 1
        if self.running[app_id] <= 0:
            del self.running[app_id]
        self._wake()

    def _wake(self) -> None:
        while self.busy < self.slots:
            app = self._next_app()
            if app is None:
                return
            fut = self._waiting[app].popleft()
            if not self._waiting[app]:
                del self._waiting[app]
            if fut.done():  # cancelled while waiting
                continue
            self._grant(app)
            fut.set_result(None)

    async def acquire(self, app_id: str) -> None:
        free = self.busy < self.slots and self.running.get(app_id, 0) < self.per_app
        if free and not self._waiting.get(app_id) and self._next_app() is None:
            self._grant(app_id)
            return
        if self.waiting >= self.max_waiting:
            raise QueueFull()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(app_id, deque()).append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release(app_id)  # granted just as we were cancelled
            else:
                fut.cancel()
                q = self._waiting.get(app_id)
                if q is not None:
                    with contextlib.suppress(ValueError):
                        q.remove(fut)
                    if not q:
                        del self._waiting[app_id]
            raise

    @contextlib.asynccontextmanager
    async def slot(self, app_id: str) -> AsyncIterator[None]:
        await self.acquire(app_id)
        try:
            yield
        finally:
            self._release(app_id)


@dataclass
class _Bucket:
    level: float
    at: float


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _level(self, key: str, kind: str, per_minute: int) -> _Bucket:
        now = self.clock()
        b = self._buckets.get((key, kind))
        if b is None:
            b = self._buckets[(key, kind)] = _Bucket(float(per_minute), now)
        else:
            b.level = min(float(per_minute), b.level + (now - b.at) * per_minute / 60.0)
            b.at = now
        return b

    def _retry(self, b: _Bucket, per_minute: int, need: float) -> int:
        return max(1, math.ceil((need - b.level) * 60.0 / per_minute))

    def admit(self, key: str, limits: Limits) -> dict[str, str]:
        """Take one request, or raise RateLimited. Answers the RateLimit headers."""
        headers: dict[str, str] = {}
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if tpm:
            t = self._level(key, "tokens", tpm)
            if t.level <= 0:
                raise RateLimited("tokens", self._retry(t, tpm, 1))
            headers["x-ratelimit-remaining-tokens"] = str(int(t.level))
        if rpm:
            r = self._level(key, "requests", rpm)
            if r.level < 1:
                raise RateLimited("requests", self._retry(r, rpm, 1))
            r.level -= 1
            headers["x-ratelimit-remaining-requests"] = str(int(r.level))
        return headers

    def spend(self, key: str, limits: Limits, tokens: int) -> None:
        if limits.tokens_per_minute and tokens > 0:
            self._level(key, "tokens", limits.tokens_per_minute).level -= tokens
