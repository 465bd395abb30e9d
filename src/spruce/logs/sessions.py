"""Log sessions: the single-purpose `logplex_url` behind `heroku logs` / `spruce logs`.

A session is created by the API (POST /apps/{app}/log-sessions) and read with one GET:

- `Accept: text/event-stream` (Heroku CLI v11, an EventSource): one SSE event per line,
  `id: <line sequence number>` + `data: <formatted line>`.
- anything else (heroku3, curl): plain text, one formatted line per `\\n`.

Without `tail` the stream holds the recent lines and ends; the URL is then spent. With `tail`
it stays open and carries new lines as they are emitted. EventSource reconnects to the same
URL whenever a stream ends (the CLI relies on that for `--tail`), so a tail session accepts
further GETs, one at a time, and resumes after the last line it sent (or after the client's
`Last-Event-ID`): no line is printed twice. Any session not read for `session_ttl` is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spruce.logs.buffer import Waiter
from spruce.logs.framing import sse_comment, sse_event, sse_retry
from spruce.logs.lines import SOURCES, LogLine, display_line

if TYPE_CHECKING:
    from spruce.logs.router import LogRouter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_DYNO_RE = re.compile(r"^[A-Za-z0-9_\-]{1,63}(\.[0-9A-Za-z_\-]{1,32})?$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")


class LogSessionError(ValueError):
    """Bad log session parameters; the message is fit for an API error response."""


@dataclass
class LogSession:
    token: str
    app_id: str
    lines: int
    tail: bool
    source: str | None
    dyno: str | None
    last_seen: float = field(default_factory=time.monotonic)
    active: bool = False
    reader: object | None = None
    """The stream currently reading this session; a newer GET takes over from it."""
    wake_reader: Waiter | None = None
    cursor: int | None = None
    """Sequence number the last stream reached; a reconnection resumes after it."""


class SessionRegistry:
    def __init__(self, router: LogRouter) -> None:
        self._router = router
        self._sessions: dict[str, LogSession] = {}

    def create(
        self, app_id: str, lines: int, tail: bool, source: str | None, dyno: str | None
    ) -> LogSession:
        cfg = self._router.config
        if not isinstance(app_id, str) or not app_id:
            raise LogSessionError("app id is required")
        if isinstance(lines, bool) or not isinstance(lines, int):
            raise LogSessionError("lines must be an integer")
        if lines < 0:
            raise LogSessionError("lines must not be negative")
        # Like Heroku, asking for more than the buffer holds gets what there is.
        lines = min(lines, cfg.max_session_lines)
        if not isinstance(tail, bool):
            raise LogSessionError("tail must be true or false")
        if source is not None and source not in SOURCES:
            raise LogSessionError("source must be 'app' or 'heroku'")
        if dyno is not None and (not isinstance(dyno, str) or not _DYNO_RE.match(dyno)):
            raise LogSessionError("dyno must be a dyno name like 'web.1' or a process type")
        self.expire()
        session = LogSession(secrets.token_urlsafe(32), app_id, lines, tail, source, dyno)
        self._sessions[session.token] = session
        return session

    def peek(self, token: str) -> LogSession | None:
        self.expire()
        return self._sessions.get(token)

    def acquire(self, token: str, reader: object) -> LogSession | None:
        """The session for a GET by `reader`, or None when it does not exist (any more).

        A tail session being read by another connection is taken over: the older stream
        ends. A client whose connection died without the server noticing (NAT timeout,
        sleep) can thus reconnect at once instead of being refused.
        """
        self.expire()
        session = self._sessions.get(token) if _TOKEN_RE.match(token) else None
        if session is None:
            return None
        if session.active and session.wake_reader is not None:
            session.wake_reader.wake()
        session.active = True
        session.reader = reader
        if not session.tail:
            del self._sessions[token]  # one GET per URL
        return session

    def release(self, session: LogSession, reader: object) -> None:
        if session.reader is reader:
            session.active = False
            session.reader = None
            session.wake_reader = None
            session.last_seen = time.monotonic()

    def expire(self) -> None:
        limit = time.monotonic() - self._router.config.session_ttl
        for token in [t for t, s in self._sessions.items() if not s.active and s.last_seen < limit]:
            del self._sessions[token]

    def remove_app(self, app_id: str) -> None:
        for token in [t for t, s in self._sessions.items() if s.app_id == app_id]:
            del self._sessions[token]


class LogSessionApp:
    """Raw ASGI app: GET /<token>. Only the last path segment matters, so it can be mounted
    under any prefix (Starlette `Mount`, a root_path, or run on its own)."""

    def __init__(self, router: LogRouter) -> None:
        self._router = router
        self._streams: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, "Method not allowed.\n", [(b"allow", b"GET, HEAD")])
            return
        token = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        registry = self._router.sessions
        reader = object()
        found = registry.acquire(token, reader)
        if found is None:
            await _plain(send, 404, "Log session not found or expired.\n")
            return
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            sse = b"text/event-stream" in headers.get(b"accept", b"")
            last_id = _int_header(headers.get(b"last-event-id"))
            if scope["method"] == "HEAD":
                await _start(send, sse)
                await send({"type": "http.response.body", "body": b""})
                return
            await _Stream(self._router, found, reader, sse, last_id, receive, send).run()
        finally:
            registry.release(found, reader)
            if task is not None:
                self._streams.discard(task)

    async def close_streams(self) -> None:
        for task in list(self._streams):
            task.cancel()
        for task in list(self._streams):
            with contextlib.suppress(BaseException):
                await task


class _Stream:
    def __init__(
        self,
        router: LogRouter,
        session: LogSession,
        reader: object,
        sse: bool,
        last_event_id: int | None,
        receive: Receive,
        send: Send,
    ) -> None:
        self.router = router
        self.session = session
        self.reader = reader
        self.sse = sse
        self.last_event_id = last_event_id
        self.receive = receive
        self.send = send
        self.closed = False

    def encode(self, lines: list[LogLine]) -> bytes:
        if self.sse:
            return b"".join(sse_event(display_line(ln), ln.seq) for ln in lines)
        return "".join(display_line(ln) + "\n" for ln in lines).encode(
            "utf-8", errors="backslashreplace"
        )

    async def write(self, body: bytes, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def run(self) -> None:
        s, router = self.session, self.router
        if s.cursor is None:
            lines, cursor = router.recent(s.app_id, s.lines, s.source, s.dyno)
        else:
            resume = s.cursor
            if self.last_event_id is not None and self.last_event_id <= router.head(s.app_id):
                resume = self.last_event_id
            lines, cursor = router.lines_after(s.app_id, resume, s.source, s.dyno)
        await _start(self.send, self.sse)
        if not s.tail:
            await self.write(self.encode(lines), more=False)
            return
        first = (sse_retry(router.config.sse_retry_ms) if self.sse else b"") + self.encode(lines)
        s.cursor = cursor
        waiter = Waiter()
        router.add_waiter(s.app_id, waiter)
        s.wake_reader = waiter
        watcher = asyncio.create_task(self._watch_disconnect(waiter))
        try:
            if first:
                await self.write(first)
            await self._tail(waiter)
            if not self.closed:
                await self.write(b"", more=False)  # ended by us: the client may reconnect
        except OSError:
            pass  # the client went away mid-write
        finally:
            router.remove_waiter(s.app_id, waiter)
            watcher.cancel()

    async def _tail(self, waiter: Waiter) -> None:
        s, router, cfg = self.session, self.router, self.router.config
        deadline = time.monotonic() + cfg.tail_max_seconds
        assert s.cursor is not None
        cursor = s.cursor
        while not self.closed and s.reader is self.reader:
            waiter.event.clear()
            lines, cursor = router.lines_after(s.app_id, cursor, s.source, s.dyno)
            if lines:
                await self.write(self.encode(lines))
            if s.reader is self.reader:  # a newer GET took over: it owns the cursor now
                s.cursor = cursor
            if lines:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(waiter.event.wait(), min(cfg.tail_keepalive, left))
            except TimeoutError:
                if self.sse and time.monotonic() < deadline:
                    await self.write(sse_comment("keepalive"))

    async def _watch_disconnect(self, waiter: Waiter) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.closed = True
                waiter.event.set()
                return


def _int_header(value: bytes | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


async def _start(send: Send, sse: bool) -> None:
    ctype = b"text/event-stream; charset=utf-8" if sse else b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", ctype),
                (b"cache-control", b"no-cache, no-store"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )


async def _plain(
    send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
