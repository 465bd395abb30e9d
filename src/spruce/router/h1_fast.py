"""The HTTP/1.1 fast lane: a mixin of `H1Client` (http1_server.py).

A complete bodiless HTTP/1.1 request for a plain app (no features, no H code to answer, a pooled
connection to an up, unquarantined dyno at hand) is forwarded from the client's data callback,
and a response that arrives whole (head and Content-Length body in one read) is relayed from
the dyno's data callback: no task wake-ups, no coroutines, no Exchange, heads rewritten as bytes
(proto/fast.py), the log line formatted from locals. Anything else (partial or interim
responses, EOF, a response slower than the router's sweep tick) hands the exchange over to the
coroutine path (`Exchange.run(resume=...)`), which knows every H code; the client's reader is
held asleep meanwhile, so pipelined bytes wait their turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .acme_challenge import PREFIX as ACME_CHALLENGE
from .exchange import ClientSide, Exchange, HError
from .logline import info_line
from .proto.fast import (
    FastRequest,
    FastResponse,
    client_response,
    dyno_head,
    fast_request,
    fast_response,
    forwarded_for,
)
from .proto.headers import new_request_id
from .proto.http1 import ChunkedDecoder, RequestHead, parse_request_head
from .proxy import BackendConn
from .state import ConnectionApps, Router
from .table import App, Dyno

if TYPE_CHECKING:
    from .stream import Stream


class H1FastLane(ClientSide):
    """The fast lane of `H1Client` (whose attributes are declared here for typing)."""

    router: Router
    reader: Stream
    writer: Stream
    client_ip: str
    conn_apps: ConnectionApps
    keep_alive: bool
    http10: bool
    response_started: bool
    _loop: asyncio.AbstractEventLoop
    _sni: str | None
    _forwarded: bytes
    _line_tail: str
    _fast_state: tuple[Any, ...] | None
    _resume_task: asyncio.Task[Any] | None
    _req: RequestHead | None
    _continue_sent: bool
    _decoder: ChunkedDecoder | None
    _remaining: int | None
    _body_done: bool
    last_active: float
    abort: Callable[[], None]
    _close: Callable[[], None]
    start_task: Callable[[Any], asyncio.Task[Any]]

    def _fast(self, data: bytes) -> bool:
        writer = self.writer
        if writer._write_paused or writer._lost:
            return False
        fr = fast_request(data)
        if fr is None:
            return False  # the ordinary path decides (and words any refusal)
        if fr.target.startswith(ACME_CHALLENGE):
            return False  # the ordinary path answers ACM's HTTP-01 tokens
        router = self.router
        app, host = router.table.lookup_raw(fr.host)
        if (
            app is None
            or not app.plain
            or router.inflight.get(app.id, 0) >= 200 * app.web_quantity
            or (self._sni is not None and self._sni != host)
            or router.stopping
            or not self.conn_apps.admit(app)  # (H22; what the ordinary path would admit)
        ):
            return False
        pooled = router.take_pooled(app)
        if pooled is None:
            return False
        dyno, conn = pooled
        # committed: from here the exchange is this request's, whatever happens
        router.fast_begin(app)
        received = time.time()
        rid = fr.request_id.decode("ascii") if fr.request_id else new_request_id()
        self.reader.hold = True  # pipelined bytes wait, whatever happens to this exchange
        try:
            head = dyno_head(
                fr,
                forwarded_for(fr.xff, self.client_ip),
                self._forwarded,
                int(received * 1000),
                rid,
                router.table.via_h1,
            )
            conn.writer.transport.write(head)
            sent_at = time.monotonic()
            # (a tuple: the common exchange allocates no object of its own)
            self._fast_state = (data, fr, app, host, dyno, conn, head, rid, received, sent_at)
            conn.reader.on_data = self._fast_response
            router.fast_wait(self, sent_at)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self._fast_state = None
            router.fast_waiting.pop(self, None)
            conn.reader.on_data = None
            fx = _FastExchange(data, fr, app, host, dyno, conn, b"", rid, received, 0.0)
            self._resume_task = self.start_task(self._fault(fx, e))
        return True

    def _fast_response(self, data: bytes | None) -> None:
        """The dyno's next bytes (None: EOF, or the router's sweep handing a slow one over)."""
        state = self._fast_state
        if state is None:
            return
        self._fast_state = None
        del self.router.fast_waiting[self]
        conn = state[5]
        conn.reader.on_data = None
        fres = fast_response(data) if data and state[1].method != "HEAD" else None
        if fres is None:
            if data:
                conn.reader.unread(data)
            self._resume_task = self.start_task(self._resume(_FastExchange(*state)))
            return
        assert data is not None
        try:
            self._fast_relay(state, fres, data)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self._resume_task = self.start_task(self._fault(_FastExchange(*state), e))

    def _fast_relay(self, state: tuple[Any, ...], fres: FastResponse, data: bytes) -> None:
        _, fr, app, host, dyno, conn, _, rid, _, sent_at = state
        router = self.router
        if self.reader._lost:  # the client went away meanwhile: H27, as on the slow path
            router.fast_end(app)
            conn.close()
            ex = self._exchange(_FastExchange(*state))
            ex.line.status = fres.status
            ex._log_code("H27", 499)
            self.abort()
            self.reader.release(router.timers.idle)
            return
        keep_alive = fr.keep_alive
        size = len(data) - fres.body_start
        self.writer.transport.write(client_response(fres, data, router.table.via_h1, keep_alive))
        service_ms = int((time.monotonic() - sent_at) * 1000)
        if fres.keep_alive:
            router.pool.give(conn)
        else:
            conn.close()
        fwd = ", ".join([*fr.xff, self.client_ip]) if fr.xff else self.client_ip
        router.emit(
            app.id,
            info_line(
                fr.method,
                fr.target,
                host,
                rid,
                fwd,
                dyno.name,
                0,
                service_ms,
                fres.status,
                size,
                self._line_tail,
            ),
        )
        router.fast_end(app)
        if not keep_alive:  # Connection: close: flush, then the reader sees the end
            self.keep_alive = False
            self._close()
        self.last_active = time.monotonic()
        self.reader.release(router.timers.idle)

    def _exchange(self, fx: _FastExchange) -> Exchange:
        """The ordinary path's view of a fast-lane exchange (hand-over, faults)."""
        req = parse_request_head(fx.data)
        self._req = req
        self.http10 = False
        self.keep_alive = req.keep_alive
        self.response_started = False
        self._continue_sent = False
        self._decoder = None
        self._remaining = 0
        self._body_done = True
        ex = Exchange(self.router, self, req)
        ex.app = fx.app
        ex.received = fx.received
        ex.request_id = ex.line.request_id = fx.request_id
        ex.line.dyno = fx.dyno.name
        ex.line.connect_ms = 0
        return ex

    async def _fault(self, fx: _FastExchange, e: Exception) -> None:
        fx.conn.close()
        try:
            ex = self._exchange(fx)
            await ex._fail(HError("H99", cause=type(e).__name__))
        except Exception:
            self.keep_alive = False  # nothing sensible left to answer with
        finally:
            self.router.fast_end(fx.app)
            self._resume_task = None
            self.last_active = time.monotonic()
            if not (self.keep_alive and not self.writer.transport.is_closing()):
                self.keep_alive = False  # nothing after this request is read
                self._close()  # what was written still reaches a slow reader
            self.reader.release(self.router.timers.idle)

    async def _resume(self, fx: _FastExchange) -> None:
        try:
            try:
                ex = self._exchange(fx)
            except Exception as e:
                fx.conn.close()
                await self._fault(fx, e)
                return
            await ex.run(resume=(fx.conn, fx.dyno, fx.head, fx.sent_at))
        finally:
            self._resume_task = None
            self.last_active = time.monotonic()
            if not (self.keep_alive and not self.writer.transport.is_closing()):
                self.keep_alive = False
                self._close()  # what was written still reaches a slow reader
            self.reader.release(self.router.timers.idle)


class _FastExchange:
    """One fast-lane exchange in flight (what a hand-over needs to rebuild an Exchange)."""

    __slots__ = (
        "data",
        "req",
        "app",
        "host",
        "dyno",
        "conn",
        "head",
        "request_id",
        "received",
        "sent_at",
    )

    def __init__(
        self,
        data: bytes,
        req: FastRequest,
        app: App,
        host: str,
        dyno: Dyno,
        conn: BackendConn,
        head: bytes,
        request_id: str,
        received: float,
        sent_at: float,
    ) -> None:
        self.data = data
        self.req = req
        self.app = app
        self.host = host
        self.dyno = dyno
        self.conn = conn
        self.head = head
        self.request_id = request_id
        self.received = received
        self.sent_at = sent_at
