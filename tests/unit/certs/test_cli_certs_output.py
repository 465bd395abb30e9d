"""What `spruce certs:*` prints for given API answers (the rules of Heroku's CLI): statuses,
headers, the certificate details block, the certs table, relative times."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cli_invoke import spruce
from click.testing import CliRunner

from spruce.cli import certs as certs_cli

NOW = dt.datetime.now(dt.UTC)


def iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint(name: str, names: list[str], acm: bool, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "display_name": kw.get("display_name"),
        "domains": kw.get("domains", []),
        "app": {"id": "1", "name": "shop"},
        "ssl_cert": {
            "acm": acm,
            "ca_signed?": kw.get("ca_signed", True),
            "cert_domains": names,
            "expires_at": iso(kw.get("expires", NOW + dt.timedelta(days=90))),
            "starts_at": "2026-01-01T00:00:00Z",
            "issuer": "CN=Pebble Intermediate CA",
            "subject": f"CN={names[0]}",
        },
    }


def domain(host: str, status: str | None, reason: str | None = None) -> dict[str, Any]:
    return {
        "hostname": host,
        "kind": "custom",
        "cname": "shop.apps.test",
        "acm_status": status,
        "acm_status_reason": reason,
        "updated_at": iso(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)),  # at run time
    }


class FakeClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def get(self, path: str) -> Any:
        self.calls.append(("GET", path))
        return self.answers[path]

    get_all = get

    def post(self, path: str, body: Any = None) -> Any:
        self.calls.append(("POST", path))
        return {}

    patch = delete = post


def run(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any], *args: str) -> Any:
    fake = FakeClient(answers)
    monkeypatch.setattr(certs_cli, "client", lambda: fake)
    monkeypatch.setattr(certs_cli.time, "sleep", lambda s: None)
    return CliRunner().invoke(spruce, [*args, "-a", "shop"])


def test_statuses_as_heroku_shows_them() -> None:
    labels = {
        None: "Waiting",
        "ok": "OK",
        "failed": "Failed",
        "verified": "In Progress",
        "dns-verified": "DNS Verified",
        "pending": "Pending",
        "failing": "Failing",
        "cert issued": "Cert issued",
        "in-progress": "In Progress",
    }
    assert {k: certs_cli.status_label(k) for k in labels} == labels


@pytest.mark.parametrize(
    "ago,text",
    [
        (dt.timedelta(seconds=20), "less than a minute"),
        (dt.timedelta(seconds=70), "1 minute"),
        (dt.timedelta(minutes=44), "44 minutes"),
        (dt.timedelta(minutes=80), "about 1 hour"),
        (dt.timedelta(hours=5), "about 5 hours"),
        (dt.timedelta(hours=30), "1 day"),
        (dt.timedelta(days=12), "12 days"),
        (dt.timedelta(days=40), "about 1 month"),
        (dt.timedelta(days=100), "3 months"),
        (dt.timedelta(days=400), "about 1 year"),
        (dt.timedelta(days=365 * 2 + 150), "over 2 years"),
    ],
)
def test_relative_times_read_as_date_fns_writes_them(ago: dt.timedelta, text: str) -> None:
    assert certs_cli.distance(NOW - ago, NOW) == text


def test_a_month_before_overflows_as_javascript_does() -> None:
    assert certs_cli.month_before(dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)) == dt.datetime(
        2026, 3, 3, 12, tzinfo=dt.UTC
    )
    assert certs_cli.month_before(dt.datetime(2026, 1, 15, tzinfo=dt.UTC)) == dt.datetime(
        2025, 12, 15, tzinfo=dt.UTC
    )


def test_certs_auto_with_one_acm_certificate_and_failing_domains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expires = dt.datetime(2030, 5, 20, 8, 30, tzinfo=dt.UTC)
    answers = {
        "/apps/shop": {"acm": True},
        "/apps/shop/sni-endpoints": [
            endpoint("stego-1", ["www.shop.test", "shop.test"], True, expires=expires)
        ],
        "/apps/shop/domains": [
            {"hostname": "shop.apps.test", "kind": "heroku"},
            domain("www.shop.test", "cert issued"),
            domain("api.shop.test", "failing", "api.shop.test has no DNS records."),
        ],
    }
    out = run(monkeypatch, answers, "certs:auto").output
    assert out == (
        "=== Automatic Certificate Management is enabled on ⬢ shop\n"
        "Renewal scheduled for 2030-04-20 08:30 UTC.\n\n"
        "Certificate details:\n"
        "Common Name(s): www.shop.test\n"
        "                shop.test\n"
        "Expires At:     2030-05-20 08:30 UTC\n"
        "Issuer:         CN=Pebble Intermediate CA\n"
        "Starts At:      2026-01-01 00:00 UTC\n"
        "Subject:        CN=www.shop.test\n"
        "SSL certificate is verified by a root authority.\n\n"
        " Domain         Status       Reason                             Last Updated\n"
        " ─────────────  ───────────  ─────────────────────────────────  ────────────\n"
        " www.shop.test  Cert issued                                     5 minutes\n"
        " api.shop.test  Failing      api.shop.test has no DNS records.  5 minutes\n\n"
        "=== Some domains are failing validation, please verify that your DNS matches: "
        "spruce domains\n"
        "    See our documentation at "
        "https://devcenter.heroku.com/articles/automated-certificate-management#failure-reasons\n"
    )


def test_certs_auto_disabled_and_without_custom_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    off = {"/apps/shop": {"acm": False}, "/apps/shop/sni-endpoints": []}
    assert run(monkeypatch, off, "certs:auto").output == (
        "=== Automatic Certificate Management is disabled on ⬢ shop\n"
    )
    on = {**off, "/apps/shop": {"acm": True}, "/apps/shop/domains": []}
    assert run(monkeypatch, on, "certs:auto").output == (
        "=== Automatic Certificate Management is enabled on ⬢ shop\n"
        "=== Add a custom domain to your app by running: spruce domains:add <yourdomain.com>\n"
    )


def test_certs_table_shows_types_and_domains_only_for_uploaded_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expires = dt.datetime(2030, 5, 20, 8, 30, tzinfo=dt.UTC)
    answers = {
        "/apps/shop/sni-endpoints": [
            endpoint("zeta-2", ["*.shop.test"], True, expires=expires),
            endpoint("alpha-1", ["www.x.test"], False, expires=expires, domains=["d1", "d2"]),
        ]
    }
    assert run(monkeypatch, answers, "certs").output == (
        " Name     Common Name(s)  Expires               Trusted  Type  Domains\n"
        " ───────  ──────────────  ────────────────────  ───────  ────  ───────\n"
        " alpha-1  www.x.test      2030-05-20 08:30 UTC  True     SNI   2\n"
        " zeta-2   *.shop.test     2030-05-20 08:30 UTC  True     ACM\n"
    )
    none = run(monkeypatch, {"/apps/shop/sni-endpoints": []}, "certs").output
    assert none == "⬢ shop has no SSL certificates.\nUse spruce certs:add CRT KEY to add one.\n"


def test_enable_wait_fails_when_a_domain_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"/apps/shop/domains": [domain("www.shop.test", "failed", "CAA forbids it")]}
    result = run(monkeypatch, answers, "certs:auto:enable", "--wait")
    # Settled at the first look: Heroku's CLI neither waits nor fails then.
    assert result.exit_code == 0
    assert "Enabling Automatic Certificate Management... starting." in result.output
    assert "Waiting until the certificate is issued" not in result.output
    pending = iter(
        [
            [domain("www.shop.test", None)],  # before enabling
            [domain("www.shop.test", "pending")],  # then polled until settled
            [domain("www.shop.test", "dns-verified")],
            [domain("www.shop.test", "failed")],
        ]
    )
    fake = FakeClient({})
    fake.get = lambda path: next(pending) if path.endswith("/domains") else {}  # type: ignore[method-assign]
    fake.get_all = fake.get  # type: ignore[method-assign]
    monkeypatch.setattr(certs_cli, "client", lambda: fake)
    monkeypatch.setattr(certs_cli.time, "sleep", lambda s: None)
    result = CliRunner().invoke(spruce, ["certs:auto:enable", "--wait", "-a", "shop"])
    assert result.exit_code == 1
    assert "Waiting until the certificate is issued to all domains... !" in result.output
    assert (
        "=== Error: The certificate could not be issued to all domains. "
        "See status with spruce certs:auto." in result.output
    )
    assert "ACM not enabled for some domains" in result.output


def test_certs_info_chooses_like_heroku(monkeypatch: pytest.MonkeyPatch) -> None:
    two = {
        "/apps/shop/sni-endpoints": [
            endpoint("a-1", ["a.test"], True),
            endpoint("b-2", ["b.test"], True),
        ]
    }
    assert "Must pass --name when more than one endpoint" in (
        run(monkeypatch, two, "certs:info").output
    )
    assert "Specified both --name and --endpoint" in (
        run(monkeypatch, two, "certs:info", "--name", "a-1", "--endpoint", "a.test").output
    )
    assert "Record not found." in run(monkeypatch, two, "certs:info", "--name", "zz").output
    one = {**two, "/apps/shop/sni-endpoints/b-2": two["/apps/shop/sni-endpoints"][1]}
    out = run(monkeypatch, one, "certs:info", "--name", "b-2").output
    assert "Fetching SSL certificate b-2 info for ⬢ shop... done" in out
    assert "Common Name(s): b.test\n" in out
