"""A space's trusted IP ranges as the router reads them (table.App.trusts)."""

from __future__ import annotations

from spruce.router.table import App


def app(rules: list[list[str]] | None) -> App:
    entry: dict[str, object] = {"id": "a1", "name": "a", "hostnames": ["a.localhost"]}
    if rules is not None:
        entry["inbound_rules"] = rules
    return App.from_dict(entry)


def test_outside_a_space_everyone_is_trusted() -> None:
    a = app(None)
    assert a.trusts("203.0.113.9") and a.trusts("2001:db8::1")


def test_first_match_decides_and_no_match_refuses() -> None:
    a = app([["127.0.0.2/32", "deny"], ["127.0.0.0/8", "allow"]])
    assert not a.trusts("127.0.0.2")
    assert a.trusts("127.0.0.1") and a.trusts("::1") and a.trusts("::ffff:127.0.0.3")
    assert not a.trusts("192.0.2.1") and not a.trusts("2001:db8::1")
    assert not a.trusts("not an address")
    assert not app([]).trusts("127.0.0.1")


def test_ipv6_clients_only_under_everyone() -> None:
    assert app([["0.0.0.0/0", "allow"]]).trusts("2001:db8::1")
    assert not app([["0.0.0.0/0", "deny"]]).trusts("2001:db8::1")
