"""The HTTP/2 fast lane, the counterpart of `H1Client._fast` (see http1_server.py).

A stream whose request is complete (HEADERS with END_STREAM), for an app without features
that needs no H code, with a pooled connection to an up, unquarantined dyno, is forwarded from
the connection's data callback; a response that arrives whole (head and Content-Length body
in one read, status >= 200, not 101/204/304, not to HEAD, fitting the flow control window) is
relayed from the dyno's data callback, log line included: no task, no queue, no coroutine.
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
from .proto.headers import rewrite_response_headers
from .proto.http1 import ProtocolError, ResponseHead, parse_response_head
from .proxy import BackendConn, choose
from .state import Router
from .table import App, Dyno, normalise_host

if TYPE_CHECKING:
    from asyncio import TimerHandle

    from .http2_server import H2Connection, H2Stream

    FastState = tuple[Exchange, BackendConn, Dyno, bytes, float, TimerHandle]


def try_fast(conn: H2Connection, st: H2Stream) -> bool:
    """Take the fast lane if this request qualifies; False leaves it to the coroutine path."""
    req = st.req
    if req.bad is not None or req.method == "CONNECT" or conn.writer.must_wait():
        return False
    router = conn.router
    host = normalise_host(req.authority)
    app = router.table.lookup(host)
    if (
        app is None
        or app.features
        or app.maintenance
        or not app.released
        or app.eco_quota_exhausted
        or app.web_quantity <= 0
        or not app.up
        or router.inflight.get(app.id, 0) >= 200 * app.web_quantity
        or (st.tls and st.sni and normalise_host(st.sni) != host)
    ):
        return False
    quarantine = router.quarantine
    candidates = [d for d in app.up if not quarantine.active(d.key)]
    if not candidates:
        return False
    dyno = choose(candidates)
    backend = router.pool.take(dyno.key)
    if backend is None:
        return False
    if backend.reader._buf:  # bytes the dyno sent unasked on an idle connection: unusable
        backend.close()
        return False
    # committed: from here the exchange is this request's, whatever happens
    router.activity[app.id] += 1
    router.inflight[app.id] += 1
    router.fast_lane += 1
    conn.fast.add(st)
    try:
        _send(conn, st, app, dyno, backend)
    except Exception as e:  # a router fault: H99, as on the coroutine path
        st.fast = None
        backend.reader.on_data = None
        conn.fast.discard(st)
        conn.spawn(_fault(conn, st, app, backend, e))
    return True


def _send(conn: H2Connection, st: H2Stream, app: App, dyno: Dyno, backend: BackendConn) -> None:
    router = conn.router
    ex = Exchange(router, st, st.req.head(True))
    ex.app = app
    ex.line.dyno = dyno.name
    ex.line.connect_ms = 0
    head = ex.request_head(app)
    sent_at = time.monotonic()
    backend.writer.write(head)
    timer = conn._loop.call_later(router.timers.response, _response, conn, st, None)
    st.fast = (ex, backend, dyno, head, sent_at, timer)
    backend.reader.on_data = lambda data: _response(conn, st, data)


def _response(conn: H2Connection, st: H2Stream, data: bytes | None) -> None:
    state: FastState | None = st.fast
    if state is None:
        return
    ex, backend, dyno, head, sent_at, timer = state
    st.fast = None
    conn.fast.discard(st)
    timer.cancel()
    backend.reader.on_data = None
    resp = None
    end = 0
    if data:
        end = data.find(b"\r\n\r\n") + 4
        if end >= 4:
            try:
                resp = parse_response_head(data[:end], ex.req.method)
            except ProtocolError:
                resp = None
    fits = False
    if resp is not None and data is not None and not st.reset and not conn.dead:
        try:
            fits = len(data) - end <= conn.proto.window(st.stream_id)
        except StreamGone:
            fits = False
    if (
        resp is None
        or resp.status < 200
        or resp.status in (101, 204, 304)
        or resp.chunked
        or resp.body_length is None
        or len(data or b"") - end != resp.body_length
        or ex.req.method == "HEAD"
        or not (fits or st.reset or conn.dead)
    ):
        if data:
            backend.reader.unread(data)
        conn.spawn(conn.resume(st, ex, (backend, dyno, head, sent_at)))
        conn._maybe_drained()
        return
    app = ex.app
    assert data is not None and app is not None
    try:
        _relay(conn, st, ex, app, backend, resp, data[end:], sent_at)
    except Exception as e:  # a router fault: H99, as on the coroutine path
        conn.spawn(_fault(conn, st, app, backend, e, ex))
    conn._maybe_drained()


def _relay(
    conn: H2Connection,
    st: H2Stream,
    ex: Exchange,
    app: App,
    backend: BackendConn,
    resp: ResponseHead,
    body: bytes,
    sent_at: float,
) -> None:
    from .http2_server import response_headers

    router = conn.router
    line = ex.line
    line.status = resp.status
    if st.reset or conn.dead:  # the client went away meanwhile: H27, as on the slow path
        done(router, app)
        backend.close()
        ex._log_code("H27", 499)
        st.abort()
        conn.stream_done(st)
        return
    out_headers = rewrite_response_headers(
        resp.headers, via=ex.via, keep_upgrade=False, listed=resp.connection
    )
    st.response_started = True
    hs = response_headers(resp.status, out_headers, len(body))
    proto = conn.proto
    if body:
        proto.send_headers(st.stream_id, hs)
        proto.send_data(st.stream_id, body, end_stream=True)
    else:
        proto.send_headers(st.stream_id, hs, end_stream=True)
    st.closed = True
    line.bytes = len(body)
    line.service_ms = int((time.monotonic() - sent_at) * 1000)
    if resp.keep_alive:
        router.pool.give(backend)
    else:
        backend.close()
    router.emit(app.id, line.format())
    done(router, app)
    conn.stream_done(st)


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
        done(conn.router, app)
        conn.stream_done(st)


def cancel(conn: H2Connection, st: H2Stream) -> None:
    """The router is stopping while this exchange is out: drop it quietly."""
    state: FastState | None = st.fast
    conn.fast.discard(st)
    if state is None:
        return
    st.fast = None
    ex, backend, _dyno, _head, _sent_at, timer = state
    timer.cancel()
    backend.reader.on_data = None
    backend.close()
    if ex.app is not None:
        done(conn.router, ex.app)


def done(router: Router, app: App) -> None:
    """The fast lane's exchange is no longer in flight."""
    inflight = router.inflight
    inflight[app.id] -= 1
    if inflight[app.id] <= 0:
        del inflight[app.id]
