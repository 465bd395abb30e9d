"""The HTTP/1.1 fast lane of one client connection (`H1Client.lane`).

A complete bodiless HTTP/1.1 request that `admission.refusal` admits, for an app without
features, with a pooled connection to an up, unquarantined dyno at hand, is forwarded from the
client's data callback, and a response that arrives whole (head and Content-Length body in one
read) is relayed from the dyno's data callback: no task wake-ups, no coroutines, no Exchange,
heads rewritten as bytes (proto/fast.py), the log line formatted from locals. Anything else
(partial or interim responses, EOF, a response slower than the router's sweep tick) hands the
exchange over to the coroutine path (`Exchange(..., handover)`), which knows every H code; the
client's reader is held asleep meanwhile, so pipelined bytes wait their turn.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .acme_challenge import PREFIX as ACME_CHALLENGE
from .admission import refusal
from .errors import Code
from .exchange import Exchange, HandOver
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
from .proto.http1 import parse_request_head

if TYPE_CHECKING:
    from .http1_server import H1Client

_tuple_new = tuple.__new__  # a HandOver without NamedTuple's Python-level __new__ (hot path)


class H1FastLane:
    """The fast lane's exchange in flight on one connection (at most one at a time)."""

    # (class-level defaults: one lane per connection, most connections never use all of it)
    out: HandOver | None = None  # the exchange waiting for its dyno
    data = b""  # its request head as received
    req: FastRequest | None = None
    task: asyncio.Task[None] | None = None  # a hand-over or fault on the coroutine path

    def __init__(self, client: H1Client) -> None:
        self.client = client
        self.router = client.router

    @property
    def busy(self) -> bool:
        return self.out is not None or self.task is not None

    def take(self, data: bytes) -> bool:
        """The client's reader's intercept: True when `data` became a fast-lane exchange."""
        client = self.client
        if client.writer.blocked:
            return False
        fr = fast_request(data)
        if fr is None:
            return False  # the ordinary path decides (and words any refusal)
        if fr.target.startswith(ACME_CHALLENGE):
            return False  # the ordinary path answers ACM's HTTP-01 tokens
        router = self.router
        table = router.table
        app, host = table.lookup_raw(fr.host)
        if app is None or app.features or app.inbound is not None or router.stopping:
            return False
        conn_apps = client.conn_apps
        if (
            refusal(
                table,
                app,
                host,
                client.sni_host,
                False,
                router.inflight.get(app.id, 0),
                conn_apps.joining(app),
                router.timers.connections_per_dyno,
            )
            is not None
        ):
            return False  # the ordinary path answers the H code
        pooled = router.take_pooled(app)
        if pooled is None:
            return False
        dyno, conn = pooled
        # committed: from here the exchange is this request's, whatever happens
        conn_apps.count(app)
        router.fast_begin(app)
        received = time.time()
        rid = fr.request_id.decode("ascii") if fr.request_id else new_request_id()
        client.reader.hold = True  # pipelined bytes wait, whatever happens to this exchange
        self.data = data
        self.req = fr
        head = b""
        try:
            head = dyno_head(
                fr,
                forwarded_for(fr.xff, client.client_ip),
                client.forwarded,
                int(received * 1000),
                rid,
                table.via_h1,
            )
            conn.writer.transport.write(head)
            sent_at = time.monotonic()
            self.out = _tuple_new(HandOver, (app, host, dyno, conn, head, rid, received, sent_at))
            conn.reader.on_data = self.on_response
            router.fast_wait(self, sent_at)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self.out = None
            router.fast_waiting.pop(self, None)
            conn.reader.on_data = None
            out = HandOver(app, host, dyno, conn, head, rid, received, 0.0)
            self.task = client.start_task(self._fault(out, e))
        return True

    def on_response(self, data: bytes | None) -> None:
        """The dyno's next bytes (None: EOF, or the router's sweep handing a slow one over)."""
        out = self.out
        if out is None:
            return
        self.out = None
        del self.router.fast_waiting[self]
        conn = out.conn
        conn.reader.on_data = None
        fr = self.req
        assert fr is not None
        fres = fast_response(data) if data and fr.method != "HEAD" else None
        if fres is None:
            if data:
                conn.reader.unread(data)
            self.task = self.client.start_task(self._resume(out))
            return
        assert data is not None
        try:
            self._relay(out, fr, fres, data)
        except Exception as e:  # a router fault: H99, as on the coroutine path
            self.task = self.client.start_task(self._fault(out, e))

    def _relay(self, out: HandOver, fr: FastRequest, fres: FastResponse, data: bytes) -> None:
        client = self.client
        router = self.router
        app = out.app
        conn = out.conn
        if client.reader._lost:  # the client went away meanwhile: H27, as on the slow path
            router.fast_end(app)
            conn.close()
            ex = self._exchange(out)
            ex.line.status = fres.status
            ex.log_code(Code.H27, 499)
            client.abort()
            client.reader.release(router.timers.idle)
            return
        keep_alive = fr.keep_alive
        size = len(data) - fres.body_start
        client.writer.transport.write(client_response(fres, data, router.table.via_h1, keep_alive))
        service_ms = int((time.monotonic() - out.sent_at) * 1000)
        if fres.keep_alive:
            router.pool.give(conn)
        else:
            conn.close()
        ip = client.client_ip
        router.emit(
            app.id,
            info_line(
                fr.method,
                fr.target,
                out.host,
                out.request_id,
                ", ".join([*fr.xff, ip]) if fr.xff else ip,
                out.dyno.name,
                0,
                service_ms,
                fres.status,
                size,
                client.line_tail,
            ),
        )
        router.fast_end(app)
        if not keep_alive:  # Connection: close: flush, then the reader sees the end
            client.h1.close()
            client.close()
        elif client.early is not None:  # the next request needs the loop to watch the socket
            client.watch()
        client.last_active = time.monotonic()
        client.reader.release(router.timers.idle)

    def _exchange(self, out: HandOver) -> Exchange:
        """The ordinary path's view of this lane's exchange (hand-over, faults)."""
        req = parse_request_head(self.data)
        self.client.h1.start(req)  # (bodiless: read whole)
        return Exchange(self.router, self.client, req, out)

    def cancel(self) -> None:
        """The connection ended (a stopping router) with an exchange out: drop it."""
        out = self.out
        if out is not None:
            self.out = None
            self.router.fast_waiting.pop(self, None)
            out.conn.reader.on_data = None
            out.conn.close()
            self.router.fast_end(out.app)

    async def _fault(self, out: HandOver, e: Exception) -> None:
        client = self.client
        out.conn.close()
        try:
            await self._exchange(out).fault(e)
        except Exception:
            client.h1.close()  # nothing sensible left to answer with
        finally:
            self.router.fast_end(out.app)
            self._cycle_over()

    async def _resume(self, out: HandOver) -> None:
        try:
            try:
                ex = self._exchange(out)
            except Exception as e:
                await self._fault(out, e)  # (ends the exchange's count in flight)
                return
            await ex.run()  # (as does this)
        finally:
            self._cycle_over()

    def _cycle_over(self) -> None:
        """After the coroutine path: the next request is read, or the connection closes
        (what was written still reaches a slow reader)."""
        client = self.client
        self.task = None
        client.last_active = time.monotonic()
        if not client.h1.end_cycle() or client.writer.transport.is_closing():
            client.h1.close()
            client.close()
        client.reader.release(self.router.timers.idle)
