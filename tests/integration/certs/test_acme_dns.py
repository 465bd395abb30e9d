"""RFC 2136 updates and DNS-target checks against BIND."""

from __future__ import annotations

import base64

import pytest

from spruce.certs.dns import DnsUpdateError, Rfc2136Provider, target_problem
from spruce.netutil import free_port

from .servers import ACME_ZONE, TsigKey


def test_txt_values_are_added_beside_each_other_and_removed_one_by_one(bind9, rfc2136):
    name = f"x-{free_port()}.{ACME_ZONE}"
    rfc2136.publish(name, "one")
    rfc2136.publish(name, "two")
    rfc2136.publish(name, "two")  # idempotent
    assert sorted(bind9.query(name, "TXT")) == ['"one"', '"two"']
    rfc2136.withdraw(name, "one")
    rfc2136.withdraw(name, "never-there")
    assert bind9.query(name, "TXT") == ['"two"']
    rfc2136.withdraw(name, "two")
    assert bind9.query(name, "TXT") == []


def test_update_failures_name_the_cause_and_never_the_secret(bind9):
    wrong = base64.b64encode(b"w" * 32).decode()
    bad_secret = Rfc2136Provider.from_url(bind9.rfc2136_url(key=TsigKey(bind9.spruce.name, wrong)))
    with pytest.raises(DnsUpdateError, match="TSIG signature of key spruce-acme") as info:
        bad_secret.publish(f"a.{ACME_ZONE}", "v")
    assert wrong not in str(info.value)

    not_a_zone = Rfc2136Provider.from_url(bind9.rfc2136_url(zone="test"))
    with pytest.raises(DnsUpdateError, match=r"answered NOTAUTH \(the server is not authoritative"):
        not_a_zone.publish("a.test", "v")
    not_allowed = Rfc2136Provider.from_url(
        bind9.rfc2136_url(key=bind9.admin)
    )  # not this zone's key
    with pytest.raises(
        DnsUpdateError, match=r"answered REFUSED \(the server does not allow"
    ) as info:
        not_allowed.publish(f"a.{ACME_ZONE}", "v")
    assert bind9.admin.secret not in str(info.value)

    with pytest.raises(DnsUpdateError, match="is not in the zone"):
        Rfc2136Provider.from_url(bind9.rfc2136_url()).publish("a.elsewhere.test", "v")

    dead = Rfc2136Provider.from_url(f"rfc2136://k:{wrong}@127.0.0.1:{free_port()}/{ACME_ZONE}")
    dead.timeout = 2
    with pytest.raises(DnsUpdateError, match="is unreachable") as info:
        dead.publish(f"a.{ACME_ZONE}", "v")
    assert wrong not in str(info.value)


def test_dns_target_checks(bind9, resolver, domain, dns_target):
    host = f"www.{domain}"
    assert target_problem(resolver, host, dns_target) == (
        f"{host} has no DNS records. Add a CNAME record {host} pointing to {dns_target} "
        "(ALIAS or ANAME at a zone apex)."
    )
    # A chain through the user's own name to the target is fine.
    bind9.set(host, "CNAME", f"edge.{domain}.")
    bind9.set(f"edge.{domain}", "CNAME", dns_target + ".")
    assert target_problem(resolver, host, dns_target) is None
    bind9.delete(f"edge.{domain}")
    # Apex with A records: every address must be the target's (an AAAA elsewhere is not).
    bind9.set(domain, "A", "127.0.0.1")
    assert target_problem(resolver, domain, dns_target) is None
    bind9.set(domain, "AAAA", "2001:db8::1")
    assert target_problem(resolver, domain, dns_target) == (
        f"{domain} resolves to 2001:db8::1, which is not its DNS target {dns_target}. Every A "
        f"and AAAA record of {domain} must lead there: Add a CNAME record {domain} pointing to "
        f"{dns_target} (ALIAS or ANAME at a zone apex)."
    )
