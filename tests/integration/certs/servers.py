"""Real servers for ACME tests, reusable by any test: BIND 9, pebble and an HTTP-01 responder.

- `Bind9`: an authoritative server for the test "internet" (the root zone `.`, so no query
  ever leaves the machine) and for Spruce's DNS-01 zone, taking TSIG-signed updates. It
  also recurses, so CNAMEs from a user's zone into Spruce's zone are followed the way a
  CA's resolver follows them (BIND chases them across its own zones; Knot does not).
- `Pebble`: Debian's pebble with its own TLS pair (from Spruce's internal CA), its
  validation port pointed at our HTTP-01 responder and its resolver at BIND.
- `Http01Server`: serves an `Http01Tokens` on loopback, as the router will.

Everything binds 127.0.0.1 on ports picked at run time.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import httpx

from spruce.certs.acme.http01 import Http01Tokens
from spruce.certs.ca import InternalCA
from spruce.netutil import free_port

ACME_ZONE = "acme.spruce.test"  # the zone Spruce updates for DNS-01
CA_IDENTITY = "pebble.test"  # the CAA issuer domain the tests give pebble


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if predicate():
                return
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up ({last!r})")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _tsig_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


# -- BIND 9 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str


class Bind9:
    """`named` on a free loopback port: zone `.` (updatable by `admin`) and ACME_ZONE
    (updatable by `spruce`, the key in `rfc2136_url`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.admin = TsigKey("harness-admin", _tsig_secret())
        self.spruce = TsigKey("spruce-acme", _tsig_secret())
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rfc2136_url(self, zone: str = ACME_ZONE, key: TsigKey | None = None) -> str:
        key = key or self.spruce
        return f"rfc2136://{key.name}:{key.secret}@127.0.0.1:{self.port}/{zone}?alg=hmac-sha256"

    def start(self) -> Bind9:
        if shutil.which("named") is None:
            raise RuntimeError("BIND 9 is not installed (apt-get install bind9)")
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        soa = "@ 0 SOA ns.test. hostmaster.test. 1 60 60 600 0\n@ 0 NS ns.test.\n"
        (d / "root.zone").write_text(f"$ORIGIN .\n$TTL 0\n{soa}ns.test. 0 A 127.0.0.1\n")
        (d / "acme.zone").write_text(f"$ORIGIN {ACME_ZONE}.\n$TTL 0\n{soa}")
        keys = "".join(
            f'key "{k.name}" {{ algorithm hmac-sha256; secret "{k.secret}"; }};\n'
            for k in (self.admin, self.spruce)
        )
        (d / "named.conf").write_text(
            f"""options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  listen-on port {self.port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-recursion {{ 127.0.0.1; }};
  allow-query {{ 127.0.0.1; }};
  dnssec-validation no;
  notify no;
  max-cache-ttl 0;
  max-ncache-ttl 0;
}};
controls {{ }};
{keys}
zone "." {{ type primary; file "root.zone"; allow-update {{ key "{self.admin.name}"; }}; }};
zone "{ACME_ZONE}" {{ type primary; file "acme.zone"; allow-update {{ key "{self.spruce.name}"; }}; }};
"""
        )
        log = open(d / "named.log", "wb")  # noqa: SIM115 - named owns it until stop()
        self.proc = subprocess.Popen(
            ["named", "-g", "-c", str(d / "named.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        _wait(lambda: self._soa(ACME_ZONE) and self._soa("."), 30, "named", self.proc)
        return self

    def _soa(self, zone: str) -> bool:
        q = dns.message.make_query(zone.rstrip(".") + ".", "SOA")
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=1)
        return bool(r.rcode() == dns.rcode.NOERROR and r.answer)

    def stop(self) -> None:
        _stop(self.proc)

    # -- test set-up: the user's records ----------------------------------------------

    def _zone_of(self, name: str) -> tuple[str, TsigKey]:
        name = name.rstrip(".").lower()
        if name == ACME_ZONE or name.endswith("." + ACME_ZONE):
            return ACME_ZONE, self.spruce
        return ".", self.admin

    def _update(self, name: str) -> tuple[dns.update.UpdateMessage, str]:
        zone, key = self._zone_of(name)
        upd = dns.update.UpdateMessage(
            zone if zone == "." else zone + ".",
            keyring=dns.tsigkeyring.from_text({key.name: key.secret}),
            keyname=key.name,
            keyalgorithm="hmac-sha256",
        )
        return upd, name.rstrip(".") + "."

    def _send(self, upd: dns.update.UpdateMessage) -> None:
        r = dns.query.tcp(upd, "127.0.0.1", port=self.port, timeout=5)
        if r.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"update refused: {dns.rcode.to_text(r.rcode())}")

    def set(self, name: str, rdtype: str, *values: str) -> None:
        """Replace `name`'s `rdtype` records (in zone `.` or ACME_ZONE) with `values`."""
        upd, owner = self._update(name)
        upd.replace(owner, 0, rdtype, *values)
        self._send(upd)

    def delete(self, name: str, rdtype: str | None = None) -> None:
        upd, owner = self._update(name)
        if rdtype is None:
            upd.delete(owner)
        else:
            upd.delete(owner, rdtype)
        self._send(upd)

    def query(self, name: str, rdtype: str) -> list[str]:
        q = dns.message.make_query(name.rstrip(".") + ".", rdtype)
        r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=2)
        return [
            rd.to_text()
            for rrset in r.answer
            for rd in rrset
            if rrset.rdtype == q.question[0].rdtype
        ]


# -- HTTP-01 responder ----------------------------------------------------------------------


class Http01Server:
    """An HTTP server answering /.well-known/acme-challenge/ from an `Http01Tokens`."""

    def __init__(self, tokens: Http01Tokens | None = None, port: int | None = None) -> None:
        self.tokens = tokens or Http01Tokens()
        self.requests: list[tuple[str, str]] = []  # (Host, path) of every request, for tests
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.headers.get("Host", ""), self.path))
                body = outer.tokens.answer(self.path)
                data = (body or "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> Http01Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths_for(self, host: str) -> list[str]:
        return [p for h, p in self.requests if h.split(":")[0] == host]


# -- pebble ---------------------------------------------------------------------------------


class Pebble:
    """Debian's pebble: an ACME CA at `directory_url`, trusted through `ca_bundle`."""

    def __init__(
        self,
        directory: Path,
        *,
        http_port: int,
        dns_server: str,
        validity: int | None = None,
        nonce_reject: int = 0,
        authz_reuse: int = 0,
    ) -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.management_port = free_port()
        self.http_port = http_port
        self.dns_server = dns_server
        self.validity = validity
        self.env = {
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
            "PEBBLE_AUTHZREUSE": str(authz_reuse),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def ca_bundle(self) -> str:
        return str(self.directory / "tls" / "ca.pem")

    def start(self) -> Pebble:
        if shutil.which("pebble") is None:
            raise RuntimeError("pebble is not installed (apt-get install pebble)")
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        ca = InternalCA(d / "tls", name="Pebble listener test CA")
        ca.issue_to_files(d / "cert.pem", d / "key.pem", ["localhost"], ["127.0.0.1"])
        config: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(d / "cert.pem"),
            "privateKey": str(d / "key.pem"),
            "httpPort": self.http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
        if self.validity is not None:
            config["certificateValidityPeriod"] = self.validity
        (d / "pebble.json").write_text(json.dumps({"pebble": config}))
        log = open(d / "pebble.log", "wb")  # noqa: SIM115 - pebble owns it until stop()
        self.proc = subprocess.Popen(
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", self.dns_server],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=d,
        )
        log.close()
        _wait(lambda: self._get(self.directory_url).status_code == 200, 30, "pebble", self.proc)
        return self

    def _get(self, url: str) -> httpx.Response:
        return httpx.get(url, verify=ssl.create_default_context(cafile=self.ca_bundle), timeout=5)

    def roots_pem(self) -> str:
        return self._get(f"https://127.0.0.1:{self.management_port}/roots/0").text

    def log(self) -> str:
        return (self.directory / "pebble.log").read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.proc)


def leaf_names(chain_pem: str) -> set[str]:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def verify_chain(chain_pem: str, roots_pem: str, hostnames: Iterable[str]) -> None:
    """Raise unless the chain verifies against pebble's root for every hostname."""
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    certs = x509.load_pem_x509_certificates(chain_pem.encode())
    store = Store(x509.load_pem_x509_certificates(roots_pem.encode()))
    for host in hostnames:
        name = host.replace("*", "wildcard-probe", 1) if host.startswith("*.") else host
        verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
        verifier.verify(certs[0], certs[1:])
