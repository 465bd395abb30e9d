"""ACM's HTTP-01 answers from the route table (pure): which requests, which tokens."""

from __future__ import annotations

from spruce.router.acme_challenge import answer
from spruce.router.table import RouteTable

P = "/.well-known/acme-challenge/"


def table() -> RouteTable:
    return RouteTable(
        {
            "apps": {
                "a": {"id": "a", "hostnames": ["a.test"], "acme_challenges": {"tok-a": "tok-a.ka"}},
                "b": {"id": "b", "hostnames": ["b.test"], "acme_challenges": {"tok-b": "tok-b.ka"}},
                "c": {"id": "c", "hostnames": ["c.test"]},
            }
        }
    )


def test_tokens_of_every_app_are_answered_whatever_the_app():
    t = table()
    assert answer("GET", P + "tok-a", t) == b"tok-a.ka"
    assert answer("GET", P + "tok-b", t) == b"tok-b.ka"
    assert answer("GET", P + "tok-b?x=1", t) == b"tok-b.ka"  # a query does not matter


def test_anything_else_is_routed_as_usual():
    t = table()
    for method, target in [
        ("GET", P + "unknown"),  # not ACM's: the app may run its own ACME client
        ("GET", P),
        ("GET", P + "tok-a/more"),
        ("POST", P + "tok-a"),
        ("HEAD", P + "tok-a"),
        ("GET", "/tok-a"),
        ("GET", "/.well-known/acme-challenge"),
    ]:
        assert answer(method, target, t) is None, (method, target)


def test_an_upsert_brings_and_takes_tokens():
    t = table()
    t.upsert_app({"id": "c", "hostnames": ["c.test"], "acme_challenges": {"tok-c": "tok-c.ka"}})
    assert answer("GET", P + "tok-c", t) == b"tok-c.ka"
    t.upsert_app({"id": "a", "hostnames": ["a.test"]})
    assert answer("GET", P + "tok-a", t) is None
    t.remove_app("b")
    assert answer("GET", P + "tok-b", t) is None
