"""Renewal on a real platform: pebble issues 30-second certificates, Spruce renews each 8 s
before it ends (`--acme-renew-before 8s`), and the router swaps it under a load of TLS
handshakes without one failing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from support import RunningPlatform, wait_for

from spruce.netutil import free_port

from .acm_support import (
    acm_platform,
    create_app,
    forget,
    handshake,
    https_port,
    new_domain,
    point,
    use_app_domain,
    wait_statuses,
)
from .servers import Bind9, Pebble

pytestmark = pytest.mark.slow
VALIDITY = 30


@pytest.fixture(scope="module")
def short_pebble(tmp_path_factory: pytest.TempPathFactory, bind9: Bind9) -> Iterator[Pebble]:
    server = Pebble(
        tmp_path_factory.mktemp("renew-pebble"),
        http_port=free_port(),
        dns_server=bind9.address,
        validity=VALIDITY,
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, short_pebble: Pebble, bind9: Bind9
) -> Iterator[RunningPlatform]:
    use_app_domain(bind9)
    p = acm_platform(
        tmp_path_factory.mktemp("renew-home"),
        short_pebble,
        bind9,
        extra_args=["--acme-renew-before", "8s"],
    )
    yield p
    p.stop()


class HandshakeLoad:
    """TLS handshakes one after another, each verified against pebble's root."""

    def __init__(self, port: int, sni: str, roots: str) -> None:
        self.port, self.sni, self.roots = port, sni, roots
        self.serials: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.serials.append(handshake(self.port, self.sni, self.roots).serial_number)
            except Exception as e:  # noqa: BLE001 - every failure is what the test counts
                self.failures.append(repr(e))

    def __enter__(self) -> HandshakeLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def test_a_certificate_is_renewed_before_it_ends_with_no_failed_handshake(
    platform: RunningPlatform, short_pebble: Pebble, bind9: Bind9
) -> None:
    created: list[str] = []
    try:
        api = platform.client()
        app = create_app(api)
        www = f"www.{new_domain(bind9, created)}"
        point(bind9, www, app)
        api.post(f"/apps/{app}/domains", json={"hostname": www})
        api.post(f"/apps/{app}/acm", json={})
        wait_statuses(api, app, {www: "cert issued"})
        [first] = api.get(f"/apps/{app}/sni-endpoints").json()
        port, roots = https_port(platform), short_pebble.roots_pem()
        served = wait_for(lambda: handshake(port, www, roots), 10, what="the ACM certificate")
        with HandshakeLoad(port, www, roots) as load:
            # The renewal is due VALIDITY - 8 s after issuance; each handshake meanwhile
            # gets a valid certificate, the old one until the swap, the new one after it.
            wait_for(
                lambda: len(set(load.serials)) >= 2 and load.serials[-1] != served.serial_number,
                VALIDITY + 30,
                interval=0.2,
                what="the renewed certificate in handshakes",
            )
            time.sleep(1)
        assert load.failures == []
        assert len(load.serials) > 20
        renewed = [s for s in load.serials if s != served.serial_number]
        assert renewed and load.serials.index(renewed[0]) > 0  # old first, then the new one
        assert load.serials[-1] == renewed[0]  # and no way back
        [after] = api.get(f"/apps/{app}/sni-endpoints").json()
        assert (after["id"], after["name"]) == (first["id"], first["name"])  # in place
        assert after["ssl_cert"]["expires_at"] > first["ssl_cert"]["expires_at"]
    finally:
        forget(bind9, created)
