"""Fixtures for ACME tests: one BIND 9, one HTTP-01 responder and one pebble per session.

Other test packages can reuse them by importing these names into their own conftest.py
(`from integration.certs.conftest import bind9, http01, pebble, ...`) or by building the
classes in `servers.py` themselves (e.g. pebble's `http_port` at the router's HTTP port).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spruce.certs.acme import AcmeAccount, AcmeIssuer, Http01Tokens
from spruce.certs.dns import Prechecks, Resolver, Rfc2136Provider

from .servers import ACME_ZONE, CA_IDENTITY, Bind9, Http01Server, Pebble

TARGET_IP = "127.0.0.1"  # where every app's DNS target resolves (our HTTP-01 responder)


@pytest.fixture(scope="session")
def bind9(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind9]:
    server = Bind9(tmp_path_factory.mktemp("bind9")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http01() -> Iterator[Http01Server]:
    server = Http01Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pebble(
    tmp_path_factory: pytest.TempPathFactory, bind9: Bind9, http01: Http01Server
) -> Iterator[Pebble]:
    server = Pebble(
        tmp_path_factory.mktemp("pebble"), http_port=http01.port, dns_server=bind9.address
    ).start()
    yield server
    server.stop()


@pytest.fixture
def start_pebble(
    tmp_path: Path, bind9: Bind9, http01: Http01Server
) -> Iterator[Callable[..., Pebble]]:
    """A pebble of the test's own (short validity, nonce rejection), stopped after it."""
    started: list[Pebble] = []

    def start(**options: int) -> Pebble:
        p = Pebble(
            tmp_path / f"pebble{len(started)}",
            http_port=http01.port,
            dns_server=bind9.address,
            **options,
        )
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def domain(bind9: Bind9) -> Iterator[str]:
    """A fresh user domain `<random>.test`, its records removed after the test."""
    name = f"shop-{secrets.token_hex(4)}.test"
    yield name
    for owner in (name, f"www.{name}", f"*.{name}", f"_acme-challenge.{name}"):
        bind9.delete(owner)


@pytest.fixture
def dns_target(bind9: Bind9) -> Iterator[str]:
    """An app's DNS target, resolving to the HTTP-01 responder's address."""
    name = f"app-{secrets.token_hex(4)}.spruce.test"
    bind9.set(name, "A", TARGET_IP)
    yield name
    bind9.delete(name)


@pytest.fixture
def resolver(bind9: Bind9) -> Resolver:
    return Resolver([bind9.address])


@pytest.fixture
def rfc2136(bind9: Bind9) -> Rfc2136Provider:
    return Rfc2136Provider.from_url(bind9.rfc2136_url())


@pytest.fixture
def prechecks(resolver: Resolver) -> Prechecks:
    return Prechecks(resolver, ca_identities=[CA_IDENTITY], dns_zone=ACME_ZONE)


@pytest.fixture
def make_issuer(pebble: Pebble, http01: Http01Server) -> Callable[..., AcmeIssuer]:
    def make(
        *,
        server: Pebble | None = None,
        account: AcmeAccount | None = None,
        dns01: Rfc2136Provider | None = None,
        http: Http01Tokens | None | bool = True,
        save_account: Callable[[AcmeAccount], None] | None = None,
    ) -> AcmeIssuer:
        ca = server or pebble
        responder = http01.tokens if http is True else (http or None)
        return AcmeIssuer(
            ca.directory_url,
            account or AcmeAccount.generate(),
            email="ops@spruce.test",
            ca_bundle=ca.ca_bundle,
            http01=responder,
            dns01=dns01,
            save_account=save_account,
            poll_interval=dt.timedelta(milliseconds=200),
        )

    return make
