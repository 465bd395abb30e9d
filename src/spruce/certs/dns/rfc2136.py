"""A DNS-01 provider that writes TXT records with RFC 2136 dynamic updates signed by TSIG.

Configured by one URL, `rfc2136://KEYNAME:SECRET@HOST:PORT/ZONE?alg=hmac-sha256`, which
BIND, Knot and PowerDNS all accept. SECRET is the key's base64 secret; it may be written
as is (Spruce splits at the last `@`) or percent-encoded. It never appears in errors or repr.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.tsigkeyring
import dns.update

SCHEME = "rfc2136://"
DEFAULT_PORT = 53
DEFAULT_TTL = 60
ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}
EXAMPLE = "rfc2136://KEYNAME:SECRET@HOST:PORT/ZONE?alg=hmac-sha256"


class DnsUpdateError(Exception):
    """The DNS server did not apply an update (the message names server, zone and cause)."""


@dataclass(frozen=True)
class Rfc2136Config:
    key_name: str
    secret: str = field(repr=False)
    host: str
    port: int
    zone: str
    algorithm: str = "hmac-sha256"

    @classmethod
    def from_url(cls, url: str) -> Rfc2136Config:
        if not url.startswith(SCHEME):
            raise ValueError(f"a DNS provider URL looks like {EXAMPLE}")
        rest = url[len(SCHEME) :]
        userinfo, sep, hostpart = rest.rpartition("@")
        if not sep:
            raise ValueError(f"the DNS provider URL has no KEYNAME:SECRET@ (expected {EXAMPLE})")
        key_name, sep, secret = userinfo.partition(":")
        key_name, secret = unquote(key_name), unquote(secret)
        if not sep or not key_name or not secret:
            raise ValueError(f"the DNS provider URL needs a TSIG key name and secret ({EXAMPLE})")
        try:
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"the TSIG secret of key {key_name} in the DNS provider URL is not base64"
            ) from None
        hostport, _, query = hostpart.partition("?")
        hostport, _, zone = hostport.partition("/")
        host, port = _host_port(hostport)
        zone = unquote(zone).strip("/").rstrip(".").lower()
        if not zone:
            raise ValueError(f"the DNS provider URL names no zone ({EXAMPLE})")
        params = parse_qs(query, keep_blank_values=True)
        unknown = set(params) - {"alg"}
        if unknown:
            raise ValueError(f"unknown DNS provider URL parameter(s): {', '.join(sorted(unknown))}")
        alg = params.get("alg", ["hmac-sha256"])[-1].lower()
        if alg not in ALGORITHMS:
            raise ValueError(
                f"unknown TSIG algorithm {alg!r}; use one of {', '.join(sorted(ALGORITHMS))}"
            )
        return cls(key_name, secret, host, port, zone, alg)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _host_port(hostport: str) -> tuple[str, int]:
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise ValueError(f"the DNS provider URL names no server ({EXAMPLE})")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"the DNS provider URL's port {port_text!r} is not a port number")
        port = int(port_text)
    return host, port


class Rfc2136Provider:
    """A `Dns01Provider` sending TSIG-signed UPDATEs over TCP to one primary server."""

    def __init__(self, config: Rfc2136Config, ttl: int = DEFAULT_TTL, timeout: float = 10.0):
        self.config = config
        self.ttl = ttl
        self.timeout = timeout
        self._keyring = dns.tsigkeyring.from_text({config.key_name: config.secret})
        self._key_name = dns.name.from_text(config.key_name)

    @classmethod
    def from_url(cls, url: str) -> Rfc2136Provider:
        return cls(Rfc2136Config.from_url(url))

    @property
    def zone(self) -> str:
        return self.config.zone

    def publish(self, name: str, value: str) -> None:
        update = self._update()
        update.add(self._relative(name), self.ttl, _txt(value))
        self._send(update, f"add a TXT record at {name}")

    def withdraw(self, name: str, value: str) -> None:
        update = self._update()
        update.delete(self._relative(name), _txt(value))
        self._send(update, f"remove a TXT record at {name}")

    def _update(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(
            self.config.zone + ".",
            keyring=self._keyring,
            keyname=self._key_name,
            keyalgorithm=ALGORITHMS[self.config.algorithm],
        )

    def _relative(self, name: str) -> dns.name.Name:
        zone = dns.name.from_text(self.config.zone)
        absolute = dns.name.from_text(name.rstrip(".") + ".")
        if not absolute.is_subdomain(zone):
            raise DnsUpdateError(f"{name} is not in the zone {self.config.zone}")
        return absolute.relativize(zone)

    def _send(self, update: dns.update.UpdateMessage, what: str) -> None:
        where = f"the DNS server at {self.config.address} (zone {self.config.zone})"
        try:
            server = _server_ip(self.config.host)
            response = dns.query.tcp(update, server, port=self.config.port, timeout=self.timeout)
        except dns.tsig.PeerError as e:
            raise DnsUpdateError(
                f"{where} rejected the TSIG signature of key {self.config.key_name} "
                f"({type(e).__name__}): check the key name, secret and algorithm"
            ) from None
        except (OSError, dns.exception.DNSException) as e:
            raise DnsUpdateError(f"could not {what}: {where} is unreachable ({e})") from None
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            hint = {
                dns.rcode.REFUSED: "the server does not allow this key to update the zone",
                dns.rcode.NOTAUTH: "the server is not authoritative for the zone, or the TSIG "
                "key is unknown to it",
                dns.rcode.NOTZONE: "the name is outside the zone",
            }.get(rcode, "see the server's log")
            raise DnsUpdateError(
                f"could not {what}: {where} answered {dns.rcode.to_text(rcode)} ({hint})"
            )


def _txt(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()])


def _server_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])
