"""DNS look-ups for ACM's pre-checks, through a configurable recursive resolver.

Results say "no such name", "no records of this type" and "the look-up failed" apart, since
CAA climbing and the reasons shown to users differ on each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

Outcome = Literal["ok", "nxdomain", "nodata", "error"]


@dataclass(frozen=True)
class Lookup:
    outcome: Outcome
    records: tuple[str, ...] = ()
    """The answer's rdata as text (CNAME targets and names without the trailing dot)."""
    cnames: tuple[str, ...] = ()
    """The CNAME chain the resolver followed, first hop first (targets, no trailing dot)."""
    error: str | None = None


def parse_nameserver(text: str) -> tuple[str, int]:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` -> (ip, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        port = tail.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"not a nameserver address (IP or IP:PORT): {text!r}")
    return host, int(port) if port else 53


class Resolver:
    """dnspython's stub resolver, pointed at `nameservers` or at /etc/resolv.conf's."""

    def __init__(self, nameservers: Sequence[str] | None = None, timeout: float = 5.0) -> None:
        if nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(n)) for n in nameservers
            ]
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self._resolver.cache = None  # a user fixing DNS must see the fix at the next check

    def lookup(self, name: str, rdtype: str) -> Lookup:
        qname = dns.name.from_text(name.rstrip(".") + ".")
        try:
            answer = self._resolver.resolve(qname, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Lookup("nxdomain")
        except dns.resolver.NoNameservers as e:
            return Lookup("error", error=_rcode_text(e))
        except dns.exception.Timeout:
            return Lookup("error", error="timed out")
        except dns.exception.DNSException as e:
            return Lookup("error", error=type(e).__name__)
        cnames = tuple(_text(rd.target) for rrset in answer.chaining_result.cnames for rd in rrset)
        if answer.rrset is None:
            return Lookup("nodata", cnames=cnames)
        if dns.rdatatype.from_text(rdtype) == dns.rdatatype.CNAME:
            records = tuple(_text(rd.target) for rd in answer.rrset)
        else:
            records = tuple(rd.to_text() for rd in answer.rrset)
        return Lookup("ok", records, cnames)


def _text(name: dns.name.Name) -> str:
    return name.to_text().rstrip(".").lower()


def _rcode_text(e: dns.resolver.NoNameservers) -> str:
    # "All nameservers failed to answer the query x. IN CAA: Server ... answered SERVFAIL"
    text = str(e)
    for code in ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"):
        if code in text:
            return code
    return "no nameserver answered"
