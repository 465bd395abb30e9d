"""The one admission rule (`admission.refusal`, `admission.no_dyno_up`), as pure functions."""

from __future__ import annotations

import pytest

from spruce.router.admission import BACKLOG_PER_DYNO, no_dyno_up, refusal
from spruce.router.errors import Code
from spruce.router.table import App, RouteTable

PER_DYNO = 1000


def _cert(cid: str, hosts: list[str]) -> dict[str, object]:
    return {"id": cid, "hostnames": hosts, "cert_pem": "-", "key_pem": "-"}


def _table(**app: object) -> tuple[RouteTable, App]:
    entry = {
        "id": "a",
        "name": "demo",
        "hostnames": ["demo.example.org", "other.example.org"],
        "web_quantity": 2,
        "dynos": [{"name": "web.1", "host": "127.0.0.1", "port": 1, "state": "up"}],
        **app,
    }
    table = RouteTable(
        {
            "apps": {"a": entry},
            "certificates": [
                _cert("wild", ["*.example.org"]),
                _cert("own", ["other.example.org"]),
            ],
        }
    )
    return table, table.apps["a"]


def _ask(
    table: RouteTable,
    app: App,
    host: str = "demo.example.org",
    sni: str | None = None,
    http2: bool = False,
    inflight: int = 0,
    connections: int = 0,
) -> Code | None:
    return refusal(table, app, host, sni, http2, inflight, connections, PER_DYNO)


def test_an_ordinary_request_is_admitted() -> None:
    table, app = _table()
    assert _ask(table, app) is None
    assert _ask(table, app, sni="demo.example.org", http2=True) is None


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"maintenance": True}, Code.H80),
        ({"released": False}, Code.H81),
        ({"eco_quota_exhausted": True}, Code.H82),
        ({"web_quantity": 0}, Code.H14),
    ],
)
def test_app_states(entry: dict[str, object], code: Code) -> None:
    table, app = _table(**entry)
    assert _ask(table, app) is code


def test_order_of_checks_is_router_2s() -> None:
    """H32 before H31 before H80, H81, H82, H14, H22, H11: each wins over those after it."""
    everything = {
        "maintenance": True,
        "released": False,
        "eco_quota_exhausted": True,
        "web_quantity": 0,
        "features": ["http-disable-http2"],
    }
    table, app = _table(**everything)
    full = {"inflight": 10**6, "connections": 10**6}
    assert _ask(table, app, sni="elsewhere.test", **full) is Code.H32
    assert _ask(table, app, sni="demo.example.org", http2=True, **full) is Code.H31
    order = [
        ("features", [], Code.H80),
        ("maintenance", False, Code.H81),
        ("released", True, Code.H82),
        ("eco_quota_exhausted", False, Code.H14),
        ("web_quantity", 1, Code.H22),
    ]
    entry = dict(everything)
    for key, value, code in order:
        entry[key] = value
        table, app = _table(**entry)
        assert _ask(table, app, sni="demo.example.org", http2=True, **full) is code
    table, app = _table(**entry)
    assert _ask(table, app, inflight=10**6) is Code.H11
    assert _ask(table, app) is None


def test_h22_counts_the_connections_this_one_would_join() -> None:
    table, app = _table(web_quantity=2)
    limit = PER_DYNO * 2
    assert _ask(table, app, connections=limit - 1) is None
    assert _ask(table, app, connections=limit) is Code.H22
    assert _ask(table, app, connections=0) is None  # counted already: never refused
    table, app = _table(web_quantity=0, dynos=[])
    assert _ask(table, app, connections=PER_DYNO) is Code.H14  # (max(web, 1) for H22)


def test_h11_at_200_per_web_dyno() -> None:
    table, app = _table(web_quantity=3)
    assert _ask(table, app, inflight=BACKLOG_PER_DYNO * 3 - 1) is None
    assert _ask(table, app, inflight=BACKLOG_PER_DYNO * 3) is Code.H11


def test_sni_and_host() -> None:
    table, app = _table()
    # the connection's certificate (*.example.org) covers Host, and the table picks it too
    assert _ask(table, app, sni="x.example.org") is None
    # SNI names a host the certificate does not cover
    assert _ask(table, app, host="demo.example.org", sni="nowhere.test") is Code.H32
    # Host has a certificate of its own ("own"): the client must connect again (H31)
    assert _ask(table, app, host="other.example.org", sni="demo.example.org") is Code.H31
    # no SNI (or plain HTTP): nothing to compare
    assert _ask(table, app, host="other.example.org") is None


def test_http2_disabled_is_misdirected_on_h2_only() -> None:
    table, app = _table(features=["http-disable-http2"])
    assert _ask(table, app, http2=True) is Code.H31
    assert _ask(table, app, http2=False) is None


def test_refusal_is_pure() -> None:
    table, app = _table(web_quantity=1)
    before = (dict(table.apps), app)
    for _ in range(3):
        assert _ask(table, app, inflight=BACKLOG_PER_DYNO) is Code.H11
    assert (dict(table.apps), app) == before


def _dynos(*states: str) -> list[dict[str, object]]:
    return [
        {"name": f"web.{i}", "host": "127.0.0.1", "port": 10 + i, "state": s}
        for i, s in enumerate(states, 1)
    ]


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"web_quantity": 0, "dynos": []}, Code.H14),
        ({"dynos": _dynos("crashed")}, Code.H10),
        ({"dynos": _dynos("crashed", "down")}, Code.H10),
        ({"dynos": _dynos("down")}, None),  # being replaced: wait (H20 at the end)
        ({"dynos": _dynos("crashed", "starting")}, None),
        ({"dynos": []}, None),  # none listed yet
        ({"dynos": _dynos("crashed"), "sleeping": True}, None),  # woken: wait
    ],
)
def test_no_dyno_up(entry: dict[str, object], code: Code | None) -> None:
    _, app = _table(**entry)
    assert no_dyno_up(app) is code
