"""The HTTP/2 fast lane, the counterpart of `H1Client._fast` (see http1_server.py).

A stream whose request is complete (HEADERS with END_STREAM), that `admission.refusal`
admits, for an app without features, with a pooled connection to an up, unquarantined dyno, is forwarded from
the connection's data callback; a response that arrives whole (head and Content-Length body
in one read, status >= 200, not 101/204/304, not to HEAD, fitting the flow control window) is
relayed from the dyno's data callback, log line included: no task, no queue, no coroutine, no
timer of its own (one per connection watches the response deadline of all its streams). The
dyno's request head comes from a template per request header block, response heads are parsed
once per distinct head.
Anything else (partial, chunked or interim responses, EOF, the response timer) hands the
exchange to the coroutine path mid-way (`Exchange(..., handover)`), which owns every H
code, the replay of stale pooled connections and flow control. The counters
(`router.inflight`, `router.activity`, `router.fast_lane`) and the log line are the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .admission import refusal
from .errors import Code
from .exchange import Exchange, HandOver, request_head
from .logline import info_line
from .proto.h2 import StreamGone
from .proto.headers import request_id_for, rewrite_response_headers
from .proto.http1 import ProtocolError, parse_response_head
from .table import App

if TYPE_CHECKING:
    from .http2_server import H2Connection, H2Stream

FLUSH_AT = 16384  # a body this large is written at once (http2_server.FLUSH_AT)


# parsed dyno response heads by (via, head bytes): status, HTTP/2 headers without
# content-length, keep-alive, body length. Bounded; a Date header changes once a second.
_RESPONSES: dict[tuple[str, bytes], tuple[int, list[tuple[bytes, bytes]], bool, int | None]] = {}
_RESPONSES_MAX = 512
_MARK_ID = "\x00spruce-request-id\x00"
_MARK_AT = 4242424242.4242  # -> X-Request-Start: 4242424242424
_tuple_new = tuple.__new__  # a HandOver without NamedTuple's Python-level __new__ (hot path)


def try_fast(conn: H2Connection, st: H2Stream) -> bool:
    """Take the fast lane if this request qualifies; False leaves it to the coroutine path."""
    req = st.req
    if req.bad is not None or req.method == "CONNECT" or conn.writer.blocked:
        return False
    router = conn.router
    table = router.table
    app, host = table.lookup_raw(req.authority.encode("latin-1"))
    if app is None or app.features or app.inbound is not None or router.stopping:
        return False
    conn_apps = conn.conn_apps
    if (
        refusal(
            table,
            app,
            host,
            conn.sni_host,
            True,
            router.inflight.get(app.id, 0),
            conn_apps.joining(app),
            router.timers.connections_per_dyno,
        )
        is not None
    ):
        return False  # the coroutine path answers the H code
    pooled = router.take_pooled(app)
    if pooled is None:
        return False
    dyno, backend = pooled
    # committed: from here the exchange is this request's, whatever happens
    conn_apps.count(app)
    router.fast_begin(app)
    received = time.time()
    rid = request_id_for(req.headers, req.request_id)
    try:
        head = _dyno_head(conn, st, app, received, rid)
        sent_at = time.monotonic()
        backend.writer.transport.write(head)
        st.fast = _tuple_new(HandOver, (app, host, dyno, backend, head, rid, received, sent_at))
        conn.fast[st] = sent_at  # the connection's timer hands it over after `response`
        conn.arm_fast_timer()
        backend.reader.on_data = lambda data: _response(conn, st, data)
    except Exception as e:  # a router fault: H99, as on the coroutine path
        st.fast = None
        backend.reader.on_data = None
        conn.fast.pop(st, None)
        out = HandOver(app, host, dyno, backend, b"", rid, received, 0.0)
        conn.spawn(_fault(conn, st, out, e))
    return True


def exchange(st: H2Stream, out: HandOver) -> Exchange:
    """The coroutine path's view of a fast-lane exchange (hand-over, H27, faults)."""
    return Exchange(st.conn.router, st, st.req.head(True), out)


def _dyno_head(conn: H2Connection, st: H2Stream, app: App, received: float, rid: str) -> bytes:
    """`Exchange.request_head(app)`, from a template kept on the (shared, immutable) request:
    only X-Request-Start and X-Request-Id differ between requests of one connection."""
    req = st.req
    router = conn.router
    key = (router.table.router_name, conn.client_ip, conn.local_port, conn.info.tls)
    tpl = req.dyno_head
    if tpl is None or tpl[0] != key:
        head = req.head(True)
        marked = request_head(router, st, head, app, _MARK_AT, _MARK_ID)
        mark = f"X-Request-Start: {int(_MARK_AT * 1000)}\r\nX-Request-Id: {_MARK_ID}\r\n"
        parts = marked.split(mark.encode("latin-1"))
        if len(parts) != 2:
            return request_head(router, st, head, app, received, rid)
        tpl = req.dyno_head = (key, parts[0], parts[1])
    return b"%sX-Request-Start: %d\r\nX-Request-Id: %s\r\n%s" % (
        tpl[1],
        int(received * 1000),
        rid.encode("latin-1"),
        tpl[2],
    )


def _parse(via: str, head: bytes) -> tuple[int, list[tuple[bytes, bytes]], bool, int | None]:
    """Status, HTTP/2 headers (no content-length), keep-alive and body length of a dyno's
    response head to a request other than HEAD; ProtocolError when malformed."""
    key = (via, head)
    hit = _RESPONSES.get(key)
    if hit is not None:
        return hit
    from .http2_server import response_headers

    resp = parse_response_head(head, "GET")
    if resp.status < 200 or resp.status in (101, 204, 304) or resp.chunked:
        length = None  # not for the fast lane
    else:
        length = resp.body_length
    out = rewrite_response_headers(
        resp.headers, via=via, keep_upgrade=False, listed=resp.connection
    )
    hit = (resp.status, response_headers(resp.status, out, None), resp.keep_alive, length)
    if len(head) <= 4096:
        if len(_RESPONSES) >= _RESPONSES_MAX:
            _RESPONSES.clear()
        _RESPONSES[key] = hit
    return hit


def _response(conn: H2Connection, st: H2Stream, data: bytes | None) -> None:
    out = st.fast
    if out is None:
        return
    backend = out.conn
    st.fast = None
    conn.fast.pop(st, None)
    backend.reader.on_data = None
    parsed = None
    end = 0
    via = conn.via
    if data and st.req.method != "HEAD":
        end = data.find(b"\r\n\r\n") + 4
        if end >= 4:
            try:
                parsed = _parse(via, data[:end])
            except ProtocolError:
                parsed = None
    whole = False
    if parsed is not None and data is not None and len(data) - end == parsed[3]:
        if st.reset or conn.dead:
            whole = True  # H27 below
        elif not conn.writer.blocked:  # else the coroutine path waits for the client
            try:
                whole = len(data) - end <= conn.proto.window(st.stream_id)
            except StreamGone:
                whole = True
    if not whole:
        # partial, chunked, interim, bodiless by status, HEAD, beyond the window, EOF or the
        # response timer: the coroutine path takes it from here
        if data:
            backend.reader.unread(data)
        conn.spawn(conn.resume(st, exchange(st, out)))
        return
    assert data is not None and parsed is not None
    try:
        _relay(conn, st, out, parsed, data[end:])
    except Exception as e:  # a router fault: H99, as on the coroutine path
        conn.spawn(_fault(conn, st, out, e))
    conn.maybe_drained()


def expire(conn: H2Connection, st: H2Stream) -> None:
    """The response timer ran out: hand over (the coroutine path answers H12)."""
    _response(conn, st, None)


def _relay(
    conn: H2Connection,
    st: H2Stream,
    out: HandOver,
    parsed: tuple[int, list[tuple[bytes, bytes]], bool, int | None],
    body: bytes,
) -> None:
    router = conn.router
    app = out.app
    backend = out.conn
    status, hs, keep_alive, _ = parsed
    if st.reset or conn.dead:  # the client went away meanwhile: H27, as on the slow path
        router.fast_end(app)
        backend.close()
        ex = exchange(st, out)
        ex.line.status = status
        ex.log_code(Code.H27, 499)
        st.abort()
        conn.stream_done(st)
        return
    st.started = True
    proto = conn.proto
    n = len(body)
    proto.send_headers(st.stream_id, [*hs, (b"content-length", b"%d" % n)], not n)
    if n:
        proto.send_data(st.stream_id, body, end_stream=True)
    st.closed = True
    service_ms = int((time.monotonic() - out.sent_at) * 1000)
    if keep_alive:
        router.pool.give(backend)
    else:
        backend.close()
    req = st.req
    xff = req.xff
    fwd = ", ".join([*xff, conn.client_ip]) if xff else conn.client_ip
    router.emit(
        app.id,
        info_line(
            req.method,
            req.path,
            out.host,
            out.request_id,
            fwd,
            out.dyno.name,
            0,
            service_ms,
            status,
            n,
            conn.line_tail,
        ),
    )
    router.fast_end(app)
    conn.stream_done(st)
    if n >= FLUSH_AT:
        conn.flush_now()  # written now, so that the next response's must_wait() knows


async def _fault(conn: H2Connection, st: H2Stream, out: HandOver, e: Exception) -> None:
    out.conn.close()
    try:
        await exchange(st, out).fault(e)
    except Exception:
        st.abort()  # nothing sensible left to answer with
    finally:
        conn.router.fast_end(out.app)
        conn.stream_done(st)


def cancel(conn: H2Connection, st: H2Stream) -> None:
    """The router is stopping while this exchange is out: drop it quietly."""
    out = st.fast
    conn.fast.pop(st, None)
    if out is None:
        return
    st.fast = None
    out.conn.reader.on_data = None
    out.conn.close()
    conn.router.fast_end(out.app)
