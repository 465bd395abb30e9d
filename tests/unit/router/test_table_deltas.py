"""The route table changes one app at a time: hostnames and certificates alike."""

from __future__ import annotations

from spruce.router.table import RouteTable


def _cert(cert_id: str, *hosts: str, pem: str = "C") -> dict[str, object]:
    return {"id": cert_id, "hostnames": list(hosts), "cert_pem": pem, "key_pem": "K"}


def test_upsert_moves_an_apps_hostnames_and_leaves_the_others() -> None:
    t = RouteTable(
        {
            "apps": {
                "a": {"id": "a", "hostnames": ["a.example.com", "*.a.example.com"], "dynos": []},
                "b": {"id": "b", "hostnames": ["b.example.com"], "dynos": []},
            }
        }
    )
    assert t.lookup_raw(b"a.example.com")[0].id == "a"  # memoised now
    t.upsert_app({"id": "a", "hostnames": ["new.example.com"], "dynos": []})
    assert t.lookup("a.example.com") is None and t.lookup("x.a.example.com") is None
    assert t.lookup_raw(b"a.example.com")[0] is None  # the memo did not outlive the change
    assert t.lookup("new.example.com").id == "a"
    assert t.lookup("b.example.com").id == "b"
    # A hostname that moved to another app is not taken away by the old app's removal.
    t.upsert_app({"id": "b", "hostnames": ["b.example.com", "new.example.com"], "dynos": []})
    t.remove_app("a")
    assert t.lookup("new.example.com").id == "b"


def test_app_certificates_replace_only_that_apps_and_name_what_went_stale() -> None:
    t = RouteTable(
        {
            "certificates": [
                dict(_cert("a1", "a.example.com"), app_id="a"),
                dict(_cert("b1", "*.example.com"), app_id="b"),
            ],
            "default_certificate": _cert("default", "localhost"),
        }
    )
    assert t.certificate_for("a.example.com").id == "a1"  # specific beats wildcard
    assert t.certificate_for("z.example.com").id == "b1"
    assert t.certificate_for("unknown.test").id == "default"
    # a renewal: same id, new PEM -> stale; a new certificate -> nothing stale
    assert t.set_app_certificates("a", [_cert("a1", "a.example.com", pem="C2")]) == ["a1"]
    assert t.certificate_for("a.example.com").cert_pem == "C2"
    assert (
        t.set_app_certificates(
            "a", [_cert("a1", "a.example.com", pem="C2"), _cert("a2", "x.example.com")]
        )
        == []
    )
    assert t.certificate_for("x.example.com").id == "a2"
    # the app's certificates removed: its names fall back to the wildcard of the other app
    assert sorted(t.set_app_certificates("a", [])) == ["a1", "a2"]
    assert t.certificate_for("a.example.com").id == "b1"
    assert [c.id for c in t.certificates] == ["b1"]
