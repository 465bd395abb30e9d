"""Drains against real listeners: syslog over TCP and TLS (internal CA), HTTPS (uvicorn with
a CA-issued certificate), a stalled listener, and a listener that restarts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from _logs_server import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spruce.certs.ca import InternalCA
from spruce.logs import DrainSpec, LogRouter, LogRouterConfig, new_drain_token
from spruce.logs.framing import OctetFrameParser, SyslogMessage, parse_syslog_message
from spruce.netutil import free_port

FAST = LogRouterConfig(
    drain_backoff_min=0.05,
    drain_backoff_max=0.2,
    drain_connect_timeout=2,
    l10_interval=0.2,
)


class SyslogListener:
    """A TCP (optionally TLS) syslog receiver that parses octet-counted frames."""

    def __init__(self, port: int, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.ssl_ctx = ssl_ctx
        self.messages: list[SyslogMessage] = []
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.eofs = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, ssl=self.ssl_ctx, reuse_address=True
        )

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        parser = OctetFrameParser()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                self.messages.extend(parse_syslog_message(m) for m in parser.feed(data))
            self.eofs += 1

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        self.writers.clear()
        await self.server.wait_closed()


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(router: LogRouter) -> AsyncIterator[LogRouter]:
    await router.start()
    try:
        yield router
    finally:
        await router.stop()


def bodies(listener: SyslogListener) -> list[str]:
    return [m.message for m in listener.messages]


async def test_syslog_tcp_drain_receives_logplex_frames() -> None:
    listener = SyslogListener(free_port())
    await listener.start()
    token = new_drain_token()
    router = LogRouter(FAST)
    router.set_drains(
        "app1", [DrainSpec("drain-1", f"syslog://127.0.0.1:{listener.port}", token, "demo")]
    )
    router.emit("app1", "app", "web.1", "before start is buffered", ts=1795671633.123456)
    async with running(router):
        router.emit("app1", "heroku", "router", 'at=info method=GET path="/" status=200')
        router.emit("app1", "app", "web.1", "caf\u00e9 " + "x" * 20)
        router.emit("other", "app", "web.1", "not for this drain")
        await wait_until(lambda: len(listener.messages) >= 3, what="3 syslog messages")
        first, second, third = listener.messages[:3]
        assert (first.pri, first.timestamp, first.hostname) == (
            134,
            "2026-11-26T05:40:33.123456+00:00",
            token,
        )
        assert (first.app_name, first.procid, first.msgid) == ("app", "web.1", "-")
        assert first.message == "before start is buffered"
        assert (second.app_name, second.procid) == ("heroku", "router")
        assert third.message == "caf\u00e9 " + "x" * 20
        status = router.drain_status("drain-1")
        assert (status.state, status.sent, status.dropped) == ("connected", 3, 0)
    await listener.stop()
    assert "not for this drain" not in bodies(listener)


async def test_syslog_tls_drain_with_internal_ca(tmp_path: Path) -> None:
    ca = InternalCA(tmp_path / "ca")
    issued = ca.issue(["localhost"], ["127.0.0.1"])
    (tmp_path / "cert.pem").write_text(issued.cert_pem)
    (tmp_path / "key.pem").write_text(issued.key_pem)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = SyslogListener(free_port(), server_ctx)
    await listener.start()
    client_ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    router = LogRouter(FAST, drain_ssl_context=client_ctx)
    url = f"syslog+tls://localhost:{listener.port}"
    router.set_drains("a", [DrainSpec("d-tls", url, "d.tls", "demo")])
    async with running(router):
        router.emit("a", "app", "worker.1", "over tls")
        await wait_until(lambda: bodies(listener) == ["over tls"], what="tls message")
        assert listener.messages[0].procid == "worker.1"
    await listener.stop()

    # Without the CA the certificate is refused: the drain reports failing, emit unaffected.
    listener2 = SyslogListener(free_port(), server_ctx)
    await listener2.start()
    router2 = LogRouter(FAST)
    router2.set_drains(
        "a", [DrainSpec("d-bad", f"syslog+tls://localhost:{listener2.port}", "d.x", "demo")]
    )
    async with running(router2):
        router2.emit("a", "app", "web.1", "never delivered")
        await wait_until(lambda: router2.drain_status("d-bad").state == "failing", what="failing")
        assert "CERTIFICATE_VERIFY_FAILED" in (router2.drain_status("d-bad").last_error or "")
    await listener2.stop()
    assert listener2.messages == []


async def test_https_drain_posts_logplex_batches(tmp_path: Path) -> None:
    ca = InternalCA(tmp_path / "ca")
    issued = ca.issue(["localhost"], ["127.0.0.1"])
    (tmp_path / "cert.pem").write_text(issued.cert_pem)
    (tmp_path / "key.pem").write_text(issued.key_pem)
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = {"n": 1}

    async def ingest(request: Request) -> Response:
        body = await request.body()
        if fail_first["n"]:
            fail_first["n"] -= 1
            return Response(status_code=503)
        received.append((dict(request.headers), body))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/drain", ingest, methods=["POST"])])
    async with serve(
        app, ssl_certfile=str(tmp_path / "cert.pem"), ssl_keyfile=str(tmp_path / "key.pem")
    ) as srv:
        router = LogRouter(
            FAST, drain_ssl_context=ssl.create_default_context(cafile=str(ca.cert_path))
        )
        token = new_drain_token()
        drain_url = srv.base.replace("127.0.0.1", "user:s3cret@localhost") + "/drain"
        router.set_drains("a", [DrainSpec("d-https", drain_url, token, "demo")])
        for i in range(3):
            router.emit("a", "app", "web.1", f"batch line {i}")
        async with running(router):
            await wait_until(lambda: sum(int(h["logplex-msg-count"]) for h, _ in received) >= 3)
            headers, body = received[0]
            assert headers["content-type"] == "application/logplex-1"
            assert headers["logplex-drain-token"] == token
            assert headers["user-agent"].startswith("Logplex/")
            assert headers["authorization"].startswith("Basic ")
            assert len(headers["logplex-frame-id"]) == 32
            frames = OctetFrameParser().feed(body)
            assert len(frames) == int(headers["logplex-msg-count"])
            msgs = [parse_syslog_message(f) for f in frames]
            assert [m.message for m in msgs] == [f"batch line {i}" for i in range(3)]
            assert {m.hostname for m in msgs} == {token}
            st = router.drain_status("d-https")
            assert (st.state, st.sent, st.dropped) == ("connected", 3, 0)
            assert "s3cret" not in repr(st)


async def test_stalled_drain_never_slows_emit_and_reports_l10() -> None:
    port = free_port()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.bind(("127.0.0.1", port))
    stalled.listen()  # accepts (kernel backlog) but nobody ever reads
    config = LogRouterConfig(
        drain_buffer_lines=50,
        drain_backoff_min=0.05,
        drain_write_timeout=60,
        l10_interval=0.2,
    )
    router = LogRouter(config)
    router.set_drains("noisy", [DrainSpec("d-stall", f"syslog://127.0.0.1:{port}", "d.s", "demo")])
    try:
        async with running(router):
            # Blocking on the drain would hang here; the bound is generous for a busy machine
            # (typical total: ~30 ms for the 5000 emits).
            in_emit = 0.0
            line = "z" * 2000
            for i in range(5000):
                t0 = time.perf_counter()
                router.emit("noisy", "app", "web.1", line)
                in_emit += time.perf_counter() - t0
                if i % 200 == 0:
                    await asyncio.sleep(0)  # let the drain task run and fill the socket
            assert in_emit < 1.0, f"5000 emits took {in_emit * 1000:.0f} ms"
            status = router.drain_status("d-stall")
            assert status.dropped > 4000
            assert status.buffered <= 50

            def l10() -> list[str]:
                return [
                    ln.message
                    for ln in router.recent("noisy", 50, source="heroku", dyno="logplex")[0]
                ]

            def counts() -> list[int]:
                return [int(m.split(": ", 1)[1].split(" ")[0]) for m in l10()]

            # One L10 line per interval: on a slow machine the first comes mid-burst (and the
            # burst's own lines may push it out of the app's buffer); each counts only drops.
            await wait_until(lambda: bool(l10()), what="L10 line")
            assert all(m.startswith("Error L10 (output buffer overflow): ") for m in l10())
            assert all(n > 0 for n in counts())
            assert sum(counts()) <= router.drain_status("d-stall").dropped
            # Another app's emits are unaffected.
            t0 = time.perf_counter()
            for _ in range(1000):
                router.emit("quiet", "app", "web.1", "hello")
            assert time.perf_counter() - t0 < 1.0
    finally:
        stalled.close()


async def test_syslog_drain_reconnects_after_listener_restart() -> None:
    port = free_port()
    listener = SyslogListener(port)
    await listener.start()
    router = LogRouter(FAST)
    router.set_drains("a", [DrainSpec("d-r", f"syslog://127.0.0.1:{port}", "d.r", "demo")])
    async with running(router):
        router.emit("a", "app", "web.1", "first")
        await wait_until(lambda: bodies(listener) == ["first"], what="first line")
        await listener.stop()
        await wait_until(
            lambda: router.drain_status("d-r").state == "failing", what="drain notices the close"
        )
        error = router.drain_status("d-r").last_error or ""
        assert error == "the drain closed the connection" or error.startswith(
            "ConnectionRefusedError"
        )
        router.emit("a", "app", "web.1", "while down")
        await asyncio.sleep(0.3)  # a few failed reconnects with backoff
        listener2 = SyslogListener(port)
        await listener2.start()
        router.emit("a", "app", "web.1", "after restart")
        await wait_until(lambda: "after restart" in bodies(listener2), what="reconnect")
        assert bodies(listener2) == ["while down", "after restart"]
        assert router.drain_status("d-r").state == "connected"
        await listener2.stop()


@pytest.mark.parametrize("bad", ["udp://h:1", "syslog://h"])
def test_set_drains_rejects_bad_urls(bad: str) -> None:
    with pytest.raises(ValueError):
        LogRouter().set_drains("a", [DrainSpec("x", bad, "d.x", "demo")])


async def test_https_drain_gets_l10_frame_after_overflow() -> None:
    received: list[bytes] = []
    gate = asyncio.Event()

    async def ingest(request: Request) -> Response:
        await gate.wait()  # the receiver hangs until the test opens the gate
        received.append(await request.body())
        return Response(status_code=200)

    app = Starlette(routes=[Route("/in", ingest, methods=["POST"])])
    config = LogRouterConfig(drain_buffer_lines=20, drain_batch_lines=10, l10_interval=60)
    async with serve(app) as srv:
        router = LogRouter(config)
        router.set_drains("a", [DrainSpec("d-h", srv.base + "/in", "d.h", "demo")])
        async with running(router):
            router.emit("a", "app", "web.1", "first")
            await wait_until(lambda: router.drain_status("d-h").buffered == 0, what="in flight")
            for i in range(100):
                router.emit("a", "app", "web.1", f"n{i}")
            assert router.drain_status("d-h").dropped == 80
            gate.set()
            await wait_until(lambda: router.drain_status("d-h").buffered == 0, what="drained")
            await wait_until(lambda: router.drain_status("d-h").sent == 21, what="sent")
        msgs = [parse_syslog_message(f) for b in received for f in OctetFrameParser().feed(b)]
        texts = [m.message for m in msgs]
        assert texts[0] == "first"
        l10 = [m for m in msgs if m.procid == "logplex"]
        assert len(l10) == 1 and l10[0].pri == 172
        assert l10[0].message.startswith("Error L10 (output buffer overflow): 80 messages dropped")
        assert texts.index(l10[0].message) == 1  # ahead of the lines that follow the gap
        assert texts[2:] == [f"n{i}" for i in range(20)]


async def test_removing_and_replacing_drains_closes_connections() -> None:
    one, two = SyslogListener(free_port()), SyslogListener(free_port())
    await one.start()
    await two.start()
    router = LogRouter(FAST)
    spec = DrainSpec("d1", f"syslog://127.0.0.1:{one.port}", "d.1", "demo")
    router.set_drains("a", [spec])
    async with running(router):
        router.emit("a", "app", "web.1", "to one")
        await wait_until(lambda: bodies(one) == ["to one"])
        router.set_drains("a", [spec])  # unchanged: same connection, nothing lost
        router.emit("a", "app", "web.1", "still one")
        await wait_until(lambda: bodies(one) == ["to one", "still one"])
        assert len(one.writers) == 1
        router.set_drains("a", [DrainSpec("d1", f"syslog://127.0.0.1:{two.port}", "d.1", "demo")])
        router.emit("a", "app", "web.1", "to two")
        await wait_until(lambda: bodies(two) == ["to two"])
        await wait_until(lambda: one.eofs == 1, what="old connection closed by the router")
        router.remove_app("a")
        router.emit("a", "app", "web.1", "after removal")
        await wait_until(lambda: two.eofs == 1, what="connection closed on remove_app")
        with pytest.raises(KeyError):
            router.drain_status("d1")
        assert bodies(two) == ["to two"]
    await one.stop()
    await two.stop()
