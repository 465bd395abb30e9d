"""A real `spruce up` doing ACM against pebble and BIND 9, and TLS handshakes to its router.

The platform's apps answer at <app>.apps.spruce.test, which BIND resolves (a wildcard A
record) to 127.0.0.1; pebble's `httpPort` is the router's HTTP port, so every HTTP-01
validation goes through the platform's own router. DNS-01 records go to BIND by RFC 2136.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from support import RunningPlatform, start_platform, wait_for

from .servers import ACME_ZONE, CA_IDENTITY, Bind9, Pebble

APPS = "apps.spruce.test"


def use_app_domain(bind9: Bind9) -> None:
    """Every app's DNS target (<app>.apps.spruce.test) resolves to the router."""
    bind9.set(f"*.{APPS}", "A", "127.0.0.1")


def acm_platform(
    home: Path,
    pebble: Pebble,
    bind9: Bind9,
    acm_tuning: dict[str, Any] | None = None,
    extra_args: Iterable[str] = (),
) -> RunningPlatform:
    tuning = {"acm": {"first_retry": 1, "max_retry": 2, "poll_interval": 0.2, **(acm_tuning or {})}}
    return start_platform(
        home,
        extra_env={"SPRUCE_TUNING": json.dumps(tuning)},
        extra_args=[
            "--http-port",
            str(pebble.http_port),  # pebble validates HTTP-01 there: the router
            "--domain",
            APPS,
            "--acme-directory",
            pebble.directory_url,
            "--acme-email",
            "ops@spruce.test",
            "--acme-ca-bundle",
            pebble.ca_bundle,
            "--acme-dns",
            bind9.rfc2136_url(),
            "--acme-resolver",
            bind9.address,
            "--acme-caa-identity",
            CA_IDENTITY,
            *extra_args,
        ],
    )


def new_domain(bind9: Bind9, created: list[str]) -> str:
    name = f"shop-{secrets.token_hex(4)}.test"
    created.append(name)
    return name


def forget(bind9: Bind9, names: Iterable[str]) -> None:
    for name in names:
        for owner in (name, f"www.{name}", f"*.{name}", f"_acme-challenge.{name}"):
            bind9.delete(owner)


def point(bind9: Bind9, hostname: str, app: str) -> None:
    """The user's CNAME from `hostname` to the app's DNS target."""
    bind9.set(hostname, "CNAME", f"{app}.{APPS}.")


def delegate(bind9: Bind9, domain: str) -> None:
    """The user's CNAME that lets Spruce answer DNS-01 for `*.domain`."""
    bind9.set(f"_acme-challenge.{domain}", "CNAME", f"{domain}.{ACME_ZONE}.")


def create_app(client: httpx.Client, prefix: str = "acm") -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    r = client.post("/apps", json={"name": name})
    assert r.status_code == 201, r.text
    return name


def acm_statuses(client: httpx.Client, app: str) -> dict[str, tuple[str | None, str | None]]:
    return {
        d["hostname"]: (d["acm_status"], d["acm_status_reason"])
        for d in client.get(f"/apps/{app}/domains").json()
        if d["kind"] == "custom"
    }


def wait_statuses(
    client: httpx.Client, app: str, wanted: dict[str, str], timeout: float = 90
) -> dict[str, tuple[str | None, str | None]]:
    def reached() -> dict[str, tuple[str | None, str | None]] | None:
        now = acm_statuses(client, app)
        return now if all(now.get(h, (None,))[0] == s for h, s in wanted.items()) else None

    result: dict[str, tuple[str | None, str | None]] = wait_for(
        reached, timeout, interval=0.3, what=f"ACM statuses {wanted}"
    )
    return result


def https_port(p: RunningPlatform) -> int:
    return int(str(p.endpoints["router_https_url"]).rsplit(":", 1)[1])


def handshake(port: int, sni: str, roots_pem: str | None = None) -> x509.Certificate:
    """One TLS handshake with the router; the leaf it served (verified when roots given)."""
    if roots_pem is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=roots_pem)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def served_names(port: int, sni: str, wanted: set[str], timeout: float = 30) -> set[str]:
    """Handshake until the router serves a certificate for exactly `wanted`."""
    deadline = time.monotonic() + timeout
    got: set[str] = set()
    while time.monotonic() < deadline:
        got = names(handshake(port, sni))
        if got == wanted:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{sni}: served {got}, wanted {wanted}")
