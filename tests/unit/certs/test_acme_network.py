"""The ACME transport's retries against a scripted server on loopback.

Pebble enforces no rate limits and never answers 503, so the CA side of those exchanges is
played by a small HTTP server sending the bytes RFC 8555 says a CA sends (problem documents,
Replay-Nonce, Retry-After). Everything on our side is the real client.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from acme import messages

from spruce.certs.acme import AcmeAccount, AcmeIssuer, RetryLater
from spruce.certs.acme.issuer import MAX_TRANSIENT_ERRORS
from spruce.certs.acme.network import AcmeNetwork, GoneAtCA, retry_after
from spruce.services import acm_lifecycle as acm

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
Reply = tuple[int, dict[str, str], bytes]


def problem(code: str, detail: str, status: int, **headers: str) -> Reply:
    body = json.dumps({"type": f"urn:ietf:params:acme:error:{code}", "detail": detail})
    return status, {"Content-Type": "application/problem+json", **headers}, body.encode()


class ScriptedCA:
    """Directory, nonces and accounts like a CA; each other POST path answers from a script."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.posts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, reply: Reply) -> None:
                status, headers, body = reply
                self.send_response(status)
                self.send_header("Replay-Nonce", secrets.token_urlsafe(16).rstrip("="))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._reply((200, {}, b""))

            def do_GET(self) -> None:
                if self.path != "/dir":
                    self._reply(problem("malformed", "Resource not found", 404))
                    return
                base = outer.url
                directory = {
                    "newNonce": f"{base}/nonce",
                    "newAccount": f"{base}/new-acct",
                    "newOrder": f"{base}/new-order",
                    "revokeCert": f"{base}/revoke",
                    "keyChange": f"{base}/key-change",
                }
                self._reply(
                    (200, {"Content-Type": "application/json"}, json.dumps(directory).encode())
                )

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts.append(self.path)
                if self.path == "/new-acct":
                    body = json.dumps({"status": "valid"}).encode()
                    self._reply(
                        (
                            201,
                            {"Location": f"{outer.url}/acct/1", "Content-Type": "application/json"},
                            body,
                        )
                    )
                    return
                script = outer.scripts.get(self.path) or []
                self._reply(
                    script.pop(0) if script else (200, {"Content-Type": "application/json"}, b"{}")
                )

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca() -> Iterator[ScriptedCA]:
    server = ScriptedCA()
    yield server
    server.stop()


def network(nonce_retries: int = 10) -> AcmeNetwork:
    account = AcmeAccount.generate()
    net = AcmeNetwork(account.key, alg=account.alg, nonce_retries=nonce_retries)
    net.account = messages.RegistrationResource(
        uri="https://ca.test/acct/1", body=messages.Registration()
    )
    return net


def test_retry_after_takes_seconds_or_a_date_and_caps_both():
    assert retry_after("120", NOW, dt.timedelta(seconds=5)) == NOW + dt.timedelta(seconds=120)
    later = NOW + dt.timedelta(minutes=7)
    assert retry_after(format_datetime(later, usegmt=True), NOW, dt.timedelta(0)) == later
    assert retry_after("Thu, 01 Jan 1998 00:00:00 GMT", NOW, dt.timedelta(0)) == NOW  # past
    assert retry_after("soon", NOW, dt.timedelta(seconds=5)) == NOW + dt.timedelta(seconds=5)
    assert retry_after(None, NOW, dt.timedelta(seconds=5)) == NOW + dt.timedelta(seconds=5)
    assert retry_after("99999999", NOW, dt.timedelta(0)) == NOW + dt.timedelta(days=1)


def test_bad_nonces_are_retried_with_fresh_nonces(ca):
    ca.scripts["/thing"] = [problem("badNonce", "stale", 400)] * 3
    net = network()
    response = net.post(f"{ca.url}/thing", None, new_nonce_url=f"{ca.url}/nonce")
    assert response.status_code == 200
    assert net.bad_nonces == 3 and ca.posts.count("/thing") == 4


def test_bad_nonces_give_up_after_the_limit(ca):
    ca.scripts["/thing"] = [problem("badNonce", "stale", 400)] * 10
    net = network(nonce_retries=2)
    with pytest.raises(messages.Error) as info:
        net.post(f"{ca.url}/thing", None, new_nonce_url=f"{ca.url}/nonce")
    assert info.value.code == "badNonce" and ca.posts.count("/thing") == 3


def test_rate_limits_and_unavailability_become_retry_later(ca):
    ca.scripts["/order"] = [
        problem(
            "rateLimited", "too many certificates for shop.test", 429, **{"Retry-After": "120"}
        ),
        (503, {"Retry-After": "30", "Content-Type": "text/plain"}, b"down for maintenance"),
        problem("malformed", "no such order", 404),
    ]
    net = network()
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(RetryLater) as limited:
        net.post(f"{ca.url}/order", None, new_nonce_url=f"{ca.url}/nonce")
    assert limited.value.rate_limited and "too many certificates" in limited.value.detail
    assert before + dt.timedelta(seconds=119) <= limited.value.retry_at
    assert limited.value.retry_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=121)
    with pytest.raises(RetryLater) as unavailable:
        net.post(f"{ca.url}/order", None, new_nonce_url=f"{ca.url}/nonce")
    assert not unavailable.value.rate_limited and unavailable.value.detail == "HTTP 503"
    with pytest.raises(GoneAtCA):
        net.post(f"{ca.url}/order", None, new_nonce_url=f"{ca.url}/nonce")


def test_the_issuer_defers_a_rate_limited_order_and_waits_before_retrying(ca):
    ca.scripts["/new-order"] = [
        problem("rateLimited", "too many new orders", 429, **{"Retry-After": "3600"})
    ]
    issuer = AcmeIssuer(f"{ca.url}/dir", AcmeAccount.generate(), http01=object())  # type: ignore[arg-type]
    record = issuer.advance(issuer.begin(["www.shop.test"]))
    assert (record.stage, record.rate_limited) == ("new", True)
    assert record.problem == (
        "The certificate authority asked Spruce to wait (rate limit): too many new orders"
    )
    assert record.retry_at is not None and record.retry_at > dt.datetime.now(dt.UTC) + dt.timedelta(
        minutes=59
    )
    # The platform's lifecycle keeps the domain dns-verified, says why and when it retries.
    [event] = acm.order_events(record).values()
    state = acm.apply(acm.DomainAcm("dns-verified"), event, NOW, acm.Policy())
    assert (state.status, state.reason, state.next_check_at) == (
        "dns-verified",
        record.problem,
        record.retry_at,
    )
    # Nothing is sent before Retry-After.
    posts = len(ca.posts)
    assert issuer.complete(record, timeout=1) == record
    assert len(ca.posts) == posts


def test_transient_failures_back_off_then_give_up(ca):
    ca.scripts["/new-order"] = [problem("serverInternal", "oops", 500)] * (MAX_TRANSIENT_ERRORS + 1)
    issuer = AcmeIssuer(f"{ca.url}/dir", AcmeAccount.generate(), http01=object())  # type: ignore[arg-type]
    record = issuer.begin(["www.shop.test"])
    waits = []
    for _ in range(MAX_TRANSIENT_ERRORS):
        record = issuer.advance(record)
        assert record.stage == "new" and record.retry_at is not None
        waits.append(record.retry_at)
    assert waits == sorted(waits)
    assert (
        record.problem == "Spruce could not reach the certificate authority (oops); it will retry."
    )
    record = issuer.advance(record)
    assert record.stage == "invalid" and record.errors == MAX_TRANSIENT_ERRORS + 1


def test_a_wrong_directory_url_fails_the_order_with_the_url(ca):
    issuer = AcmeIssuer(f"{ca.url}/directory", AcmeAccount.generate(), http01=object())  # type: ignore[arg-type]
    record = issuer.advance(issuer.begin(["www.shop.test"]))
    assert record.stage == "invalid"
    assert record.problem == (f"The ACME directory {ca.url}/directory answered: Resource not found")


def _json(status: int, body: dict[str, Any], **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def test_finalize_handles_order_not_ready_and_waits_while_processing(ca, tmp_path):
    from spruce.certs.ca import InternalCA

    chain = InternalCA(tmp_path / "ca").issue(["www.shop.test"]).cert_pem
    order = {
        "identifiers": [{"type": "dns", "value": "www.shop.test"}],
        "authorizations": [],
        "finalize": f"{ca.url}/finalize/1",
    }
    ready, processing = {**order, "status": "ready"}, {**order, "status": "processing"}
    valid = {**order, "status": "valid", "certificate": f"{ca.url}/cert/1"}
    ca.scripts["/new-order"] = [_json(201, ready, Location=f"{ca.url}/order/1")]
    ca.scripts["/order/1"] = [
        _json(200, ready),  # authorizing: nothing to prove, ready -> finalizing
        _json(200, ready),  # finalizing: finalize is refused as not ready...
        _json(200, ready),  # ... so back through authorizing
        _json(200, ready),  # finalize accepted this time
        _json(200, processing, **{"Retry-After": "7"}),
        _json(200, valid),
    ]
    ca.scripts["/finalize/1"] = [problem("orderNotReady", "not yet", 403), _json(200, processing)]
    ca.scripts["/cert/1"] = [
        (200, {"Content-Type": "application/pem-certificate-chain"}, chain.encode())
    ]
    issuer = AcmeIssuer(f"{ca.url}/dir", AcmeAccount.generate(), http01=object())  # type: ignore[arg-type]
    record = issuer.begin(["www.shop.test"])
    stages = []
    for _ in range(7):
        before = dt.datetime.now(dt.UTC)
        record = issuer.advance(record)
        stages.append(record.stage)
        if len(stages) == 6:  # the processing answer said Retry-After: 7
            assert record.retry_at is not None
            assert record.retry_at >= before + dt.timedelta(seconds=6)
    assert stages == [
        "authorizing",
        "finalizing",
        "authorizing",
        "finalizing",
        "finalizing",
        "finalizing",
        "valid",
    ]
    assert record.certificate_pem == chain and record.problem is None
