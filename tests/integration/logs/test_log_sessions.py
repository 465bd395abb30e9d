"""Log sessions over a real uvicorn server, read with httpx (SSE like Heroku CLI v11, and
plain text like heroku3/curl)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from _logs_server import serve
from _logs_sse import events
from starlette.applications import Starlette
from starlette.routing import Mount

from spruce.logs import LogRouter, LogRouterConfig, display_line

PREFIX = "/log-sessions/stream"
SSE = {"Accept": "text/event-stream"}


def make_app(router: LogRouter) -> Starlette:
    return Starlette(routes=[Mount(PREFIX, app=router.asgi_app)])


def url(base: str, router: LogRouter, token: str) -> str:
    return base + PREFIX + router.session_path(token)


async def test_plain_text_recent_lines_and_single_use() -> None:
    router = LogRouter()
    for i in range(5):
        router.emit("app1", "app", "web.1", f"line {i}")
    router.emit("app2", "app", "web.1", "other app")
    token = router.create_session("app1", lines=3)
    async with serve(make_app(router)) as srv, httpx.AsyncClient() as client:
        r = await client.get(url(srv.base, router, token))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        expected = [display_line(ln) for ln in router.recent("app1", 3)[0]]
        assert r.text.splitlines() == expected
        assert r.text.splitlines()[0].endswith(" app[web.1]: line 2")
        again = await client.get(url(srv.base, router, token))
        assert again.status_code == 404
        assert (await client.get(srv.base + PREFIX + "/nonsense")).status_code == 404
        assert (await client.post(url(srv.base, router, token))).status_code == 405


async def test_sse_events_have_ids_and_formatted_lines() -> None:
    router = LogRouter()
    router.emit("app1", "heroku", "router", 'at=info method=GET path="/" status=200')
    router.emit("app1", "app", "web.1", b"bytes \xff and \x1b[1mansi\x1b[0m")
    token = router.create_session("app1")
    async with serve(make_app(router)) as srv, httpx.AsyncClient() as client:
        async with client.stream("GET", url(srv.base, router, token), headers=SSE) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            got = [e async for e in events(r)]
    lines = router.recent("app1")[0]
    assert [(e.id, e.data) for e in got] == [(str(ln.seq), display_line(ln)) for ln in lines]
    assert got[1].data.endswith("app[web.1]: bytes \\xff and \x1b[1mansi\x1b[0m")


async def test_filters_and_empty_dyno_gives_empty_stream() -> None:
    router = LogRouter()
    router.emit("a", "app", "web.1", "w1")
    router.emit("a", "app", "worker.1", "k1")
    router.emit("a", "heroku", "web.1", "State changed from starting to up")
    async with serve(make_app(router)) as srv, httpx.AsyncClient() as client:
        t = router.create_session("a", dyno="web", source="app")
        r = await client.get(url(srv.base, router, t))
        assert [ln.split(": ", 1)[1] for ln in r.text.splitlines()] == ["w1"]
        t = router.create_session("a", dyno="web.7")
        r = await client.get(url(srv.base, router, t), headers=SSE)
        assert (r.status_code, r.text) == (200, "")
        t = router.create_session("never-logged", tail=False)
        r = await client.get(url(srv.base, router, t))
        assert (r.status_code, r.text) == (200, "")


async def test_tail_delivers_new_lines_within_a_second() -> None:
    router = LogRouter()
    router.emit("a", "app", "web.1", "before")
    token = router.create_session("a", lines=10, tail=True)
    async with serve(make_app(router)) as srv, httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url(srv.base, router, token), headers=SSE) as r:
            stream = events(r)
            first = await asyncio.wait_for(anext(stream), 5)
            assert first.data.endswith("app[web.1]: before")
            for i in range(3):
                t0 = time.monotonic()
                router.emit("a", "app", "web.1", f"live {i}")
                ev = await asyncio.wait_for(anext(stream), 1.0)
                assert ev.data.endswith(f"live {i}")
                assert time.monotonic() - t0 < 1.0
            # A producer on another thread wakes the tail too.
            threading.Thread(target=router.emit, args=("a", "heroku", "router", "threaded")).start()
            ev = await asyncio.wait_for(anext(stream), 1.0)
            assert ev.data.endswith("heroku[router]: threaded")
            # A second GET of the same session takes over (a client whose old connection
            # died unnoticed reconnects at once); the first stream ends, without repeats.
            async with client.stream("GET", url(srv.base, router, token), headers=SSE) as r2:
                assert [e async for e in stream] == []
                router.emit("a", "app", "web.1", "to the new reader")
                ev = await asyncio.wait_for(anext(events(r2)), 1.0)
                assert ev.data.endswith("to the new reader")


async def test_plain_text_tail_streams() -> None:
    router = LogRouter()
    token = router.create_session("a", tail=True, dyno="web.1")
    async with serve(make_app(router)) as srv, httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url(srv.base, router, token)) as r:
            lines = r.aiter_lines()
            await asyncio.sleep(0.05)
            router.emit("a", "app", "web.2", "filtered out")
            router.emit("a", "app", "web.1", "kept")
            line = await asyncio.wait_for(anext(lines), 1.0)
            assert line.endswith("app[web.1]: kept")


async def test_tail_reconnect_resumes_without_duplicates() -> None:
    """EventSource (Heroku CLI --tail) reconnects to the same URL when a stream ends."""
    router = LogRouter(LogRouterConfig(tail_max_seconds=0.3, tail_keepalive=0.1))
    for i in range(3):
        router.emit("a", "app", "web.1", f"old {i}")
    token = router.create_session("a", lines=2, tail=True)
    async with serve(make_app(router)) as srv, httpx.AsyncClient(timeout=10) as client:
        seen: list[str] = []
        async with client.stream("GET", url(srv.base, router, token), headers=SSE) as r:
            chunk = ""
            async for text in r.aiter_text():
                chunk += text
                if "old 2" in chunk:
                    break
            assert chunk.startswith("retry: 1000")
            assert "old 1" in chunk and "old 0" not in chunk
        # First stream: read it whole (it ends after tail_max_seconds).
        token2 = token
        async with client.stream("GET", url(srv.base, router, token2), headers=SSE) as r:
            async for ev in events(r):
                seen.append(ev.data)
        # The first GET above already delivered the 2 recent lines; the second resumed after
        # them: nothing was repeated.
        assert seen == []
        router.emit("a", "app", "web.1", "while away")
        last_id = str(router.head("a"))
        router.emit("a", "app", "web.1", "after id")
        async with client.stream(
            "GET", url(srv.base, router, token), headers={**SSE, "Last-Event-ID": last_id}
        ) as r:
            got = [ev async for ev in events(r)]
        assert [e.data.rsplit(": ", 1)[1] for e in got] == ["after id"]
        assert got[0].id == str(router.head("a"))


async def test_session_expires_when_unused() -> None:
    router = LogRouter(LogRouterConfig(session_ttl=0.2))
    token = router.create_session("a")
    async with serve(make_app(router)) as srv, httpx.AsyncClient() as client:
        await asyncio.sleep(0.3)
        assert (await client.get(url(srv.base, router, token))).status_code == 404


@pytest.mark.parametrize("sse", [True, False])
async def test_client_disconnect_frees_the_tail(sse: bool) -> None:
    router = LogRouter()
    token = router.create_session("a", tail=True)
    headers = SSE if sse else {}
    async with serve(make_app(router)) as srv, httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url(srv.base, router, token), headers=headers) as r:
            assert r.status_code == 200
        deadline = time.monotonic() + 5
        while (s := router.session(token)) is not None and s.active:
            assert time.monotonic() < deadline, "session stayed busy after the client left"
            await asyncio.sleep(0.02)
        router.emit("a", "app", "web.1", "next")
        async with client.stream("GET", url(srv.base, router, token), headers=headers) as r:
            it = r.aiter_lines()
            line = await asyncio.wait_for(anext(it), 2)
            while sse and not line.startswith("data:"):
                line = await asyncio.wait_for(anext(it), 2)
            assert line.endswith("app[web.1]: next")


async def test_noisy_app_does_not_delay_another_apps_tail() -> None:
    router = LogRouter()
    quiet = router.create_session("quiet", tail=True)
    noisy = router.create_session("noisy", tail=True)
    async with serve(make_app(router)) as srv, httpx.AsyncClient(timeout=10) as client:
        async with (
            client.stream("GET", url(srv.base, router, quiet), headers=SSE) as rq,
            client.stream("GET", url(srv.base, router, noisy), headers=SSE) as rn,
        ):
            assert rn.status_code == 200  # a tail reader of the noisy app exists, unread
            quiet_events = events(rq)
            await asyncio.sleep(0.05)
            delays: list[float] = []
            for burst in range(5):
                for i in range(4000):
                    router.emit("noisy", "app", "web.1", f"noise {burst} {i} " + "n" * 100)
                t0 = time.monotonic()
                router.emit("quiet", "app", "web.1", f"quiet {burst}")
                ev = await asyncio.wait_for(anext(quiet_events), 1.0)
                assert ev.data.endswith(f"quiet {burst}")
                delays.append(time.monotonic() - t0)
            assert max(delays) < 1.0
