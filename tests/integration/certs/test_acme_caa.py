"""CAA pre-checks against records served by BIND (pebble itself never checks CAA)."""

from __future__ import annotations

import datetime as dt

from spruce.certs.dns import Prechecks, Resolver
from spruce.netutil import free_port
from spruce.services import acm_lifecycle as acm

from .servers import ACME_ZONE, CA_IDENTITY


def test_caa_on_a_parent_forbidding_the_ca_refuses_with_a_reason(
    bind9, domain, dns_target, prechecks
):
    host = f"www.{domain}"
    bind9.set(host, "CNAME", dns_target + ".")
    assert prechecks.problem(host, dns_target) is None  # no CAA anywhere: any CA may issue

    bind9.set(domain, "CAA", '0 issue "other-ca.test"', '0 iodef "mailto:sec@example.test"')
    problem = prechecks.problem(host, dns_target)
    assert problem == (
        f"A CAA record on {domain} allows only other-ca.test to issue certificates, not "
        f'{CA_IDENTITY}. Add a CAA record {domain}. CAA 0 issue "{CA_IDENTITY}" or remove the '
        "restriction."
    )
    # The scheduler retries with backoff, then gives up until certs:auto:refresh.
    policy = acm.Policy(max_attempts=3)
    now = dt.datetime.now(dt.UTC)
    state = acm.DomainAcm("pending")
    for status in ("failing", "failing", "failed"):
        state = acm.apply(state, acm.DnsFailed(problem), now, policy)
        assert (state.status, state.reason) == (status, problem)
    assert not acm.due(state, now + dt.timedelta(days=1))
    assert acm.apply(state, acm.Refreshed(), now, policy).status is None

    # The closest CAA set wins: one on the name itself allowing the CA overrides the parent's
    # (CA names compare case-insensitively; parameters after ';' do not change the issuer).
    bind9.delete(host)
    bind9.set(host, "A", "127.0.0.1")
    bind9.set(host, "CAA", f'0 issue "{CA_IDENTITY.upper()}; validationmethods=http-01"')
    assert prechecks.problem(host, dns_target) is None


def test_issuewild_forbids_only_the_wildcard(bind9, domain, dns_target, prechecks):
    wildcard = f"*.{domain}"
    bind9.set(wildcard, "CNAME", dns_target + ".")
    bind9.set(f"_acme-challenge.{domain}", "CNAME", f"{domain}.{ACME_ZONE}.")
    bind9.set(f"www.{domain}", "CNAME", dns_target + ".")
    bind9.set(domain, "CAA", f'0 issue "{CA_IDENTITY}"', '0 issuewild ";"')
    assert prechecks.problem(f"www.{domain}", dns_target) is None
    assert prechecks.problem(wildcard, dns_target, [wildcard]) == (
        f"A CAA record on {domain} allows no certificate authority to issue wildcard "
        f"certificates, not {CA_IDENTITY}. Add a CAA record {domain}. CAA 0 issuewild "
        f'"{CA_IDENTITY}" or remove the restriction.'
    )
    bind9.delete(f"www.{domain}")


def test_a_failing_caa_lookup_blocks_issuance(dns_target):
    # Nothing listens on this port: the look-up fails, which a CA treats as "do not issue".
    dead = Prechecks(
        Resolver([f"127.0.0.1:{free_port()}"], timeout=0.5),
        ca_identities=[CA_IDENTITY],
        dns_zone=ACME_ZONE,
    )
    problem = dead.problem("www.nowhere.test", dns_target)
    assert problem is not None
    assert problem.startswith("The DNS look-up for www.nowhere.test failed (")
    assert problem.endswith("Spruce will retry.")
