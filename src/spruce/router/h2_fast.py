"""The HTTP/2 fast lane, the counterpart of `H1Client._fast` (see http1_server.py).

A stream whose request is complete (HEADERS with END_STREAM), for an app without features
that needs no H code, with a pooled connection to an up, unquarantined dyno, is forwarded from
the connection's data callback; a response that arrives whole (head and Content-Length body
in one read, status >= 200, not 101/204/304, not to HEAD, fitting the flow control window) is
relayed from the dyno's data callback, log line included: no task, no queue, no coroutine, no
timer of its own (one per connection watches the response deadline of all its streams). The
dyno's request head comes from a template per request header block, response heads are parsed
once per distinct head.
Anything else (partial, chunked or interim responses, EOF, the response timer) hands the
exchange to the coroutine path mid-way with `Exchange.run(resume=...)`, which owns every H
code, the replay of stale pooled connections and flow control. The counters
(`router.inflight`, `router.activity`, `router.fast_lane`) and the log line are the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .exchange import Exchange, HError
from .h2_proto import StreamGone
from .logline import info_line
from .proto.headers import request_id_for, rewrite_response_headers
from .proto.http1 import ProtocolError, parse_response_head
from .proxy import BackendConn
from .table import App, Dyno

if TYPE_CHECKING:
    from .http2_server import H2Connection, H2Stream

FLUSH_AT = 16384  # a body this large is written at once (http2_server.FLUSH_AT)


# parsed dyno response heads by (via, head bytes): status, HTTP/2 headers without
# content-length, keep-alive, body length. Bounded; a Date header changes once a second.
_RESPONSES: dict[tuple[str, bytes], tuple[int, list[tuple[bytes, bytes]], bool, int | None]] = {}
_RESPONSES_MAX = 512
_MARK_ID = "\x00spruce-request-id\x00"
_MARK_AT = 4242424242.4242  # -> X-Request-Start: 4242424242424


def try_fast(conn: H2Connection, st: H2Stream) -> bool:
    """Take the fast lane if this request qualifies; False leaves it to the coroutine path."""
    req = st.req
    if req.bad is not None or req.method == "CONNECT" or conn.writer.must_wait():
        return False
    router = conn.router
    app, host = router.table.lookup_raw(req.authority.encode("latin-1"))
    if (
        app is None
        or not app.plain
        or router.inflight.get(app.id, 0) >= 200 * app.web_quantity
        or (conn.sni_host is not None and conn.sni_host != host)
        or router.stopping
        or conn.conn_apps.refuses(app)
    ):
        return False
    pooled = router.take_pooled(app)
    if pooled is None:
        return False
    dyno, backend = pooled
    # committed: from here the exchange is this request's, whatever happens
    router.fast_begin(app)
    conn.conn_apps.admit(app)  # (H22: `refuses` said it may count)
    received = time.time()
    rid = request_id_for(req.headers, req.request_id)
    try:
        _send(conn, st, app, host, dyno, backend, received, rid)
    except Exception as e:  # a router fault: H99, as on the coroutine path
        st.fast = None
        backend.reader.on_data = None
        conn.fast.pop(st, None)
        conn.spawn(_fault(conn, st, app, backend, e))
    return True


def _send(
    conn: H2Connection,
    st: H2Stream,
    app: App,
    host: str,
    dyno: Dyno,
    backend: BackendConn,
    received: float,
    rid: str,
) -> None:
    head = _dyno_head(conn, st, app, received, rid)
    sent_at = time.monotonic()
    backend.writer.transport.write(head)
    # a tuple, no Exchange: `exchange()` rebuilds one when the coroutine path takes over
    st.fast = (received, rid, backend, dyno, head, sent_at, app, host)
    conn.fast[st] = sent_at  # the connection's timer hands it over after `response`
    conn.arm_fast_timer()
    backend.reader.on_data = lambda data: _response(conn, st, data)


def exchange(st: H2Stream, state: tuple) -> Exchange:
    """The coroutine path's view of a fast-lane exchange (hand-over, H27, faults)."""
    received, rid, backend, dyno, _head, _sent_at, app, _host = state
    ex = Exchange(st.conn.router, st, st.req.head(True))
    ex.app = app
    ex.received = received
    ex.request_id = ex.line.request_id = rid
    ex.line.dyno = dyno.name
    ex.line.connect_ms = 0
    return ex


def _dyno_head(conn: H2Connection, st: H2Stream, app: App, received: float, rid: str) -> bytes:
    """`Exchange.request_head(app)`, from a template kept on the (shared, immutable) request:
    only X-Request-Start and X-Request-Id differ between requests of one connection."""
    req = st.req
    key = (conn.router.table.router_name, conn.client_ip, conn.local_port, conn.info[0])
    tpl = req.dyno_head
    if tpl is None or tpl[0] != key:
        ex = Exchange(conn.router, st, req.head(True))
        ex.received, ex.request_id = _MARK_AT, _MARK_ID
        marked = ex.request_head(app)
        mark = f"X-Request-Start: {int(_MARK_AT * 1000)}\r\nX-Request-Id: {_MARK_ID}\r\n"
        parts = marked.split(mark.encode("latin-1"))
        if len(parts) != 2:
            ex.received, ex.request_id = received, rid
            return ex.request_head(app)
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
    state = st.fast
    if state is None:
        return
    backend = state[2]
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
        elif not conn.writer.must_wait():  # else the coroutine path waits for the client
            try:
                whole = len(data) - end <= conn.proto.window(st.stream_id)
            except StreamGone:
                whole = True
    if not whole:
        # partial, chunked, interim, bodiless by status, HEAD, beyond the window, EOF or the
        # response timer: the coroutine path takes it from here
        if data:
            backend.reader.unread(data)
        _, _, _, dyno, head, sent_at, _, _ = state
        conn.spawn(conn.resume(st, exchange(st, state), (backend, dyno, head, sent_at)))
        return
    assert data is not None and parsed is not None
    try:
        _relay(conn, st, state, parsed, data[end:])
    except Exception as e:  # a router fault: H99, as on the coroutine path
        conn.spawn(_fault(conn, st, state[6], backend, e, exchange(st, state)))
    conn.maybe_drained()


def expire(conn: H2Connection, st: H2Stream) -> None:
    """The response timer ran out: hand over (the coroutine path answers H12)."""
    _response(conn, st, None)


def _relay(
    conn: H2Connection,
    st: H2Stream,
    state: tuple,
    parsed: tuple[int, list[tuple[bytes, bytes]], bool, int | None],
    body: bytes,
) -> None:
    _, rid, backend, dyno, _, sent_at, app, host = state
    router = conn.router
    status, hs, keep_alive, _ = parsed
    if st.reset or conn.dead:  # the client went away meanwhile: H27, as on the slow path
        router.fast_end(app)
        backend.close()
        ex = exchange(st, state)
        ex.line.status = status
        ex._log_code("H27", 499)
        st.abort()
        conn.stream_done(st)
        return
    st.response_started = True
    proto = conn.proto
    n = len(body)
    proto.send_headers(st.stream_id, [*hs, (b"content-length", b"%d" % n)], not n)
    if n:
        proto.send_data(st.stream_id, body, end_stream=True)
    st.closed = True
    service_ms = int((time.monotonic() - sent_at) * 1000)
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
            host,
            rid,
            fwd,
            dyno.name,
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


async def _fault(
    conn: H2Connection,
    st: H2Stream,
    app: App,
    backend: BackendConn,
    e: Exception,
    ex: Exchange | None = None,
) -> None:
    backend.close()
    try:
        if ex is None:
            ex = Exchange(conn.router, st, st.req.head(True))
            ex.line.dyno = backend.dyno.name  # as the coroutine path logs it: dyno chosen
            ex.line.connect_ms = 0
        ex.app = app
        await ex._fail(HError("H99", cause=type(e).__name__))
    except Exception:
        st.abort()  # nothing sensible left to answer with
    finally:
        conn.router.fast_end(app)
        conn.stream_done(st)


def cancel(conn: H2Connection, st: H2Stream) -> None:
    """The router is stopping while this exchange is out: drop it quietly."""
    state = st.fast
    conn.fast.pop(st, None)
    if state is None:
        return
    st.fast = None
    backend = state[2]
    backend.reader.on_data = None
    backend.close()
    conn.router.fast_end(state[6])
