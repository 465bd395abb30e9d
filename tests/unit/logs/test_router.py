from __future__ import annotations

import threading
import time

import pytest

from spruce.events import LogSink
from spruce.logs import (
    LogRouter,
    LogRouterConfig,
    LogSessionError,
    display_line,
    new_drain_token,
)
from spruce.logs.drains import DrainSpec


def test_implements_log_sink() -> None:
    sink: LogSink = LogRouter()
    sink.emit("app1", "app", "web.1", "hello")


def test_ring_buffer_keeps_last_n_lines() -> None:
    r = LogRouter(LogRouterConfig(buffer_lines=10))
    for i in range(25):
        r.emit("a", "app", "web.1", f"line {i}")
    lines, head = r.recent("a", lines=100)
    assert head == 25
    assert [ln.message for ln in lines] == [f"line {i}" for i in range(15, 25)]
    assert [ln.seq for ln in lines] == list(range(16, 26))
    assert [ln.message for ln in r.recent("a", lines=3)[0]] == ["line 22", "line 23", "line 24"]
    assert r.recent("a", lines=0)[0] == []


def test_apps_are_isolated() -> None:
    r = LogRouter()
    r.emit("a", "app", "web.1", "for a")
    r.emit("b", "app", "web.1", "for b")
    assert [ln.message for ln in r.recent("a")[0]] == ["for a"]
    assert r.recent("nobody") == ([], 0)


def test_filters_by_source_and_dyno() -> None:
    r = LogRouter()
    r.emit("a", "app", "web.1", "w1")
    r.emit("a", "app", "web.2", "w2")
    r.emit("a", "app", "worker.1", "k1")
    r.emit("a", "heroku", "router", "rt")
    r.emit("a", "heroku", "web.1", "State changed from starting to up")
    r.emit("a", "app", "api", "Release v2 created by user x")
    msgs = lambda **kw: [ln.message for ln in r.recent("a", **kw)[0]]  # noqa: E731
    assert msgs(source="app") == ["w1", "w2", "k1", "Release v2 created by user x"]
    assert msgs(source="heroku") == ["rt", "State changed from starting to up"]
    assert msgs(dyno="web") == ["w1", "w2", "State changed from starting to up"]
    assert msgs(dyno="web.1", source="app") == ["w1"]
    assert msgs(dyno="router") == ["rt"]
    assert msgs(dyno="web.9") == []
    assert msgs(source="app", lines=2) == ["k1", "Release v2 created by user x"]


def test_lines_after_resumes_by_sequence() -> None:
    r = LogRouter()
    for i in range(5):
        r.emit("a", "app", "web.1", str(i))
    lines, head = r.lines_after("a", 3)
    assert [ln.message for ln in lines] == ["3", "4"] and head == 5
    assert r.lines_after("a", 5) == ([], 5)


def test_long_and_multiline_messages_split_not_lost() -> None:
    r = LogRouter(LogRouterConfig(max_line_bytes=100))
    r.emit("a", "app", "web.1", "y" * 250 + "\nnext")
    assert [len(ln.message) for ln in r.recent("a")[0]] == [100, 100, 50, 4]


def test_bad_timestamps_and_types_do_not_break_the_stream() -> None:
    r = LogRouter(clock=lambda: 1000.0)
    for bad in (float("nan"), float("inf"), -5.0, 1e20):
        r.emit("a", "app", "web.1", "x", ts=bad)
    r.emit("a", "app", "web.1", 12345)  # type: ignore[arg-type]
    r.emit("a", "app", "web.1", "ok", ts=2000.5)
    lines = r.recent("a")[0]
    assert [ln.ts for ln in lines] == [1000.0] * 5 + [2000.5]
    assert lines[4].message == "12345"
    assert display_line(lines[0]).startswith("1970-01-01T00:16:40.000000+00:00 app[web.1]")


def test_bad_source_or_process_is_rejected() -> None:
    r = LogRouter()
    with pytest.raises(ValueError, match="source"):
        r.emit("a", "system", "web.1", "x")
    with pytest.raises(ValueError, match="process"):
        r.emit("a", "app", "web 1", "x")


def test_emit_from_many_threads_keeps_sequence_dense() -> None:
    r = LogRouter(LogRouterConfig(buffer_lines=5000))

    def work(n: int) -> None:
        for i in range(500):
            r.emit("a", "app", f"web.{n}", str(i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines, head = r.recent("a", lines=1500)
    assert head == 2000
    assert [ln.seq for ln in lines] == list(range(501, 2001))


def test_session_parameters_validated() -> None:
    r = LogRouter()
    with pytest.raises(LogSessionError, match="lines"):
        r.create_session("a", lines=-1)
    clamped = r.session(r.create_session("a", lines=5000))
    assert clamped is not None and clamped.lines == 1500
    with pytest.raises(LogSessionError, match="source"):
        r.create_session("a", source="system")
    with pytest.raises(LogSessionError, match="dyno"):
        r.create_session("a", dyno="web 1")
    with pytest.raises(LogSessionError, match="tail"):
        r.create_session("a", tail="yes")  # type: ignore[arg-type]
    token = r.create_session("a", lines=5, tail=True, source="app", dyno="web")
    s = r.session(token)
    assert s is not None and (s.lines, s.tail, s.source, s.dyno) == (5, True, "app", "web")
    assert r.session_path(token) == "/" + token
    assert len(token) >= 40 and token != r.create_session("a")


def test_unused_session_expires() -> None:
    r = LogRouter(LogRouterConfig(session_ttl=0.05))
    token = r.create_session("a")
    assert r.session(token) is not None
    time.sleep(0.1)
    assert r.session(token) is None


def test_remove_app_forgets_lines_sessions_and_drains() -> None:
    r = LogRouter()
    r.emit("a", "app", "web.1", "x")
    token = r.create_session("a")
    r.set_drains("a", [DrainSpec("d1", "syslog://127.0.0.1:1", new_drain_token(), "demo")])
    r.remove_app("a")
    assert r.recent("a") == ([], 0)
    assert r.session(token) is None
    with pytest.raises(KeyError):
        r.drain_status("d1")


def test_set_drains_validates_before_changing_anything() -> None:
    r = LogRouter()
    good = DrainSpec("d1", "https://logs.example.com/x", "d.1", "demo")
    r.set_drains("a", [good])
    with pytest.raises(ValueError, match="scheme"):
        r.set_drains("a", [DrainSpec("d2", "ftp://x/y", "d.2", "demo")])
    assert r.drains("a") == [good]
    with pytest.raises(ValueError, match="unique"):
        r.set_drains("a", [good, good])
    with pytest.raises(ValueError, match="another app"):
        r.set_drains("b", [good])
    r.set_drains("a", [])
    assert r.drains("a") == []


def test_drain_buffer_drops_and_counts_without_blocking() -> None:
    r = LogRouter(LogRouterConfig(drain_buffer_lines=10))
    r.set_drains("a", [DrainSpec("d1", "syslog://127.0.0.1:9", "d.x", "demo")])  # not started
    t0 = time.perf_counter()
    for i in range(1000):
        r.emit("a", "app", "web.1", f"{i}")
    assert time.perf_counter() - t0 < 1.0
    status = r.drain_status("d1")
    assert (status.buffered, status.dropped, status.state) == (10, 990, "connecting")
    r.report_overflows()
    last = r.recent("a", lines=1)[0][0]
    assert (last.source, last.process) == ("heroku", "logplex")
    assert last.message.startswith(
        "Error L10 (output buffer overflow): 990 messages dropped since "
    )
    # The L10 line is not counted as another drop for the drain that overflowed.
    assert r.drain_status("d1").dropped == 990
    r.report_overflows()
    assert r.recent("a", lines=1)[0][0] == last  # reported once per episode
