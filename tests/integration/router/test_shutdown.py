"""H24 and graceful shutdown: idle connections closed at once, requests in flight given the
grace period, H24 for what still runs after it (real sockets, real backend processes)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import ssl
import time
from typing import Any

import h2.config
import h2.connection
import hpack
import pytest
import wsproto
import wsproto.events
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

from spruce.certs.ca import InternalCA
from spruce.events import PrintLogSink
from spruce.router.supervisor import RouterSupervisor

from .conftest import FAST, app_entry, one_response

H = "demo.localhost"
# dyno timers far beyond the grace periods used here: only the shutdown ends these requests
SLOW = dataclasses.replace(FAST, response=20.0, idle=20.0)


def table(*apps) -> dict:
    return {"router_name": "spruce", "apps": {a["id"]: a for a in apps}}


async def _request(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    try:
        return await asyncio.wait_for(one_response(reader), 15)
    finally:
        writer.close()


async def _until(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def test_requests_finish_in_the_grace_period_then_h24(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])), SLOW)
    idle_r, idle_w = await asyncio.open_connection("127.0.0.1", rr.http_port)
    idle_w.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    assert (await one_response(idle_r))[0] == 200  # a keepalive connection, now idle
    short = asyncio.ensure_future(_request(rr.http_port, "/sleep?s=0.5"))
    long = asyncio.ensure_future(_request(rr.http_port, "/sleep?s=10"))
    await _until(lambda: rr.router.inflight["a"] == 2)
    started = time.monotonic()
    stop = asyncio.ensure_future(rr.server.stop(grace=1.5))
    # the idle connection is closed at once, and no new connection is accepted
    assert await asyncio.wait_for(idle_r.read(), 0.5) == b""
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", rr.http_port)
    status, headers, body = await short  # finished within the grace period
    assert status == 200 and body == b"slept" and headers["connection"] == "close"
    assert time.monotonic() - started < 1.2
    status, headers, body = await long  # outlived it
    assert status == 503 and b"Application Error" in body
    await stop
    assert 1.5 <= time.monotonic() - started < 3.0
    ok = await rr.wait_log('path="/sleep?s=0.5"')
    assert ok.startswith("at=info method=GET ") and " status=200 " in ok
    line = await rr.wait_log('path="/sleep?s=10"')
    assert re.fullmatch(
        rf'at=error code=H24 desc="Forced close" method=GET path="/sleep\?s=10" host={H} '
        r'request_id=[0-9a-f-]{36} fwd="127.0.0.1" dyno=web.1 connect=\d+ms '
        r"service=1[45]\d\dms status=503 bytes=0 protocol=http1.1 tls=false tls_version=unknown",
        line,
    ), line
    assert [x for _, x in rr.logs].count(line) == 1
    idle_w.close()


async def test_fast_lane_exchange_in_flight_at_stop_gets_h24(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])), SLOW)
    reader, writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    writer.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    assert (await one_response(reader))[0] == 200
    before = rr.router.fast_lane
    writer.write(f"GET /sleep?s=10 HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    await _until(lambda: rr.router.inflight["a"] == 1)
    assert rr.router.fast_lane == before + 1  # taken by the fast lane (pooled connection)
    await rr.server.stop(grace=0.3)
    status, headers, body = await asyncio.wait_for(one_response(reader), 5)
    assert status == 503 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), 3) == b""
    line = await rr.wait_log("code=H24")
    assert 'path="/sleep?s=10"' in line and "dyno=web.1 " in line and " status=503 " in line
    writer.close()


async def test_response_under_way_is_cut_and_tunnel_logs_101(running_router, backends):
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])), SLOW)
    # a response begun (head and 2 of 10 body bytes), then the dyno stalls
    s_reader, s_writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    s_writer.write(f"GET /stall HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
    # an open WebSocket
    w_reader, w_writer = await asyncio.open_connection("127.0.0.1", rr.http_port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    w_writer.write(ws.send(wsproto.events.Request(host=H, target="/ws")))
    ws.receive_data(await asyncio.wait_for(w_reader.read(65536), 5))
    assert isinstance(next(ws.events()), wsproto.events.AcceptConnection)
    await _until(lambda: rr.router.inflight["a"] == 2)
    await asyncio.sleep(0.1)
    await rr.server.stop(grace=0.3)
    got = await asyncio.wait_for(s_reader.read(), 5)  # what it had, then the cut
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\nab")
    assert await asyncio.wait_for(w_reader.read(), 5) == b""
    line = await rr.wait_log('path="/stall"')
    assert line.startswith('at=error code=H24 desc="Forced close" ') and "dyno=web.1 " in line
    line = await rr.wait_log('path="/ws"')
    assert line.startswith('at=error code=H24 desc="Forced close" method=GET path="/ws" ')
    assert re.search(r" dyno=web\.1 connect=\d+ms service=\d+ms status=101 bytes=0 ", line), line
    assert len(rr.logs) == 2
    s_writer.close()
    w_writer.close()


class RawH2:
    """An HTTP/2 client that, unlike the h2 library (python-hyper/h2#1181), keeps reading the
    streams in flight after a GOAWAY: requests are written with h2, frames read by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.decoder = hpack.Decoder()
        self.buf = b""

    def get(self, stream_id: int, path: str) -> None:
        headers = [(":method", "GET"), (":path", path), (":scheme", "https")]
        self.h2.send_headers(stream_id, [*headers, (":authority", H)], end_stream=True)
        self.writer.write(self.h2.data_to_send())

    async def frame(self) -> Frame | None:
        while True:
            if len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9 : 9 + length]))
                    self.buf = self.buf[9 + length :]
                    if isinstance(f, HeadersFrame):
                        f.decoded = self.decoder.decode(f.data)  # type: ignore[attr-defined]
                    return f
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                return None
            self.buf += data


async def _h2_router(running_router, backends, tmp_path):  # type: ignore[no-untyped-def]
    """A router (SLOW timers) serving app "a" over TLS, and a raw HTTP/2 client connected."""
    ca = InternalCA(tmp_path / "ca")
    issued = ca.issue([H], [])
    b = backends()
    snap = table(app_entry("a", [H], [b.dyno()]))
    snap["certificates"] = [
        {"id": "c", "hostnames": [H], "cert_pem": issued.cert_pem, "key_pem": issued.key_pem}
    ]
    rr = await running_router(snap, SLOW)
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", rr.https_port, ssl=ctx, server_hostname=H
    )
    return rr, RawH2(reader, writer), writer


async def test_http2_goaway_grace_and_h24(running_router, backends, tmp_path):
    rr, c, writer = await _h2_router(running_router, backends, tmp_path)
    c.get(1, "/sleep?s=0.5")
    c.get(3, "/sleep?s=10")
    await _until(lambda: rr.router.inflight["a"] == 2)
    stop = asyncio.ensure_future(rr.server.stop(grace=1.5))
    status: dict[int, str] = {}
    body: dict[int, bytes] = {1: b"", 3: b""}
    goaway = refused = None
    while True:
        f = await c.frame()
        if f is None:
            break
        if isinstance(f, GoAwayFrame):
            goaway = (f.last_stream_id, f.error_code)
            c.get(5, "/name")  # too late: refused, to be retried elsewhere
        elif isinstance(f, RstStreamFrame):
            refused = (f.stream_id, f.error_code)
        elif isinstance(f, HeadersFrame):
            status[f.stream_id] = dict(f.decoded)[":status"]  # type: ignore[attr-defined]
        elif isinstance(f, DataFrame):
            body[f.stream_id] += f.data
    await stop
    assert goaway == (3, 0)  # NO_ERROR, streams up to 3 go on
    assert refused == (5, 7)  # REFUSED_STREAM
    assert status == {1: "200", 3: "503"}
    assert body[1] == b"slept" and b"Application Error" in body[3]
    ok = await rr.wait_log('path="/sleep?s=0.5"')
    assert ok.startswith("at=info ") and " status=200 " in ok and "protocol=http2.0" in ok
    line = await rr.wait_log("code=H24")
    assert 'path="/sleep?s=10"' in line and "status=503 bytes=0 protocol=http2.0 tls=true" in line
    assert not any('path="/name"' in x for _, x in rr.logs)
    writer.close()


async def test_idle_http2_connection_gets_goaway_and_is_closed(running_router, backends, tmp_path):
    rr, c, writer = await _h2_router(running_router, backends, tmp_path)
    c.get(1, "/name")
    while not isinstance(f := await c.frame(), DataFrame):  # SETTINGS..., HEADERS, DATA
        assert f is not None
    assert f.data == b"web.1"
    started = time.monotonic()
    await rr.server.stop(grace=5.0)
    assert time.monotonic() - started < 1.0  # nothing in flight: no waiting for the grace
    seen = []
    while (f := await c.frame()) is not None:
        seen.append(f)
    assert any(isinstance(f, GoAwayFrame) and f.last_stream_id == 1 for f in seen)
    writer.close()


async def test_worker_processes_finish_in_grace_and_ship_h24_lines(backends, tmp_path):
    """Through the supervisor and real worker processes: the router lines of the shutdown,
    H24 included, reach the log sink before stop() returns."""
    b = backends()
    sink = PrintLogSink()
    sup = RouterSupervisor(
        [("127.0.0.1", 0)],
        [],
        2,
        sink,
        timers=dataclasses.replace(SLOW, shutdown_grace=1.5),
        run_dir=tmp_path,
        snapshot=table(app_entry("a", [H], [b.dyno()])),
    )
    await sup.start()
    port = sup.http_addresses[0][1]
    try:
        assert (await _request(port, "/name"))[0] == 200
        short = asyncio.ensure_future(_request(port, "/sleep?s=0.5"))
        long = asyncio.ensure_future(_request(port, "/sleep?s=10"))
        await asyncio.sleep(0.3)  # both reached a worker (and the dyno)
        started = time.monotonic()
    finally:
        await sup.stop()
    took = time.monotonic() - started
    assert 1.5 <= took < 4.0, took
    assert (await short)[0] == 200
    status, _, body = await long
    assert status == 503 and b"Application Error" in body
    lines = [m for a, s, p, m in sink.lines if (a, s, p) == ("a", "heroku", "router")]
    (ok,) = [x for x in lines if 'path="/sleep?s=0.5"' in x]
    assert ok.startswith("at=info ") and " status=200 " in ok
    (h24,) = [x for x in lines if 'path="/sleep?s=10"' in x]
    assert h24.startswith('at=error code=H24 desc="Forced close" ') and " status=503 " in h24
    assert sup.worker_pids == []


async def test_worker_processes_stop_at_once_with_only_idle_connections(backends, tmp_path):
    b = backends()
    sup = RouterSupervisor(
        [("127.0.0.1", 0)],
        [],
        2,
        PrintLogSink(),
        timers=dataclasses.replace(SLOW, shutdown_grace=10.0),
        run_dir=tmp_path,
        snapshot=table(app_entry("a", [H], [b.dyno()])),
    )
    await sup.start()
    conns = []
    try:
        for _ in range(6):  # keepalive connections spread over both workers, left idle
            r, w = await asyncio.open_connection("127.0.0.1", sup.http_addresses[0][1])
            w.write(f"GET /name HTTP/1.1\r\nHost: {H}\r\n\r\n".encode())
            assert (await one_response(r))[0] == 200
            conns.append((r, w))
        started = time.monotonic()
    finally:
        await sup.stop()
    assert time.monotonic() - started < 2.0
    for r, w in conns:
        assert await asyncio.wait_for(r.read(), 1) == b""
        w.close()


async def _slow_client(port: int, n: int, extra: str = "") -> tuple[asyncio.Task[int], Any]:
    """A client that asks for n bytes and reads them slowly (~2 MB/s): returns the reading
    task (bytes of body read until the end) once the response has begun."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    writer.write(f"GET /big?n={n} HTTP/1.1\r\nHost: {H}\r\n{extra}\r\n".encode())
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)

    async def read() -> int:
        got = 0
        try:
            while got < n:
                data = await asyncio.wait_for(reader.read(65536), 5)
                if not data:
                    break
                got += len(data)
                await asyncio.sleep(0.03)
        finally:
            writer.close()
        return got

    return asyncio.ensure_future(read()), writer


async def test_responses_written_before_the_stop_reach_slow_readers(running_router, backends):
    # a keepalive response fully written (the exchange is over, the connection idle) but
    # still in the router's buffer: the idle connection is closed, not cut
    b = backends()
    rr = await running_router(table(app_entry("a", [H], [b.dyno()])), SLOW)
    n = 6_000_000
    task, _ = await _slow_client(rr.http_port, n)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await rr.server.stop(grace=8)
    assert await asyncio.wait_for(task, 10) == n
    assert time.monotonic() - started < 5  # stop waited for the flush, not the whole grace
    assert not rr.router.flushing


async def test_worker_processes_flush_slow_readers_before_exiting(backends, tmp_path):
    b = backends()
    sup = RouterSupervisor(
        [("127.0.0.1", 0)],
        [],
        1,
        PrintLogSink(),
        timers=dataclasses.replace(SLOW, shutdown_grace=8.0),
        run_dir=tmp_path,
        snapshot=table(app_entry("a", [H], [b.dyno()])),
    )
    await sup.start()
    n = 6_000_000
    try:
        port = sup.http_addresses[0][1]
        keep, _ = await _slow_client(port, n)
        close, _ = await _slow_client(port, n, "Connection: close\r\n")
        await asyncio.sleep(0.3)
    finally:
        await sup.stop()
    assert await asyncio.wait_for(keep, 10) == n
    assert await asyncio.wait_for(close, 10) == n


async def test_http2_goaway_last_stream_never_grows(running_router, backends, tmp_path):
    # after the shutdown's GOAWAY (last stream 1), the client opens stream 3 (refused) and
    # then breaks the protocol: the GOAWAY of that error may not name a higher stream than
    # the first (RFC 9113 6.8), stream 3 was never processed
    rr, c, writer = await _h2_router(running_router, backends, tmp_path)
    c.get(1, "/sleep?s=0.5")
    await _until(lambda: rr.router.inflight["a"] == 1)
    stop = asyncio.ensure_future(rr.server.stop(grace=1.5))
    goaways = []
    while (f := await c.frame()) is not None:
        if isinstance(f, GoAwayFrame):
            goaways.append((f.last_stream_id, f.error_code))
            if len(goaways) == 1:
                c.get(3, "/name")
        elif isinstance(f, RstStreamFrame) and f.stream_id == 3:
            writer.write(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"12345678")  # PING on 1
    await stop
    assert goaways == [(1, 0), (1, 1)]  # NO_ERROR, then PROTOCOL_ERROR: both name stream 1
    writer.close()
