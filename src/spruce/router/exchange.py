"""One request through the router: checks, H codes, dyno choice, forwarding, the log line.

The client side (HTTP/1.1 connection or HTTP/2 stream) is behind `ClientSide`, so both
protocols share this flow. The dyno side is always HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from . import acme_challenge, affinity, trace
from .admission import no_dyno_up, refusal
from .client_side import (
    BackendBroken,
    BadRequestBody,
    ClientGone,
    ClientIdle,
    ClientSide,
    HError,
    send_simple,
)
from .errors import Code, plain_page
from .failures import Failures
from .logline import RouterLine, Wire
from .proto.headers import request_id_for, rewrite_request_headers, rewrite_response_headers
from .proto.http1 import (
    LAST_CHUNK,
    MAX_RESPONSE_HEADER_LINE,
    ChunkedDecoder,
    ProtocolError,
    RequestHead,
    ResponseHead,
    check_partial_head,
    encode_chunk,
    find_head_end,
    parse_response_head,
    serialize_request_head,
)
from .proxy import IDEMPOTENT, BackendConn, ConnectFailed, choose, open_backend
from .state import Router
from .stream import Stream
from .table import App, Dyno, Feature, normalise_host

RESPONSE_HEAD_MAX = 1 << 20  # the 1 MB response buffer
READ_SIZE = 65536


class HandOver(NamedTuple):
    """A fast-lane exchange in flight, for the coroutine path to take over: the request (its
    dyno head `head`) went to `dyno` on `conn` at `sent_at` (monotonic); `received` is when
    the router got it (epoch seconds). Counted in flight by the lane that sent it."""

    app: App
    host: str  # normalised Host
    dyno: Dyno
    conn: BackendConn
    head: bytes
    request_id: str
    received: float
    sent_at: float


class Exchange:
    """One request: `await Exchange(router, client, req).run()`. A fast lane hands its
    exchange over with `Exchange(router, client, req, handover)`: `run()` then waits for the
    dyno's response where the lane left it; `log_code` and `fault` end it otherwise."""

    __slots__ = (
        "router",
        "client",
        "req",
        "line",
        "app",
        "received",
        "request_id",
        "host",
        "via",
        "sent_at",
        "handover",
        "trace",
    )

    def __init__(
        self,
        router: Router,
        client: ClientSide,
        req: RequestHead,
        handover: HandOver | None = None,
    ) -> None:
        self.router = router
        self.client = client
        self.req = req
        self.handover = handover
        self.trace: trace.TraceContext | None = None
        self.via = f"{client.via} {router.table.router_name}"
        self.sent_at = 0.0
        if handover is None:
            self.received = time.time()
            self.request_id = request_id_for(req.headers, req.request_id)
            self.host = normalise_host(req.host or "")
            self.app: App | None = None
        else:  # (the lane admitted the request: it counts in flight already)
            self.received = handover.received
            self.request_id = handover.request_id
            self.host = handover.host
            self.app = handover.app
        xff = req.xff
        if xff is None:
            xff = [v for k, v in req.headers if k.lower() == "x-forwarded-for"]
        fwd = ", ".join([*xff, client.client_ip]) if xff else client.client_ip
        self.line = RouterLine(
            method=req.method,
            path=req.target,
            host=self.host,
            request_id=self.request_id,
            fwd=fwd,
            protocol=client.protocol,
            tls=client.tls,
            tls_version=client.tls_version,
        )
        if handover is not None:
            self.line.dyno = handover.dyno.name
            self.line.connect_ms = 0

    # entry ---------------------------------------------------------------
    async def run(self) -> None:
        """The whole exchange (or, handed over, what the fast lane left of it)."""
        router = self.router
        exchanges = router.exchanges
        task = asyncio.current_task()
        assert task is not None
        exchanges.add(task)  # a stopping router cancels what still runs at the end (H24)
        try:
            handover = self.handover
            if handover is not None:
                await self._take_over(handover)
                return
            if not self.client.tls:  # ACM's HTTP-01 answers, for any Host, before routing
                answer = acme_challenge.answer(self.req.method, self.req.target, router.table)
                if answer is not None:
                    await send_simple(self.client, 200, answer, "text/plain")
                    return
            app = router.table.lookup(self.host)
            if app is None:
                await send_simple(self.client, 404, _no_such_app())
                return
            self.app = app
            router.activity[app.id] += 1
            if Feature.TELEMETRY in app.features:
                self.trace = trace.begin(self.req.headers)
            try:
                client = self.client
                conn_apps = client.conn_apps
                inflight = router.inflight
                if not app.trusts(client.client_ip):
                    raise HError(Code.H84)  # before the app sees anything
                code = refusal(
                    router.table,
                    app,
                    self.host,
                    normalise_host(client.sni) if client.tls and client.sni else None,
                    client.protocol is Wire.HTTP2,
                    inflight.get(app.id, 0),
                    0 if conn_apps is None else conn_apps.joining(app),
                    router.timers.connections_per_dyno,
                )
                if code is not None:
                    if code is Code.H31:  # the client should retry on a new connection
                        self.line.agent = _user_agent(self.req)
                    elif code is Code.H22:
                        client.keep_alive = False  # HTTP/1.1: closed after the 503
                    raise HError(code)
                if conn_apps is not None:
                    conn_apps.count(app)
                inflight[app.id] += 1
                try:
                    await self._proxy(app)
                finally:
                    inflight[app.id] -= 1
                    if inflight[app.id] <= 0:
                        del inflight[app.id]
            except BaseException as e:
                await self._failed(app, e)
        finally:
            exchanges.discard(task)
            tc = self.trace
            if tc is not None and self.app is not None:
                router.span(trace.record(tc, self.app.id, self.line, self.client.client_ip))

    async def _take_over(self, handover: HandOver) -> None:
        app = handover.app
        try:
            try:
                await self._forward(
                    app, handover.conn, handover.dyno, None, handover.head, handover.sent_at
                )
            finally:
                self.router.fast_end(app)
        except BaseException as e:
            await self._failed(app, e)

    def log_code(self, code: Code, status: int | None) -> None:
        """Log this exchange's line with `code` and nothing more (H27 for a client gone
        before the fast lane could relay, H28 for a head left incomplete)."""
        self._failures().log_code(code, status)

    async def fault(self, e: Exception) -> None:
        """A router fault on a fast lane: H99, as on the coroutine path."""
        await self._failures().fail(HError(Code.H99, cause=type(e).__name__))

    def _failures(self) -> Failures:
        assert self.app is not None
        return Failures(self.router, self.client, self.line, self.app, self.sent_at)

    async def _failed(self, app: App, e: BaseException) -> None:
        self.app = self.app or app
        await self._failures().answer(e)

    # dyno choice ---------------------------------------------------------
    async def _connect(self, app: App) -> tuple[BackendConn, Dyno, int, Dyno | None]:
        router = self.router
        timers = router.timers
        start = time.monotonic()
        boot_deadline = start + timers.boot_wait
        quarantine_deadline = start + timers.all_quarantined
        tried: set[tuple[str, int]] = set()
        last_fail: ConnectFailed | None = None
        last_dyno = ""
        backoff = 0.02
        token = (
            affinity.cookie_value(self.req.headers) if app.has(Feature.SESSION_AFFINITY) else None
        )
        while True:
            app = router.table.apps.get(app.id, app)
            self.app = app
            up = app.up
            if not up:
                code = no_dyno_up(app)
                if code is not None:
                    raise HError(code)
                if app.sleeping:
                    router.wake(app.id)
                now = time.monotonic()
                if now >= boot_deadline:
                    raise HError(Code.H20)
                await router.wait_change(min(boot_deadline - now, 1.0))
                continue
            candidates = [
                d for d in up if d.key not in tried and not router.quarantine.active(d.key)
            ]
            if not candidates:
                if last_fail is not None:
                    raise HError(last_fail.code, last_fail.connect_ms, dyno=last_dyno)
                now = time.monotonic()
                if now >= quarantine_deadline:
                    raise HError(Code.H99)
                await router.wait_change(min(backoff, quarantine_deadline - now))
                backoff = min(backoff * 2, 1.0)
                continue
            preferred = None
            if token and router.table.affinity_secret:
                preferred = affinity.find_dyno(router.table.affinity_secret, app, candidates, token)
            dyno = choose(candidates, preferred)
            conn = None
            if not app.has(Feature.DISABLE_KEEPALIVE_TO_DYNO) and self.req.upgrade is None:
                conn = router.pool.take(dyno.key)
            t0 = time.monotonic()
            if conn is None:
                try:
                    conn = await open_backend(dyno, timers.connect)
                except ConnectFailed as e:
                    router.quarantine.add(dyno.key)
                    router.pool.drop(dyno.key)
                    tried.add(dyno.key)
                    last_fail = e
                    last_dyno = dyno.name
                    if len(tried) >= 10:
                        raise HError(e.code, e.connect_ms, dyno=dyno.name) from None
                    continue
            return conn, dyno, int((time.monotonic() - t0) * 1000), preferred

    # forwarding ----------------------------------------------------------
    def request_head(self, app: App) -> bytes:
        """The request head as the dyno gets it."""
        return request_head(
            self.router, self.client, self.req, app, self.received, self.request_id, self.trace
        )

    async def _proxy(self, app: App) -> None:
        conn, dyno, connect_ms, preferred = await self._connect(app)
        app = self.app or app
        self.line.dyno = dyno.name
        self.line.connect_ms = connect_ms
        await self._forward(app, conn, dyno, preferred, self.request_head(app), None)

    async def _forward(
        self,
        app: App,
        conn: BackendConn,
        dyno: Dyno,
        preferred: Dyno | None,
        head: bytes,
        sent_at_: float | None,
    ) -> None:
        """Sends `head` (unless the fast lane did at `sent_at_`), then relays the response."""
        req = self.req
        client = self.client
        router = self.router
        timers = router.timers
        line = self.line
        e2e = app.has(Feature.END_TO_END_CONTINUE) and req.expect_continue
        keepalive = not app.has(Feature.DISABLE_KEEPALIVE_TO_DYNO)
        has_body = req.chunked or bool(req.body_length)
        replayable = req.method in IDEMPOTENT and not has_body
        sent_at = time.monotonic()
        resp: ResponseHead | None = None
        buf = b""
        for _attempt in range(4):
            sent_at = self.sent_at = time.monotonic()
            try:
                if sent_at_ is not None:  # sent by the fast lane: wait for the rest here
                    sent_at, sent_at_ = sent_at_, None
                    self.sent_at = sent_at
                    left = max(0.0, timers.response - (time.monotonic() - sent_at))
                    resp, buf = await self._read_head(conn, b"", left, sent_at)
                    if resp.status < 200 and resp.status != 101:
                        resp, buf = await self._read_final_head(conn, resp, buf, e2e, True)
                elif has_body:
                    resp, buf = await self._send_and_read_head(conn, head, has_body, e2e)
                else:
                    # bodiless: one coroutine level less on the hot path
                    conn.writer.write(head)
                    resp, buf = await self._read_head(conn, b"", timers.response)
                    if resp.status < 200 and resp.status != 101:
                        resp, buf = await self._read_final_head(conn, resp, buf, e2e, True)
                break
            except BackendBroken as e:
                conn.close()
                if replayable and not e.got_bytes:
                    # A pooled connection the dyno had closed: safe to replay on a fresh one.
                    # When nothing listens there any more (the dyno ended, or its node was
                    # lost), the request goes to another dyno, as after a refused connect;
                    # a dyno that still listens and closed unanswered gets H13.
                    router.pool.drop(dyno.key)
                    fresh = None
                    try:
                        fresh = await open_backend(dyno, timers.connect)
                    except ConnectFailed:
                        router.quarantine.add(dyno.key)
                    if fresh is None:
                        conn, dyno, connect_ms, preferred = await self._connect(app)
                        line.dyno, line.connect_ms = dyno.name, connect_ms
                        continue
                    if conn.reused:
                        conn = fresh
                        continue
                    fresh.close()
                service = int((time.monotonic() - sent_at) * 1000)
                raise HError(Code.H18 if e.got_bytes else Code.H13, service_ms=service) from None
            except HError:
                conn.close()
                raise
            except BaseException:
                conn.close()
                raise
        assert resp is not None
        line.status = resp.status
        out_headers = rewrite_response_headers(
            resp.headers,
            via=self.via,
            keep_upgrade=resp.status == 101,
            listed=resp.connection,
        )
        if (
            app.has(Feature.SESSION_AFFINITY)
            and router.table.affinity_secret
            and (preferred is None or preferred != dyno)
        ):
            out_headers.append(affinity.set_cookie_header(router.table.affinity_secret, app, dyno))
        if resp.status == 101:
            if req.upgrade is None:
                conn.close()
                raise HError(Code.H17, service_ms=int((time.monotonic() - sent_at) * 1000))
            out_headers.append(("Connection", "Upgrade"))
            try:
                await client.send_head(101, resp.reason, out_headers, None, no_body=True)
                await client.tunnel(conn, bytes(buf), timers.idle)
            except asyncio.CancelledError:
                if not router.forced:
                    raise
                _uncancel()
                line.code = Code.H24  # the router stopped with the tunnel open: still status=101
            finally:
                conn.close()
                line.service_ms = int((time.monotonic() - sent_at) * 1000)
                line.bytes = 0
                router.emit(app.id, line.format())
            return
        no_body = resp.body_length == 0 and (
            req.method == "HEAD" or resp.status in (204, 304) or resp.status < 200
        )
        if no_body:
            out_headers.extend((k, v) for k, v in resp.headers if k.lower() == "content-length")
        length = None if resp.chunked else resp.body_length
        try:
            if length is not None and len(buf) == length and not no_body:
                # the whole body is here already (the common small response): one write
                await client.send_whole(resp.status, resp.reason, out_headers, buf)
                sent = length
            else:
                await client.send_head(
                    resp.status, resp.reason, out_headers, length, no_body=no_body
                )
                sent = await self._pump_response(conn, resp, buf, no_body)
        except BackendBroken:
            conn.close()
            self.line.service_ms = int((time.monotonic() - sent_at) * 1000)
            raise HError(Code.H18) from None
        except TimeoutError:
            conn.close()
            raise HError(Code.H15, service_ms=int((time.monotonic() - sent_at) * 1000)) from None
        except BaseException:
            conn.close()
            raise
        line.bytes = sent
        line.service_ms = int((time.monotonic() - sent_at) * 1000)
        if keepalive and resp.keep_alive and req.upgrade is None:
            router.pool.give(conn)
        else:
            conn.close()
        router.emit(app.id, line.format())

    async def _send_and_read_head(
        self, conn: BackendConn, head: bytes, has_body: bool, e2e: bool
    ) -> tuple[ResponseHead, bytes]:
        req = self.req
        client = self.client
        timers = self.router.timers
        try:
            conn.writer.write(head)
            if has_body and not e2e:
                if req.expect_continue:
                    await client.send_continue()
                await self._pump_request_body(conn)
            else:
                await conn.writer.drain()
        except (ConnectionError, OSError):
            raise BackendBroken(False) from None
        body_sent = not (has_body and e2e)
        resp, buf = await self._read_head(conn, b"", timers.response)
        return await self._read_final_head(conn, resp, buf, e2e, body_sent)

    async def _read_final_head(
        self, conn: BackendConn, resp: ResponseHead, buf: bytes, e2e: bool, body_sent: bool
    ) -> tuple[ResponseHead, bytes]:
        """Skips interim responses (relaying 100 Continue end to end) up to the final head."""
        client = self.client
        timers = self.router.timers
        continued = False
        while True:
            if resp.status == 100:
                if continued:
                    raise HError(Code.H17)
                continued = True
                if e2e and not body_sent:
                    await client.send_continue()
                    try:
                        await self._pump_request_body(conn)
                    except (ConnectionError, OSError):
                        raise BackendBroken(True) from None
                    body_sent = True
            elif not (100 < resp.status < 200 and resp.status != 101):
                if not body_sent:
                    client.keep_alive = False  # the unread request body makes the stream unusable
                return resp, buf
            # other interim responses are not relayed
            resp, buf = await self._read_head(conn, buf, timers.response)

    async def _pump_request_body(self, conn: BackendConn) -> None:
        chunked = self.req.chunked
        writer = conn.writer
        while True:
            data = await self.client.read_body()
            if not data:
                break
            writer.write(encode_chunk(data) if chunked else data)
            await writer.drain()
        if chunked:
            writer.write(LAST_CHUNK)
        await writer.drain()

    async def _read_head(
        self, conn: BackendConn, buf: bytes, first_timeout: float, started: float | None = None
    ) -> tuple[ResponseHead, bytes]:
        timers = self.router.timers
        reader = conn.reader
        if started is None:
            started = time.monotonic()
        got = bool(buf)
        while True:
            end = find_head_end(buf)
            if end >= 0:
                try:
                    resp = parse_response_head(bytes(buf[:end]), self.req.method)
                except ProtocolError as e:
                    conn.close()
                    code = e.code if e.code in (Code.H17, Code.H25) else Code.H17
                    raise HError(
                        code, service_ms=int((time.monotonic() - started) * 1000)
                    ) from None
                return resp, buf[end:]
            try:
                check_partial_head(buf, MAX_RESPONSE_HEADER_LINE)
            except ProtocolError:
                raise HError(Code.H25) from None
            if len(buf) > RESPONSE_HEAD_MAX:
                raise HError(Code.H25)
            try:
                data = await reader.read(READ_SIZE, timers.idle if got else first_timeout)
            except TimeoutError:
                ms = int((time.monotonic() - started) * 1000)
                raise HError(Code.H15 if got else Code.H12, service_ms=ms) from None
            except (ConnectionError, OSError):
                raise BackendBroken(got) from None
            if not data:
                raise BackendBroken(got)
            got = True
            buf = buf + data if buf else data

    async def _pump_response(
        self, conn: BackendConn, resp: ResponseHead, buf: bytes, no_body: bool
    ) -> int:
        client = self.client
        idle = self.router.timers.idle
        reader = conn.reader
        sent = 0
        if no_body:
            await client.end()
            if buf:
                resp.keep_alive = False
            return 0
        data = bytes(buf)
        if resp.chunked:
            decoder = ChunkedDecoder()
            while True:
                if data:
                    try:
                        payload, leftover = decoder.feed(data)
                    except ProtocolError:
                        raise BackendBroken(True) from None
                    if payload:
                        await client.send_data(payload)
                        sent += len(payload)
                    if decoder.done:
                        if leftover:
                            resp.keep_alive = False
                        break
                data = await _read_backend(reader, idle)
        elif resp.body_length is not None:
            remaining = resp.body_length
            while remaining:
                if data:
                    part = data[:remaining]
                    if len(data) > remaining:
                        resp.keep_alive = False
                    remaining -= len(part)
                    await client.send_data(part)
                    sent += len(part)
                    if not remaining:
                        break
                data = await _read_backend(reader, idle)
        else:
            while True:
                if data:
                    await client.send_data(data)
                    sent += len(data)
                data = await _read_backend(reader, idle, eof_ok=True)
                if not data:
                    break
        await client.end()
        return sent


def request_head(
    router: Router,
    client: ClientSide,
    req: RequestHead,
    app: App,
    received: float,
    request_id: str,
    trace_context: trace.TraceContext | None = None,
) -> bytes:
    """The head the dyno gets for `req` (received at epoch `received`, id `request_id`;
    with the router's `traceparent` for an app with a telemetry drain)."""
    e2e = app.has(Feature.END_TO_END_CONTINUE) and req.expect_continue
    keepalive = not app.has(Feature.DISABLE_KEEPALIVE_TO_DYNO)
    has_body = req.chunked or bool(req.body_length)
    headers = rewrite_request_headers(
        req.headers,
        client_ip=client.client_ip,
        proto="https" if client.tls else "http",
        port=client.local_port,
        request_start_ms=int(received * 1000),
        request_id=request_id,
        via=f"{client.via} {router.table.router_name}",
        body_length=None if req.chunked else req.body_length,
        has_body=has_body,
        upgrade=req.upgrade,
        keep_alive_to_dyno=keepalive,
        keep_expect=e2e,
        listed=req.connection,
    )
    if trace_context is not None:
        headers = trace.with_traceparent(headers, trace_context)
    return serialize_request_head(req.method, req.target, headers)


async def _read_backend(reader: Stream, idle: float, eof_ok: bool = False) -> bytes:
    try:
        data = await reader.read(READ_SIZE, idle)
    except TimeoutError:
        raise  # H15 (TimeoutError is an OSError: keep it apart)
    except (ConnectionError, OSError):
        raise BackendBroken(True) from None
    if not data and not eof_ok:
        raise BackendBroken(True)
    return data


def _user_agent(req: RequestHead) -> str:
    return next((v for k, v in req.headers if k.lower() == "user-agent"), "")


def _uncancel() -> None:
    """The stopping router's cancellation was handled here: the task goes on normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _no_such_app() -> bytes:
    from .errors import NO_SUCH_APP_PAGE

    return NO_SUCH_APP_PAGE


__all__ = [
    "BadRequestBody",
    "ClientGone",
    "ClientIdle",
    "ClientSide",
    "Exchange",
    "HError",
    "plain_page",
    "send_simple",
]
