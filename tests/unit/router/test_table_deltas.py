"""The route table changes one app at a time: hostnames and certificates alike."""

from __future__ import annotations

import random

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


def test_one_apps_certificates_reindex_as_a_whole_rebuild_would() -> None:
    """Random changes of single apps' certificates, shared names and wildcards included:
    after each, every name resolves as in a table built whole from the same certificates
    (the first app in the table's order naming a host wins), though only the changed
    app's names were looked at."""
    rng = random.Random(23)
    hosts = [f"h{i}.example.com" for i in range(6)] + ["*.example.com", "*.other.org"]
    probes = [h.replace("*", "x") for h in hosts] + ["h9.example.com", "a.other.org", "none"]
    t = RouteTable({"default_certificate": _cert("default", "localhost")})
    for step in range(400):
        app = f"app{rng.randrange(8)}"
        certs = [
            _cert(f"{app}-{step}-{k}", *rng.sample(hosts, rng.randrange(1, 3)))
            for k in range(rng.randrange(0, 3))
        ]
        t.set_app_certificates(app, certs)
        whole = RouteTable(
            {
                "certificates": [
                    {**_cert(c.id, *c.hostnames), "app_id": app_id}
                    for app_id, cs in t._certs_by_app.items()
                    for c in cs
                ],
                "default_certificate": _cert("default", "localhost"),
            }
        )
        for name in probes:
            got, want = t.certificate_for(name), whole.certificate_for(name)
            assert (got.id if got else None) == (want.id if want else None), (step, name)
