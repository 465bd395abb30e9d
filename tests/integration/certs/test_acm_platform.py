"""ACM on a real platform, from pebble and BIND 9: a custom domain over HTTP-01 through the
platform's own router, a wildcard over DNS-01, the specific certificate served before the
wildcard and the wildcard once the specific one is gone, and each failure with its reason.
The spruce CLI's certs:* commands drive and show it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from support import RunningPlatform

from spruce.netutil import free_port

from .acm_support import (
    acm_platform,
    acm_statuses,
    create_app,
    delegate,
    forget,
    handshake,
    https_port,
    names,
    new_domain,
    point,
    served_names,
    use_app_domain,
    wait_statuses,
)
from .servers import ACME_ZONE, CA_IDENTITY, Bind9, Pebble, verify_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def acm_pebble(tmp_path_factory: pytest.TempPathFactory, bind9: Bind9) -> Iterator[Pebble]:
    server = Pebble(
        tmp_path_factory.mktemp("acm-pebble"), http_port=free_port(), dns_server=bind9.address
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, acm_pebble: Pebble, bind9: Bind9
) -> Iterator[RunningPlatform]:
    use_app_domain(bind9)
    p = acm_platform(
        tmp_path_factory.mktemp("acm-home"), acm_pebble, bind9, acm_tuning={"max_attempts": 3}
    )
    yield p
    p.stop()


@pytest.fixture
def domains(bind9: Bind9) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    forget(bind9, created)


def test_http01_and_dns01_issue_and_the_wildcard_takes_over_the_specific_name(
    platform: RunningPlatform, acm_pebble: Pebble, bind9: Bind9, domains: list[str]
) -> None:
    api = platform.client()
    app = create_app(api)
    domain = new_domain(bind9, domains)
    www, wildcard = f"www.{domain}", f"*.{domain}"
    point(bind9, www, app)
    point(bind9, wildcard, app)
    delegate(bind9, domain)
    for host in (www, wildcard):
        assert api.post(f"/apps/{app}/domains", json={"hostname": host}).status_code == 201
    disabled = platform.cli("certs:auto", "-a", app, check=True).stdout
    assert disabled.strip() == f"=== Automatic Certificate Management is disabled on ⬢ {app}"

    enabled = platform.cli("certs:auto:enable", "--wait", "-a", app, check=True)
    assert "Enabling Automatic Certificate Management... starting." in enabled.stderr
    assert "Waiting until the certificate is issued to all domains... done" in enabled.stderr
    assert enabled.stdout.strip() == (
        "=== Your certificate will now be managed by Heroku. Check the status by running "
        "spruce certs:auto."
    )
    assert acm_statuses(api, app) == {www: ("cert issued", None), wildcard: ("cert issued", None)}
    assert api.get(f"/apps/{app}").json()["acm"] is True

    # Two ACM certificates: the specific name's (HTTP-01 through the router) and the
    # wildcard's (DNS-01 via RFC 2136), each an SNI endpoint with ssl_cert.acm true.
    endpoints = {frozenset(e["ssl_cert"]["cert_domains"]): e for e in _endpoints(api, app)}
    assert set(endpoints) == {frozenset({www}), frozenset({wildcard})}
    roots = acm_pebble.roots_pem()
    for hostnames, e in endpoints.items():
        assert e["ssl_cert"]["acm"] is True and e["ssl_cert"]["ca_signed?"] is True
        verify_chain(e["certificate_chain"], roots, hostnames)
    by_name = {d["hostname"]: d for d in api.get(f"/apps/{app}/domains").json()}
    assert by_name[www]["sni_endpoint"]["name"] == endpoints[frozenset({www})]["name"]
    assert by_name[wildcard]["sni_endpoint"]["name"] == endpoints[frozenset({wildcard})]["name"]
    assert bind9.query(f"{domain}.{ACME_ZONE}", "TXT") == []  # DNS-01 records cleaned up

    port = https_port(platform)
    assert names(handshake(port, www, roots)) == {www}  # specific beats wildcard
    assert names(handshake(port, f"api.{domain}", roots)) == {wildcard}

    status = platform.cli("certs:auto", "-a", app, check=True).stdout
    assert status.startswith(f"=== Automatic Certificate Management is enabled on ⬢ {app}\n")
    rows = [line.split() for line in status.splitlines()[3:]]
    assert sorted(r[:3] for r in rows) == sorted(
        [[www, "Cert", "issued"], [wildcard, "Cert", "issued"]]
    )
    assert "Reason" not in status and "less than a minute" in status
    listing = platform.cli("certs", "-a", app, check=True).stdout.splitlines()
    assert listing[0].split() == ["Name", "Common", "Name(s)", "Expires", "Trusted", "Type"]
    assert sorted(line.split()[1] for line in listing[2:]) == sorted([www, wildcard])
    assert all(line.split()[-2:] == ["True", "ACM"] for line in listing[2:])
    wild_name = endpoints[frozenset({wildcard})]["name"]
    info = platform.cli("certs:info", "--endpoint", wildcard, "-a", app, check=True)
    assert f"Fetching SSL certificate {wild_name} info for ⬢ {app}... done" in info.stderr
    assert info.stdout.startswith("Renewal scheduled for ")
    assert f"Common Name(s): {wildcard}\n" in info.stdout
    assert "Issuer:         CN=Pebble Intermediate CA" in info.stdout
    assert info.stdout.rstrip().endswith("SSL certificate is verified by a root authority.")

    # The specific name goes: its certificate goes with it, and the very next handshakes
    # for it get the wildcard's, with no restart.
    pid = platform.proc.pid
    assert api.delete(f"/apps/{app}/domains/{www}").status_code == 200
    served_names(port, www, {wildcard})
    assert platform.proc.poll() is None and platform.proc.pid == pid
    assert {frozenset(e["ssl_cert"]["cert_domains"]) for e in _endpoints(api, app)} == {
        frozenset({wildcard})
    }


def test_each_failure_says_why_then_fails_and_refresh_retries(
    platform: RunningPlatform, bind9: Bind9, domains: list[str]
) -> None:
    api = platform.client()
    app = create_app(api)
    elsewhere, undelegated, guarded = (new_domain(bind9, domains) for _ in range(3))
    www = f"www.{elsewhere}"
    bind9.set(www, "CNAME", f"legacy.{elsewhere}.")  # an old host, not the DNS target
    bind9.set(f"legacy.{elsewhere}", "A", "127.0.0.2")
    wildcard = f"*.{undelegated}"
    point(bind9, wildcard, app)  # but no _acme-challenge delegation
    shop = f"www.{guarded}"
    point(bind9, shop, app)
    bind9.set(guarded, "CAA", '0 issue "letsencrypt.org"')  # forbids our CA
    for host in (www, wildcard, shop):
        assert api.post(f"/apps/{app}/domains", json={"hostname": host}).status_code == 201
    assert api.post(f"/apps/{app}/acm", json={}).json()["acm"] is True

    failing = wait_statuses(api, app, {www: "failing", wildcard: "failing", shop: "failing"})
    target = f"{app}.apps.spruce.test"
    assert failing[www][1] == (
        f"{www} has a CNAME record pointing to legacy.{elsewhere}, not to its DNS target "
        f"{target}. Change the CNAME to point to {target}."
    )
    assert failing[wildcard][1] == (
        f"_acme-challenge.{undelegated} is a CNAME to {target}, not to "
        f"{undelegated}.{ACME_ZONE}. Add a CNAME record _acme-challenge.{undelegated} "
        f"pointing to {undelegated}.{ACME_ZONE} so Spruce can answer the DNS-01 challenge "
        f"for {wildcard}."
    )
    assert failing[shop][1] == (
        f"A CAA record on {guarded} allows only letsencrypt.org to issue certificates, not "
        f'{CA_IDENTITY}. Add a CAA record {guarded}. CAA 0 issue "{CA_IDENTITY}" or remove '
        "the restriction."
    )
    # Three attempts (1 s, then 2 s apart), then failed, with the reason kept.
    failed = wait_statuses(api, app, {www: "failed", wildcard: "failed", shop: "failed"}, 30)
    assert failed[www] == ("failed", failing[www][1])
    shown = platform.cli("certs:auto", "-a", app, check=True).stdout
    assert (
        "=== Some domains failed validation after multiple attempts, retry by running: "
        "spruce certs:auto:refresh\n    See our documentation at "
        "https://devcenter.heroku.com/articles/automated-certificate-management#failure-reasons"
    ) in shown
    assert _endpoints(api, app) == []

    # The user fixes two of them and refreshes: those are issued, the third fails again.
    point(bind9, www, app)
    delegate(bind9, undelegated)
    refreshed = platform.cli("certs:auto:refresh", "-a", app, check=True)
    assert "Refreshing Automatic Certificate Management... done" in refreshed.stderr
    done = wait_statuses(api, app, {www: "cert issued", wildcard: "cert issued", shop: "failed"})
    assert done[shop][1] == failed[shop][1]
    # Disabling removes ACM's certificates and clears the statuses.
    off = platform.cli("certs:auto:disable", "--confirm", app, "-a", app, check=True)
    assert "Disabling Automatic Certificate Management... done" in off.stderr
    assert api.get(f"/apps/{app}").json()["acm"] is False
    assert _endpoints(api, app) == []
    assert set(acm_statuses(api, app).values()) == {(None, None)}


def _endpoints(api, app: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(api.get(f"/apps/{app}/sni-endpoints").json())


def _leaf_serial(chain: str) -> int:
    return x509.load_pem_x509_certificates(chain.encode())[0].serial_number
