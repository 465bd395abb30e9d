"""Pure router logic: log line layout, route table lookup, affinity cookies, headers."""

from __future__ import annotations

import pytest

from spruce.router import affinity
from spruce.router.logline import RouterLine
from spruce.router.proto.headers import (
    request_id_for,
    rewrite_request_headers,
    rewrite_response_headers,
)
from spruce.router.table import App, RouteTable, TableError


def test_info_line_exact():
    line = RouterLine(
        "GET",
        "/",
        "my-app.example.com",
        "6903a168-b79b-ec27-03c8-b8f64d8d8792",
        "138.68.186.89",
        "http2.0",
        True,
        "tls1.3",
        dyno="web.1",
        connect_ms=0,
        service_ms=0,
        status=200,
        bytes=0,
    )
    assert line.format() == (
        'at=info method=GET path="/" host=my-app.example.com '
        'request_id=6903a168-b79b-ec27-03c8-b8f64d8d8792 fwd="138.68.186.89" dyno=web.1 '
        "connect=0ms service=0ms status=200 bytes=0 protocol=http2.0 tls=true tls_version=tls1.3"
    )


def test_error_lines_exact():
    base = dict(
        method="GET",
        path='/a"b',
        host="h",
        request_id="r",
        fwd="1.2.3.4",
        protocol="http1.1",
        tls=False,
        tls_version="unknown",
    )
    assert RouterLine(**base, code="H10", status=503).format() == (
        'at=error code=H10 desc="App crashed" method=GET path="/a\\"b" host=h request_id=r '
        'fwd="1.2.3.4" dyno= connect= service= status=503 bytes= protocol=http1.1 tls=false '
        "tls_version=unknown"
    )
    assert (
        RouterLine(**base, code="H18", status=503)
        .format()
        .startswith('sock=backend at=error code=H18 desc="Server Request Interrupted" method=GET')
    )
    assert (
        RouterLine(**base, code="H27", status=499)
        .format()
        .startswith('sock=client at=warning code=H27 desc="Client Request Interrupted"')
    )
    assert RouterLine(**base, code="H80", status=503).format().startswith("at=info code=H80 ")
    assert RouterLine(**base, code="H28").format().startswith("sock=client at=warning code=H28 ")


def _app(app_id, hosts, dynos=()):
    return {"id": app_id, "hostnames": hosts, "dynos": list(dynos)}


def test_table_lookup_exact_wildcard_and_ports():
    t = RouteTable(
        {
            "apps": {
                "a": _app("a", ["demo.localhost", "WWW.Example.com."]),
                "w": _app("w", ["*.example.org"]),
                "deep": _app("deep", ["*.b.example.org"]),
                "x": _app("x", ["x.example.org"]),
            }
        }
    )
    assert t.lookup("demo.localhost:8080").id == "a"
    assert t.lookup("www.example.com").id == "a"
    assert t.lookup("x.example.org").id == "x"
    assert t.lookup("y.example.org").id == "w"
    assert t.lookup("a.b.example.org").id == "deep"
    assert t.lookup("c.a.example.org").id == "w"
    assert t.lookup("example.org") is None
    assert t.lookup("nope") is None
    t.remove_app("w")
    assert t.lookup("y.example.org") is None


def test_table_rejects_bad_entries():
    with pytest.raises(TableError):
        RouteTable({"apps": {"a": {"dynos": [{"name": "web.1", "host": "h", "port": "x"}]}}})
    with pytest.raises(TableError):
        RouteTable(
            {
                "apps": {
                    "a": {"dynos": [{"name": "web.1", "host": "h", "port": 1, "state": "weird"}]}
                }
            }
        )
    with pytest.raises(TableError):
        RouteTable({"certificates": [{"id": "c"}]})


def test_affinity_tokens_are_app_bound_and_unforgeable():
    secret = b"s" * 32
    d = {"name": "web.1", "host": "127.0.0.1", "port": 5001, "state": "up"}
    a = App.from_dict({"id": "a", "hostnames": [], "dynos": [d]})
    b = App.from_dict({"id": "b", "hostnames": [], "dynos": [d]})
    tok = affinity.dyno_token(secret, a, a.up[0])
    assert affinity.find_dyno(secret, a, list(a.up), tok) == a.up[0]
    assert affinity.find_dyno(secret, b, list(b.up), tok) is None
    assert affinity.find_dyno(b"other", a, list(a.up), tok) is None
    assert affinity.find_dyno(secret, a, list(a.up), "0" * 40) is None
    moved = App.from_dict({"id": "a", "hostnames": [], "dynos": [dict(d, port=5002)]})
    assert affinity.find_dyno(secret, moved, list(moved.up), tok) is None
    assert affinity.cookie_value([("Cookie", "x=1; heroku-session-affinity=abc")]) == "abc"


def test_request_id_rules():
    ok = "A" * 20
    assert request_id_for([("X-Request-Id", ok)]) == ok
    assert request_id_for([("X-Request-Id", "A" * 19)]) != "A" * 19
    assert request_id_for([("X-Request-Id", "A" * 201)]) != "A" * 201
    assert request_id_for([("X-Request-Id", "a b" * 10)]) != "a b" * 10


def test_header_rewrite_both_ways():
    out = rewrite_request_headers(
        [
            ("Host", "h"),
            ("Connection", "foo"),
            ("Foo", "1"),
            ("Proxy-Connection", "x"),
            ("X-Forwarded-By", "me"),
            ("Content-Length", "9"),
        ],
        client_ip="1.1.1.1",
        proto="https",
        port=443,
        request_start_ms=1,
        request_id="r",
        via="1.1 spruce",
        body_length=None,
        has_body=True,
        upgrade=None,
        keep_alive_to_dyno=True,
        keep_expect=False,
    )
    names = [k.lower() for k, _ in out]
    assert "foo" not in names and "proxy-connection" not in names and "x-forwarded-by" not in names
    assert ("Transfer-Encoding", "chunked") in out and "content-length" not in names
    resp = rewrite_response_headers(
        [
            ("Keep-Alive", "x"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "a=b"),
            ("Via", "1.0 x"),
        ],
        via="1.1 spruce",
        keep_upgrade=False,
    )
    assert resp == [("Set-Cookie", "a=b"), ("Via", "1.0 x, 1.1 spruce")]


def test_timers_and_limits_cross_the_process_boundary_typed():
    from spruce.router.timers import RouterTimers

    t = RouterTimers()
    assert (t.shutdown_grace, t.connections_per_dyno) == (10.0, 1000)
    back = RouterTimers.from_dict({**t.to_dict(), "connections_per_dyno": 7.0})
    assert back.connections_per_dyno == 7 and isinstance(back.connections_per_dyno, int)
    assert isinstance(back.idle, float)
    for bad in ({"shutdown_grace": -1}, {"connections_per_dyno": 0}):
        with pytest.raises(ValueError):
            RouterTimers(**bad)  # type: ignore[arg-type]


def test_connection_apps_move_or_accumulate_and_release():
    from spruce.router.state import ConnectionApps, Router
    from spruce.router.timers import RouterTimers

    router = Router(RouterTimers(connections_per_dyno=2))
    a = App.from_dict({"id": "a", "hostnames": ["a"], "web_quantity": 1})
    b = App.from_dict({"id": "b", "hostnames": ["b"], "web_quantity": 0})
    h1 = [ConnectionApps(router, moves=True) for _ in range(3)]
    assert h1[0].joining(a) == 0
    h1[0].count(a)
    assert h1[1].joining(a) == 1
    h1[1].count(a)
    assert h1[2].joining(a) == 2  # what admission.refusal compares with the limit (H22)
    assert h1[0].joining(a) == 0  # already counted: joins nothing
    h1[0].count(a)
    assert router.connections == {"a": 2}
    h1[0].count(b)
    assert router.connections == {"a": 1, "b": 1}  # moved
    h2 = ConnectionApps(router, moves=False)
    h2.count(a)
    h2.count(b)
    assert router.connections == {"a": 2, "b": 2}  # accumulated
    h2.release()
    assert router.connections == {"a": 1, "b": 1}
    for c in h1:
        c.release()
    assert router.connections == {}


def test_h24_h22_h31_lines():
    base = dict(method="GET", path="/", host="h", request_id="r", fwd="1.2.3.4")
    tail = dict(protocol="http2.0", tls=True, tls_version="tls1.3")
    line = RouterLine(**base, **tail, code="H31", status=421, agent='curl/8 "x"')
    assert line.format() == (
        'at=error code=H31 desc="Misdirected Request" agent="curl/8 \\"x\\"" method=GET '
        'path="/" host=h request_id=r fwd="1.2.3.4" dyno= connect= service= status=421 bytes= '
        "protocol=http2.0 tls=true tls_version=tls1.3"
    )
    line = RouterLine(**base, **tail, code="H22", status=503)
    assert line.format().startswith('at=error code=H22 desc="Connection limit reached" method=')
    line = RouterLine(**base, **tail, code="H24", status=101, dyno="web.1", service_ms=5)
    assert line.format().startswith('at=error code=H24 desc="Forced close" method=GET')
    assert " dyno=web.1 connect= service=5ms status=101 bytes= " in line.format()
